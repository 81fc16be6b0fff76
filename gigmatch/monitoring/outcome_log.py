"""The outcomes log's format: one JSON line per reported outcome, written by serving, read by monitoring.

A line says what became of one candidate of one answered match request:
`request_id` (the `request_id` of the /v1/match answer and of its prediction-log
line), `freelancer_id`, `outcome` (a code of `gigmatch.data.contract.OUTCOMES`),
`occurred_at` (when it happened, if the client said; else null) and `received_at`
(when the server took it, UTC). Files are daily, `outcomes-YYYYMMDD.jsonl`, in a
directory of their own (`GIGMATCH_OUTCOME_LOG_DIR`): the drift gate reads every
*.jsonl of the prediction log's directory.

One outcome per (request_id, freelancer_id), the first recorded. The server skips
the repeats it remembers, but that memory is bounded, held by each worker apart
and lost on restart, so the reader keeps the first line per pair too
(`read_outcomes`, `first_outcomes`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from gigmatch.data.contract import MAX_ID, OUTCOMES
from gigmatch.data.validation import ContractError, Violation

OUTCOME_LOG_GLOB = "outcomes-*.jsonl"
PAIR = ("request_id", "freelancer_id")  # what an outcome is about: one candidate of one answer
COLUMNS = (*PAIR, "outcome", "occurred_at", "received_at")
REQUEST_ID_PATTERN = "^[0-9a-f]{32}$"  # uuid4().hex
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def outcome_file_name(moment: datetime) -> str:
    return f"outcomes-{moment:%Y%m%d}.jsonl"


def outcome_record(
    *, request_id: str, freelancer_id: int, outcome: int, occurred_at: datetime | None, received_at: datetime
) -> dict[str, object]:
    """One outcome's line; `occurred_at` null when not reported.

    Times are left as aware datetimes: the writer (orjson) writes them as ISO-8601 with their
    zone, as `isoformat` would, in a tenth of the time (0.35 us against 3 us a line).
    """
    return {
        "received_at": received_at,
        "request_id": request_id,
        "freelancer_id": freelancer_id,
        "outcome": outcome,
        "occurred_at": occurred_at,
    }


def read_outcomes(lines: Iterable[str], source: str) -> pd.DataFrame:
    """The outcomes of a log's lines (blank lines skipped), the first per (request_id, freelancer_id).

    ContractError names the source and line of the first line that is not an outcome record.
    """
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(_parse(json.loads(line)))
        except ValueError as exc:  # json.JSONDecodeError is one
            raise ContractError([Violation(source, None, "json_lines", 0, (f"line {number}: {exc}",))]) from exc
    return first_outcomes(_frame(rows))


def read_outcome_log(directory: Path) -> pd.DataFrame:
    """Every outcome in a log directory, oldest file first, the first per pair across all of them."""
    frames = [
        read_outcomes(path.read_text(encoding="utf-8").splitlines(), str(path))
        for path in sorted(Path(directory).glob(OUTCOME_LOG_GLOB))
    ]
    return first_outcomes(pd.concat(frames, ignore_index=True)) if frames else _frame([])


def first_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """The first row per (request_id, freelancer_id), in the frame's order (lines written twice count once)."""
    return frame.drop_duplicates(list(PAIR), keep="first", ignore_index=True)


def _parse(record: object) -> tuple[object, ...]:
    if not isinstance(record, Mapping):
        raise ValueError("not a JSON object")
    missing = [name for name in COLUMNS if name not in record]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    request_id, freelancer_id, outcome = record["request_id"], record["freelancer_id"], record["outcome"]
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise ValueError(f"request_id {request_id!r} is not 32 lowercase hex digits")
    if type(freelancer_id) is not int or not 1 <= freelancer_id <= MAX_ID:
        raise ValueError(f"freelancer_id {freelancer_id!r} is not an id (an integer from 1 to {MAX_ID})")
    if type(outcome) is not int or outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(map(str, OUTCOMES))}")
    occurred_at = None if record["occurred_at"] is None else _moment(record, "occurred_at")
    return request_id, freelancer_id, outcome, occurred_at, _moment(record, "received_at")


def _moment(record: Mapping[str, object], name: str) -> datetime:
    value = record[name]
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{name} {value!r} is not an ISO-8601 time with a zone")
    return moment.astimezone(UTC)


def _frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    columns = dict(zip(COLUMNS, zip(*rows, strict=True), strict=True)) if rows else dict.fromkeys(COLUMNS, ())
    return pd.DataFrame(
        {
            "request_id": pd.Series(columns["request_id"], dtype="str"),
            "freelancer_id": pd.Series(columns["freelancer_id"], dtype="int64"),
            "outcome": pd.Series(columns["outcome"], dtype="int8"),
            "occurred_at": pd.to_datetime(pd.Series(columns["occurred_at"], dtype=object), utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "received_at": pd.to_datetime(pd.Series(columns["received_at"], dtype=object), utc=True).astype(
                "datetime64[us, UTC]"
            ),
        }
    )
