"""The monitoring flow on a real prediction log: served requests in, gate, retraining on drift.

Real Prefect (the session's test harness), a real MLflow store for the retraining,
and a prediction log written by the real app's background writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from gigmatch.data.snapshot import read_tables
from gigmatch.monitoring.gate import VERDICT_FILE
from gigmatch.training.splits import split_jobs_by_time
from pipelines.monitoring import CURSOR_FILE, monitor_flow
from serving.main import create_app
from serving.settings import ServingSettings
from tests.conftest import request_for

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.usefixtures("prefect_harness", "mlflow_store", "monitoring_settings"), pytest.mark.slow]
Change = Callable[[dict[str, Any]], dict[str, Any]]


def _params(tmp_path: Path, snapshot: Path, min_rows: int) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["dir"] = str(snapshot)
    raw["train"]["models"] = {"logistic": {"kind": "logistic", "params": {"C": 1.0}}}
    raw["train"]["reports_dir"] = str(tmp_path / "train-reports")
    raw["evaluate"]["fairness_min_qualified"] = 20
    raw["promote"]["min_fairness_ratio"] = 0.4
    raw["drift"]["report_dir"] = str(tmp_path / "drift")
    raw["drift"]["min_current_rows"] = min_rows
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _serve(tmp_path: Path, bundle: Path, frames: dict[str, pd.DataFrame], jobs: list[int], change: Change) -> int:
    """Post one /v1/match per job to the real app; the app's writer appends the log. Rows logged."""
    settings = ServingSettings(bundle_path=bundle, log_dir=tmp_path / "logs")
    rows = 0
    with TestClient(create_app(settings)) as client:
        for job_id in jobs:
            job, candidates = request_for(job_id, frames)
            response = client.post("/v1/match", json=change({"job": job, "candidates": candidates}))
            assert response.status_code == 200, response.text
            rows += len(candidates)
    return rows  # leaving the client stops the app, which flushes the log


def _same(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


def _undercut(payload: dict[str, Any]) -> dict[str, Any]:
    """Everyone asks 60% less: the rate features move far beyond their thresholds."""
    candidates = [
        {**c, "hourly_rate_usd": max(1.0, round(c["hourly_rate_usd"] * 0.4, 2))} for c in payload["candidates"]
    ]
    return {**payload, "candidates": candidates}


@pytest.fixture(scope="module")
def frames(training_snapshot: Path) -> dict[str, pd.DataFrame]:
    return read_tables(training_snapshot)


@pytest.fixture(scope="module")
def training_jobs(frames: dict[str, pd.DataFrame]) -> list[int]:
    """Jobs of the training split: the reference's own distribution."""
    split = split_jobs_by_time(frames["jobs"], 0.15, 0.15)
    return sorted(int(j) for j in split.train)


def test_gates_new_lines_once_and_waits_for_enough(
    tmp_path: Path, training_snapshot: Path, bundle_dir: Path, frames: dict, training_jobs: list[int]
) -> None:
    params = _params(tmp_path, training_snapshot, min_rows=1500)
    few = _serve(tmp_path, bundle_dir, frames, training_jobs[:10], _same)

    waiting = monitor_flow(params, bundle_dir)
    assert waiting.status == "waiting" and waiting.new_rows == few
    assert not (tmp_path / "drift" / CURSOR_FILE).exists()  # nothing judged, nothing skipped

    more = _serve(tmp_path, bundle_dir, frames, training_jobs[10:120], _same)
    gated = monitor_flow(params, bundle_dir, retrain_on_drift=False)
    assert gated.status == "no_drift" and gated.new_rows == few + more
    verdict = json.loads((tmp_path / "drift" / VERDICT_FILE).read_text())
    assert verdict["exit_code"] == 0 and verdict["rows"]["current"] == few + more
    assert gated.batch is not None and gated.batch.exists()  # the gated lines are kept beside the report

    again = monitor_flow(params, bundle_dir)
    assert again.status == "waiting" and again.new_rows == 0


def test_drift_starts_retraining_through_the_training_gate(
    tmp_path: Path, training_snapshot: Path, bundle_dir: Path, frames: dict, training_jobs: list[int]
) -> None:
    params = _params(tmp_path, training_snapshot, min_rows=1000)
    _serve(tmp_path, bundle_dir, frames, training_jobs[:80], _undercut)

    outcome = monitor_flow(params, bundle_dir)

    assert outcome.status == "drift" and outcome.gate is not None
    verdict = json.loads(outcome.gate.verdict_path.read_text())
    assert verdict["exit_code"] == 1 and verdict["failed_rules"]
    assert {"hourly_rate_usd", "rate_budget_log_ratio"} & set(verdict["drifted_columns"])
    assert outcome.retraining is not None and outcome.retraining.version == "1"
    assert outcome.retraining.decision.promote  # an empty registry: the first model passes its own gate
    assert json.loads((tmp_path / "drift" / CURSOR_FILE).read_text())["offsets"]
