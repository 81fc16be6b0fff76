"""Splits by time, grouped by job: nothing leaks from the future or across splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gigmatch.data.snapshot import read_tables
from gigmatch.params import Params
from gigmatch.training.splits import split_jobs_by_time, split_snapshot


def test_no_job_in_two_splits_and_time_order(training_snapshot: Path) -> None:
    frames = read_tables(training_snapshot)
    jobs, apps = frames["jobs"], frames["applications"]
    split = split_jobs_by_time(jobs, 0.15, 0.15)

    train, valid, test = (set(split.train), set(split.valid), set(split.test))
    assert not train & valid and not train & test and not valid & test
    assert train | valid | test == set(jobs["job_id"])
    posted = jobs.set_index("job_id")["posted_at"]
    assert posted[list(train)].max() <= posted[list(valid)].min()
    assert posted[list(valid)].max() <= posted[list(test)].min()
    # Every application lands in exactly one split, with its whole job.
    masks = split.masks(apps["job_id"].to_numpy())
    assert (np.sum([m.astype(int) for m in masks.values()], axis=0) == 1).all()
    for mask in masks.values():
        in_split = set(apps.loc[mask, "job_id"])
        assert not in_split & set(apps.loc[~mask, "job_id"])
    assert split.sizes() == {"train": 280, "valid": 60, "test": 60}


def test_no_split_sees_a_record_from_after_its_applications(training_snapshot: Path, params: Params) -> None:
    """Each row's track record is the one in force before it applied (tests/test_point_in_time.py plants the future)."""
    frames = read_tables(training_snapshot)
    sets = split_snapshot(frames, params.split)
    history = frames["freelancer_history"]
    latest_change = history.groupby("freelancer_id")["valid_from"].max()
    train = sets.train.frame
    applied = frames["applications"].set_index(["job_id", "freelancer_id"])["applied_at"]
    when = applied.reindex(pd.MultiIndex.from_frame(train[["job_id", "freelancer_id"]])).to_numpy()
    changed_later = latest_change.reindex(train["freelancer_id"]).to_numpy() >= when
    current = frames["freelancers"].set_index("freelancer_id")["jobs_completed"].reindex(train["freelancer_id"])
    # Freelancers whose record changed after they applied are read with fewer jobs than they have now.
    assert changed_later.any()
    assert (train["jobs_completed"].to_numpy()[changed_later] < current.to_numpy()[changed_later]).all()


@pytest.mark.parametrize(("valid", "test"), [(0.0, 0.2), (0.5, 0.5), (0.2, 1.2)])
def test_bad_fractions_are_refused(training_snapshot: Path, valid: float, test: float) -> None:
    with pytest.raises(ValueError, match="fractions"):
        split_jobs_by_time(read_tables(training_snapshot)["jobs"], valid, test)
