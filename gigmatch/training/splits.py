"""Time-based splits grouped by job: no job in two splits, the test split is the latest.

Profile statistics are read as of each application (the as-of rule in
`gigmatch.features.match_frame`), so splitting the jobs by posting time leaves
nothing from the future in the training rows. `split_snapshot` turns a snapshot into the three evaluation sets,
as training fits on them and monitoring rebuilds the champion's training rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gigmatch.data.contract import APPLICATIONS, FREELANCER_HISTORY, FREELANCERS, JOBS, SIMULATOR_TRUTH
from gigmatch.features.match_frame import build_match_frame
from gigmatch.params import SplitParams
from gigmatch.training.evaluation import EvaluationSet

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class JobSplit:
    train: np.ndarray  # job ids
    valid: np.ndarray
    test: np.ndarray

    def masks(self, job_id: np.ndarray) -> dict[str, np.ndarray]:
        """Boolean row masks for rows keyed by job id."""
        return {name: np.isin(job_id, getattr(self, name)) for name in SPLITS}

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLITS}


def split_jobs_by_time(jobs: pd.DataFrame, valid_fraction: float, test_fraction: float) -> JobSplit:
    """Earliest jobs train, the next validate, the latest test; ties broken by job id."""
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError("valid and test fractions must be in (0, 1) and leave jobs to train on")
    ordered = jobs.sort_values(["posted_at", "job_id"], kind="stable")["job_id"].to_numpy()
    n_test = max(1, round(len(ordered) * test_fraction))
    n_valid = max(1, round(len(ordered) * valid_fraction))
    n_train = len(ordered) - n_valid - n_test
    if n_train < 1:
        raise ValueError(f"{len(ordered)} jobs are too few to split")
    return JobSplit(ordered[:n_train], ordered[n_train : n_train + n_valid], ordered[n_train + n_valid :])


@dataclass(frozen=True)
class SplitSets:
    """The snapshot's applications as train, valid and test evaluation sets (rows sorted by job, freelancer)."""

    train: EvaluationSet
    valid: EvaluationSet
    test: EvaluationSet
    job_counts: dict[str, int]

    def by_name(self) -> dict[str, EvaluationSet]:
        return {name: getattr(self, name) for name in SPLITS}

    def outcomes_only(self) -> SplitSets:
        """The sets as a candidate's fit and figures read them: each split's job ids, outcomes and truth, not its
        match frame (what the Dask engine sends to the workers the candidates train on: at 1M applications
        8 bytes a row, against the match frame's 1,100)."""
        kept = {name: EvaluationSet(s.frame[["job_id"]], s.relevance, s.truth) for name, s in self.by_name().items()}
        return SplitSets(**kept, job_counts=self.job_counts)


def split_snapshot(frames: dict[str, pd.DataFrame], split: SplitParams) -> SplitSets:
    """Jobs split by posting time; rows sorted by (job, freelancer) so every fit sees them in one order."""
    applications = frames[APPLICATIONS].sort_values(["job_id", "freelancer_id"], kind="stable")
    jobs_split = split_jobs_by_time(frames[JOBS], split.valid_fraction, split.test_fraction)
    truth = None
    if SIMULATOR_TRUTH in frames:
        keyed = frames[SIMULATOR_TRUTH].set_index(["job_id", "freelancer_id"])["true_match_probability"]
        truth = keyed.reindex(pd.MultiIndex.from_frame(applications[["job_id", "freelancer_id"]])).to_numpy()
    match = build_match_frame(applications, frames[JOBS], frames[FREELANCERS], frames.get(FREELANCER_HISTORY))
    relevance = applications["outcome"].to_numpy(dtype=np.int64)
    sets = {}
    for name, mask in jobs_split.masks(match["job_id"].to_numpy()).items():
        rows = np.flatnonzero(mask)
        sets[name] = EvaluationSet(
            match.iloc[rows].reset_index(drop=True), relevance[rows], None if truth is None else truth[rows]
        )
    return SplitSets(**sets, job_counts=jobs_split.sizes())
