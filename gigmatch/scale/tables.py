"""A snapshot's big tables read on the workers: a file's row groups in stretches, each a task of its own.

A stretch knows its first row number in the table, so its rows keep their numbers
(the `table_row` column) through a shuffle by job: the contract's findings name the
rows the whole table's check names, and a partition can be put back in table order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gigmatch.data.contract import CONTRACTS, table_file
from gigmatch.data.validation import Violation, conform_table, to_frame

ROW = "table_row"  # a row's number in its table


@dataclass(frozen=True)
class Stretch:
    """Row groups of one file, read by one task: the file's rows from `first_row` on."""

    path: Path
    table: str
    row_groups: tuple[int, ...]
    first_row: int
    rows: int


def table_stretches(directory: Path, table: str, partition_rows: int) -> list[Stretch]:
    """The table's row groups in stretches of about `partition_rows` rows (a row group is never split).

    Reads the file's footer only; a file that cannot be opened raises what Arrow raises.
    """
    path = Path(directory) / table_file(table)
    metadata = pq.ParquetFile(path).metadata
    found, groups, first, rows = [], [], 0, 0
    for group in range(metadata.num_row_groups):
        groups.append(group)
        rows += metadata.row_group(group).num_rows
        if rows >= partition_rows or group == metadata.num_row_groups - 1:
            found.append(Stretch(path, table, tuple(groups), first, rows))
            groups, first, rows = [], first + rows, 0
    return found or [Stretch(path, table, (), 0, 0)]


def read_stretch(stretch: Stretch) -> pa.Table:
    file = pq.ParquetFile(stretch.path)
    return file.read_row_groups(list(stretch.row_groups)) if stretch.row_groups else file.schema_arrow.empty_table()


def read_numbered(stretch: Stretch) -> tuple[pd.DataFrame | None, list[Violation]]:
    """A stretch's rows as the contract's frame with each row's number in the table (ROW), or None and what breaks
    the contract's structure (columns, types, nulls) there; a file that cannot be read, as Arrow words it."""
    try:
        raw = read_stretch(stretch)
    except (pa.ArrowException, OSError) as exc:
        return None, [Violation(stretch.table, None, "readable_parquet", 0, (f"{stretch.path}: {exc}",))]
    conformed, problems = conform_table(raw, CONTRACTS[stretch.table], stretch.first_row)
    if conformed is None:
        return None, problems
    frame = to_frame(conformed)
    return frame.assign(**{ROW: pd.RangeIndex(stretch.first_row, stretch.first_row + len(frame))}), problems


def frame_meta(table: str) -> pd.DataFrame:
    """The empty frame a table's numbered stretches have the columns and types of (Dask's `meta`)."""
    empty = pa.Table.from_pylist([], schema=CONTRACTS[table].arrow_schema)
    return to_frame(empty).assign(**{ROW: pd.Series(dtype="int64")})


def by_row_number(part: pd.DataFrame) -> pd.DataFrame:
    """A partition's rows in table order, indexed by their row numbers (a shuffle by job reorders them)."""
    frame = part.set_index(ROW).sort_index()
    frame.index.name = None
    return frame
