"""Checking data against the contract in `gigmatch.data.contract`.

Three layers, each reported in the same shape (table, column, check, how many
rows, a few offending rows): the file's structure (columns present, types that
widen losslessly, no nulls where none are allowed), each table's values
(pandera), and the relations between tables (foreign keys, time order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pda
import pyarrow as pa

from gigmatch.data.contract import (
    APPLICATIONS,
    CONTRACTS,
    FREELANCER_HISTORY,
    FREELANCERS,
    JOBS,
    SIMULATOR_TRUTH,
    SKILL_LIST,
    WIDENS_TO,
    TableContract,
    pandas_dtype,
)
from gigmatch.errors import ExitCode, GigmatchError

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Violation:
    table: str
    column: str | None
    check: str
    failures: int
    examples: tuple[str, ...] = ()
    # The row numbers of the examples, in order: partial results (a partition's) merge by them.
    example_rows: tuple[int, ...] = ()

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = f" for {self.failures} row(s)" if self.failures else ""
        examples = f"; e.g. {'; '.join(self.examples)}" if self.examples else ""
        return f"{where}: check '{self.check}' failed{rows}{examples}"


class ContractError(GigmatchError, ValueError):
    """Data broke the contract; carries every violation found."""

    exit_code = ExitCode.CONTRACT_BROKEN

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        lines = "\n".join(f"  - {v.describe()}" for v in violations)
        super().__init__(f"data contract broken ({len(violations)} violation(s)):\n{lines}")

    def __reduce__(self) -> tuple[type[ContractError], tuple[list[Violation]]]:
        # Rebuilt from its violations, not its message: a Dask worker's error reaches the client pickled.
        return (type(self), (self.violations,))


def row_number(frame: pd.DataFrame | pa.Table, position: int, first_row: int = 0) -> int:
    """The table's row number of the row at `position`: a frame's index holds it (a partition of a table
    keeps its rows' numbers there), an Arrow table's rows start at `first_row`."""
    return first_row + position if isinstance(frame, pa.Table) else int(frame.index[position])


def _row_label(frame: pd.DataFrame | pa.Table, contract: TableContract, position: int, first_row: int = 0) -> str:
    keys = []
    arrow = isinstance(frame, pa.Table)
    names = frame.column_names if arrow else list(frame.columns)
    for key in contract.key:
        if key in names:
            value = frame[key][position].as_py() if arrow else frame[key].iloc[position]
            keys.append(f"{key}={value}")
    return f"row {row_number(frame, position, first_row)}" + (f" ({', '.join(keys)})" if keys else "")


def conform_table(
    table: pa.Table, contract: TableContract, first_row: int = 0
) -> tuple[pa.Table | None, list[Violation]]:
    """Select the contract's columns and widen their types, or report why not (`first_row`: the table's
    first row number, when it is a stretch of a bigger one)."""
    violations: list[Violation] = []
    columns = []
    for spec in contract.fields:
        if spec.name not in table.column_names:
            violations.append(Violation(contract.name, spec.name, "column_present", 0, ("column is missing",)))
            continue
        column = table[spec.name]
        found = column.type
        if pa.types.is_integer(spec.arrow_type) and pa.types.is_floating(found):
            # Integers often arrive as floats after a pass through pandas; accept whole numbers.
            values = column.to_numpy(zero_copy_only=False)
            if not np.isnan(values).any() and np.all(values == np.round(values)):
                found = pa.int64()
                column = pa.chunked_array([pa.array(values.astype(np.int64))])
            else:
                nan_rows = np.flatnonzero(np.isnan(values))
                if len(nan_rows):
                    violations.append(_null_violation(table, contract, spec.name, nan_rows, first_row))
                else:
                    violations.append(
                        Violation(
                            contract.name,
                            spec.name,
                            "dtype",
                            0,
                            (f"expected {spec.arrow_type}, found {found} with fractions",),
                        )
                    )
                continue
        if found != spec.arrow_type and not WIDENS_TO[spec.arrow_type](found):
            hint = " (naive timestamps are ambiguous: store them in UTC)" if pa.types.is_timestamp(found) else ""
            violations.append(
                Violation(contract.name, spec.name, "dtype", 0, (f"expected {spec.arrow_type}, found {found}{hint}",))
            )
            continue
        if not spec.nullable and column.null_count:
            null_rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
            violations.append(_null_violation(table, contract, spec.name, null_rows, first_row))
            continue
        try:
            columns.append(column.cast(spec.arrow_type, safe=True) if found != spec.arrow_type else column)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            violations.append(
                Violation(contract.name, spec.name, "dtype", 0, (f"cannot convert to {spec.arrow_type}: {exc}",))
            )
    if violations:
        return None, violations
    return pa.Table.from_arrays(columns, schema=contract.arrow_schema), []


def _null_violation(
    table: pa.Table, contract: TableContract, column: str, rows: np.ndarray, first_row: int
) -> Violation:
    shown = [int(r) for r in rows[:MAX_EXAMPLES]]
    examples = tuple(_row_label(table, contract, r, first_row) for r in shown)
    return Violation(contract.name, column, "not_null", len(rows), examples, tuple(first_row + r for r in shown))


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table (already conformed) to the pandas dtypes the contract declares."""
    frame = table.to_pandas(types_mapper={SKILL_LIST: pd.ArrowDtype(SKILL_LIST)}.get)
    for spec in table.schema:
        if pa.types.is_string(spec.type):
            frame[spec.name] = frame[spec.name].astype(pandas_dtype(spec.type))
    return frame


