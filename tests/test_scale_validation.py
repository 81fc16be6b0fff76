"""The data contract on Dask: the same findings as in-process, word for word, for data broken in every layer.

Each broken snapshot is the training snapshot with its applications (and truth) spread
over row groups of 1,500 rows and checked in partitions of about 1,000, so that a
finding's rows fall in several stretches and partitions and must be merged: the counts
added up, the first five examples by row number, as the whole table gives them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devtools.dask_harness import loopback_cluster
from gigmatch.cli import ExitCode, main
from gigmatch.data.contract import APPLICATIONS, FREELANCER_HISTORY, SIMULATOR_TRUTH, table_file
from gigmatch.data.snapshot import read_tables, summary_metrics
from gigmatch.data.validation import ContractError
from gigmatch.scale.validation import validate_snapshot_on_dask
from tests.conftest import params_with_engine, recut_snapshot

PARTITION_ROWS = 1000
ROW_GROUP_ROWS = 1500


def _table(snapshot: Path, table: str) -> pd.DataFrame:
    return pq.read_table(snapshot / table_file(table)).to_pandas()


def _write(frame: pd.DataFrame, snapshot: Path, table: str) -> None:
    """In row groups of ROW_GROUP_ROWS, as a big export is written; the values' types as they are."""
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), snapshot / table_file(table),
                   row_group_size=ROW_GROUP_ROWS)  # fmt: skip


def _broken_copy(training_snapshot: Path, tmp_path: Path, breaks: Callable[[Path], None]) -> Path:
    snapshot = recut_snapshot(training_snapshot, tmp_path / "data", ROW_GROUP_ROWS)
    breaks(snapshot)
    return snapshot


def _findings(check: Callable[[], object]) -> str:
    with pytest.raises(ContractError) as caught:
        check()
    return str(caught.value)


def test_a_valid_snapshot_gives_the_in_process_figures(
    local_dask_cluster: None, training_snapshot: Path, tmp_path: Path
) -> None:
    snapshot = _broken_copy(training_snapshot, tmp_path, lambda _: None)  # nothing broken: only re-cut
    assert pq.ParquetFile(snapshot / table_file(APPLICATIONS)).metadata.num_row_groups >= 6
    validated = validate_snapshot_on_dask(snapshot, PARTITION_ROWS)
    in_process = read_tables(snapshot)
    assert validated.metrics == summary_metrics(in_process)
    assert set(validated.frames) == {"freelancers", "jobs", FREELANCER_HISTORY}
    pd.testing.assert_frame_equal(validated.frames["jobs"], in_process["jobs"])


def _values_broken(snapshot: Path) -> None:
    apps = _table(snapshot, APPLICATIONS)
    apps.loc[[5, 900, 3000, 5000, 7000, 8000, 9000], "outcome"] = 7  # in six stretches: the first five shown
    apps = pd.concat([apps, apps.iloc[[100, 4000]]], ignore_index=True)  # twins far apart: partitions by job meet them
    _write(apps, snapshot, APPLICATIONS)
    truth = _table(snapshot, SIMULATOR_TRUTH)
    truth.loc[[2, 6500], "true_match_probability"] = 1.5
    _write(truth, snapshot, SIMULATOR_TRUTH)


def _structure_broken(snapshot: Path) -> None:
    apps = _table(snapshot, APPLICATIONS)
    apps["outcome"] = apps["outcome"].astype("float64")
    apps.loc[[17, 4100, 8888], "outcome"] = np.nan  # nulls in three stretches
    _write(apps, snapshot, APPLICATIONS)
    jobs = _table(snapshot, "jobs")
    jobs.loc[3, "budget_usd"] = -5.0  # a small table's value, checked in this process: reported beside them
    pq.write_table(pa.Table.from_pandas(jobs, preserve_index=False), snapshot / table_file("jobs"))


def _relations_broken(snapshot: Path) -> None:
    apps = _table(snapshot, APPLICATIONS)
    apps.loc[[40, 6000], "freelancer_id"] = 999_999  # nobody's
    apps.loc[[300, 3300, 9300], "applied_at"] = pd.Timestamp("2020-01-01", tz="UTC")  # before any posting
    _write(apps, snapshot, APPLICATIONS)
    truth = _table(snapshot, SIMULATOR_TRUTH)
    stray = truth.iloc[[0]].assign(job_id=10**9)  # a job outside every partition's range: the last one gets it
    truth = pd.concat([truth.drop(index=[500, 7000]), stray], ignore_index=True)
    _write(truth, snapshot, SIMULATOR_TRUTH)
    history = _table(snapshot, FREELANCER_HISTORY)
    history.loc[0, "freelancer_id"] = 888_888
    pq.write_table(pa.Table.from_pandas(history, preserve_index=False), snapshot / table_file(FREELANCER_HISTORY))


def _no_applications(snapshot: Path) -> None:
    (snapshot / table_file(APPLICATIONS)).unlink()


def _unreadable_truth(snapshot: Path) -> None:
    (snapshot / table_file(SIMULATOR_TRUTH)).write_bytes(b"not parquet: an interrupted copy")


def _empty_applications(snapshot: Path) -> None:
    _write(_table(snapshot, APPLICATIONS).iloc[:0], snapshot, APPLICATIONS)


@pytest.mark.parametrize(
    "breaks",
    [_values_broken, _structure_broken, _relations_broken, _no_applications, _unreadable_truth, _empty_applications],
)
def test_broken_data_gets_the_in_process_findings_word_for_word(
    local_dask_cluster: None, training_snapshot: Path, tmp_path: Path, breaks: Callable[[Path], None]
) -> None:
    snapshot = _broken_copy(training_snapshot, tmp_path, breaks)
    in_process = _findings(lambda: read_tables(snapshot))
    on_dask = _findings(lambda: validate_snapshot_on_dask(snapshot, PARTITION_ROWS))
    assert on_dask == in_process
    assert any(words in in_process for words in ("row", "not found", "no rows", "magic bytes"))


def test_validate_on_a_loopback_cluster_exits_as_in_process(
    training_snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _broken_copy(training_snapshot, tmp_path / "good", lambda _: None)
    bad = _broken_copy(training_snapshot, tmp_path / "bad", _values_broken)
    in_process_report = tmp_path / "in-process.json"
    assert main(["data", "validate", str(good), "--report", str(in_process_report)]) == 0
    params = params_with_engine(tmp_path, kind="dask", partition_rows=PARTITION_ROWS)
    with loopback_cluster(tmp_path / "cluster", workers=2) as running:
        monkeypatch.setenv("GIGMATCH_DASK_ADDRESS", running.address)
        report = tmp_path / "reports" / "validation.json"
        capsys.readouterr()
        assert main(["data", "validate", str(good), "--report", str(report), "--params", str(params)]) == 0
        assert f"engine: dask at {running.address}: 2 workers" in capsys.readouterr().err
        assert json.loads(report.read_text()) == json.loads(in_process_report.read_text())
        report.unlink()
        assert main(["data", "validate", str(bad), "--report", str(report), "--params", str(params)]) == (
            ExitCode.CONTRACT_BROKEN
        )
        refused = capsys.readouterr().err
        assert "applications.outcome: check 'isin((0, 1, 2, 3))' failed for 7 row(s)" in refused
        assert not report.exists()  # nothing written for broken data
    assert all(p.poll() is not None for p in [running.scheduler, *running.workers])  # stopped by their PIDs
