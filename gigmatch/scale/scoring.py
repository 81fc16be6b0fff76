"""Batch scoring on Dask: Parquet match rows (a file or a folder of them) ranked job by job, written as a dataset.

The same ranking as `gigmatch.model.ranking.score_frame` in-process, partition by
partition: each partition holds whole jobs (`partitions.by_job`), is checked against
the match columns and ranked on a worker, the model sent to each worker once. The
output is a folder of Parquet files, one per partition, jobs in order, staged beside
OUTPUT and renamed over it only when every partition has been written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.pipeline import Pipeline

from gigmatch.data.validation import MAX_EXAMPLES, ContractError, Violation
from gigmatch.features.match_frame import MATCH_COLUMNS
from gigmatch.files import staged_directory
from gigmatch.model.bundle import Bundle
from gigmatch.model.ranking import checked_match_frame, score_frame
from gigmatch.scale.cluster import one_key
from gigmatch.scale.partitions import by_job

SCORED_META = pd.DataFrame(
    {
        "job_id": pd.Series(dtype="int64"),
        "freelancer_id": pd.Series(dtype="int64"),
        "match_score": pd.Series(dtype="float64"),
        "rank": pd.Series(dtype="int64"),
        "model_version": pd.Series(dtype="str"),
    }
)


@dataclass(frozen=True)
class ScoredDataset:
    path: Path
    rows: int
    partitions: int


def read_match_dataset(path: Path) -> dd.DataFrame:
    """The Parquet rows at `path` (a file, or a folder's *.parquet files) as a Dask frame.

    Every file's schema is read first (its footer only): a missing column, or a column whose
    type differs between files, is refused with a ContractError naming them before any
    partition is read. (A type that differs between files otherwise surfaces as a failed
    shuffle deep inside Dask, naming neither.)
    """
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise ContractError([Violation("input", None, "readable_parquet", 0, (f"{path}: no *.parquet files",))])
    schemas = {}
    for file in files:
        try:
            schemas[file] = pq.read_schema(file)
        except (OSError, pa.ArrowException) as exc:
            raise ContractError([Violation("input", None, "readable_parquet", 0, (f"{file}: {exc}",))]) from exc
    first, schema = files[0], schemas[files[0]]
    missing = [c for c in MATCH_COLUMNS if c not in schema.names]
    if missing:
        message = f"input lacks the match columns: {', '.join(missing)}"
        raise ContractError([Violation("input", None, "match_columns", 0, (message,))])
    violations = []
    for column in MATCH_COLUMNS:
        expected = _kind(schema.field(column).type)
        kinds = {file: _kind(schemas[file].field(column).type) if column in schemas[file].names else "missing"
                 for file in files[1:]}  # fmt: skip
        differing = [f"{file.name}: {kind}" for file, kind in kinds.items() if kind != expected]
        if differing:
            examples = (f"{first.name}: {expected}", *differing[:MAX_EXAMPLES])
            check = f"the same type in every file ({len(differing)} of {len(files)} differ)"
            violations.append(Violation("input", column, check, 0, examples))
    if violations:
        raise ContractError(violations)
    return dd.read_parquet([str(file) for file in files])


def _kind(arrow_type: pa.DataType) -> str:
    """A column's type as the match frame reads it: string or large string, any width of integer, are alike."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"list<{_kind(arrow_type.value_type)}>"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    return str(arrow_type)


def _rank_partition(part: pd.DataFrame, model: Pipeline, version: str) -> pd.DataFrame:
    if part.empty:
        return SCORED_META.copy()
    ranked = score_frame(model, checked_match_frame(part.reset_index(drop=True)))
    return ranked.assign(model_version=version)


def score_on_dask(bundle: Bundle, input_path: Path, output: Path, partition_rows: int) -> ScoredDataset:
    """Rank every job's candidates at `input_path` into the dataset `output`, on the current Dask client's cluster."""
    frame = read_match_dataset(input_path)
    jobs = by_job(frame, partition_rows)
    ranked = jobs.map_partitions(_rank_partition, one_key(bundle.model), str(bundle.version), meta=SCORED_META)
    with staged_directory(output) as staging:
        ranked.to_parquet(str(staging), write_index=False, name_function=lambda i: f"part-{i:05d}.parquet")
        written = pq.ParquetDataset(str(staging))
        rows = sum(fragment.count_rows() for fragment in written.fragments)
        count = len(written.fragments)
    return ScoredDataset(output, rows, count)
