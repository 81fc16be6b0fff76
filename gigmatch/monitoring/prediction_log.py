"""The prediction log's format: one JSON line per answered request, written by serving, read by monitoring.

A line holds when it was answered, the answer's `request_id`, by which model,
the job's id and context columns, and per candidate, as lists in request order,
its id, context columns, `match_score` and every feature (`FEATURE_NAMES`).
Lists rather than one line per candidate: a request's values are serialised in
one go. Files are daily,
`predictions-YYYYMMDD.jsonl`, in the log directory (`GIGMATCH_LOG_DIR`).

`read_records` and `spread_records` turn lines back into one row per candidate;
they name the file and line of anything that is not a record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from gigmatch.data.validation import ContractError, Violation
from gigmatch.features.names import FEATURE_NAMES

LOG_GLOB = "predictions-*.jsonl"
SCORE = "match_score"
CANDIDATE_ID = "freelancer_id"
# Context people slice by. The job's experience level is already a feature (0, 1, 2)
# under its own name, so the log records only the feature.
JOB_CONTEXT: tuple[str, ...] = ("category", "budget_type")
CANDIDATE_CONTEXT: tuple[str, ...] = ("region", "hourly_rate_usd")


def log_file_name(moment: datetime) -> str:
    return f"predictions-{moment:%Y%m%d}.jsonl"


def log_record(
    *,
    request_id: str,
    model_name: str,
    model_version: str,
    job_id: int,
    job_context: Sequence[object],
    freelancer_ids: np.ndarray,
    candidate_context: Sequence[Sequence[object]],
    scores: np.ndarray,
    features: np.ndarray,
) -> dict[str, object]:
    """One request's line: values of `JOB_CONTEXT` for the job, of `CANDIDATE_CONTEXT` per candidate.

    `request_id` is the answer's own (serving makes it, a uuid4's hex, and sends it with the
    answer), so outcomes reported later (`gigmatch.monitoring.outcome_log`) join this line by it.

    Arrays are left as numpy arrays: the writer serialises them directly, without a
    Python float per value.
    """
    by_feature = np.ascontiguousarray(features.T)  # one contiguous row per feature
    return {
        "logged_at": datetime.now(UTC).isoformat(),
        "request_id": request_id,
        "model_name": model_name,
        "model_version": model_version,
        "job_id": job_id,
        **dict(zip(JOB_CONTEXT, job_context, strict=True)),
        CANDIDATE_ID: freelancer_ids,
        **dict(zip(CANDIDATE_CONTEXT, candidate_context, strict=True)),
        SCORE: scores,
        **dict(zip(FEATURE_NAMES, by_feature, strict=True)),
    }


def read_records(lines: Iterable[str], source: str) -> list[dict[str, object]]:
    """The records of a log's lines (blank lines skipped); ContractError names the first line that is not one."""
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad_line(source, f"line {number}: {exc}") from exc
        if not isinstance(record, dict):
            raise _bad_line(source, f"line {number} is not a JSON object")
        try:
            candidate_count(record)
        except ValueError as exc:
            raise _bad_line(source, f"line {number}: {exc}") from exc
        records.append(record)
    return records


def candidate_count(record: Mapping[str, object]) -> int:
    """Candidates in a record: the common length of its lists (1 when it has none)."""
    lengths = {len(v) for v in record.values() if isinstance(v, list)}
    if len(lengths) > 1:
        raise ValueError("per-candidate lists differ in length")
    return lengths.pop() if lengths else 1


def spread_records(records: Iterable[Mapping[str, object]]) -> dict[str, list[object]]:
    """Columns of one row per candidate: list values spread, scalars repeated, absent keys None."""
    columns: dict[str, list[object]] = {}
    n_rows = 0
    for record in records:
        count = candidate_count(record)
        for name, value in record.items():
            values = value if isinstance(value, list) else [value] * count
            columns.setdefault(name, [None] * n_rows).extend(values)
        n_rows += count
        for values in columns.values():  # a key absent from this record: fill it
            values.extend([None] * (n_rows - len(values)))
    return columns


def _bad_line(source: str, detail: str) -> ContractError:
    return ContractError([Violation(source, None, "json_lines", 0, (detail,))])
