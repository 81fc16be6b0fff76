"""Retraining data from what was learned in production: the pinned snapshot plus the matured outcomes.

Clients report what became of the candidates an answer ranked (/v1/outcomes); monitoring joins them to
the answers (`gigmatch.monitoring.live`). Those are applications the snapshot does not hold yet: a job
posted after it, its applicants, the outcome. To train on them they are joined back to the jobs and
freelancers they concern, which live in the marketplace's own records, not in the prediction log:

- **the marketplace's records** (`GIGMATCH_MARKET_DIR`): the contract's `jobs`, `freelancers`,
  `freelancer_history` and, for a simulated market, `simulator_truth` tables, as the marketplace exports
  them; one folder per export, never rewritten (`write_market`), all of them read together
  (`read_market`, a later folder's row winning for the same key). `gigmatch replay --market-dir` writes
  the replayed marketplace's.
- **the new data version** (`grow_snapshot`): the snapshot's tables, plus every matured answer's
  candidates as applications (the outcome reported, or rejected when none was: the rule live quality
  uses; `applied_at` the job's posting time in the records, when its applicants were sent to be
  ranked), with their jobs and freelancers from the records. A job the snapshot already holds is not
  taken again (its applications are the snapshot's); an answer whose job or freelancer the records
  lack is left out and counted. The simulator's truth table is kept only when the records give it for
  every new application (else the new version has none: the oracle is then not reported). The result
  is checked against the whole contract before it is written (`gigmatch.data.snapshot.write_snapshot`).

A caveat the numbers inherit: a client reports mostly what it looked at, near the top of the ranking
served, so an unreported candidate is a rejection only as far as the client looked (position bias).
The drift gate's ranking rule reads the same outcomes the same way.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gigmatch.data.contract import (
    APPLICATIONS,
    CONTRACTS,
    FREELANCER_HISTORY,
    FREELANCERS,
    JOBS,
    SIMULATOR_TRUTH,
    table_file,
)
from gigmatch.data.pinning import directory_md5, run_dvc
from gigmatch.data.snapshot import read_tables, write_snapshot, write_table
from gigmatch.errors import ExitCode, GigmatchError
from gigmatch.files import staged_directory

MARKET_TABLES = (JOBS, FREELANCERS, FREELANCER_HISTORY, SIMULATOR_TRUTH)
MATURED_COLUMNS = ("job_id", "freelancer_id", "outcome")


@dataclass(frozen=True)
class GrownSnapshot:
    frames: dict[str, pd.DataFrame]
    added: dict[str, int]  # rows added per table
    left_out: dict[str, int] = field(default_factory=dict)  # matured rows not taken, by reason
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        added = ", ".join(f"{n:,} {table}" for table, n in self.added.items() if n)
        left = "; ".join(f"{n:,} {reason}" for reason, n in self.left_out.items() if n)
        return (added or "nothing new") + (f" (left out: {left})" if left else "")


class DataVersionError(GigmatchError, RuntimeError):
    """The grown snapshot could not be put under DVC; the pinned data is back in place."""

    exit_code = ExitCode.ERROR


@dataclass(frozen=True)
class DataVersion:
    """A data version made by `commit_data_version`: its DVC md5, the one it grew from, and what it added."""

    md5: str
    parent_md5: str
    added: dict[str, int]
    left_out: dict[str, int]

    def tags(self) -> dict[str, str]:
        """For the training run: where its data came from (its own md5 is the lineage's `data_md5`)."""
        return {
            "data_origin": "snapshot + matured outcomes",
            "data_parent_md5": self.parent_md5,
            "data_added_applications": str(self.added.get(APPLICATIONS, 0)),
        }


def write_market(directory: Path, tables: Mapping[str, pd.DataFrame], name: str) -> Path:
    """One export of the marketplace's records, as `directory/name/` (atomically, never over an existing one)."""
    target = Path(directory) / name
    if target.exists():
        raise FileExistsError(f"{target} exists: a marketplace export is written once")
    with staged_directory(target) as staging:
        for table, frame in tables.items():
            write_table(frame, table, staging / table_file(table))
        read_tables(staging, tuple(tables))  # each table against its contract, before it is in place
    return target


def read_market(directory: Path) -> dict[str, pd.DataFrame]:
    """Every export under `directory`, in name order, each table checked; the last row per key wins."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for export in sorted(p for p in Path(directory).iterdir() if p.is_dir() and not p.name.startswith(".")):
        present = tuple(t for t in MARKET_TABLES if (export / table_file(t)).exists())
        for table, frame in read_tables(export, present).items():
            parts.setdefault(table, []).append(frame)
    return {
        table: pd.concat(frames, ignore_index=True)
        .drop_duplicates(list(CONTRACTS[table].key), keep="last")
        .reset_index(drop=True)
        for table, frames in parts.items()
    }


def grow_snapshot(
    snapshot: Mapping[str, pd.DataFrame], market: Mapping[str, pd.DataFrame], matured: pd.DataFrame
) -> GrownSnapshot:
    """The snapshot plus the matured answers (`MATURED_COLUMNS`) not in it yet, joined to the market's records."""
    jobs, freelancers = snapshot[JOBS], snapshot[FREELANCERS]
    rows = matured.loc[:, list(MATURED_COLUMNS)].drop_duplicates(["job_id", "freelancer_id"], keep="first")
    left_out: dict[str, int] = {}
    known_job = rows["job_id"].isin(jobs["job_id"])
    left_out["answers for jobs the snapshot already holds"] = int(known_job.sum())
    rows = rows[~known_job]

    market_jobs = market.get(JOBS, jobs.iloc[:0])
    market_freelancers = market.get(FREELANCERS, freelancers.iloc[:0])
    recorded = rows["job_id"].isin(market_jobs["job_id"]) & (
        rows["freelancer_id"].isin(market_freelancers["freelancer_id"])
        | rows["freelancer_id"].isin(freelancers["freelancer_id"])
    )
    left_out["answers whose job or freelancer the marketplace's records lack"] = int((~recorded).sum())
    rows = rows[recorded]

    new_jobs = market_jobs[market_jobs["job_id"].isin(rows["job_id"])]
    new_freelancers = market_freelancers[
        market_freelancers["freelancer_id"].isin(rows["freelancer_id"])
        & ~market_freelancers["freelancer_id"].isin(freelancers["freelancer_id"])
    ]
    posted = new_jobs.loc[:, ["job_id", "posted_at"]].rename(columns={"posted_at": "applied_at"})
    applications = rows.merge(posted, on="job_id", how="left").assign(outcome=lambda f: f["outcome"].astype(np.int8))
    frames = {
        JOBS: _append(jobs, new_jobs, JOBS),
        FREELANCERS: _append(freelancers, new_freelancers, FREELANCERS),
        APPLICATIONS: _append(snapshot[APPLICATIONS], applications, APPLICATIONS),
    }
    added = {JOBS: len(new_jobs), FREELANCERS: len(new_freelancers), APPLICATIONS: len(applications)}
    notes: list[str] = []
    history = market.get(FREELANCER_HISTORY)
    concerned = None if history is None else history[history["freelancer_id"].isin(rows["freelancer_id"])]
    if FREELANCER_HISTORY in snapshot:
        base = snapshot[FREELANCER_HISTORY]
        frames[FREELANCER_HISTORY] = _append(base, concerned, FREELANCER_HISTORY)
        added[FREELANCER_HISTORY] = len(frames[FREELANCER_HISTORY]) - len(base)
    elif concerned is not None and len(concerned):
        notes.append("the snapshot has no freelancer_history: the records' profile history is not taken either")
    if SIMULATOR_TRUTH in snapshot:
        truth = _truth_for(applications, market.get(SIMULATOR_TRUTH))
        if truth is None:
            notes.append("the marketplace's records lack the simulator's truth of some new applications: none kept")
        else:
            frames[SIMULATOR_TRUTH] = _append(snapshot[SIMULATOR_TRUTH], truth, SIMULATOR_TRUTH)
            added[SIMULATOR_TRUTH] = len(truth)
    return GrownSnapshot(frames, added, left_out, tuple(notes))


def _append(base: pd.DataFrame, extra: pd.DataFrame | None, table: str) -> pd.DataFrame:
    columns = list(CONTRACTS[table].columns)
    if extra is None or not len(extra):
        return base.loc[:, columns]
    grown = pd.concat([base.loc[:, columns], extra.loc[:, columns]], ignore_index=True)
    return grown.drop_duplicates(list(CONTRACTS[table].key), keep="first").reset_index(drop=True)


def _truth_for(applications: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame | None:
    if not len(applications):
        return applications.iloc[:0].loc[:, ["job_id", "freelancer_id"]].assign(true_match_probability=0.0)
    if truth is None:
        return None
    found = applications.loc[:, ["job_id", "freelancer_id"]].merge(truth, on=["job_id", "freelancer_id"], how="left")
    return None if found["true_match_probability"].isna().any() else found


def commit_data_version(grown: GrownSnapshot, data_dir: Path, repo: Path) -> DataVersion:
    """Put the grown snapshot in `data_dir` and `dvc add` it (its pin file, e.g. data.dvc, then names it).

    Checked against the contract before anything moves; the pinned data is moved aside, not deleted,
    until DVC has taken the new version, and put back if it does not (DataVersionError).
    """
    data_dir = Path(data_dir)
    parent = directory_md5(data_dir)
    staging, previous = data_dir.with_name(f".{data_dir.name}.next"), data_dir.with_name(f".{data_dir.name}.previous")
    for leftover in (staging, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    write_snapshot(grown.frames, staging)
    os.replace(data_dir, previous)
    os.replace(staging, data_dir)
    result = run_dvc(["add", os.path.relpath(data_dir, repo)], repo)
    if result.returncode != 0:
        shutil.rmtree(data_dir)
        os.replace(previous, data_dir)
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no message"]
        raise DataVersionError(f"dvc add {data_dir} failed ({detail[0]}): the pinned data is back in place")
    shutil.rmtree(previous)
    return DataVersion(directory_md5(data_dir), parent, dict(grown.added), dict(grown.left_out))
