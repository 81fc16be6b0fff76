"""Bring your own data: a client's tables in, a snapshot that meets the data contract out.

A client gives the three tables the pipeline needs (`jobs`, `freelancers`,
`applications`), and if it can the optional `freelancer_history` (each profile's
statistics over time, read as of each application: the as-of rule in
`gigmatch.features.match_frame`), each as `<table>.parquet` or `<table>.csv` in one directory,
under their own column names. `import_snapshot` renames the columns by the
mapping in params.yaml (`data.import.columns`), converts what a CSV cannot
carry (skill lists given as separated text, timestamps as text, numbers as
text), checks the result with the same contract as every other snapshot
(`gigmatch.data.validation`), and only then writes it atomically to `data.dir`
(`gigmatch.data.snapshot.write_snapshot`). Nothing is written if anything is wrong;
the error names each table.column, the check and a few rows (0-based, in the
client's file order).

A client's data has no `simulator_truth` table: the oracle figures are then
simply absent from the metrics and plots, and nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gigmatch.data.contract import (
    CLIENT_TABLES,
    CONTRACTS,
    REQUIRED_TABLES,
    SKILL_LIST,
    UTC_TIMESTAMP,
    TableContract,
)
from gigmatch.data.snapshot import write_snapshot
from gigmatch.data.validation import (
    MAX_EXAMPLES,
    ContractError,
    Violation,
    check_relations,
    check_values,
    conform_table,
)
from gigmatch.data.validation import to_frame as arrow_to_frame
from gigmatch.params import ImportParams, ParamsError

SOURCE_SUFFIXES = (".parquet", ".csv")
# An explicit offset or Z at the end of a textual timestamp: it needs no assumed zone.
_AWARE = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d*)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


@dataclass(frozen=True)
class ImportResult:
    frames: dict[str, pd.DataFrame]  # the validated snapshot as written
    sources: dict[str, Path]  # table -> the client's file
    ignored: dict[str, tuple[str, ...]]  # table -> client columns the contract does not use


def import_snapshot(source: Path, target: Path, params: ImportParams) -> ImportResult:
    """Read, rename, convert and check the client's tables; write them to `target` only if valid."""
    check_mapping(params)
    frames, sources, ignored = {}, {}, {}
    violations: list[Violation] = []
    for table in tables_given(Path(source)):
        try:
            path, raw = read_source(Path(source), table)
        except ContractError as exc:
            violations.extend(exc.violations)
            continue
        contract = CONTRACTS[table]
        renamed, problems = rename_columns(raw, contract, getattr(params.columns, table))
        violations.extend(problems)
        if problems:
            continue
        ignored[table] = tuple(
            str(c) for c, ours in zip(raw.columns, renamed.columns, strict=True) if ours not in contract.columns
        )
        converted, problems = convert_columns(renamed, contract, params)
        violations.extend(problems)
        sources[table] = path
        frames[table] = converted
    if violations:
        raise ContractError(violations)
    checked = check_snapshot(frames)
    return ImportResult(write_snapshot(checked, target), sources, ignored)


def tables_given(source: Path) -> tuple[str, ...]:
    """The required tables, and the optional ones the client's directory holds a file for."""
    optional = [t for t in CLIENT_TABLES if t not in REQUIRED_TABLES]
    present = [t for t in optional if any((source / f"{t}{suffix}").exists() for suffix in SOURCE_SUFFIXES)]
    return (*REQUIRED_TABLES, *present)


def check_mapping(params: ImportParams) -> None:
    """Every mapped-to name must be a contract column: a typo in params.yaml fails here, by name."""
    for table in CLIENT_TABLES:
        contract = CONTRACTS[table]
        for client, ours in getattr(params.columns, table).items():
            if ours not in contract.columns:
                raise ParamsError(
                    f"params.yaml data.import.columns.{table}: {client!r} maps to {ours!r}, which is not a column "
                    f"of {table} ({', '.join(contract.columns)})"
                )


def rename_columns(
    frame: pd.DataFrame, contract: TableContract, mapping: dict[str, str]
) -> tuple[pd.DataFrame, list[Violation]]:
    """The client's names to the contract's; a mapped column that is absent, or a name given twice, is named."""
    violations = [
        Violation(contract.name, ours, "column_present", 0, (f"{client!r} (data.import.columns) is not in the file",))
        for client, ours in mapping.items()
        if client not in frame.columns
    ]
    renamed = frame.rename(columns=mapping)
    for name in sorted({str(c) for c in renamed.columns[renamed.columns.duplicated()]}):
        sources = [str(c) for c, ours in zip(frame.columns, renamed.columns, strict=True) if ours == name]
        violations.append(Violation(contract.name, name, "one_source_column", 0, (f"given by {', '.join(sources)}",)))
    return renamed, violations


