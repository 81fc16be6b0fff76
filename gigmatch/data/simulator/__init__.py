"""A deterministic gig-marketplace simulator.

`generate_marketplace(params)` draws freelancers, job posts, applications and
their graded outcomes from the seed in `params.yaml`. Each part draws from its
own child of one seed sequence, so changing how one table is drawn does not
reshuffle the others. Profiles evolve as hires complete
(`gigmatch.data.simulator.careers`): `freelancer_history` records every change,
and `freelancers` holds each profile as it stands when the snapshot is taken,
`MAX_DELAY_DAYS` after the last posting (the last applications are in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gigmatch.data.contract import APPLICATIONS, FREELANCER_HISTORY, FREELANCERS, JOBS, SIMULATOR_TRUTH
from gigmatch.data.simulator.applications import MAX_DELAY_DAYS, sample_applicants
from gigmatch.data.simulator.careers import current_profiles, profile_history, to_seconds
from gigmatch.data.simulator.freelancers import simulate_freelancers
from gigmatch.data.simulator.jobs import simulate_jobs
from gigmatch.data.simulator.outcomes import simulate_outcomes
from gigmatch.data.simulator.sampling import Timeline
from gigmatch.data.snapshot import write_snapshot
from gigmatch.params import SimulateParams

STEPS = ("freelancers", "jobs", "applicants", "outcomes")
SNAPSHOT_STEPS = (*STEPS, "written")


@dataclass(frozen=True)
class Marketplace:
    freelancers: pd.DataFrame  # profiles as they stand at the snapshot
    jobs: pd.DataFrame
    applications: pd.DataFrame
    freelancer_history: pd.DataFrame  # every profile's statistics from each change on
    # Ground truth for oracle figures only: no feature may read it.
    simulator_truth: pd.DataFrame


def generate_marketplace(params: SimulateParams, on_step: Callable[[str], None] | None = None) -> Marketplace:
    step = on_step or (lambda _name: None)
    timeline = Timeline.from_params(params.history_start, params.history_months)
    rng_freelancers, rng_jobs, rng_applicants, rng_outcomes = (
        np.random.default_rng(s) for s in np.random.SeedSequence(params.seed).spawn(4)
    )
    freelancers = simulate_freelancers(rng_freelancers, params, timeline)
    step("freelancers")
    jobs = simulate_jobs(rng_jobs, params, timeline)
    step("jobs")
    applicants = sample_applicants(rng_applicants, params, jobs, freelancers)
    step("applicants")
    outcomes = simulate_outcomes(rng_outcomes, params.utility, jobs, freelancers, applicants)
    step("outcomes")

    job_id = jobs.table["job_id"].to_numpy()[applicants.job_idx]
    freelancer_id = freelancers.table["freelancer_id"].to_numpy()[applicants.freelancer_idx]
    applications = pd.DataFrame(
        {
            "job_id": job_id,
            "freelancer_id": freelancer_id,
            "applied_at": timeline.timestamps(applicants.applied_day),
            "outcome": outcomes.outcome,
        }
    )
    truth = pd.DataFrame(
        {
            "job_id": job_id,
            "freelancer_id": freelancer_id,
            "true_match_probability": np.round(outcomes.true_match_probability, 6),
        }
    )
    snapshot_second = int(to_seconds(np.array([timeline.days + MAX_DELAY_DAYS]))[0])
    history = profile_history(freelancers, outcomes.careers, timeline, snapshot_second)
    current = current_profiles(freelancers, outcomes.careers, snapshot_second)
    return Marketplace(current, jobs.table, applications, history, truth)


def generate_snapshot(
    params: SimulateParams, target: Path, on_step: Callable[[str], None] | None = None
) -> dict[str, pd.DataFrame]:
    """Simulate the marketplace and write it to `target` atomically, validated."""
    market = generate_marketplace(params, on_step)
    frames = {
        FREELANCERS: market.freelancers,
        JOBS: market.jobs,
        APPLICATIONS: market.applications,
        FREELANCER_HISTORY: market.freelancer_history,
        SIMULATOR_TRUTH: market.simulator_truth,
    }
    validated = write_snapshot(frames, target)
    if on_step:
        on_step("written")
    return validated
