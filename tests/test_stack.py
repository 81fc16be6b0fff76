"""The team stack for real: PostgreSQL, SeaweedFS's S3, the MLflow and Prefect servers, a process worker
and Prometheus, started by `gigmatch stack up` on loopback, the lifecycle run against them from fresh
clones, a worker killed mid-run, bad settings, and `gigmatch stack down` leaving no process behind.

One test, in steps, on one stack: pytest-xdist's groups do not hold here (pytest 9 with xdist 3.8 spread a
group's tests over both workers, each of which then started a stack on the same ports), and every step
needs what the ones before it left. `.ci/run` installs the Debian packages (postgresql, prometheus). A
server that is missing fails the test: nothing skips.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devtools.stack_harness import alive, clone_working_tree, env_file, kill_survivors, state_pids
from gigmatch.data.snapshot import read_tables
from tests.conftest import request_for

pytestmark = [pytest.mark.stack, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
GIGMATCH = str(Path(sys.executable).with_name("gigmatch"))
API_KEY = "stack-test-client-key"
MODEL = "gigmatch-ranker"


def _run(
    args: list[str], cwd: Path, env: dict[str, str], expect: int | None = 0, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    if expect is not None:
        assert result.returncode == expect, (
            f"{args}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


class Stack:
    def __init__(self, directory: Path):
        self.dir = directory
        self.home = directory / "client"
        self.home.mkdir()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GIGMATCH_", "MLFLOW_", "PREFECT_", "AWS_"))}
        self.stack_env = base | {
            "GIGMATCH_STACK_DIR": str(directory / "stack"),
            "GIGMATCH_STACK_ENV_FILE": str(directory / "env.team"),
            "PREFECT_HOME": str(self.home / "prefect"),
            "DVC_SITE_CACHE_DIR": str(self.home / "dvc-site"),
            "COLUMNS": "200",
        }

    def command(self, *verb: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        return _run([GIGMATCH, "stack", *verb], ROOT, self.stack_env, expect, timeout=600)

    @property
    def client_env(self) -> dict[str, str]:
        """What `GIGMATCH_PROFILE=team` gives a command: the stack's environment plus .env.team."""
        return (
            self.stack_env
            | env_file(self.dir / "env.team")
            | {
                "GIGMATCH_WORKER_SILENCE": "30",  # three of the stack worker's heartbeats
                "GIGMATCH_API_KEY": API_KEY,
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            }
        )

    def mlflow(self):  # type: ignore[no-untyped-def]
        from mlflow import MlflowClient

        uri = self.client_env["MLFLOW_TRACKING_URI"]
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def s3_keys(self, bucket: str) -> list[str]:
        import boto3

        env = self.client_env
        client = boto3.client(
            "s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
        )  # fmt: skip
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [entry["Key"] for page in pages for entry in page.get("Contents", [])]

    def prefect(self, path: str, body: object) -> list[dict]:  # type: ignore[type-arg]
        request = urllib.request.Request(
            self.client_env["PREFECT_API_URL"] + path, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    def flow_runs(self, flow_name: str) -> list[dict]:  # type: ignore[type-arg]
        return self.prefect("/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC"})


@pytest.fixture
def stack() -> Iterator[Stack]:
    directory = Path(tempfile.mkdtemp(prefix="gigmatch-stack-", dir="/tmp"))
    os.chmod(directory, 0o755)  # PostgreSQL runs as its own user and walks through here to its data
    running = Stack(directory)
    try:
        began = time.monotonic()
        up = running.command("up")
        print(f"stack up, cold: {time.monotonic() - began:.1f} s\n{up.stdout[-1500:]}{up.stderr[-2500:]}")
        yield running
    finally:
        pids = state_pids(directory / "stack")
        running.command("down", expect=None)
        kill_survivors(pids)  # never leave a server behind, whatever failed above
        shutil.rmtree(directory, ignore_errors=True)


def test_the_team_stack_end_to_end(stack: Stack) -> None:
    _every_server_is_healthy(stack)
    clone = _clone_with_data_from_s3(stack)
    _the_lifecycle_runs_against_the_stack(stack, clone)
    _a_killed_worker_leaves_the_champion_and_the_next_run_succeeds(stack, clone)
    _bad_settings_fail_fast_naming_the_service_and_the_setting(stack, clone)
    _down_stops_every_process_and_the_data_survives(stack)


