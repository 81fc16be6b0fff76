"""The monitoring frame: what the drift gate compares, one row per (job, candidate).

Columns: the model's features (`FEATURE_NAMES`), its `match_score`, a few context
columns people slice by, and `outcome` when it is known. Three sources give the
same frame:

- a Parquet match table (the match columns, optionally `outcome`), scored here
  with the bundle's model: features from its first step, so they are exactly
  what serving computes;
- the serving prediction log (`gigmatch.monitoring.prediction_log`), where
  features and scores are already logged;
- a Parquet file that already holds a monitoring frame (a cached reference).

A directory may hold any mix of them. Anything unreadable, missing a column or
holding a value of the wrong type raises ContractError naming the file and column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.pipeline import Pipeline

from gigmatch.data.contract import APPLICATIONS, FREELANCER_HISTORY, FREELANCERS, JOBS, OUTCOMES
from gigmatch.data.pinning import directory_md5
from gigmatch.data.snapshot import read_tables
from gigmatch.data.validation import ContractError, Violation
from gigmatch.errors import GigmatchError
from gigmatch.features.match_frame import FLOAT_COLUMNS, INT_COLUMNS, match_frame_from_table
from gigmatch.features.names import FEATURE_NAMES
from gigmatch.files import write_parquet
from gigmatch.model.pipeline import estimator_of, features_of, match_scores
from gigmatch.monitoring.prediction_log import CANDIDATE_CONTEXT, JOB_CONTEXT, SCORE, read_records, spread_records
from gigmatch.params import SplitParams
from gigmatch.training.splits import split_snapshot

OUTCOME = "outcome"
CONTEXT: tuple[str, ...] = (*JOB_CONTEXT, *CANDIDATE_CONTEXT)
NUMERIC_CONTEXT: tuple[str, ...] = ("hourly_rate_usd",)
CATEGORICAL_CONTEXT: tuple[str, ...] = tuple(c for c in CONTEXT if c not in NUMERIC_CONTEXT)
# `budget_type` is kept for slicing; `is_hourly`, the feature, is what is monitored.
MONITORED_NUMERIC: tuple[str, ...] = (*FEATURE_NAMES, *NUMERIC_CONTEXT)
MONITORED_CATEGORICAL: tuple[str, ...] = ("category", "region")
FRAME_COLUMNS: tuple[str, ...] = ("job_id", *CONTEXT, *FEATURE_NAMES, SCORE)
NUMERIC_MATCH_COLUMNS = (*INT_COLUMNS, *FLOAT_COLUMNS)  # to name the column a table got wrong

ModelSource = Callable[[], Pipeline]


class ReferenceUnavailableError(GigmatchError, RuntimeError):
    """The default reference (the champion's training data) cannot be built here."""


def frame_from_match_table(table: pd.DataFrame, model: Pipeline, source: str = "input") -> pd.DataFrame:
    """Score a match table with the model; keep features, score, context and outcome."""
    try:
        match = match_frame_from_table(table)
    except ValueError as exc:
        mistyped = [c for c in NUMERIC_MATCH_COLUMNS if c in table and not _numeric(table[c])]
        if mistyped:
            raise _violation(source, ", ".join(mistyped), "dtype", "expected numbers") from exc
        raise _violation(source, None, "match_columns", str(exc)) from exc
    features = features_of(model).transform(match)
    frame = pd.DataFrame(features, columns=list(FEATURE_NAMES))
    frame[SCORE] = match_scores(estimator_of(model), features)
    for name in ("job_id", *CONTEXT):
        frame[name] = match[name].to_numpy()
    if OUTCOME in table.columns:
        frame[OUTCOME] = table[OUTCOME].to_numpy()
    return check_frame(frame, source)


def frame_from_log_lines(lines: Iterable[str], source: str) -> pd.DataFrame:
    """The prediction log's per-request records, spread to one row per candidate."""
    return check_frame(pd.DataFrame(spread_records(read_records(lines, source))), source)


def check_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The monitoring columns with their types, or ContractError naming what is missing or mistyped."""
    missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
    if missing:
        raise _violation(source, ", ".join(missing), "column_present", "column is missing")
    out = pd.DataFrame(index=range(len(frame)))
    violations = []
    for name in FRAME_COLUMNS:
        values = frame[name].reset_index(drop=True)
        if name in CATEGORICAL_CONTEXT:
            if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
                violations.append(Violation(source, name, "dtype", 0, ("expected text values",)))
            out[name] = values.astype(object)
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & numeric.isna()
        if bad.any() or pd.api.types.is_bool_dtype(values):
            example = values[bad].head(1).tolist()
            violations.append(Violation(source, name, "dtype", int(bad.sum()), (f"expected numbers, got {example}",)))
            continue
        out[name] = numeric.astype(np.float64)
    if OUTCOME in frame.columns:
        outcome = pd.to_numeric(frame[OUTCOME].reset_index(drop=True), errors="coerce")
        known = outcome.dropna()
        if not known.isin(OUTCOMES).all() or frame[OUTCOME].notna().sum() != len(known):
            violations.append(Violation(source, OUTCOME, "in_range(0, 3)", 0, ("outcome grades are 0, 1, 2 or 3",)))
        out[OUTCOME] = outcome.astype(np.float64)
    if violations:
        raise ContractError(violations)
    if len(out) == 0:
        raise _violation(source, None, "not_empty", "no rows")
    return out


def read_frame(path: Path, model: ModelSource) -> pd.DataFrame:
    """A monitoring frame from a Parquet file, a prediction log file, or a directory of either."""
    path = Path(path)
    if path.is_dir():
        files = sorted([*path.glob("*.parquet"), *path.glob("*.jsonl")])
        if not files:
            raise _violation(str(path), None, "files_present", "no *.parquet or *.jsonl files")
        return pd.concat([_read_file(f, model) for f in files], ignore_index=True)
    if not path.exists():
        raise _violation(str(path), None, "file_present", "not found")
    return _read_file(path, model)


def _read_file(path: Path, model: ModelSource) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        try:
            with open(path, encoding="utf-8") as handle:
                return frame_from_log_lines(handle, str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise _violation(str(path), None, "readable", str(exc)) from exc
    try:
        table = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise _violation(str(path), None, "readable_parquet", str(exc)) from exc
    if set(FRAME_COLUMNS) <= set(table.columns):
        return check_frame(table, str(path))
    return frame_from_match_table(table, model(), str(path))


def _numeric(values: pd.Series) -> bool:
    return bool(pd.to_numeric(values, errors="coerce").notna().sum() == values.notna().sum())


def _violation(source: str, column: str | None, check: str, detail: str) -> ContractError:
    return ContractError([Violation(source, column, check, 0, (detail,))])


def training_frame(data_dir: Path, split: SplitParams, model: Pipeline) -> pd.DataFrame:
    """The champion's training rows, selected as training selects them, scored by the model."""
    train = split_snapshot(read_tables(data_dir, (FREELANCERS, JOBS, APPLICATIONS, FREELANCER_HISTORY)), split).train
    return frame_from_match_table(train.frame.assign(outcome=train.relevance), model, str(data_dir))


def later_months(data_dir: Path, split: SplitParams, model: Pipeline) -> dict[str, pd.DataFrame]:
    """The applications to jobs posted after the training window (valid and test), scored, with outcomes,
    one monitoring frame per calendar month of posting ("YYYY-MM"): production traffic as time passes."""
    frames = read_tables(data_dir, (FREELANCERS, JOBS, APPLICATIONS, FREELANCER_HISTORY))
    sets = split_snapshot(frames, split)
    later = pd.concat([s.frame.assign(outcome=s.relevance) for s in (sets.valid, sets.test)], ignore_index=True)
    posted = frames[JOBS].set_index("job_id")["posted_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    month = posted.reindex(later["job_id"]).to_numpy()
    scored = frame_from_match_table(later, model, str(data_dir))
    return {m: scored[month == m].reset_index(drop=True) for m in sorted(set(month))}


ReferenceBuilder = Callable[[Path, SplitParams, Pipeline], pd.DataFrame]


def champion_reference(
    data_dir: Path,
    split: SplitParams,
    model: ModelSource,
    model_key: str,
    cache_dir: Path,
    build: ReferenceBuilder = training_frame,
) -> tuple[pd.DataFrame, Path]:
    """The champion's training rows as a monitoring frame, cached per model and data version.

    Scoring the training split takes seconds and repeats identically for every
    gate run against the same champion and snapshot, so it is done once and kept
    as Parquet in `cache_dir` under a name that holds the model key and data md5.
    `build` makes it: `training_frame` here, or the Dask engine's
    (`gigmatch.scale.reference`), which gives the same frame.
    """
    if not Path(data_dir).is_dir():
        raise ReferenceUnavailableError(
            f"the pinned snapshot {data_dir} is missing: run `make data`, or pass --reference"
        )
    data_md5 = directory_md5(data_dir)
    cache = Path(cache_dir) / f"reference-{model_key}-{data_md5.removesuffix('.dir')}.parquet"
    if cache.exists():
        return _read_file(cache, model), cache
    frame = build(data_dir, split, model())
    write_parquet(frame, cache)
    return frame, cache
