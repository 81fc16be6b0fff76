"""The data contract on Dask: the tables that grow with the applications checked in parts, on the workers.

The same checks and the same findings as `gigmatch.data.snapshot.read_tables` in-process
(the same violations, counts and example rows; in-process order within a table, tables in
the contract's order), in three passes:

1. the tables that grow with the marketplace's people and posts, not with its applications
   (freelancers, jobs, profile history), read and checked in this process, as in-process;
2. the structure of the applications and the simulator's truth (columns, types, nulls),
   row group by row group on the workers, each stretch knowing its first row number; the
   stretches read stay on the workers, and are shuffled into partitions of whole jobs;
3. their values (pandera: ranges, allowed outcomes, the (job, freelancer) key unique) and
   relations (foreign keys, time order, one truth row per application) on partitions that
   hold whole jobs, so that a duplicated key always meets its twin. The jobs' posting times
   and the freelancers' sign-up dates go to each worker once. Rows keep their number in the
   table (the frame's index), so a finding names the rows in-process names.

A partition's findings are merged by (table, column, check): failures added up, the first
examples by row number (`merge_violations`). Values found broken anywhere withhold the
relations, as in-process (a foreign key check on ids out of range says nothing new).

A snapshot that passes comes back with its partitions still on the cluster
(`JobPartitions`): the training features and the drift gate's reference start from
them, so a command reads each file once and shuffles it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dask.delayed import Delayed

from gigmatch.data.contract import (
    ALL_TABLES,
    APPLICATIONS,
    CONTRACTS,
    FREELANCER_HISTORY,
    FREELANCERS,
    JOBS,
    SIMULATOR_TRUTH,
    table_file,
)
from gigmatch.data.snapshot import ApplicationCounts, read_tables, summary_figures
from gigmatch.data.validation import (
    ContractError,
    Violation,
    check_relations,
    check_values,
    history_relations,
    merge_violations,
)
from gigmatch.scale.cluster import one_key
from gigmatch.scale.partitions import by_job, job_cuts
from gigmatch.scale.tables import Stretch, by_row_number, frame_meta, read_numbered, table_stretches

PARTITIONED = (APPLICATIONS, SIMULATOR_TRUTH)
IN_PROCESS = tuple(t for t in ALL_TABLES if t not in PARTITIONED)
_NOT_EMPTY = "table_not_empty"  # a partition may be empty; the table is checked for rows as a whole


@dataclass(frozen=True)
class JobPartitions:
    """The applications (and the simulator's truth, when read) in partitions of whole jobs, jobs in order, each row
    with its number in the table (ROW): kept on the cluster for the stages after the check, so they read, cut and
    shuffle the tables no more (Dask spills them to disk under memory pressure, and rebuilds a lost one)."""

    applications: list[Delayed]
    truth: list[Delayed] | None

    def pairs(self) -> list[tuple[Delayed, Delayed | None]]:
        """Each partition's applications and its truth (None: not read)."""
        truth: list[Delayed | None] = list(self.truth) if self.truth else [None] * len(self.applications)
        return list(zip(self.applications, truth, strict=True))


@dataclass(frozen=True)
class ValidatedSnapshot:
    frames: dict[str, pd.DataFrame]  # the tables checked in this process (freelancers, jobs, history)
    metrics: dict[str, float | int]  # the headline figures `summary_metrics` gives in-process
    partitions: JobPartitions


@dataclass(frozen=True)
class _PartFindings:
    values: list[Violation]
    relations: list[Violation]
    counts: ApplicationCounts


def validate_snapshot_on_dask(directory: Path, partition_rows: int, with_truth: bool = True) -> ValidatedSnapshot:
    """Check the snapshot at `directory` on the current Dask client's cluster; ContractError names every violation.

    `with_truth=False` leaves the simulator's truth out, as a reader of the client's tables only does.
    """
    violations: list[Violation] = []
    frames: dict[str, pd.DataFrame] = {}
    try:
        frames = read_tables(directory, IN_PROCESS)
    except ContractError as exc:
        if not Path(directory).is_dir():
            raise
        violations.extend(exc.violations)
    read: dict[str, list[Delayed]] = {}  # each stretch read once, its structure checked: kept for the partitions
    rows = 0
    for table in PARTITIONED if with_truth else (APPLICATIONS,):
        found, problems = _stretches(Path(directory), table, partition_rows)
        violations.extend(problems)
        if found:
            read[table] = list(dask.persist(*[dask.delayed(read_numbered, pure=True)(s) for s in found]))
            rows += sum(s.rows for s in found) if table == APPLICATIONS else 0
    structure = dask.compute(*[_problems(stretch) for stretches in read.values() for stretch in stretches])
    broken = {v.table for part in structure for v in part}
    violations.extend(merge_violations(list(structure)))
    checked = [t for t in read if t not in broken]
    if APPLICATIONS in checked and rows == 0:
        violations.append(Violation(APPLICATIONS, None, _NOT_EMPTY, 0, ("the table has no rows",)))
        checked.remove(APPLICATIONS)
    if APPLICATIONS not in checked:  # the truth is checked against the applications, partition by partition
        raise ContractError(_in_table_order(violations))
    partitions = _by_job({table: read[table] for table in checked}, partition_rows)
    findings = _check_partitions(partitions, frames, relations=not violations)
    values = merge_violations([f.values for f in findings])
    violations.extend(values)
    if not violations:
        violations.extend(merge_violations([f.relations for f in findings]))
        if FREELANCER_HISTORY in frames:
            violations.extend(history_relations(frames[FREELANCER_HISTORY], frames[FREELANCERS]))
    if violations:
        raise ContractError(_in_table_order(violations))
    counts = ApplicationCounts.merge([f.counts for f in findings])
    return ValidatedSnapshot(frames, summary_figures(frames, counts, SIMULATOR_TRUTH in read), partitions)


def _stretches(directory: Path, table: str, partition_rows: int) -> tuple[list[Stretch], list[Violation]]:
    path = directory / table_file(table)
    if not path.exists():
        missing = [Violation(table, None, "file_present", 0, (f"{path} not found",))]
        return [], missing if table == APPLICATIONS else []
    try:
        return table_stretches(directory, table, partition_rows), []
    except (pa.ArrowException, OSError) as exc:
        return [], [Violation(table, None, "readable_parquet", 0, (f"{path}: {_open_error(path, exc)}",))]


def _open_error(path: Path, exc: Exception) -> Exception:
    """In-process's words for a file that cannot be opened: `read_table`'s, which fails as fast (at the
    footer) and names what it could not open."""
    try:
        pq.read_table(path)
    except (pa.ArrowException, OSError) as words:
        return words
    return exc


@dask.delayed(pure=True)
def _problems(read: tuple[pd.DataFrame | None, list[Violation]]) -> list[Violation]:
    return read[1]


def _by_job(read: dict[str, list[Delayed]], partition_rows: int) -> JobPartitions:
    """The checked stretches shuffled into partitions of whole jobs (the applications' cuts for every table),
    kept on the cluster."""
    tables = {
        table: dd.from_delayed([_frame(r) for r in stretches], meta=frame_meta(table), verify_meta=False)
        for table, stretches in read.items()
    }
    cuts = job_cuts(tables[APPLICATIONS], partition_rows)
    parts = {table: by_job(frame, partition_rows, cuts).to_delayed() for table, frame in tables.items()}
    applications = list(dask.persist(*parts[APPLICATIONS]))
    truth = list(dask.persist(*parts[SIMULATOR_TRUTH])) if SIMULATOR_TRUTH in parts else None
    return JobPartitions(applications, truth)


@dask.delayed(pure=True)
def _frame(read: tuple[pd.DataFrame | None, list[Violation]]) -> pd.DataFrame:
    assert read[0] is not None  # only stretches whose structure holds are partitioned
    return read[0]


def _check_partitions(
    partitions: JobPartitions, frames: dict[str, pd.DataFrame], relations: bool
) -> list[_PartFindings]:
    parents = None
    if relations:  # the relations need only each job's posting time and each freelancer's sign-up date
        parents = {
            JOBS: frames[JOBS][["job_id", "posted_at"]],
            FREELANCERS: frames[FREELANCERS][["freelancer_id", "signup_date"]],
        }
    parents_key = one_key(parents)
    tasks = [dask.delayed(_check_part)(a, t, parents_key) for a, t in partitions.pairs()]
    return list(dask.compute(*tasks))


def _check_part(
    applications: pd.DataFrame, truth: pd.DataFrame | None, parents: dict[str, pd.DataFrame] | None
) -> _PartFindings:
    """One partition's findings: its values, then (when asked and its values hold) its relations."""
    tables = {APPLICATIONS: by_row_number(applications)}
    if truth is not None:
        tables[SIMULATOR_TRUTH] = by_row_number(truth)
    values = [v for t, frame in tables.items() for v in check_values(frame, CONTRACTS[t]) if v.check != _NOT_EMPTY]
    related: list[Violation] = []
    if parents is not None and not values:
        related = check_relations({**tables, **parents})
    return _PartFindings(values, related, ApplicationCounts.of(tables[APPLICATIONS]))


def _in_table_order(violations: list[Violation]) -> list[Violation]:
    rank = {table: i for i, table in enumerate(("snapshot", *ALL_TABLES))}
    return sorted(violations, key=lambda v: rank.get(v.table, len(rank)))
