"""The data contract: each rule broken on purpose gives exit 2 and a message that names it."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gigmatch.cli import ExitCode, main
from gigmatch.data.contract import table_file


def _edit(directory: Path, table: str, change: Callable[[pa.Table], pa.Table]) -> None:
    path = directory / table_file(table)
    pq.write_table(change(pq.read_table(path)), path)


def _set(table: pa.Table, column: str, row: int, value: object, type_: pa.DataType | None = None) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    i = table.column_names.index(column)
    return table.set_column(i, column, pa.array(values, type=type_ or table[column].type))


def _missing_column(t: pa.Table) -> pa.Table:
    return t.drop_columns(["hourly_rate_usd"])


def _wrong_dtype(t: pa.Table) -> pa.Table:
    i = t.column_names.index("budget_usd")
    return t.set_column(i, "budget_usd", pa.array([str(v) for v in t["budget_usd"].to_pylist()]))


def _nan_id(t: pa.Table) -> pa.Table:
    ids = t["freelancer_id"].to_numpy().astype(float)
    ids[3] = np.nan
    return t.set_column(0, "freelancer_id", pa.array(ids))


def _duplicate_id(t: pa.Table) -> pa.Table:
    return _set(t, "job_id", 1, t["job_id"][0].as_py())


def _orphan(t: pa.Table) -> pa.Table:
    return _set(t, "freelancer_id", 4, 99_999_999)


def _empty(t: pa.Table) -> pa.Table:
    return t.slice(0, 0)


def _applied_before_posting(t: pa.Table) -> pa.Table:
    return _set(t, "applied_at", 2, t["applied_at"][2].as_py().replace(year=2001))


def _duplicate_application(t: pa.Table) -> pa.Table:
    return _set(t, "freelancer_id", 1, t["freelancer_id"][0].as_py())


def _naive_timestamps(t: pa.Table) -> pa.Table:
    i = t.column_names.index("posted_at")
    return t.set_column(i, "posted_at", t["posted_at"].cast(pa.timestamp("us")))


def _unknown_skill(t: pa.Table) -> pa.Table:
    return _set(t, "skills", 0, [*t["skills"][0].as_py(), "time_travel"])


def _repeated_skill(t: pa.Table) -> pa.Table:
    skills = t["required_skills"][5].as_py()
    return _set(t, "required_skills", 5, [*skills, skills[0]])


# (table, change, column, check) — the column and check the message must name.
BROKEN = {
    "missing column": ("freelancers", _missing_column, "freelancers.hourly_rate_usd", "column_present"),
    "wrong dtype": ("jobs", _wrong_dtype, "jobs.budget_usd", "dtype"),
    "NaN id": ("freelancers", _nan_id, "freelancers.freelancer_id", "not_null"),
    "duplicate id": ("jobs", _duplicate_id, "jobs.job_id", "field_uniqueness"),
    "negative rate": (
        "freelancers",
        lambda t: _set(t, "hourly_rate_usd", 2, -5.0),
        "freelancers.hourly_rate_usd",
        "in_range(1.0, 1000.0)",
    ),
    "unknown skill": ("freelancers", _unknown_skill, "freelancers.skills", "known_skills"),
    "repeated skill": ("jobs", _repeated_skill, "jobs.required_skills", "no_repeated_items"),
    "orphan application": (
        "applications",
        _orphan,
        "applications.freelancer_id",
        "foreign_key(freelancers.freelancer_id)",
    ),
    "empty table": ("applications", _empty, "applications", "table_not_empty"),
    "out-of-range rating": (
        "freelancers",
        lambda t: _set(t, "rating", 0, 7.5),
        "freelancers.rating",
        "in_range(1.0, 5.0)",
    ),
    "unknown category": ("jobs", lambda t: _set(t, "category", 1, "astrology"), "jobs.category", "isin"),
    "blank text": (
        "freelancers",
        lambda t: _set(t, "profile_text", 6, "   "),
        "freelancers.profile_text",
        "non_blank_text",
    ),
    "applied before posting": (
        "applications",
        _applied_before_posting,
        "applications.applied_at",
        "applied_at >= jobs.posted_at",
    ),
    "duplicate application": (
        "applications",
        _duplicate_application,
        "applications.(job_id, freelancer_id)",
        "multiple_fields_uniqueness",
    ),
    "unknown outcome": ("applications", lambda t: _set(t, "outcome", 0, 7), "applications.outcome", "isin"),
    "naive timestamps": ("jobs", _naive_timestamps, "jobs.posted_at", "dtype"),
    "probability above one": (
        "simulator_truth",
        lambda t: _set(t, "true_match_probability", 0, 1.5),
        "simulator_truth.true_match_probability",
        "in_range(0.0, 1.0)",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_snapshot_exits_2_and_names_the_rule(
    case: str, small_snapshot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table, change, where, check = BROKEN[case]
    _edit(small_snapshot, table, change)
    report = small_snapshot.parent / "report.json"

    code = main(["data", "validate", str(small_snapshot), "--report", str(report)])

    err = capsys.readouterr().err
    assert code == ExitCode.CONTRACT_BROKEN
    assert f"{where}:" in err and check in err, err
    assert not report.exists(), "a failed validation must not write the report"


def test_broken_snapshot_names_offending_rows(small_snapshot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(small_snapshot, "freelancers", lambda t: _set(t, "hourly_rate_usd", 2, -5.0))
    assert main(["data", "validate", str(small_snapshot)]) == ExitCode.CONTRACT_BROKEN
    assert "row 2 (freelancer_id=3): -5.0" in capsys.readouterr().err


def test_unreadable_file(small_snapshot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small_snapshot / "jobs.parquet").write_bytes(b"this is not parquet")
    assert main(["data", "validate", str(small_snapshot)]) == ExitCode.CONTRACT_BROKEN
    err = capsys.readouterr().err
    assert "jobs: check 'readable_parquet' failed" in err and "jobs.parquet" in err


def test_missing_file(small_snapshot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small_snapshot / "freelancers.parquet").unlink()
    assert main(["data", "validate", str(small_snapshot)]) == ExitCode.CONTRACT_BROKEN
    assert "freelancers: check 'file_present' failed" in capsys.readouterr().err


def test_every_violation_is_reported_at_once(small_snapshot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(small_snapshot, "freelancers", lambda t: _set(_set(t, "rating", 0, 9.0), "hourly_rate_usd", 1, -1.0))
    _edit(small_snapshot, "jobs", lambda t: _set(t, "category", 0, "astrology"))
    assert main(["data", "validate", str(small_snapshot)]) == ExitCode.CONTRACT_BROKEN
    err = capsys.readouterr().err
    assert "3 violation(s)" in err


def test_valid_snapshot_exits_0_and_writes_report(small_snapshot: Path, tmp_path: Path) -> None:
    report = tmp_path / "reports" / "validation.json"
    assert main(["data", "validate", str(small_snapshot), "--report", str(report)]) == ExitCode.OK
    figures = json.loads(report.read_text())
    assert figures["jobs_rows"] == 120 and figures["freelancers_rows"] == 1500
    assert 10 <= figures["applicants_per_job_min"] <= figures["applicants_per_job_max"] <= 40


def test_integral_float_ids_are_accepted(small_snapshot: Path) -> None:
    """Ids that went through pandas as floats but are whole numbers still meet the contract."""
    _edit(small_snapshot, "jobs", lambda t: t.set_column(0, "job_id", t["job_id"].cast(pa.float64())))
    assert main(["data", "validate", str(small_snapshot)]) == ExitCode.OK


def test_console_script_exit_code(small_snapshot: Path) -> None:
    """The installed `gigmatch` command returns the documented code to the shell."""
    _edit(small_snapshot, "applications", _orphan)
    result = subprocess.run(
        [sys.executable, "-m", "gigmatch", "data", "validate", str(small_snapshot)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert (
        "applications.freelancer_id: check 'foreign_key(freelancers.freelancer_id)' failed for 1 row(s)"
        in result.stderr
    )


def test_the_time_order_checks_compare_instants_as_timestamps_do() -> None:
    """The relation checks compare numpy datetimes (`_instants`), not a `Timestamp` object per row: the same
    answers, across units and time zones, with a missing value never earlier than anything."""
    import pandas as pd

    from gigmatch.data.validation import _instants

    times = pd.Series(pd.to_datetime(["2025-03-30 00:30", "2025-03-30 01:30", None, "2025-01-01 00:00"], utc=True))
    sides = [times, times.dt.tz_convert("Europe/Berlin"), times.astype("datetime64[ns, UTC]"), times.dt.as_unit("s")]
    for left, right in itertools.product(sides, repeat=2):
        plain = np.array([a < b for a, b in itertools.product(left.to_numpy(), right.to_numpy())])
        fast = np.array([a < b for a, b in itertools.product(_instants(left), _instants(right))])
        np.testing.assert_array_equal(fast, plain)
        np.testing.assert_array_equal(_instants(left)[:, None] < _instants(right)[None, :], plain.reshape(4, 4))
