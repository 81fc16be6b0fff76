"""Rollout and rollback against a real uvicorn on loopback and a real MLflow registry: the served version
changes with no failed request, a bundle that does not load never replaces the one serving, a server that
does not take the new one gets the old one back, and `gigmatch rollback` restores the previous champion."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from devtools.ports import free_port
from gigmatch.data.snapshot import read_tables
from gigmatch.model.bundle import BundleError
from pipelines import tracking
from pipelines.rollout import RolloutError, roll_out
from pipelines.settings import TrackingSettings, get_rollout_settings
from tests.conftest import request_for

pytestmark = pytest.mark.slow

GIGMATCH = str(Path(sys.executable).with_name("gigmatch"))
MODEL = "gigmatch-ranker"
ADMIN_KEY, API_KEY = "rollout-admin-key", "rollout-client-key"


def _register(bundle_dir: Path, broken: bool = False) -> str:
    """A registry version made of the bundle's model (its files as an MLflow run's artifacts)."""
    client = MlflowClient()
    experiment = mlflow.set_experiment("gigmatch")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        source = bundle_dir / "model"
        if broken:  # the model's files present, its weights garbage: the export's check must refuse it
            source = Path(str(bundle_dir) + "-broken") / "model"
            shutil.copytree(bundle_dir / "model", source, dirs_exist_ok=True)
            for weights in source.glob("*.skops"):
                weights.write_bytes(b"not a model")
        mlflow.log_artifacts(str(source), "model")
        mlflow.set_tags({"model_spec": "logistic", "data_md5": "d41d8cd98f00b204e9800998ecf8427e.dir"})
    if not client.search_registered_models(f"name = '{MODEL}'"):
        client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return str(version.version)


def _champion(version: str) -> None:
    tracking.set_alias(MODEL, "champion", version)
    tracking.record_champion(MODEL, version)


def _get(url: str, key: str = API_KEY) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


class Server:
    def __init__(self, bundle: Path, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {
            "GIGMATCH_ADMIN_KEY": ADMIN_KEY, "GIGMATCH_API_KEY": API_KEY,
            "GIGMATCH_LOG_DIR": str(tmp / f"logs-{self.port}"), "GIGMATCH_OUTCOME_LOG_DIR": str(tmp / f"o-{self.port}"),
        }  # fmt: skip
        args = [GIGMATCH, "serve", "--bundle", str(bundle), "--port", str(self.port)]
        self.process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(f"{self.url}/ready")
                return
            except (urllib.error.URLError, OSError):
                assert self.process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

    def version(self) -> str:
        return str(_get(f"{self.url}/v1/model")["version"])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


@pytest.fixture
def registry(mlflow_store: str, monkeypatch: pytest.MonkeyPatch, bundle_dir: Path) -> Iterator[list[str]]:
    monkeypatch.setenv("GIGMATCH_API_KEY", API_KEY)
    get_rollout_settings.cache_clear()
    mlflow.set_tracking_uri(mlflow_store)
    mlflow.set_registry_uri(mlflow_store)  # an earlier test's export may have pointed it elsewhere
    versions = [_register(bundle_dir), _register(bundle_dir)]
    _champion(versions[0])
    yield versions
    get_rollout_settings.cache_clear()


@pytest.fixture(scope="module")
def payload(training_snapshot: Path) -> dict[str, object]:
    frames: dict[str, pd.DataFrame] = read_tables(training_snapshot)
    job, candidates = request_for(int(frames["jobs"]["job_id"].iloc[-1]), frames)
    return {"job": job, "candidates": candidates}


def _settings(uri: str) -> TrackingSettings:
    return TrackingSettings(mlflow_tracking_uri=uri)


def test_a_rollout_changes_the_served_version_with_no_failed_request(
    registry: list[str], mlflow_store: str, tmp_path: Path, payload: dict[str, object]
) -> None:
    bundle = tmp_path / "bundle"
    roll_out(MODEL, "champion", bundle, [], None, _settings(mlflow_store))
    server = Server(bundle, tmp_path)
    failures, answered, stop = [], [], threading.Event()

    def traffic() -> None:
        body = json.dumps(payload).encode()
        while not stop.is_set():
            request = urllib.request.Request(
                f"{server.url}/v1/match", data=body, headers={"Content-Type": "application/json", "X-API-Key": API_KEY}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answered.append(json.loads(answer.read())["model_version"])
            except (urllib.error.URLError, OSError) as exc:
                failures.append(exc)

    try:
        assert server.version() == registry[0]
        client = threading.Thread(target=traffic)
        client.start()
        time.sleep(0.5)
        _champion(registry[1])
        done = roll_out(MODEL, "champion", bundle, [server.url], ADMIN_KEY, _settings(mlflow_store), print)
        time.sleep(0.5)
        stop.set()
        client.join(30)
        assert (done.version, done.previous_version) == (registry[1], registry[0])
        assert server.version() == registry[1]
        assert failures == [] and answered[0] == registry[0] and answered[-1] == registry[1]

        # A version whose model does not load: the export refuses it, nothing changes anywhere.
        broken = _register(Path(str(bundle)), broken=True)
        _champion(broken)
        with pytest.raises(BundleError):
            roll_out(MODEL, "champion", bundle, [server.url], ADMIN_KEY, _settings(mlflow_store), print)
        assert server.version() == registry[1]
        assert json.loads((bundle / "lineage.json").read_text())["version"] == registry[1]

        # `gigmatch rollback`, in one command: champion to the version before, rolled out.
        env = os.environ | {
            "MLFLOW_TRACKING_URI": mlflow_store, "GIGMATCH_SERVING_URLS": server.url,
            "GIGMATCH_ROLLOUT_BUNDLE_PATH": str(bundle), "GIGMATCH_ADMIN_KEY": ADMIN_KEY, "GIGMATCH_API_KEY": API_KEY,
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }  # fmt: skip
        for expected in registry[::-1]:  # away from the broken one, then from 2 to 1
            result = subprocess.run([GIGMATCH, "rollback"], env=env, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr
            assert server.version() == expected
            assert tracking.alias_version(MODEL, "champion") == expected
        again = subprocess.run([GIGMATCH, "rollback"], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 3 and "no previous champion" in again.stderr, again.stderr
        assert server.version() == registry[0] and tracking.champion_history(MODEL) == [registry[0]]
    finally:
        stop.set()
        server.stop()


def test_a_server_that_does_not_take_the_new_bundle_gets_the_old_one_back(
    registry: list[str], mlflow_store: str, tmp_path: Path
) -> None:
    bundle, elsewhere = tmp_path / "bundle", tmp_path / "elsewhere"
    roll_out(MODEL, "champion", bundle, [], None, _settings(mlflow_store))
    shutil.copytree(bundle, elsewhere)
    taking, stuck = Server(bundle, tmp_path), Server(elsewhere, tmp_path)  # stuck reloads a bundle we never write
    try:
        _champion(registry[1])
        with pytest.raises(RolloutError, match=f"{stuck.url} reports version {registry[0]}"):
            roll_out(MODEL, "champion", bundle, [taking.url, stuck.url], ADMIN_KEY, _settings(mlflow_store), print)
        assert taking.version() == registry[0] and stuck.version() == registry[0]
        assert json.loads((bundle / "lineage.json").read_text())["version"] == registry[0]
    finally:
        taking.stop()
        stuck.stop()
