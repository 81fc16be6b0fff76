"""Retraining data from production: the replayed marketplace's records, the snapshot grown by the matured
outcomes joined back to them (exactly the features that were served), and the new version put under real DVC,
with the pinned data back in place when DVC refuses it."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gigmatch.data.contract import APPLICATIONS, FREELANCER_HISTORY, FREELANCERS, JOBS, SIMULATOR_TRUTH
from gigmatch.data.feedback import (
    DataVersionError,
    GrownSnapshot,
    commit_data_version,
    grow_snapshot,
    read_market,
    write_market,
)
from gigmatch.data.pinning import directory_md5
from gigmatch.data.snapshot import read_tables, write_snapshot
from gigmatch.features.match_frame import FLOAT_COLUMNS, MATCH_COLUMNS, SKILL_LIST_COLUMNS, build_match_frame
from gigmatch.monitoring.replay import ReplayPlan, ReplaySpec, plan_replay
from gigmatch.monitoring.replay_market import market_tables
from gigmatch.params import Params


@pytest.fixture(scope="module")
def plan(params: Params) -> ReplayPlan:
    window = 1.0 - params.split.valid_fraction - params.split.test_fraction
    return plan_replay(
        params.simulate, ReplaySpec(5, 60, jobs_per_day=20, scenario="concept", drift_from_day=1), window
    )


def _sent(plan: ReplayPlan, every: dt.timedelta = dt.timedelta(milliseconds=5)) -> dict[int, dt.datetime]:
    start = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    # Two requests stamped at the same moment: the records still post them one after the other.
    return {p.index: start + every * (p.index // 2 * 2) for p in plan.requests}


def _matured(plan: ReplayPlan) -> pd.DataFrame:
    rows = [(p.job_id, f, p.true_outcome[f]) for p in plan.requests for f in p.candidate_ids]
    return pd.DataFrame(rows, columns=["job_id", "freelancer_id", "outcome"])


def test_the_snapshot_grown_by_matured_outcomes_gives_back_exactly_the_features_served(
    plan: ReplayPlan, small_snapshot: Path, tmp_path: Path
) -> None:
    tables = market_tables(plan, _sent(plan))
    posted = tables[JOBS]["posted_at"]
    assert posted.is_monotonic_increasing and posted.is_unique
    write_market(tmp_path / "market", tables, "replay-1")
    snapshot = read_tables(small_snapshot)
    known_job = snapshot[APPLICATIONS].head(3).loc[:, ["job_id", "freelancer_id", "outcome"]]
    unknown_job = pd.DataFrame({"job_id": [10**12, 10**12], "freelancer_id": [1, 2], "outcome": [2, 0]})
    matured = pd.concat([_matured(plan), known_job, unknown_job], ignore_index=True)

    grown = grow_snapshot(snapshot, read_market(tmp_path / "market"), matured)

    sent_rows = sum(len(p.candidate_ids) for p in plan.requests)
    assert grown.added[APPLICATIONS] == sent_rows and grown.added[JOBS] == len(plan.requests)
    assert grown.added[SIMULATOR_TRUTH] == sent_rows and grown.added[FREELANCER_HISTORY] > 0
    assert grown.left_out == {
        "answers for jobs the snapshot already holds": 3,
        "answers whose job or freelancer the marketplace's records lack": 2,
    }
    frames = write_snapshot(grown.frames, tmp_path / "grown")  # the whole contract, relations included
    assert len(frames[APPLICATIONS]) == len(snapshot[APPLICATIONS]) + sent_rows
    old = snapshot[APPLICATIONS]
    assert frames[APPLICATIONS].head(len(old)).equals(old)  # the snapshot's rows, untouched

    new = frames[APPLICATIONS].iloc[len(old) :]
    rebuilt = build_match_frame(new, frames[JOBS], frames[FREELANCERS], frames[FREELANCER_HISTORY])
    served = pd.DataFrame(
        [{**c, **p.payload["job"]} for p in plan.requests for c in p.payload["candidates"]]  # type: ignore[dict-item]
    )
    both = rebuilt.merge(served, on=["job_id", "freelancer_id"], suffixes=("", "_served"))
    assert len(both) == sent_rows
    for column in (c for c in MATCH_COLUMNS if c not in ("job_id", "freelancer_id")):
        ours, theirs = both[column], both[f"{column}_served"]
        if column in SKILL_LIST_COLUMNS:
            theirs = theirs.map(" ".join)
        if column in FLOAT_COLUMNS:
            a, b = ours.to_numpy(float), pd.to_numeric(theirs).to_numpy(float)
            assert np.array_equal(a, b, equal_nan=True), column
        else:
            assert (ours.astype(str) == theirs.astype(str)).all(), column
    outcomes = new.merge(_matured(plan), on=["job_id", "freelancer_id"], suffixes=("", "_reported"))
    assert (outcomes["outcome"] == outcomes["outcome_reported"]).all()


def test_nothing_new_adds_nothing_and_a_market_export_is_never_rewritten(
    plan: ReplayPlan, small_snapshot: Path, tmp_path: Path
) -> None:
    tables = market_tables(plan, _sent(plan))
    write_market(tmp_path / "market", tables, "replay-1")
    with pytest.raises(FileExistsError):
        write_market(tmp_path / "market", tables, "replay-1")
    # A later export wins for the same key (a profile that changed since).
    later = {FREELANCERS: tables[FREELANCERS].assign(weekly_availability_hours=5)}
    write_market(tmp_path / "market", later, "replay-2")
    assert (read_market(tmp_path / "market")[FREELANCERS]["weekly_availability_hours"] == 5).all()

    snapshot = read_tables(small_snapshot)
    grown = grow_snapshot(snapshot, read_market(tmp_path / "market"), _matured(plan).iloc[:0])
    assert grown.added[APPLICATIONS] == 0 and grown.summary().startswith("nothing new")


def test_a_market_without_the_truth_drops_the_truth_table_and_says_so(
    plan: ReplayPlan, small_snapshot: Path, tmp_path: Path
) -> None:
    tables = market_tables(plan, _sent(plan))
    tables.pop(SIMULATOR_TRUTH)
    write_market(tmp_path / "market", tables, "client-export")
    grown = grow_snapshot(read_tables(small_snapshot), read_market(tmp_path / "market"), _matured(plan))
    assert SIMULATOR_TRUTH not in grown.frames and grown.notes
    write_snapshot(grown.frames, tmp_path / "grown")


def _dvc(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=True, capture_output=True)


def _grown(plan: ReplayPlan, data: Path, tmp_path: Path) -> GrownSnapshot:
    write_market(tmp_path / "market", market_tables(plan, _sent(plan)), "replay-1")
    return grow_snapshot(read_tables(data), read_market(tmp_path / "market"), _matured(plan))


@pytest.mark.slow
def test_the_grown_snapshot_becomes_a_new_dvc_version_and_the_pinned_one_stays_in_the_cache(
    plan: ReplayPlan, small_snapshot_master: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc("init", "-q", cwd=repo)
    shutil.copytree(small_snapshot_master, repo / "data")
    _dvc("add", "data", cwd=repo)
    parent = directory_md5(repo / "data")

    version = commit_data_version(_grown(plan, repo / "data", tmp_path), repo / "data", repo)

    pinned = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"]
    assert version.parent_md5 == parent and version.md5 == pinned == directory_md5(repo / "data") != parent
    assert version.tags()["data_parent_md5"] == parent
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    assert (cache / parent[:2] / parent[2:]).exists()  # the version it grew from can be checked out again
    assert sorted(p.name for p in repo.iterdir() if p.name.startswith(".data")) == []


def test_when_dvc_refuses_the_new_version_the_pinned_data_is_back_in_place(
    plan: ReplayPlan, small_snapshot: Path, tmp_path: Path
) -> None:
    before = directory_md5(small_snapshot)
    grown = _grown(plan, small_snapshot, tmp_path)
    with pytest.raises(DataVersionError, match="the pinned data is back in place"):
        commit_data_version(grown, small_snapshot, small_snapshot.parent)  # not a DVC repository
    assert directory_md5(small_snapshot) == before
    assert not [p for p in small_snapshot.parent.iterdir() if p.name.startswith(".data")]
