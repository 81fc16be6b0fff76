"""Starting a client project: `gigmatch new-project` makes a fresh repository that runs its own lifecycle.

The generation tests are fast and check the tree. The lifecycle test (marked
`template` and `slow`) installs the generated project's own virtual environment
from its uv.lock (uv's warm cache makes that seconds), imports a small client
dataset under the client's column names, runs `make repro` and `make export`,
serves the bundle with a real uvicorn on loopback and calls /v1/match, and
trips the drift gate on purpose.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devtools.new_project import LEFT_OUT, TEMPLATE_NAME, NewProjectError, check_name, create_project, project_files
from devtools.ports import free_port
from gigmatch.cli import ExitCode, main
from gigmatch.params import load_params
from tests.conftest import request_for
from tests.test_byo import MAPPING, write_client_tables

ROOT = Path(__file__).resolve().parents[1]
NAME = "acme_match"


@pytest.fixture(scope="module")
def git_identity() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as env:
        for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
            env.setenv(var, "gigmatch tests")
        for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
            env.setenv(var, "tests@gigmatch.invalid")
        yield


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, git_identity: None) -> Path:
    dest = tmp_path_factory.mktemp("client") / NAME
    create_project(ROOT, NAME, dest)
    return dest


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


# ---------------------------------------------------------------- the generated tree (fast)


def test_the_project_is_renamed_everywhere(project: Path) -> None:
    files = _git(["ls-files"], project).split()
    assert f"{NAME}/cli/__init__.py" in files and not any(f.startswith(TEMPLATE_NAME) for f in files)
    leftovers = [f for f in files if TEMPLATE_NAME in (project / f).read_text(errors="replace").lower()]
    assert leftovers == []
    pyproject = (project / "pyproject.toml").read_text()
    assert f'name = "{NAME}"' in pyproject and f'{NAME} = "{NAME}.cli:entrypoint"' in pyproject
    # Lock and requirements files use the distribution name, as `uv lock` and `uv export` write it.
    assert 'name = "acme-match"\nversion = "0.1.0"\nsource = { editable = "." }' in (project / "uv.lock").read_text()
    assert "# via acme-match" in (project / "serving" / "requirements.txt").read_text()
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["register"]["model_name"] == f"{NAME}-ranker"
    assert f"url = ~/.cache/{NAME}/dvc-storage" in (project / ".dvc" / "config").read_text()
    assert f'env_prefix="{NAME.upper()}_"' in (project / "serving" / "settings.py").read_text()


def test_none_of_our_data_runs_or_results_travel(project: Path) -> None:
    files = set(_git(["ls-files"], project).split())
    for left_out in ("data.dvc", "dvc.lock", "reports/fingerprint.json", "reports/train_metrics.json"):
        assert left_out not in files
    for local in ("data", "mlflow.db", "bundle", ".venv", "reports", ".prefect"):
        assert not (project / local).exists(), local
    assert files == {p.replace(TEMPLATE_NAME, NAME) for p in project_files(ROOT)}
    assert ".ci/run" in files and os.access(project / ".ci" / "run", os.X_OK)


def test_the_history_is_one_clean_commit(project: Path) -> None:
    assert len(_git(["log", "--oneline"], project).splitlines()) == 1
    assert _git(["status", "--porcelain"], project) == ""
    assert _git(["remote"], project) == ""


def test_remote_can_be_set(tmp_path: Path, git_identity: None) -> None:
    create_project(ROOT, "beta", tmp_path / "beta", dvc_remote="s3://bucket/beta")
    assert "url = s3://bucket/beta" in (tmp_path / "beta" / ".dvc" / "config").read_text()


@pytest.mark.parametrize("name", ["Acme", "1acme", "acme-match", TEMPLATE_NAME, "json", "serving", "class", "numpy"])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(NewProjectError):
        check_name(name)


def test_the_command_refuses_a_non_empty_destination(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    assert main(["new-project", "acme", "--dest", str(tmp_path / "taken")]) == ExitCode.ERROR
    assert "is not empty" in capsys.readouterr().err
    assert main(["new-project", "acme", "--dest", str(ROOT / "sub")]) == ExitCode.ERROR
    assert not (ROOT / "sub").exists()


def test_left_out_are_the_paths_our_pipeline_writes() -> None:
    """The data pin, the stage lock and the reports directory, as params.yaml names them: the list is not stale."""
    params = load_params(ROOT / "params.yaml")
    assert set(LEFT_OUT) == {f"{params.data.dir}.dvc", "dvc.lock", f"{params.train.reports_dir}/"}


# ---------------------------------------------------------------- its lifecycle (slow)


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed (make install puts it in .tools/)")
    return found


def _env(project: Path, prefect_url: str, tmp: Path) -> dict[str, str]:
    """The generated project's own environment: nothing of ours (venv, settings, stores) leaks in."""
    ours = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIGMATCH_", "MLFLOW_", "PREFECT_", "UV_", "VIRTUAL_ENV", "PYTHONPATH", "MAKE"))
    }
    env["PATH"] = os.pathsep.join(
        [str(project / ".venv" / "bin"), *(p for p in env["PATH"].split(os.pathsep) if p != ours)]
    )
    env |= {
        "UV": _uv(),  # the Makefile's uv (it would bootstrap its own into .tools/ with pip otherwise)
        "UV_PYTHON": sys._base_executable,  # the interpreter our venv was made from
        "UV_PYTHON_DOWNLOADS": "never",
        "PREFECT_API_URL": prefect_url,
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp / "dvc-site"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str], expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == expect, (
        f"{args}: exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


def _call(url: str, body: object | None = None, key: str | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    if key:
        request.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def prefect_url(prefect_harness: None) -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


@pytest.mark.slow
@pytest.mark.template
def test_a_new_project_runs_its_lifecycle_on_a_clients_data(
    tmp_path: Path, git_identity: None, prefect_url: str, small_simulate: object
) -> None:
    from gigmatch.data.simulator import generate_snapshot
    from gigmatch.data.snapshot import read_tables
    from gigmatch.params import override

    dest = tmp_path / NAME
    create_project(ROOT, NAME, dest)
    env = _env(dest, prefect_url, tmp_path)
    cli = str(dest / ".venv" / "bin" / NAME)

    # The client's tables (about 300 jobs), under their own column names; the mapping goes in params.yaml.
    generate_snapshot(override(small_simulate, n_jobs=300, n_freelancers=2500), tmp_path / "simulated")  # type: ignore[type-var]
    write_client_tables(tmp_path / "simulated", tmp_path / "client")
    # With the profiles' history, so features read them as of each application (the as-of rule).
    history = read_tables(tmp_path / "simulated")["freelancer_history"].rename(columns={"freelancer_id": "talent_id"})
    history.to_csv(tmp_path / "client" / "freelancer_history.csv", index=False)
    raw = yaml.safe_load((dest / "params.yaml").read_text())
    raw["data"]["import"]["columns"] = {**MAPPING, "freelancer_history": {"talent_id": "freelancer_id"}}
    raw["train"]["models"] = {  # small, so the test trains in seconds
        "logistic": {"kind": "logistic", "params": {"C": 1.0}},
        "lambdarank": {
            "kind": "lambdarank",
            "params": {"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 20},
        },
    }
    raw["train"]["text_max_features"] = 2000
    raw["evaluate"]["fairness_min_qualified"] = 20  # as in test_training: few test jobs per region
    raw["promote"]["min_fairness_ratio"] = 0.4
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    _run(["make", "install"], dest, env)
    exported = _run(["make", "--no-print-directory", "serving-requirements"], dest, env)
    assert exported.returncode == 0 and _git(["status", "--porcelain", "serving"], dest) == ""  # the lock is coherent
    _run([cli, "data", "import", str(tmp_path / "client")], dest, env)
    assert (dest / "data.dvc").is_file() and not (dest / "data" / "simulator_truth.parquet").exists()
    _run(["git", "add", "-A"], dest, env)
    _run(["git", "commit", "--quiet", "-m", "Pin the client's data"], dest, env)

    _run(["make", "repro"], dest, env)
    _run(["make", "export"], dest, env)
    metrics = json.loads((dest / "reports" / "train_metrics.json").read_text())
    assert metrics["test"]["ndcg_at_10"] > metrics["test"]["baseline_random_ndcg_at_10"]
    assert not any("oracle" in key for key in metrics["test"])
    lineage = json.loads((dest / "bundle" / "lineage.json").read_text())
    assert lineage["model_name"] == f"{NAME}-ranker"

    # Serve it with a real uvicorn; its settings answer to the new prefix.
    port = free_port()
    serve_env = env | {f"{NAME.upper()}_API_KEY": "s3cret", f"{NAME.upper()}_LOG_DIR": str(tmp_path / "log")}
    server = subprocess.Popen(
        [cli, "serve", "--bundle", "bundle", "--port", str(port)],
        cwd=dest, env=serve_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if _call(f"{base}/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, "the server exited"
            time.sleep(0.25)
        frames = read_tables(dest / "data")
        job_id = int(frames["jobs"]["job_id"].iloc[-1])
        job, candidates = request_for(job_id, frames)
        body = {"job": job, "candidates": candidates, "top_k": 5}
        assert _call(f"{base}/v1/match", body)[0] == 401
        status, answer = _call(f"{base}/v1/match", body, key="s3cret")
        assert status == 200, answer
        assert len(answer["candidates"]) == 5 and answer["model_name"] == f"{NAME}-ranker"
        assert answer["model_version"] == lineage["version"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    # The drift gate: quiet on the training distribution, blocked by a profile outage (lost ratings).
    verdict_file = dest / "reports" / "drift" / "drift_verdict.json"
    if not verdict_file.exists():  # the pipeline did not gate a `none` batch itself
        _run([cli, "data", "batch", "--scenario", "none", "--seed", "1", "--out", "batches/none.parquet"], dest, env)
        _run([cli, "drift", "--current", "batches/none.parquet"], dest, env)
    assert json.loads(verdict_file.read_text())["verdict"] == "no_drift"
    _run(
        [cli, "data", "batch", "--scenario", "missing_values", "--seed", "1", "--out", "batches/lost.parquet"],
        dest,
        env,
    )
    _run([cli, "drift", "--current", "batches/lost.parquet"], dest, env, expect=ExitCode.CHECK_FAILED)
    assert json.loads(verdict_file.read_text())["verdict"] == "drift"
