"""The outcomes log's format: lines written as serving writes them, read back, the first per pair kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from gigmatch.data.contract import HIRED, REJECTED, SHORTLISTED
from gigmatch.data.validation import ContractError
from gigmatch.monitoring.outcome_log import (
    OUTCOME_LOG_GLOB,
    outcome_file_name,
    outcome_record,
    read_outcome_log,
    read_outcomes,
)

RECEIVED = datetime(2026, 11, 20, 14, 5, 30, 250_000, tzinfo=UTC)
A, B = "a" * 32, "b" * 32


def _line(request_id: str, freelancer_id: int, outcome: int, occurred_at: datetime | None = None) -> str:
    """A line as serving's writer serialises it (orjson)."""
    record = outcome_record(
        request_id=request_id,
        freelancer_id=freelancer_id,
        outcome=outcome,
        occurred_at=occurred_at,
        received_at=RECEIVED,
    )
    return orjson.dumps(record).decode()


def test_lines_read_back_as_typed_columns() -> None:
    occurred = datetime(2026, 11, 19, 9, 0, tzinfo=UTC) + timedelta(hours=2)
    lines = [_line(A, 17, HIRED), "", _line(A, 98, REJECTED, occurred.astimezone(timezone(timedelta(hours=-5))))]
    assert json.loads(lines[0]) == {
        "received_at": "2026-11-20T14:05:30.250000+00:00",
        "request_id": A,
        "freelancer_id": 17,
        "outcome": HIRED,
        "occurred_at": None,
    }
    outcomes = read_outcomes(lines, "outcomes-20261120.jsonl")
    assert outcomes["freelancer_id"].tolist() == [17, 98] and outcomes["outcome"].tolist() == [HIRED, REJECTED]
    assert outcomes["occurred_at"].isna().tolist() == [True, False]
    assert outcomes["occurred_at"].iloc[1].to_pydatetime() == occurred  # any zone in, UTC out
    assert (outcomes["received_at"] == RECEIVED).all()
    assert {str(t) for t in outcomes.dtypes} == {"str", "int64", "int8", "datetime64[us, UTC]"}
    empty = read_outcomes([], "none")
    assert list(empty.columns) == list(outcomes.columns) and list(empty.dtypes) == list(outcomes.dtypes)


def test_the_first_outcome_per_pair_is_kept() -> None:
    """Two workers (or one after a restart) may both write a pair: the reader keeps the first line."""
    lines = [_line(A, 1, SHORTLISTED), _line(B, 1, REJECTED), _line(A, 2, HIRED), _line(A, 1, HIRED)]
    outcomes = read_outcomes(lines + lines, "two-workers.jsonl")  # every line written twice
    assert list(zip(outcomes["request_id"], outcomes["freelancer_id"], outcomes["outcome"], strict=True)) == [
        (A, 1, SHORTLISTED),
        (B, 1, REJECTED),
        (A, 2, HIRED),
    ]


def test_a_log_directory_reads_oldest_file_first_and_keeps_the_first_across_files(tmp_path: Path) -> None:
    assert read_outcome_log(tmp_path / "absent").empty
    day = datetime(2026, 11, 20, tzinfo=UTC)
    (tmp_path / outcome_file_name(day + timedelta(days=1))).write_text(f"{_line(A, 1, HIRED)}\n{_line(B, 2, HIRED)}\n")
    (tmp_path / outcome_file_name(day)).write_text(f"{_line(A, 1, REJECTED)}\n")
    (tmp_path / "predictions-20261120.jsonl").write_text("not an outcome\n")  # not read: another log's name
    names = sorted(p.name for p in tmp_path.glob(OUTCOME_LOG_GLOB))
    assert names == ["outcomes-20261120.jsonl", "outcomes-20261121.jsonl"]
    outcomes = read_outcome_log(tmp_path)
    assert outcomes["outcome"].tolist() == [REJECTED, HIRED] and outcomes["request_id"].tolist() == [A, B]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "line 2: Expecting property name"),
        ("[1, 2]", "line 2: not a JSON object"),
        (json.dumps({"request_id": A, "freelancer_id": 1}), "line 2: lacks outcome, occurred_at, received_at"),
        (_line("A" * 32, 1, HIRED), "line 2: request_id 'AAAA"),
        (_line(A, 0, HIRED), "line 2: freelancer_id 0 is not an id"),
        (_line(A, 1, HIRED).replace('"freelancer_id":1', '"freelancer_id":1.0'), "line 2: freelancer_id 1.0"),
        (_line(A, 1, 7), "line 2: outcome 7 is not one of 0, 1, 2, 3"),
        (_line(A, 1, HIRED).replace('"outcome":2', '"outcome":true'), "line 2: outcome True"),
        (_line(A, 1, HIRED).replace("+00:00", ""), "line 2: received_at '2026-11-20T14:05:30.250000' is not"),
        (_line(A, 1, HIRED).replace('"occurred_at":null', '"occurred_at":"soon"'), "line 2: occurred_at 'soon'"),
    ],
)
def test_a_line_that_is_not_an_outcome_is_named(line: str, problem: str) -> None:
    with pytest.raises(ContractError) as raised:
        read_outcomes([_line(B, 1, HIRED), line], "logs/outcomes/outcomes-20261120.jsonl")
    message = str(raised.value)
    assert "logs/outcomes/outcomes-20261120.jsonl" in message and problem in message, message
