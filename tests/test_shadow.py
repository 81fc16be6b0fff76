"""The shadow challenger: it ranks a share of the requests after they are answered, into a log of its own,
with the answer's request id and its own version; it is never returned, never slows or breaks the champion."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from gigmatch.data.snapshot import read_tables
from gigmatch.features.names import FEATURE_NAMES
from gigmatch.model.bundle import load_bundle
from gigmatch.monitoring.prediction_log import CANDIDATE_CONTEXT, CANDIDATE_ID, JOB_CONTEXT, SCORE, read_records
from serving.log_writer import LogWriter
from serving.main import create_app
from serving.model_store import ModelStore
from serving.settings import ServingSettings
from serving.shadow import ShadowRequest, ShadowScorer
from tests.conftest import match_columns_of, rank_alone, request_for


@pytest.fixture(scope="module")
def frames(training_snapshot: Path) -> dict[str, pd.DataFrame]:
    return read_tables(training_snapshot)


@pytest.fixture(scope="module")
def challenger_dir(tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path) -> Path:
    """The same model registered again as version 8: what differs is only whose line is whose."""
    out = tmp_path_factory.mktemp("challenger") / "bundle"
    shutil.copytree(bundle_dir, out)
    lineage = json.loads((out / "lineage.json").read_text())
    (out / "lineage.json").write_text(json.dumps(lineage | {"version": "8"}))
    return out


def _client(tmp_path: Path, bundle: Path, challenger: Path | None, **settings: object) -> TestClient:
    config = ServingSettings(
        bundle_path=bundle,
        challenger_bundle_path=challenger,
        log_dir=tmp_path / "logs",
        outcome_log_dir=tmp_path / "outcomes",
        shadow_log_dir=tmp_path / "shadow",
        **settings,  # type: ignore[arg-type]
    )
    return TestClient(create_app(config))


def _lines(directory: Path) -> list[dict[str, object]]:
    lines = [line for path in sorted(directory.glob("predictions-*.jsonl")) for line in path.read_text().splitlines()]
    return read_records(lines, str(directory))


def _ask(client: TestClient, frames: dict[str, pd.DataFrame], jobs: int) -> list[dict[str, object]]:
    answers = []
    for job_id in frames["jobs"]["job_id"].iloc[-jobs:]:
        job, candidates = request_for(int(job_id), frames)
        response = client.post("/v1/match", json={"job": job, "candidates": candidates})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def _wait_for(directory: Path, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    while len(lines := _lines(directory) if directory.exists() else []) < count:
        assert time.monotonic() < deadline, f"{len(lines)} shadow lines, expected {count}"
        time.sleep(0.05)
    return lines


def test_the_challenger_ranks_every_request_after_the_answer_and_is_never_returned(
    tmp_path: Path, bundle_dir: Path, challenger_dir: Path, frames: dict[str, pd.DataFrame]
) -> None:
    with _client(tmp_path, bundle_dir, challenger_dir) as client:
        answers = _ask(client, frames, jobs=12)
        shadow = _wait_for(tmp_path / "shadow", 12)
        metrics = client.get("/metrics").text
    assert {answer["model_version"] for answer in answers} == {"7"}  # the champion answers
    assert {line["model_version"] for line in shadow} == {"8"}
    assert sorted(line["request_id"] for line in shadow) == sorted(answer["request_id"] for answer in answers)
    served = {line["request_id"]: line for line in _lines(tmp_path / "logs")}
    assert all(line["model_version"] == "7" for line in served.values())  # the prediction log holds no shadow line
    model = load_bundle(challenger_dir).model
    for line in shadow:  # the challenger's own scores, candidates in request order, as it ranks alone
        job_id = int(line["job_id"])  # type: ignore[call-overload]
        job, candidates = request_for(job_id, frames)
        alone = rank_alone(model, match_columns_of([(job, candidates)]))
        assert line[CANDIDATE_ID] == served[str(line["request_id"])][CANDIDATE_ID]
        np.testing.assert_allclose(line[SCORE], alone.scores, rtol=1e-9)  # type: ignore[attr-defined]
    assert 'gigmatch_challenger_info{model_name="gigmatch-ranker",version="8"} 1.0' in metrics
    assert "gigmatch_shadow_scored_total 12.0" in metrics


def test_a_shadow_line_carries_the_request_context_of_the_served_line(
    tmp_path: Path, bundle_dir: Path, challenger_dir: Path, frames: dict[str, pd.DataFrame]
) -> None:
    """The context is read once per request and shared: the shadow's line has the served line's fields, and
    the same job and candidate context values, those of the request, candidates in request order."""
    with _client(tmp_path, bundle_dir, challenger_dir) as client:
        _ask(client, frames, jobs=4)
        shadow = _wait_for(tmp_path / "shadow", 4)
    served = {line["request_id"]: line for line in _lines(tmp_path / "logs")}
    for line in shadow:
        twin = served[line["request_id"]]
        assert line.keys() == twin.keys()
        assert {"job_id", *JOB_CONTEXT, CANDIDATE_ID, *CANDIDATE_CONTEXT, SCORE, *FEATURE_NAMES} <= line.keys()
        job, candidates = request_for(int(line["job_id"]), frames)  # type: ignore[call-overload]
        for name in JOB_CONTEXT:
            assert line[name] == twin[name] == job[name]
        assert line[CANDIDATE_ID] == [candidate["freelancer_id"] for candidate in candidates]
        for name in CANDIDATE_CONTEXT:
            assert line[name] == twin[name] == [candidate[name] for candidate in candidates]


def test_a_share_of_the_requests_chosen_by_their_ids(
    tmp_path: Path, bundle_dir: Path, challenger_dir: Path, frames: dict[str, pd.DataFrame]
) -> None:
    with _client(tmp_path, bundle_dir, challenger_dir, shadow_share=0.25) as client:
        answers = _ask(client, frames, jobs=80)
        time.sleep(0.5)
        client.post("/v1/match", json={"job": {}, "candidates": []})  # a bad request: no shadow either
        time.sleep(0.3)
    chosen = {a["request_id"] for a in answers if int(str(a["request_id"])[:8], 16) < 0.25 * 16**8}
    assert {line["request_id"] for line in _lines(tmp_path / "shadow")} == chosen
    assert 5 <= len(chosen) <= 40


def test_a_challenger_that_does_not_load_turns_the_shadow_off_only(
    tmp_path: Path, bundle_dir: Path, frames: dict[str, pd.DataFrame]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "lineage.json").write_text("{}")
    with _client(tmp_path, bundle_dir, broken) as client:
        answers = _ask(client, frames, jobs=3)
        time.sleep(0.3)
    assert [answer["model_version"] for answer in answers] == ["7", "7", "7"]
    assert not (tmp_path / "shadow").exists()


def test_a_full_queue_drops_and_counts(tmp_path: Path, challenger_dir: Path, frames: dict[str, pd.DataFrame]) -> None:
    store = ModelStore(challenger_dir)
    store.load()
    dropped: list[int] = []
    log = LogWriter(tmp_path / "shadow", lambda _moment: "predictions-20260101.jsonl", 100)
    scorer = ShadowScorer(store, log, share=1.0, capacity=2, on_drop=dropped.append)
    job_id = int(frames["jobs"]["job_id"].iloc[-1])
    job, candidates = request_for(job_id, frames)
    from serving.routers.match import _CANDIDATE_VALUES, _JOB_VALUES
    from serving.schemas import MatchRequest

    request = MatchRequest.model_validate({"job": job, "candidates": candidates})
    values = (_JOB_VALUES(request.job), list(map(_CANDIDATE_VALUES, request.candidates)))
    for number in range(3):
        scorer.submit(ShadowRequest(f"{number:032x}", job_id, values[0], values[1], (None,) * 0, []))
    assert dropped == [1]
    assert scorer.score_pending() == 0  # the context does not fit the log's format: dropped, counted
    assert sum(dropped) == 3


@pytest.mark.parametrize("champion", ["linear", "ranker"])
def test_a_lightgbm_ranker_logs_as_champion_and_as_challenger(
    tmp_path: Path, bundle_dir: Path, ranker_bundle_dir: Path, frames: dict[str, pd.DataFrame], champion: str
) -> None:
    """The default data promotes a LightGBM ranker: its answers reach the prediction log and its shadow rankings
    the shadow log (found: the leaf table's scores were a strided view, which the log writer cannot serialise)."""
    served, shadowed = (bundle_dir, ranker_bundle_dir) if champion == "linear" else (ranker_bundle_dir, bundle_dir)
    with _client(tmp_path, served, shadowed) as client:
        answers = _ask(client, frames, jobs=6)
        shadow = _wait_for(tmp_path / "shadow", 6)
        metrics = client.get("/metrics").text
    logged = _lines(tmp_path / "logs")
    assert sorted(line["request_id"] for line in logged) == sorted(answer["request_id"] for answer in answers)
    assert len(shadow) == 6 and "gigmatch_shadow_dropped_total 0.0" in metrics
    ranker_lines = shadow if champion == "linear" else logged
    for line in ranker_lines:  # the ranker's own scores, as it ranks alone
        job, candidates = request_for(int(line["job_id"]), frames)  # type: ignore[call-overload]
        alone = rank_alone(load_bundle(ranker_bundle_dir).model, match_columns_of([(job, candidates)]))
        np.testing.assert_array_equal(line[SCORE], alone.scores)  # type: ignore[attr-defined]