def check_values(frame: pd.DataFrame, contract: TableContract) -> list[Violation]:
    try:
        contract.pandera_schema().validate(frame, lazy=True)
    except pda.errors.SchemaErrors as exc:
        return _from_failure_cases(exc.failure_cases, frame, contract)
    return []


def _from_failure_cases(cases: pd.DataFrame, frame: pd.DataFrame, contract: TableContract) -> list[Violation]:
    violations = []
    key_label = f"({', '.join(contract.key)})"
    # Table-level checks have no column; label them "" so groupby keeps them.
    cases = cases.assign(column=cases["column"].astype(object).fillna("").astype(str))
    # pandera reports a duplicated composite key once per key column: report it once, for the key.
    duplicate_key = cases["check"] == "multiple_fields_uniqueness"
    cases.loc[duplicate_key, "column"] = key_label
    cases = cases.drop_duplicates(subset=["column", "check", "index"])
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        rows = group["index"].dropna()
        examples, numbers = [], []
        values = group.loc[rows.index, "failure_case"]
        for idx, value in zip(rows.head(MAX_EXAMPLES), values.head(MAX_EXAMPLES), strict=True):
            # pandera reports index labels: a partition's are its rows' numbers in the table
            position = int(frame.index.get_indexer(pd.Index([idx]))[0])
            label = _row_label(frame, contract, position)
            examples.append(f"{label}: {value!r}" if column and column != key_label else label)
            numbers.append(row_number(frame, position))
        if check == "table_not_empty":
            examples, numbers = ["the table has no rows"], []
        where = (contract.name, str(column) or None, str(check))
        violations.append(Violation(*where, len(rows), tuple(examples), tuple(numbers)))
    return violations


def check_relations(tables: dict[str, pd.DataFrame]) -> list[Violation]:
    """Foreign keys from applications and profile history, and events in time order."""
    apps, jobs, freelancers = tables[APPLICATIONS], tables[JOBS], tables[FREELANCERS]
    contract = CONTRACTS[APPLICATIONS]
    violations = []
    job_pos = pd.Index(jobs["job_id"]).get_indexer(apps["job_id"])
    fl_pos = pd.Index(freelancers["freelancer_id"]).get_indexer(apps["freelancer_id"])
    for column, pos, parent in (
        ("job_id", job_pos, "jobs.job_id"),
        ("freelancer_id", fl_pos, "freelancers.freelancer_id"),
    ):
        orphans = np.flatnonzero(pos < 0)
        if len(orphans):
            violations.append(_rows_violation(apps, contract, column, f"foreign_key({parent})", orphans))
    applied = _instants(apps["applied_at"])
    known = (job_pos >= 0) & (fl_pos >= 0)
    posted = np.where(known, _instants(jobs["posted_at"])[job_pos], applied)
    signup = np.where(known, _instants(freelancers["signup_date"])[fl_pos], applied)
    for check, bad in (
        ("applied_at >= jobs.posted_at", applied < posted),
        ("applied_at >= freelancers.signup_date", applied < signup),
    ):
        if bad.any():
            violations.append(_rows_violation(apps, contract, "applied_at", check, np.flatnonzero(bad)))
    if FREELANCER_HISTORY in tables:
        violations.extend(history_relations(tables[FREELANCER_HISTORY], freelancers))
    if SIMULATOR_TRUTH in tables:
        truth = tables[SIMULATOR_TRUTH]
        keys = pd.MultiIndex.from_frame(apps[["job_id", "freelancer_id"]])
        truth_keys = pd.MultiIndex.from_frame(truth[["job_id", "freelancer_id"]])
        stray = np.flatnonzero(~truth_keys.isin(keys))
        if len(stray) or len(truth) != len(apps):
            violations.append(
                _rows_violation(truth, CONTRACTS[SIMULATOR_TRUTH], None, "one row per application", stray)
            )
    return violations


