"""Reading and writing the marketplace snapshot (a directory of Parquet tables).

Reads go through the contract, so every frame a caller gets is valid. Writes
are atomic at the directory level: the new snapshot is written and validated
in a staging directory beside the target and swapped in only when valid, so
bad data never replaces good data. Parquet files are written with fixed
settings and no pandas metadata, so the same frames give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gigmatch.data.contract import (
    ALL_TABLES,
    APPLICATIONS,
    CONTRACTS,
    FREELANCER_HISTORY,
    HIRED,
    REQUIRED_TABLES,
    SIMULATOR_TRUTH,
    table_file,
)
from gigmatch.data.validation import (
    ContractError,
    Violation,
    check_relations,
    check_values,
    conform_table,
    to_frame,
)
from gigmatch.files import staged_directory

_PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True, "write_statistics": True}


def to_arrow(frame: pd.DataFrame, table: str) -> pa.Table:
    contract = CONTRACTS[table]
    frame = frame.loc[:, list(contract.columns)]
    for spec in contract.fields:
        column = frame[spec.name]
        if pa.types.is_timestamp(spec.arrow_type) and getattr(column.dtype, "tz", None) is None:
            frame = frame.assign(**{spec.name: column.dt.tz_localize("UTC")})
    arrow = pa.Table.from_pandas(frame, schema=contract.arrow_schema, preserve_index=False)
    return arrow.replace_schema_metadata(None)


def write_table(frame: pd.DataFrame, table: str, path: Path) -> None:
    pq.write_table(to_arrow(frame, table), path, **_PARQUET_OPTIONS)


def read_tables(directory: Path, tables: tuple[str, ...] = ALL_TABLES) -> dict[str, pd.DataFrame]:
    """Read and validate a snapshot; the simulator truth is read only if present.

    Raises ContractError naming every violation found.
    """
    directory = Path(directory)
    frames: dict[str, pd.DataFrame] = {}
    violations: list[Violation] = []
    if not directory.is_dir():
        raise ContractError([Violation("snapshot", None, "directory_exists", 0, (f"{directory} is not a directory",))])
    for table in tables:
        path = directory / table_file(table)
        if not path.exists():
            if table in REQUIRED_TABLES:
                violations.append(Violation(table, None, "file_present", 0, (f"{path} not found",)))
            continue
        try:
            raw = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            violations.append(Violation(table, None, "readable_parquet", 0, (f"{path}: {exc}",)))
            continue
        conformed, problems = conform_table(raw, CONTRACTS[table])
        violations.extend(problems)
        if conformed is not None:
            frame = to_frame(conformed)
            table_problems = check_values(frame, CONTRACTS[table])
            violations.extend(table_problems)
            if not table_problems:
                frames[table] = frame
    if not violations and all(t in frames for t in REQUIRED_TABLES):
        violations.extend(check_relations(frames))
    if violations:
        raise ContractError(violations)
    return frames


@dataclass(frozen=True)
class ApplicationCounts:
    """What the headline figures need of the applications: counted on the whole table, or on parts that each
    hold whole jobs and added up (`merge`), the same figures either way."""

    rows: int
    jobs: int
    hired_jobs: int
    min_per_job: int
    max_per_job: int

    @classmethod
    def of(cls, applications: pd.DataFrame) -> ApplicationCounts:
        per_job = applications.groupby("job_id").size()
        hired_jobs = applications.loc[applications["outcome"] >= HIRED, "job_id"].nunique()
        if per_job.empty:
            return cls(0, 0, 0, 0, 0)
        return cls(len(applications), len(per_job), int(hired_jobs), int(per_job.min()), int(per_job.max()))

    @classmethod
    def merge(cls, parts: list[ApplicationCounts]) -> ApplicationCounts:
        parts = [part for part in parts if part.jobs]
        return cls(
            sum(p.rows for p in parts),
            sum(p.jobs for p in parts),
            sum(p.hired_jobs for p in parts),
            min((p.min_per_job for p in parts), default=0),
            max((p.max_per_job for p in parts), default=0),
        )


def summary_metrics(frames: dict[str, pd.DataFrame]) -> dict[str, float | int]:
    """Headline figures of a valid snapshot, for `dvc metrics show`."""
    counts = ApplicationCounts.of(frames[APPLICATIONS])
    return summary_figures(frames, counts, SIMULATOR_TRUTH in frames)


def summary_figures(
    frames: dict[str, pd.DataFrame], applications: ApplicationCounts, has_simulator_truth: bool
) -> dict[str, float | int]:
    """The headline figures from the tables other than the applications, and the applications' counts."""
    metrics: dict[str, float | int] = {
        f"{name}_rows": applications.rows if name == APPLICATIONS else len(frames[name]) for name in REQUIRED_TABLES
    }
    metrics.update(
        applicants_per_job_mean=round(applications.rows / applications.jobs, 4),
        applicants_per_job_min=applications.min_per_job,
        applicants_per_job_max=applications.max_per_job,
        job_hire_rate=round(applications.hired_jobs / applications.jobs, 4),
        freelancer_history_rows=len(frames[FREELANCER_HISTORY]) if FREELANCER_HISTORY in frames else 0,
        has_simulator_truth=int(has_simulator_truth),
    )
    return metrics


def profile_statistics_note(frames: dict[str, pd.DataFrame]) -> str | None:
    """A warning when profile statistics cannot be read as of each application (no `freelancer_history`)."""
    if FREELANCER_HISTORY in frames:
        return None
    return (
        "no freelancer_history table: every application's features use the freelancers' current jobs_completed, "
        "rating and success_rate, which include the outcomes of later applications (offline metrics are optimistic); "
        "export profile history or snapshots to read them as of each application"
    )


def write_snapshot(frames: dict[str, pd.DataFrame], target: Path) -> dict[str, pd.DataFrame]:
    """Write tables to `target` atomically, after validating what was written."""
    with staged_directory(target) as staging:
        for table, frame in frames.items():
            write_table(frame, table, staging / table_file(table))
        validated = read_tables(staging, tuple(frames))
    return validated