def read_source(directory: Path, table: str) -> tuple[Path, pd.DataFrame]:
    found = [directory / f"{table}{suffix}" for suffix in SOURCE_SUFFIXES if (directory / f"{table}{suffix}").exists()]
    if len(found) != 1:
        what = "found both " + " and ".join(p.name for p in found) if found else "no such file"
        expected = " or ".join(f"{table}{s}" for s in SOURCE_SUFFIXES)
        raise ContractError([Violation(table, None, "file_present", 0, (f"{directory}/{expected}: {what}",))])
    path = found[0]
    try:
        if path.suffix == ".csv":
            # Ids and text stay as written; numbers and timestamps are converted below, with rows named.
            return path, pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return path, pq.read_table(path).to_pandas(types_mapper={SKILL_LIST: pd.ArrowDtype(SKILL_LIST)}.get)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ContractError([Violation(table, None, "readable_file", 0, (f"{path}: {exc}",))]) from exc


def convert_columns(
    frame: pd.DataFrame, contract: TableContract, params: ImportParams
) -> tuple[pd.DataFrame, list[Violation]]:
    """Text to the contract's types where a client's file could not carry them; name the rows that fail."""
    out = {}
    violations = []
    for spec in contract.fields:
        if spec.name not in frame.columns:
            continue  # the contract check reports it, with the rest
        column = frame[spec.name]
        if spec.arrow_type == SKILL_LIST:
            out[spec.name] = _to_lists(column, params.list_separator)
            continue
        if spec.arrow_type == UTC_TIMESTAMP:
            converted, bad, why = _to_utc(column, params.timezone)
        elif pa.types.is_integer(spec.arrow_type) or pa.types.is_floating(spec.arrow_type):
            converted, bad, why = _to_number(column)
        else:
            out[spec.name] = column
            continue
        if bad.any():
            rows = np.flatnonzero(bad)
            examples = tuple(f"row {r}: {column.iloc[r]!r}" for r in rows[:MAX_EXAMPLES])
            violations.append(Violation(contract.name, spec.name, why, len(rows), examples))
        out[spec.name] = converted
    return pd.DataFrame(out, index=frame.index), violations


def _to_lists(column: pd.Series, separator: str) -> pd.Series:
    if isinstance(column.dtype, pd.ArrowDtype) or not column.map(lambda v: isinstance(v, str)).any():
        return column  # already lists (Parquet); the contract checks their items

    def split(value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(separator) if item.strip()]
        return value

    return pd.Series([split(v) for v in column], index=column.index, dtype=object)