def _clone_with_data_from_s3(stack: Stack) -> Path:
    """Clone B: the data pulled from the stack's S3 remote, where clone A pushed it."""
    first, second = clone_working_tree(stack.dir / "a"), clone_working_tree(stack.dir / "b")
    env = stack.client_env
    _run([GIGMATCH, "data", "pull"], first, env)
    pushed = _run([GIGMATCH, "data", "push"], first, env)
    assert "(team)" in pushed.stderr + pushed.stdout
    assert any(key.startswith("gigmatch/files/md5/") for key in stack.s3_keys("dvc-remote"))
    pulled = _run([GIGMATCH, "data", "pull"], second, env)
    assert "via pull" in pulled.stderr + pulled.stdout, pulled.stderr
    return second


def _every_server_is_healthy(stack: Stack) -> None:
    services = {service["name"]: service for service in json.loads(stack.command("status", "--json").stdout)}
    assert list(services) == ["postgres", "s3", "mlflow", "prefect", "worker", "prometheus"]
    assert all(service["healthy"] and service["pid"] for service in services.values()), services
    print(f"whole stack, idle: {sum(s['rss_bytes'] for s in services.values()) / 2**20:,.0f} MiB resident")


def _the_lifecycle_runs_against_the_stack(stack: Stack, clone: Path) -> None:
    env = stack.client_env
    repro = _run([sys.executable, "-m", "dvc", "repro"], clone, env)
    assert "completed on pool gigmatch" in repro.stdout + repro.stderr

    # The worker completed a run of the training deployment; the champion is in the server's registry.
    runs = stack.flow_runs("gigmatch-train-on-worker")
    assert runs and runs[0]["state_type"] == "COMPLETED"
    assert runs[0]["work_pool_name"] == "gigmatch"
    client = stack.mlflow()
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert client.get_run(champion.run_id).info.artifact_uri.startswith("mlflow-artifacts:/")  # proxied
    artifacts = stack.s3_keys("mlflow-artifacts")
    model_id = champion.model_id or champion.source.rsplit("/", 1)[-1]  # source: models:/m-...
    assert any(key.endswith(f"/models/{model_id}/artifacts/MLmodel") for key in artifacts), (champion, artifacts[:20])
    assert json.loads((clone / "bundle" / "lineage.json").read_text())["version"] == champion.version

    # Served from the exported bundle; its logs shipped to S3; the monitoring deployment gates them.
    port = _serve_and_ask(clone, env, rows_wanted=2100)
    assert port
    shipped = _run([GIGMATCH, "ship-logs", "--include-today", "--host", "api-1"], clone, env | _log_env(clone))
    assert "api-1" in shipped.stderr
    assert any(key.startswith("predictions/predictions-") for key in stack.s3_keys("serving-logs"))
    monitor = _run([GIGMATCH, "monitor"], clone, env, expect=None)
    assert monitor.returncode in (0, 1), monitor.stderr[-4000:]
    outcome = json.loads((clone / "reports" / "drift" / "monitor_outcome.json").read_text())
    assert outcome["status"] in {"no_drift", "warning", "drift"} and outcome["new_rows"] >= 2000, outcome
    assert (monitor.returncode == 1) == (outcome["status"] == "drift")
    assert stack.flow_runs("gigmatch-monitor")[0]["state_type"] == "COMPLETED"
    with urllib.request.urlopen(
        f"{env['PREFECT_API_URL']}/deployments/name/gigmatch-monitor/team", timeout=30
    ) as answer:
        schedules = json.loads(answer.read())["schedules"]
    assert [entry["schedule"]["cron"] for entry in schedules] == ["0 3 * * *"]  # on its cron, too
    assert list((clone / "logs" / "shipped" / "predictions").glob("predictions-*.api-1.jsonl"))
    experiment = client.get_experiment_by_name("gigmatch-monitoring")
    gates = client.search_runs([experiment.experiment_id])
    assert gates and "monitor_blocked" in gates[0].data.metrics


def _log_env(clone: Path) -> dict[str, str]:
    return {
        "GIGMATCH_LOG_DIR": str(clone / "logs" / "served" / "predictions"),
        "GIGMATCH_OUTCOME_LOG_DIR": str(clone / "logs" / "served" / "outcomes"),
    }


