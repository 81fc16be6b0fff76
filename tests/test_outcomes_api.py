"""POST /v1/outcomes: what became of the candidates of answered requests, written to the outcomes log.

The real app (its lifespan, its log writer thread); each test reads the log back with the
format's own reader (`gigmatch.monitoring.outcome_log`) once the app has stopped (stopping
writes what is buffered).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from gigmatch.data.contract import HIRED, HIRED_FIVE_STARS, REJECTED, SHORTLISTED
from gigmatch.data.snapshot import read_tables
from gigmatch.monitoring.outcome_log import read_outcome_log
from serving.answers import Answers
from serving.main import create_app
from serving.schemas import MAX_OUTCOMES_PER_REQUEST
from serving.settings import ServingSettings
from tests.conftest import request_for

ELSEWHERE = "0123456789abcdef0123456789abcdef"  # a request id this server never answered (another worker's)
NONE_DUPLICATE = {"duplicates": 0, "dropped": 0}


@pytest.fixture(scope="module")
def payload(training_snapshot: Path) -> dict:
    frames = read_tables(training_snapshot)
    job, candidates = request_for(int(frames["jobs"]["job_id"].iloc[-3]), frames)
    return {"job": job, "candidates": candidates}


def _app(tmp_path: Path, bundle: Path, **settings: object) -> TestClient:
    config = ServingSettings(
        bundle_path=bundle,
        log_dir=tmp_path / "predictions",
        outcome_log_dir=tmp_path / "outcomes",
        **settings,  # type: ignore[arg-type]
    )
    return TestClient(create_app(config))


def _answered(client: TestClient, payload: dict, **headers: str) -> tuple[str, list[int]]:
    """A served request's id and its candidates' ids."""
    response = client.post("/v1/match", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["request_id"], [c["freelancer_id"] for c in payload["candidates"]]


def _metric(client: TestClient, line: str) -> bool:
    return line in client.get("/metrics").text


def test_a_served_requests_outcomes_are_logged(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    before = datetime.now(UTC)
    with _app(tmp_path, bundle_dir) as live:
        request_id, ids = _answered(live, payload)
        batch = [
            {"request_id": request_id, "freelancer_id": ids[0], "outcome": HIRED_FIVE_STARS},
            {"request_id": request_id, "freelancer_id": ids[1], "outcome": REJECTED,
             "occurred_at": "2026-11-20T14:05:00+01:00"},
            {"request_id": ELSEWHERE, "freelancer_id": 17, "outcome": SHORTLISTED},  # not known here: taken on trust
        ]  # fmt: skip
        response = live.post("/v1/outcomes", json={"outcomes": batch})
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 3, **NONE_DUPLICATE}
        assert _metric(live, 'gigmatch_outcomes_total{result="accepted"} 3.0')
    outcomes = read_outcome_log(tmp_path / "outcomes")
    [written] = (tmp_path / "outcomes").iterdir()
    assert re.fullmatch(r"outcomes-\d{8}\.jsonl", written.name)
    assert list(outcomes.columns) == ["request_id", "freelancer_id", "outcome", "occurred_at", "received_at"]
    assert outcomes["request_id"].tolist() == [request_id, request_id, ELSEWHERE]
    assert outcomes["freelancer_id"].tolist() == [ids[0], ids[1], 17]
    assert outcomes["outcome"].tolist() == [HIRED_FIVE_STARS, REJECTED, SHORTLISTED]
    assert outcomes["occurred_at"].isna().tolist() == [True, False, True]
    assert outcomes["occurred_at"].iloc[1] == pd.Timestamp("2026-11-20T13:05:00Z")
    assert outcomes["received_at"].between(before, datetime.now(UTC)).all()
    assert [p.name for p in (tmp_path / "predictions").iterdir()] == [f"predictions-{before:%Y%m%d}.jsonl"]


def _item(**changes: object) -> dict:
    return {"request_id": ELSEWHERE, "freelancer_id": 5, "outcome": HIRED, **changes}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"outcomes": []}, "outcomes: List should have at least 1 item"),
        ({"outcomes": [_item(freelancer_id=n) for n in range(1, MAX_OUTCOMES_PER_REQUEST + 2)]},
         "outcomes: List should have at most 10000 items"),
        ({"outcomes": [_item(), _item(freelancer_id=6, outcome=4)]}, "outcomes.1.outcome: Value error, 4 is not an"),
        ({"outcomes": [_item(outcome=-1)]}, "outcomes.0.outcome: Value error, -1 is not an outcome code"),
        ({"outcomes": [_item(outcome=True)]}, "outcomes.0.outcome: Input should be a valid integer"),
        ({"outcomes": [_item(outcome=2.0)]}, "outcomes.0.outcome: Input should be a valid integer"),
        ({"outcomes": [_item(outcome="hired")]}, "outcomes.0.outcome: Input should be a valid integer"),
        ({"outcomes": [_item(request_id=ELSEWHERE.upper())]}, "outcomes.0.request_id: String should match pattern"),
        ({"outcomes": [_item(request_id=ELSEWHERE[:-1])]}, "outcomes.0.request_id: String should match pattern"),
        ({"outcomes": [_item(request_id=42)]}, "outcomes.0.request_id: Input should be a valid string"),
        ({"outcomes": [_item(freelancer_id=0)]}, "outcomes.0.freelancer_id: Input should be greater than or equal"),
        ({"outcomes": [_item(freelancer_id=2**63)]}, "outcomes.0.freelancer_id: Input should be less than or equal"),
        ({"outcomes": [_item(freelancer_id="5")]}, "outcomes.0.freelancer_id: Input should be a valid integer"),
        ({"outcomes": [_item(occurred_at="2026-11-20T14:05:00")]}, "outcomes.0.occurred_at: Input should have time"),
        ({"outcomes": [_item(occurred_at="yesterday")]}, "outcomes.0.occurred_at: Input should be a valid datetime"),
        ({"outcomes": [_item(occurred_at=1763647500)]}, "outcomes.0.occurred_at: Input should be a valid datetime"),
        ({"outcomes": [_item(note="great hire")]}, "outcomes.0.note: Extra inputs are not permitted"),
        ({"outcomes": [_item()], "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"outcomes": [{"request_id": ELSEWHERE, "outcome": HIRED}]}, "outcomes.0.freelancer_id: Field required"),
        ({"outcomes": [_item(), _item(freelancer_id=6), _item(outcome=REJECTED)]},
         "outcomes: Value error, outcomes.2 repeats the request_id and freelancer_id of outcomes.0"),
    ],
)  # fmt: skip
def test_bad_outcomes_get_422_naming_the_field_and_write_nothing(
    tmp_path: Path, bundle_dir: Path, body: dict, where: str
) -> None:
    with _app(tmp_path, bundle_dir) as live:
        response = live.post("/v1/outcomes", json=body)
        assert response.status_code == 422, response.text
        assert where in response.json()["message"], response.json()["message"]
        time.sleep(0.12)  # a few of the writer's flushes (every GIGMATCH_LOG_FLUSH_SECONDS, 0.05 s)
    assert not (tmp_path / "outcomes").exists()  # nothing written, nor even the directory made


def test_a_freelancer_who_was_not_a_candidate_is_refused_and_nothing_is_written(
    tmp_path: Path, bundle_dir: Path, payload: dict
) -> None:
    with _app(tmp_path, bundle_dir) as live:
        request_id, ids = _answered(live, payload)
        stranger = max(ids) + 1
        batch = [
            {"request_id": request_id, "freelancer_id": ids[0], "outcome": HIRED},
            {"request_id": ELSEWHERE, "freelancer_id": stranger, "outcome": HIRED},  # not known here: fine
            {"request_id": request_id, "freelancer_id": stranger, "outcome": REJECTED},
        ]
        response = live.post("/v1/outcomes", json={"outcomes": batch})
        assert response.status_code == 422, response.text
        assert response.json()["message"] == (
            f"outcomes.2.freelancer_id: freelancer {stranger} was not a candidate of request {request_id}"
        )
        assert response.json()["detail"][0]["loc"] == ["body", "outcomes", 2, "freelancer_id"]
        time.sleep(0.12)
        assert not (tmp_path / "outcomes").exists()
        # Nothing of the refused batch was recorded either: its valid part, sent again, is accepted whole.
        assert live.post("/v1/outcomes", json={"outcomes": batch[:2]}).json() == {"accepted": 2, **NONE_DUPLICATE}
    assert len(read_outcome_log(tmp_path / "outcomes")) == 2


def test_a_repeated_outcome_is_recorded_once(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    with _app(tmp_path, bundle_dir) as live:
        request_id, ids = _answered(live, payload)
        first = [
            {"request_id": request_id, "freelancer_id": ids[0], "outcome": SHORTLISTED},
            {"request_id": ELSEWHERE, "freelancer_id": 9, "outcome": REJECTED},
        ]
        assert live.post("/v1/outcomes", json={"outcomes": first}).json() == {"accepted": 2, **NONE_DUPLICATE}
        # The same pairs again (a client's retry; one with another outcome: the first recorded stands), and a new one.
        second = [
            {**first[0], "outcome": HIRED},
            first[1],
            {"request_id": request_id, "freelancer_id": ids[1], "outcome": HIRED},
        ]
        response = live.post("/v1/outcomes", json={"outcomes": second})
        assert response.status_code == 202 and response.json() == {"accepted": 1, "duplicates": 2, "dropped": 0}
        assert _metric(live, 'gigmatch_outcomes_total{result="duplicate"} 2.0')
    [written] = (tmp_path / "outcomes").iterdir()
    assert len(written.read_text().splitlines()) == 3  # the repeats were not written
    outcomes = read_outcome_log(tmp_path / "outcomes")
    assert outcomes["outcome"].tolist() == [SHORTLISTED, REJECTED, HIRED]


def test_an_outcome_the_full_buffer_drops_is_not_remembered(tmp_path: Path, bundle_dir: Path) -> None:
    """Dropped lines are counted, reported in the answer, and not taken for recorded: sending them again is safe."""
    batch = [{"request_id": ELSEWHERE, "freelancer_id": n, "outcome": HIRED} for n in (1, 2, 3)]
    with _app(tmp_path, bundle_dir, outcome_log_queue_size=1, log_flush_seconds=60) as live:  # no flush meanwhile
        assert live.post("/v1/outcomes", json={"outcomes": batch}).json() == {
            "accepted": 1,
            "duplicates": 0,
            "dropped": 2,
        }
        assert live.post("/v1/outcomes", json={"outcomes": batch}).json() == {
            "accepted": 0,
            "duplicates": 1,
            "dropped": 2,
        }
        assert _metric(live, "gigmatch_outcome_log_dropped_total 4.0")
    assert read_outcome_log(tmp_path / "outcomes")["freelancer_id"].tolist() == [1]


def test_the_largest_batch_is_taken(tmp_path: Path, bundle_dir: Path) -> None:
    batch = [{"request_id": ELSEWHERE, "freelancer_id": n, "outcome": n % 4} for n in range(1, 10_001)]
    with _app(tmp_path, bundle_dir) as live:
        start = time.perf_counter()
        response = live.post("/v1/outcomes", json={"outcomes": batch})
        seconds = time.perf_counter() - start
        assert response.json() == {"accepted": MAX_OUTCOMES_PER_REQUEST, **NONE_DUPLICATE}
    print(f"a batch of {MAX_OUTCOMES_PER_REQUEST} outcomes: {seconds * 1000:.0f} ms through the test client")
    assert seconds < 2.0
    assert len(read_outcome_log(tmp_path / "outcomes")) == MAX_OUTCOMES_PER_REQUEST


def test_the_client_key_is_required_when_set(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    with _app(tmp_path, bundle_dir, api_key="s3cret", admin_key="admin-s3cret") as keyed:
        request_id, ids = _answered(keyed, payload, **{"X-API-Key": "s3cret"})
        body = {"outcomes": [{"request_id": request_id, "freelancer_id": ids[0], "outcome": HIRED}]}
        assert keyed.post("/v1/outcomes", json=body).status_code == 401
        assert keyed.post("/v1/outcomes", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        assert keyed.post("/v1/outcomes", json=body, headers={"X-Admin-Key": "admin-s3cret"}).status_code == 401
        assert keyed.post("/v1/outcomes", json=body, headers={"X-API-Key": "s3cret"}).status_code == 202
    assert len(read_outcome_log(tmp_path / "outcomes")) == 1


def _answer(answers: Answers, count: int, candidates: int) -> list[str]:
    """`count` requests answered, of `candidates` each (request n's ids: 1000 n to 1000 n + candidates - 1)."""
    request_ids = [f"{n:032x}" for n in range(count)]
    for n, request_id in enumerate(request_ids):
        answers.answered(request_id, np.arange(candidates, dtype=np.int64) + 1000 * n)
    return request_ids


def test_the_memory_of_answers_is_bounded_by_requests_and_by_ids() -> None:
    by_requests = Answers(max_requests=3, max_ids=1_000)
    ids = _answer(by_requests, 5, 10)
    assert len(by_requests) == 3 and by_requests.ids == 30
    assert by_requests.is_candidate(ids[0], 0) is None  # forgotten: taken on trust
    assert by_requests.is_candidate(ids[4], 4000) is True and by_requests.is_candidate(ids[4], 1) is False
    by_ids = Answers(max_requests=1_000, max_ids=25)
    _answer(by_ids, 4, 10)
    assert len(by_ids) == 2 and by_ids.ids == 20
    # A request reported on is kept longest; one answered elsewhere is remembered by the ids recorded.
    lru = Answers(max_requests=3, max_ids=1_000)
    ids = _answer(lru, 3, 10)
    lru.record(ids[0], 5)
    lru.record(ELSEWHERE, 99)
    assert lru.is_recorded(ids[0], 5) and not lru.is_recorded(ids[0], 6)
    assert lru.is_recorded(ELSEWHERE, 99) and lru.is_candidate(ELSEWHERE, 99) is None
    assert lru.is_candidate(ids[1], 1000) is None  # the least recently used went
    assert lru.ids == 10 + 10 + 1
    lru.record(ids[0], 123_456)  # not a candidate: nothing to remember (the route refuses it first)
    assert not lru.is_recorded(ids[0], 123_456) and lru.ids == 21