def _to_number(column: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column, np.zeros(len(column), dtype=bool), ""
    numbers = pd.to_numeric(column, errors="coerce")
    return numbers, (numbers.isna() & column.notna()).to_numpy(), "parse_number"


def _to_utc(column: pd.Series, timezone: str | None) -> tuple[pd.Series, np.ndarray, str]:
    """Timestamps in UTC: offsets are honoured; values without one are read in `timezone`, or refused."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        if getattr(column.dtype, "tz", None) is not None:
            return column.dt.tz_convert("UTC"), np.zeros(len(column), dtype=bool), ""
        if timezone is None:
            return column, column.notna().to_numpy(), "timestamp_has_timezone (set data.import.timezone)"
        return column.dt.tz_localize(timezone).dt.tz_convert("UTC"), np.zeros(len(column), dtype=bool), ""
    text = column.astype("string").str.strip()
    aware = text.str.contains(_AWARE, regex=True).fillna(False).to_numpy(dtype=bool)
    result = pd.Series(pd.NaT, index=column.index, dtype=pd.DatetimeTZDtype("us", "UTC"))
    if aware.any():
        result[aware] = pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601")
    naive = ~aware & text.notna().to_numpy(dtype=bool)
    if naive.any() and timezone is None:
        return result, naive, "timestamp_has_timezone (set data.import.timezone)"
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        result[naive] = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return result, (result.isna() & text.notna()).to_numpy(dtype=bool), "parse_timestamp (ISO 8601)"


def check_snapshot(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The contract's structural, value and cross-table checks on frames that are not on disk yet."""
    checked, violations = {}, []
    for table, frame in frames.items():
        contract = CONTRACTS[table]
        try:
            arrow = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            violations.extend(_unconvertible(frame, contract, exc))
            continue
        conformed, problems = conform_table(arrow, contract)
        violations.extend(problems)
        if conformed is not None:
            as_frame = arrow_to_frame(conformed)
            values = check_values(as_frame, contract)
            violations.extend(values)
            if not values:
                checked[table] = as_frame
    if not violations and all(t in checked for t in REQUIRED_TABLES):
        violations.extend(check_relations(checked))
    if violations:
        raise ContractError([_with_hint(v) for v in violations])
    return checked


def _with_hint(violation: Violation) -> Violation:
    if violation.check != "column_present":
        return violation
    hint = f"column is missing: name it so, or map the client's column to it in data.import.columns.{violation.table}"
    return replace(violation, examples=(hint,))


def _unconvertible(frame: pd.DataFrame, contract: TableContract, exc: Exception) -> list[Violation]:
    """Name the column Arrow could not read (mixed types in one column, usually)."""
    found = []
    for name in frame.columns:
        try:
            pa.array(frame[name], from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError) as column_exc:
            found.append(
                Violation(contract.name, str(name), "dtype", 0, (f"mixed or unsupported values: {column_exc}",))
            )
    return found or [Violation(contract.name, None, "dtype", 0, (str(exc),))]


# ---------------------------------------------------------------- the contract, for people


def contract_markdown() -> str:
    """The tables and columns the pipeline needs, as Markdown (README-ready), generated from the contract."""
    lines = []
    for table in CLIENT_TABLES:
        contract = CONTRACTS[table]
        optional = "" if table in REQUIRED_TABLES else "optional; "
        lines += [
            f"**`{table}`** (`{table}.parquet` or `{table}.csv`; {optional}one row per {', '.join(contract.key)})",
            "",
            "| column | type | may be empty | rules |",
            "|---|---|---|---|",
        ]
        for spec in contract.fields:
            rules = [_rule_text(check) for check in spec.checks] + (["unique"] if spec.unique else [])
            rules += [_NOTES[spec.name]] if spec.name in _NOTES else []
            lines.append(
                f"| `{spec.name}` | {_type_text(spec.arrow_type)} | {'yes' if spec.nullable else 'no'} | "
                f"{'; '.join(rules) or '-'} |"
            )
        lines.append("")
    lines += [
        "Across tables: each `(job_id, freelancer_id)` applies once; every application's `job_id` and "
        "`freelancer_id` exist in `jobs` and `freelancers`; `applied_at` is not before the job's `posted_at` "
        "nor the freelancer's `signup_date`. `freelancer_history` rows belong to known freelancers, start no "
        "earlier than their `signup_date`, and `jobs_completed` never decreases over time. Other columns are ignored.",
        "",
        "The as-of rule: the features of an application read the freelancer's `jobs_completed`, `rating` and "
        "`success_rate` from the `freelancer_history` row with the latest `valid_from` strictly before "
        "`applied_at` (no row yet: no track record). Export one row per change (or periodic snapshots) with "
        "the time it took effect. Without `freelancer_history`, the `freelancers` table's current values are used "
        "for every application: later outcomes then leak into earlier rows and offline metrics are optimistic "
        "(`gigmatch data validate` warns).",
    ]
    return "\n".join(lines) + "\n"


_NOTES = {
    "outcome": "0 rejected, 1 shortlisted, 2 hired, 3 hired and rated five stars",
    "valid_from": "when these statistics took effect",
}


def _type_text(arrow_type: pa.DataType) -> str:
    if arrow_type == SKILL_LIST:
        return "list of skills (CSV: text split by `data.import.list_separator`)"
    if arrow_type == UTC_TIMESTAMP:
        return "timestamp (with an offset, or in `data.import.timezone`)"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "number"
    return "text"


def _rule_text(check: object) -> str:
    name = str(getattr(check, "name", check))
    stats = getattr(check, "statistics", None) or {}
    if name == "greater_than_or_equal_to":
        return f">= {stats['min_value']}"
    if name == "in_range":
        return f"{stats['min_value']} to {stats['max_value']}"
    if name == "isin":
        allowed = [str(v) for v in stats["allowed_values"]]
        return f"one of {', '.join(allowed)}" if len(allowed) <= 12 else f"one of {len(allowed)} values (taxonomy.py)"
    if name.startswith("list_length_between"):
        low, high = name[name.index("(") + 1 : -1].split(", ")
        return f"{low} to {high} items"
    return {
        "known_skills": "skill slugs from taxonomy.py",
        "no_repeated_items": "no repeats",
        "non_blank_text": "not blank",
    }.get(name, name)
