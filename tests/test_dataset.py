"""Snapshots are written atomically: bad data never replaces good data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gigmatch.data.simulator import generate_marketplace
from gigmatch.data.snapshot import read_tables, write_snapshot
from gigmatch.data.validation import ContractError
from gigmatch.params import SimulateParams


def _fingerprint(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_invalid_frames_leave_the_old_snapshot_untouched(small_snapshot: Path, small_simulate: SimulateParams) -> None:
    before = _fingerprint(small_snapshot)
    market = generate_marketplace(small_simulate)
    broken = market.freelancers.assign(hourly_rate_usd=-1.0)
    frames = {"freelancers": broken, "jobs": market.jobs, "applications": market.applications}

    with pytest.raises(ContractError, match="hourly_rate_usd"):
        write_snapshot(frames, small_snapshot)

    assert _fingerprint(small_snapshot) == before
    assert [p.name for p in small_snapshot.parent.iterdir()] == ["data"], "staging directory left behind"


def test_crash_while_writing_leaves_the_old_snapshot(
    small_snapshot: Path, small_simulate: SimulateParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _fingerprint(small_snapshot)
    market = generate_marketplace(small_simulate)

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gigmatch.data.snapshot.pq.write_table", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_snapshot({"freelancers": market.freelancers, "jobs": market.jobs}, small_snapshot)
    assert _fingerprint(small_snapshot) == before


def test_valid_frames_replace_the_snapshot(small_snapshot: Path, small_simulate: SimulateParams) -> None:
    market = generate_marketplace(small_simulate.model_copy(update={"seed": small_simulate.seed + 5}))
    frames = {"freelancers": market.freelancers, "jobs": market.jobs, "applications": market.applications}
    write_snapshot(frames, small_snapshot)
    assert sorted(p.name for p in small_snapshot.iterdir()) == [
        "applications.parquet",
        "freelancers.parquet",
        "jobs.parquet",
    ]
    assert len(read_tables(small_snapshot)["applications"]) == len(market.applications)


def test_atomic_text_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """Reports are shared files: not the 0600 a temporary file is created with."""
    import os

    from gigmatch.files import atomic_write_text

    target = tmp_path / "report.json"
    atomic_write_text(target, "{}\n")
    plain = tmp_path / "plain.json"
    plain.write_text("{}\n")
    assert target.read_text() == "{}\n"
    assert os.stat(target).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
