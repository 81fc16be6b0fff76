"""The data contract on Dask: the tables that grow with the applications checked in parts, on the workers.

The same checks and the same findings as `gigmatch.data.snapshot.read_tables` in-process
(the same violations, counts and example rows; in-process order within a table, tables in
the contract's order), in three passes:

1. the tables that grow with the marketplace's people and posts, not with its applications
   (freelancers, jobs, profile history), read and checked in this process, as in-process;
2. the structure of the applications and the simulator's truth (columns, types, nulls),
   row group by row group on the workers, each stretch knowing its first row number;
3. their values (pandera: ranges, allowed outcomes, the (job, freelancer) key unique) and
   relations (foreign keys, time order, one truth row per application) on partitions that
   hold whole jobs, so that a duplicated key always meets its twin. The jobs' posting times
   and the freelancers' sign-up dates go to each worker once. Rows keep their number in the
   table (the frame's index), so a finding names the rows in-process names.

A partition's findings are merged by (table, column, check): failures added up, the first
examples by row number (`merge_violations`). Values found broken anywhere withhold the
relations, as in-process (a foreign key check on ids out of range says nothing new).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
    conform_table,
    history_relations,
    merge_violations,
)
from gigmatch.scale.partitions import by_job, job_cuts
from gigmatch.scale.tables import Stretch, by_row_number, read_stretch, table_on_dask, table_stretches

PARTITIONED = (APPLICATIONS, SIMULATOR_TRUTH)
IN_PROCESS = tuple(t for t in ALL_TABLES if t not in PARTITIONED)
_NOT_EMPTY = "table_not_empty"  # a partition may be empty; the table is checked for rows as a whole


@dataclass(frozen=True)
class ValidatedSnapshot:
    frames: dict[str, pd.DataFrame]  # the tables checked in this process (freelancers, jobs, history)
    metrics: dict[str, float | int]  # the headline figures `summary_metrics` gives in-process


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
    stretches: dict[str, list[Stretch]] = {}
    for table in PARTITIONED if with_truth else (APPLICATIONS,):
        found, problems = _stretches(Path(directory), table, partition_rows)
        violations.extend(problems)
        if found:
            stretches[table] = found
    structure = dask.compute(*[dask.delayed(_structure)(s) for ss in stretches.values() for s in ss])
    broken = {v.table for part in structure for v in part}
    violations.extend(merge_violations(list(structure)))
    checked = [t for t in stretches if t not in broken]
    if APPLICATIONS in checked and sum(s.rows for s in stretches[APPLICATIONS]) == 0:
        violations.append(Violation(APPLICATIONS, None, _NOT_EMPTY, 0, ("the table has no rows",)))
        checked.remove(APPLICATIONS)
    if APPLICATIONS not in checked:  # the truth is checked against the applications, partition by partition
        raise ContractError(_in_table_order(violations))
    findings = _check_partitions(stretches, checked, frames, partition_rows, relations=not violations)
    values = merge_violations([f.values for f in findings])
    violations.extend(values)
    if not violations:
        violations.extend(merge_violations([f.relations for f in findings]))
        if FREELANCER_HISTORY in frames:
            violations.extend(history_relations(frames[FREELANCER_HISTORY], frames[FREELANCERS]))
    if violations:
        raise ContractError(_in_table_order(violations))
    counts = ApplicationCounts.merge([f.counts for f in findings])
    return ValidatedSnapshot(frames, summary_figures(frames, counts, SIMULATOR_TRUTH in stretches))


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


def _structure(stretch: Stretch) -> list[Violation]:
    try:
        raw = read_stretch(stretch)
    except (pa.ArrowException, OSError) as exc:
        return [Violation(stretch.table, None, "readable_parquet", 0, (f"{stretch.path}: {exc}",))]
    return conform_table(raw, CONTRACTS[stretch.table], stretch.first_row)[1]


def _check_partitions(
    stretches: dict[str, list[Stretch]],
    checked: list[str],
    frames: dict[str, pd.DataFrame],
    partition_rows: int,
    relations: bool,
) -> list[_PartFindings]:
    tables = {table: table_on_dask(stretches[table]) for table in checked}
    cuts = job_cuts(tables[APPLICATIONS], partition_rows)
    parts = {table: by_job(frame, partition_rows, cuts).to_delayed() for table, frame in tables.items()}
    parents = None
    if relations:  # the relations need only each job's posting time and each freelancer's sign-up date
        parents = {
            JOBS: frames[JOBS][["job_id", "posted_at"]],
            FREELANCERS: frames[FREELANCERS][["freelancer_id", "signup_date"]],
        }
    parents_key = dask.delayed(parents, pure=True, traverse=False)  # sent to each worker once, as one key
    truth = parts.get(SIMULATOR_TRUTH, [None] * len(parts[APPLICATIONS]))
    tasks = [dask.delayed(_check_part)(a, t, parents_key) for a, t in zip(parts[APPLICATIONS], truth, strict=True)]
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
