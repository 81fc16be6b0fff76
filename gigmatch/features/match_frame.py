"""The match frame: one row per (job, candidate freelancer), the model's input.

Training builds it by joining applications to jobs and freelancers, batch scoring
from a table; serving builds the same columns from requests, as arrays (a
DataFrame per request would cost more than the features). Every path gives the
columns the types the data contract declares, so the model sees the same input
either way. Skill lists travel as one space-separated string of slugs, which
keeps the model signature to plain scalar columns.

The as-of rule. A freelancer's track record (`PROFILE_STATISTICS`: jobs completed,
rating, success rate) changes as work is done. The features of an application read
it as the client saw it: from the `freelancer_history` row with the latest
`valid_from` strictly before `applied_at`; a freelancer with no row before then had
no record yet (no jobs, no rating, no success rate). Nothing recorded at or after
the application, its own outcome included, can reach its features. Without a
history table the `freelancers` table's current values are used for every
application, which lets later outcomes leak into earlier rows (the validation
report and the training run say so). Serving needs none of this: a request carries
the candidate's profile as it stands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from gigmatch.data.contract import CONTRACTS, FREELANCERS, JOBS, PROFILE_STATISTICS

JOB_COLUMNS: tuple[str, ...] = (
    "job_id",
    "category",
    "required_skills",
    "budget_type",
    "budget_usd",
    "duration",
    "experience_level",
    "description",
    "timezone_overlap_hours",
    "client_utc_offset",
)
FREELANCER_COLUMNS: tuple[str, ...] = (
    "freelancer_id",
    "region",
    "utc_offset",
    "years_experience",
    "hourly_rate_usd",
    "skills",
    "rating",
    "jobs_completed",
    "success_rate",
    "weekly_availability_hours",
    "profile_text",
)
MATCH_COLUMNS: tuple[str, ...] = JOB_COLUMNS + FREELANCER_COLUMNS
SKILL_LIST_COLUMNS = ("required_skills", "skills")


def _columns_of_kind(is_kind: Callable[[pa.DataType], bool]) -> tuple[str, ...]:
    """The match columns whose contract type is of a kind (the contract declares each column's type once)."""
    types = {f.name: f.arrow_type for table in (JOBS, FREELANCERS) for f in CONTRACTS[table].fields}
    return tuple(name for name in MATCH_COLUMNS if is_kind(types[name]))


INT_COLUMNS = _columns_of_kind(pa.types.is_integer)
FLOAT_COLUMNS = _columns_of_kind(pa.types.is_floating)
_COLUMN_TYPES = {**dict.fromkeys(INT_COLUMNS, np.int64), **dict.fromkeys(FLOAT_COLUMNS, np.float64)}


def join_skills(skills: object) -> str:
    """A list of skill slugs (or an already joined string) as one space-separated string."""
    if isinstance(skills, str):
        return " ".join(skills.split())
    try:
        return " ".join(skills)  # type: ignore[arg-type]
    except TypeError:  # not all strings
        return " ".join(map(str, skills))  # type: ignore[call-overload]


def build_match_frame(
    applications: pd.DataFrame,
    jobs: pd.DataFrame,
    freelancers: pd.DataFrame,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Join each application to its job and freelancer, in the applications' row order.

    With `history` (the `freelancer_history` table), the profile statistics are the
    ones of the as-of rule above; without it, the freelancers' current values.
    """
    job_rows = pd.Index(jobs["job_id"]).get_indexer(applications["job_id"])
    freelancer_rows = pd.Index(freelancers["freelancer_id"]).get_indexer(applications["freelancer_id"])
    if (job_rows < 0).any() or (freelancer_rows < 0).any():
        raise ValueError("applications refer to unknown jobs or freelancers; validate the snapshot first")
    columns = {}
    for name in JOB_COLUMNS:
        columns[name] = _column_values(jobs[name], job_rows)
    for name in FREELANCER_COLUMNS:
        columns[name] = _column_values(freelancers[name], freelancer_rows)
    if history is not None:
        columns.update(profiles_as_of(applications, history))
    return _finalise(pd.DataFrame(columns))


def profiles_as_of(applications: pd.DataFrame, history: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per application (in row order), `PROFILE_STATISTICS` from the latest history row strictly before `applied_at`."""
    asked = pd.DataFrame(
        {
            "freelancer_id": applications["freelancer_id"].to_numpy(np.int64),
            "at": _utc_microseconds(applications["applied_at"]),
            "row": np.arange(len(applications)),
        }
    ).sort_values("at", kind="stable")
    known = pd.DataFrame(
        {
            "freelancer_id": history["freelancer_id"].to_numpy(np.int64),
            "at": _utc_microseconds(history["valid_from"]),
            **{name: history[name].to_numpy(np.float64) for name in PROFILE_STATISTICS},
        }
    ).sort_values("at", kind="stable")
    found = pd.merge_asof(
        asked,
        known,
        on="at",
        by="freelancer_id",
        allow_exact_matches=False,  # strictly before: a change at the application's moment is not yet seen
        direction="backward",
    ).sort_values("row", kind="stable")
    no_record = found["jobs_completed"].isna().to_numpy()
    return {
        "jobs_completed": np.where(no_record, 0, found["jobs_completed"].to_numpy(np.float64)).astype(np.int64),
        "rating": found["rating"].to_numpy(np.float64),
        "success_rate": found["success_rate"].to_numpy(np.float64),
    }


def _utc_microseconds(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch, UTC (naive ones are taken as UTC, as the contract stores)."""
    series = pd.Series(values).reset_index(drop=True)
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy("datetime64[us]").astype(np.int64)


def match_columns_from_values(
    jobs: Sequence[tuple[Sequence[object], Sequence[Sequence[object]]]],
) -> dict[str, np.ndarray]:
    """Several jobs and their candidates as one set of match columns (name -> 1-d array), each job's rows
    together, in order: from each job's values in `JOB_COLUMNS` order and each candidate's in
    `FREELANCER_COLUMNS` order (e.g. read off validated request objects with `operator.attrgetter`).

    Built column by column from transposed rows: the API's request path, where
    looking each field up by name on every candidate cost more than the features.
    """
    sizes = [len(candidates) for _, candidates in jobs]
    job_columns = zip(*(values for values, _ in jobs), strict=True) if jobs else [()] * len(JOB_COLUMNS)
    rows = [values for _, candidates in jobs for values in candidates]
    freelancer_columns = zip(*rows, strict=True) if rows else [()] * len(FREELANCER_COLUMNS)
    columns: dict[str, np.ndarray] = {}
    for name, values in zip(JOB_COLUMNS, job_columns, strict=True):
        columns[name] = np.repeat(_column_array(name, values), sizes)
    for name, values in zip(FREELANCER_COLUMNS, freelancer_columns, strict=True):
        columns[name] = _column_array(name, values)  # None -> NaN in a float column
    return columns


def _column_array(name: str, values: Sequence[object]) -> np.ndarray:
    if name in SKILL_LIST_COLUMNS:
        values = [join_skills(v) for v in values]
    return np.array(values, dtype=_COLUMN_TYPES.get(name, object))


def match_columns(X: object) -> dict[str, np.ndarray]:
    """The match columns as 1-d numpy arrays, from a match frame or a mapping of column name to values."""
    if isinstance(X, pd.DataFrame):
        missing = [c for c in MATCH_COLUMNS if c not in X.columns]
        columns = {} if missing else {c: X[c].to_numpy() for c in MATCH_COLUMNS}
    elif isinstance(X, Mapping):
        missing = [c for c in MATCH_COLUMNS if c not in X]
        columns = {} if missing else {c: np.asarray(X[c]) for c in MATCH_COLUMNS}
    else:
        raise TypeError(f"expected a match frame (DataFrame or mapping of arrays), got {type(X).__name__}")
    if missing:
        raise ValueError(f"match frame is missing columns: {', '.join(missing)}")
    if len({len(v) for v in columns.values()}) != 1:
        raise ValueError("match frame columns differ in length")
    return columns


def _column_values(column: pd.Series, rows: np.ndarray) -> object:
    if column.name in SKILL_LIST_COLUMNS:
        joined = np.array([join_skills(v) for v in column], dtype=object)
        return joined[rows]
    return column.to_numpy()[rows]


def _finalise(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.loc[:, list(MATCH_COLUMNS)].reset_index(drop=True)
    for name in INT_COLUMNS:
        frame[name] = frame[name].astype(np.int64)
    for name in FLOAT_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="raise").astype(np.float64)
    for name in set(MATCH_COLUMNS) - set(INT_COLUMNS) - set(FLOAT_COLUMNS):
        frame[name] = frame[name].astype(object)
    return frame


def match_frame_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """The match frame from a table with the match columns (skills as lists or joined strings).

    Raises ValueError naming missing columns or values that do not fit their type.
    """
    missing = [c for c in MATCH_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"input lacks the match columns: {', '.join(missing)}")
    frame = table.loc[:, list(MATCH_COLUMNS)].copy()
    for name in SKILL_LIST_COLUMNS:
        frame[name] = [join_skills(v) for v in frame[name]]
    try:
        return _finalise(frame)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"input values do not fit the match columns: {exc}") from exc
