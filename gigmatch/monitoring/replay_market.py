"""The replayed marketplace's own records: what it posted and who applied, in the data contract's tables.

A real marketplace keeps its jobs and freelancers in its database; retraining joins the outcomes clients
report back to them (`gigmatch.data.feedback`). A replay plays the marketplace, so it writes its records
too (`gigmatch replay --market-dir`), built from what it sent:

- `jobs`: each request's job as sent, its client from the phase's marketplace, `posted_at` the moment
  the request left (kept strictly increasing in plan order, so two posts never share a moment);
- `freelancers`: each candidate as last sent, with the phase's sign-up date;
- `freelancer_history`: one row per candidate per request, holding the profile statistics the request
  carried from just before the job was posted (`posted_at` - 1 us), so that the as-of join of a
  retraining gives back exactly the features the model was served. Jobs completed may not go down in
  the contract; the phase's careers grow with time, but a request's applicants are drawn at various
  moments, so a later request can carry a smaller count: it is raised to the freelancer's previous one
  (the nearest value the contract allows);
- `simulator_truth`: the phase's true match probability of each application sent.

Only requests that left are recorded (answered or not: the marketplace posted them either way).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from gigmatch.data.contract import FREELANCER_HISTORY, FREELANCERS, JOBS, PROFILE_STATISTICS, SIMULATOR_TRUTH
from gigmatch.features.match_frame import FREELANCER_COLUMNS, JOB_COLUMNS
from gigmatch.monitoring.replay import ReplayPlan

_TICK = pd.Timedelta(microseconds=1)  # the contract's timestamps are in microseconds
_POST_GAP = 2 * _TICK  # between two posts: room for a profile row strictly between them


def market_tables(plan: ReplayPlan, sent_at: Mapping[int, datetime]) -> dict[str, pd.DataFrame]:
    """The marketplace's records of the requests that left (plan index -> when), in contract tables."""
    sent = [planned for planned in plan.requests if planned.index in sent_at]
    if not sent:
        return {}
    posted = _strictly_increasing(pd.Series([pd.Timestamp(sent_at[p.index]) for p in sent]))
    jobs = pd.DataFrame([p.payload["job"] for p in sent]).loc[:, list(JOB_COLUMNS)]
    jobs = jobs.assign(posted_at=posted.to_numpy()).merge(plan.market.jobs, on="job_id", how="left")

    candidates = pd.DataFrame(
        [
            {**candidate, "valid_from": moment - _TICK}
            for planned, moment in zip(sent, posted, strict=True)
            for candidate in planned.payload["candidates"]  # type: ignore[attr-defined]
        ]
    ).loc[:, [*FREELANCER_COLUMNS, "valid_from"]]
    history = candidates.loc[:, ["freelancer_id", "valid_from", *PROFILE_STATISTICS]].sort_values(
        ["freelancer_id", "valid_from"], kind="stable"
    )
    history["jobs_completed"] = history.groupby("freelancer_id")["jobs_completed"].cummax()
    history = history.drop_duplicates(["freelancer_id", "valid_from"], keep="last")

    freelancers = candidates.drop_duplicates("freelancer_id", keep="last").drop(columns="valid_from")
    freelancers = freelancers.merge(plan.market.freelancers, on="freelancer_id", how="left")
    first_seen = history.groupby("freelancer_id")["valid_from"].min()
    signup = pd.to_datetime(freelancers["signup_date"], utc=True)
    freelancers["signup_date"] = np.minimum(signup, freelancers["freelancer_id"].map(first_seen))
    freelancers["jobs_completed"] = freelancers["freelancer_id"].map(
        history.groupby("freelancer_id")["jobs_completed"].max()
    )

    sent_jobs = set(jobs["job_id"])
    truth = plan.market.truth[plan.market.truth["job_id"].isin(sent_jobs)]
    return {
        JOBS: jobs,
        FREELANCERS: freelancers.reset_index(drop=True),
        FREELANCER_HISTORY: history.reset_index(drop=True),
        SIMULATOR_TRUTH: truth.assign(true_match_probability=truth["true_match_probability"].round(6)),
    }


def _strictly_increasing(moments: pd.Series) -> pd.Series:
    """Each moment at least `_POST_GAP` after the one before it (times in plan order)."""
    values = pd.to_datetime(moments, utc=True).dt.floor("us").to_numpy(dtype="datetime64[us]").astype(np.int64)
    gap = _POST_GAP // _TICK
    steps = np.arange(len(values), dtype=np.int64) * gap
    fixed = np.maximum.accumulate(values - steps) + steps  # the running max, shifted back by the gaps
    return pd.Series(pd.to_datetime(fixed, unit="us", utc=True))