def history_relations(history: pd.DataFrame, freelancers: pd.DataFrame) -> list[Violation]:
    """Every history row is a known freelancer's, from sign-up on; completed jobs never go down."""
    contract = CONTRACTS[FREELANCER_HISTORY]
    violations = []
    pos = pd.Index(freelancers["freelancer_id"]).get_indexer(history["freelancer_id"])
    orphans = np.flatnonzero(pos < 0)
    if len(orphans):
        violations.append(
            _rows_violation(history, contract, "freelancer_id", "foreign_key(freelancers.freelancer_id)", orphans)
        )
    valid_from = _instants(history["valid_from"])
    signup = np.where(pos >= 0, _instants(freelancers["signup_date"])[np.maximum(pos, 0)], valid_from)
    early = np.flatnonzero(valid_from < signup)
    if len(early):
        violations.append(
            _rows_violation(history, contract, "valid_from", "valid_from >= freelancers.signup_date", early)
        )
    order = np.lexsort((valid_from, history["freelancer_id"].to_numpy()))
    ids = history["freelancer_id"].to_numpy()[order]
    done = history["jobs_completed"].to_numpy()[order]
    fewer = np.flatnonzero((ids[1:] == ids[:-1]) & (done[1:] < done[:-1])) + 1
    if len(fewer):
        violations.append(
            _rows_violation(history, contract, "jobs_completed", "never decreases over time", np.sort(order[fewer]))
        )
    return violations


def _instants(timestamps: pd.Series) -> np.ndarray:
    """Timestamps as numpy's datetime64 in UTC, in their own unit. A time zone's timestamps come out of
    `to_numpy()` as a `Timestamp` object per row, compared one by one: on Dask each partition's check did
    that to every freelancer's sign-up date (at 3M applications, 11 s of each worker's 130 s drift gate)."""
    if isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        timestamps = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return timestamps.to_numpy()


def _rows_violation(
    frame: pd.DataFrame, contract: TableContract, column: str | None, check: str, rows: np.ndarray
) -> Violation:
    examples = []
    shown = [int(r) for r in rows[:MAX_EXAMPLES]]
    for r in shown:
        label = _row_label(frame, contract, r)
        value = frame[column].iloc[r] if column else None
        value = value.item() if isinstance(value, np.generic) else value  # 999999, not np.int64(999999)
        examples.append(f"{label}: {value!r}" if column else label)
    numbers = tuple(row_number(frame, r) for r in shown)
    return Violation(contract.name, column, check, len(rows), tuple(examples), numbers)


def merge_violations(parts: list[list[Violation]]) -> list[Violation]:
    """The violations of a table checked in parts (each part's rows numbered as in the whole table): one per
    (table, column, check), failures summed, the first examples by row number, in order of first appearance."""
    merged: dict[tuple[str, str | None, str], list[Violation]] = {}
    for part in parts:
        for violation in part:
            merged.setdefault((violation.table, violation.column, violation.check), []).append(violation)
    violations = []
    for (table, column, check), found in merged.items():
        examples = sorted(
            ((row, text) for v in found for row, text in zip(v.example_rows, v.examples, strict=False)),
            key=lambda pair: pair[0],
        )[:MAX_EXAMPLES]
        if not examples:  # a structural finding (no rows to show): the same words in every part
            texts = tuple(dict.fromkeys(text for v in found for text in v.examples))[:MAX_EXAMPLES]
            violations.append(Violation(table, column, check, sum(v.failures for v in found), texts))
            continue
        rows, texts = zip(*examples, strict=True)
        violations.append(Violation(table, column, check, sum(v.failures for v in found), texts, rows))
    return violations
