"""Splits by time, grouped by job: nothing leaks from the future or across splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gigmatch.data.snapshot import read_tables
from gigmatch.training.splits import split_jobs_by_time


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


def test_freelancer_profiles_predate_every_split(training_snapshot: Path) -> None:
    """Profile stats are frozen at the history start, so the earliest split sees nothing later."""
    frames = read_tables(training_snapshot)
    first_posting = frames["jobs"]["posted_at"].min()
    with_record = frames["freelancers"]["jobs_completed"] > 0
    assert (frames["freelancers"].loc[with_record, "signup_date"] < first_posting).all()


@pytest.mark.parametrize(("valid", "test"), [(0.0, 0.2), (0.5, 0.5), (0.2, 1.2)])
def test_bad_fractions_are_refused(training_snapshot: Path, valid: float, test: float) -> None:
    with pytest.raises(ValueError, match="fractions"):
        split_jobs_by_time(read_tables(training_snapshot)["jobs"], valid, test)
