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


def _profile_outage(payload: dict[str, Any]) -> dict[str, Any]:
    """A profile service outage: every candidate's rating and success rate arrive empty (a blocking rule)."""
    candidates = [{**c, "rating": None, "success_rate": None} for c in payload["candidates"]]
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
    _serve(tmp_path, bundle_dir, frames, training_jobs[:80], _profile_outage)

    outcome = monitor_flow(params, bundle_dir)

    assert outcome.status == "drift" and outcome.gate is not None
    verdict = json.loads(outcome.gate.verdict_path.read_text())
    assert verdict["exit_code"] == 1 and verdict["failed_rules"]
    assert "missing_values" in verdict["failed_rules"] and "has_rating" in verdict["drifted_columns"]
    assert outcome.retraining is not None and outcome.retraining.version == "1"
    assert outcome.retraining.decision.promote  # an empty registry: the first model passes its own gate
    assert json.loads((tmp_path / "drift" / CURSOR_FILE).read_text())["offsets"]


def test_outcomes_from_production_change_the_live_ndcg(
    tmp_path: Path, training_snapshot: Path, bundle_dir: Path, frames: dict, training_jobs: list[int]
) -> None:
    """Answers served by the real app, outcomes posted to it: the live NDCG follows who was hired."""
    from gigmatch.monitoring.live import live_report, quality_by_version
    from pipelines.monitoring import LIVE_QUALITY_FILE

    settings = ServingSettings(bundle_path=bundle_dir, log_dir=tmp_path / "logs", outcome_log_dir=tmp_path / "outcomes")
    answers = []
    with TestClient(create_app(settings)) as client:
        for job_id in training_jobs[:30]:
            job, candidates = request_for(job_id, frames)
            answer = client.post("/v1/match", json={"job": job, "candidates": candidates}).json()
            answers.append(answer)
        # The first 15 hire the model's top candidate, the others its last one.
        batch = [
            {
                "request_id": answer["request_id"],
                "freelancer_id": answer["candidates"][0 if i < 15 else -1]["freelancer_id"],
                "outcome": 2,
            }
            for i, answer in enumerate(answers)
        ]
        response = client.post("/v1/outcomes", json={"outcomes": batch})
        assert response.status_code in (200, 202), response.text
    soon = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1)
    version = str(answers[0]["model_version"])

    joined, document = live_report(tmp_path / "logs", tmp_path / "outcomes", soon.to_pydatetime(), 10)
    figures = document["by_model_version"][version]  # type: ignore[index]
    assert figures["requests"] == 30 and 0.1 < figures["ndcg_at_10"] < 0.9
    top_only = joined.rows[joined.rows["request_id"].isin({a["request_id"] for a in answers[:15]})]
    assert quality_by_version(top_only, 10)[version]["ndcg_at_10"] == 1.0
    # Not matured yet: nothing counts.
    early = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
    _, waiting = live_report(tmp_path / "logs", tmp_path / "outcomes", early.to_pydatetime(), 10)
    assert waiting["by_model_version"] == {} and waiting["requests_waiting_to_mature"] == 30

    # The monitoring flow writes the figures and its ranking rule reads them (maturity 0 here).
    params = _params(tmp_path, training_snapshot, min_rows=100)
    raw = yaml.safe_load(params.read_text())
    raw["drift"]["outcome_maturity_hours"] = 0
    params.write_text(yaml.safe_dump(raw))
    outcome = monitor_flow(params, bundle_dir, retrain_on_drift=False)  # GIGMATCH_OUTCOME_LOG_DIR: the fixture's
    written = json.loads((tmp_path / "drift" / LIVE_QUALITY_FILE).read_text())
    assert written["by_model_version"][version]["requests"] == 30
    assert outcome.gate is not None
    quality = next(r for r in outcome.gate.verdict.rules if r.rule == "ranking_quality")
    assert "on 30 jobs" in quality.detail