def _serve_and_ask(clone: Path, env: dict[str, str], rows_wanted: int) -> int:
    """A real uvicorn on loopback serving the clone's bundle, asked about jobs until the log has enough rows."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    args = [GIGMATCH, "serve", "--bundle", str(clone / "bundle"), "--port", str(port)]
    server = subprocess.Popen(
        args, cwd=clone, env=env | _log_env(clone), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _ok(f"http://127.0.0.1:{port}/ready"):
            assert server.poll() is None and time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.3)
        frames = read_tables(clone / "data")
        rows = 0
        for job_id in frames["jobs"]["job_id"].iloc[::-1]:
            job, candidates = request_for(int(job_id), frames)
            if len(candidates) < 2:
                continue
            body = json.dumps({"job": job, "candidates": candidates}, default=str).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/match", data=body,
                headers={"Content-Type": "application/json", "X-API-Key": API_KEY},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200 and len(json.loads(answer.read())["candidates"]) == len(candidates)
            rows += len(candidates)
            if rows >= rows_wanted:
                break
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return port


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _a_killed_worker_leaves_the_champion_and_the_next_run_succeeds(stack: Stack, clone: Path) -> None:
    env, client = stack.client_env, stack.mlflow()
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    before = len(stack.flow_runs("gigmatch-train-on-worker"))
    training = subprocess.Popen(
        [GIGMATCH, "train"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 180
        while True:  # until the worker's flow run is training
            runs = stack.flow_runs("gigmatch-train-on-worker")
            if len(runs) > before and runs[0]["state_type"] == "RUNNING":
                break
            assert time.monotonic() < deadline and training.poll() is None, "the training run never started"
            time.sleep(0.5)
        time.sleep(8)  # into the fitting
        worker = json.loads((stack.dir / "stack" / "state.json").read_text())["worker"]
        process = psutil.Process(int(worker["pid"]))
        for member in [process, *process.children(recursive=True)]:  # the machine it ran on is gone
            member.kill()
        began = time.monotonic()
        out, err = training.communicate(timeout=180)
    finally:
        if training.poll() is None:
            training.kill()
    assert training.returncode == 3, out + err
    assert "lost: no worker of pool 'gigmatch' has sent a heartbeat" in err, err
    assert time.monotonic() - began < 120
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion
    assert stack.flow_runs("gigmatch-train-on-worker")[0]["state_type"] == "CRASHED"

    stack.command("up")  # starts the worker again; the others still run
    again = _run([GIGMATCH, "train"], clone, env)
    assert "completed on pool gigmatch" in again.stderr + again.stdout


def _bad_settings_fail_fast_naming_the_service_and_the_setting(stack: Stack, clone: Path) -> None:
    env = stack.client_env

    def failing(args: list[str], overrides: dict[str, str]) -> str:
        began = time.monotonic()
        result = _run([GIGMATCH, *args], clone, env | overrides, expect=3, timeout=120)
        assert time.monotonic() - began < 60, f"{args} took {time.monotonic() - began:.0f} s"
        return result.stderr

    wrong_key = failing(["data", "push"], {"AWS_SECRET_ACCESS_KEY": "not-the-key"})
    assert "S3 at http://127.0.0.1:" in wrong_key and "AWS_ACCESS_KEY_ID" in wrong_key, wrong_key
    shipping = failing(["ship-logs"], {"AWS_SECRET_ACCESS_KEY": "not-the-key"})
    assert "AWS_SECRET_ACCESS_KEY" in shipping, shipping
    unreachable = failing(["export", "--out", "bundle-x"], {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert "MLflow server at http://127.0.0.1:9 (MLFLOW_TRACKING_URI) cannot be reached" in unreachable, unreachable

    postgres = json.loads((stack.dir / "stack" / "state.json").read_text())["postgres"]
    os.kill(int(postgres["pid"]), signal.SIGINT)  # PostgreSQL stops; the MLflow server's /health stays green
    psutil.Process(int(postgres["pid"])).wait(timeout=30)
    stopped = failing(["export", "--out", "bundle-x"], {})
    assert "backend store" in stopped and "MLFLOW_TRACKING_URI" in stopped, stopped
    training = failing(["train"], {})
    assert "MLflow" in training or "Prefect" in training, training
    assert not (clone / "bundle-x").exists()

    stack.command("up")  # PostgreSQL again, on the same data: the registry is still there
    _run([GIGMATCH, "export", "--out", "bundle-x"], clone, env)


def _down_stops_every_process_and_the_data_survives(stack: Stack) -> None:
    pids = state_pids(stack.dir / "stack")
    assert len(pids) >= 7  # six servers, MLflow's worker process among their children
    began = time.monotonic()
    stack.command("down")
    print(f"stack down: {time.monotonic() - began:.1f} s")
    assert alive(pids) == []
    assert json.loads((stack.dir / "stack" / "state.json").read_text()) == {}

    began = time.monotonic()
    stack.command("up")
    print(f"stack up, warm: {time.monotonic() - began:.1f} s")
    assert stack.mlflow().get_model_version_by_alias(MODEL, "champion").version
