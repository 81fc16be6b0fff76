"""Drift scenarios: a "current" batch of applications with a named, sized shift.

`simulate_batch` draws a small, fresh marketplace (its own seed, the project's
params otherwise), keeps the jobs posted in the earliest `window` of the history
(the reference is the training split, the earliest jobs), and applies the shift
where it belongs causally, before the steps that depend on it:

- a freelancer shift (region, rates) happens before applicants are drawn and
  outcomes simulated, so who applies and who gets hired respond to it;
- a job shift (demand, budgets) happens before applicants too (better-paid
  jobs attract more applicants);
- concept drift changes only the clients' utility weights: the same features
  lead to different outcomes;
- a missing-value spike is a data-pipeline fault: outcomes come from the true
  profiles, the table loses values afterwards.

With the same seed every scenario starts from the same draws, so a shifted
batch can be compared with the `none` batch it was made from. Magnitude 0 is
no shift for every scenario.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from gigmatch.data.simulator.applications import sample_applicants
from gigmatch.data.simulator.careers import profile_history, to_seconds
from gigmatch.data.simulator.freelancers import FreelancerPool, simulate_freelancers
from gigmatch.data.simulator.jobs import JobBoard, simulate_jobs
from gigmatch.data.simulator.outcomes import simulate_outcomes
from gigmatch.data.simulator.sampling import SKILL_TREND, Timeline, draw_utc_offsets
from gigmatch.data.taxonomy import CATEGORIES, REGIONS
from gigmatch.features.match_frame import MATCH_COLUMNS, build_match_frame
from gigmatch.params import SimulateParams, UtilityWeights, override

# The rare region whose freelancers surge in `new_region`. A region the data
# contract does not know is refused at the API (422) and by `data validate`, so it
# could never reach the log; a platform opening a market shows up as a region that
# was rare and becomes common.
SURGING_REGION = "east_asia"
_MEAN_APPLICANTS = 24.1  # per job, for the default min/max applicants (README)
_SLACK = 1.15  # simulate a few more jobs than needed, then keep whole jobs up to n_rows
_DEMAND_OVERSAMPLE = 6  # job posts drawn per job kept when demand is re-weighted
_BATCH_SEED_TAG = 0xD21F7  # keeps batch marketplaces apart from the snapshot's own seed
_MIN_POOL = 2500
_MIN_RATE_USD = 3.0  # the simulator's floor on hourly rates


@dataclass(frozen=True)
class Scenario:
    default_magnitude: float
    doc: str


SCENARIOS: dict[str, Scenario] = {
    "none": Scenario(0.0, "no shift: the same distribution as the training data (false-alarm checks)"),
    "skill_demand": Scenario(
        2.0, "demand fast-forwarded by MAGNITUDE years of category and skill trends (LLM work grows)"
    ),
    "budget_inflation": Scenario(0.5, "every budget grows by MAGNITUDE (0.5: half as much again)"),
    "new_region": Scenario(
        0.25, f"a share MAGNITUDE of freelancers now come from {SURGING_REGION} (3% before): offsets and rates follow"
    ),
    "rate_undercut": Scenario(0.25, "freelancers cut their hourly rates by MAGNITUDE (0.25: 25% cheaper)"),
    "concept": Scenario(
        1.0, "clients weigh candidates differently (0..1 toward price over skills): outcomes move, features do not"
    ),
    "missing_values": Scenario(0.3, "rating and success rate lost for a share MAGNITUDE of rows (profile outage)"),
}


@dataclass(frozen=True)
class MarketBatch:
    """A batch and what its marketplace knows beyond the match table, for the batch's rows only."""

    table: pd.DataFrame  # MATCH_COLUMNS + outcome, one row per application
    jobs: pd.DataFrame  # job_id, client_id, client_region: the job columns the match table leaves out
    freelancers: pd.DataFrame  # freelancer_id, signup_date
    truth: pd.DataFrame  # job_id, freelancer_id, true_match_probability


def simulate_batch(
    params: SimulateParams,
    scenario: str,
    magnitude: float | None = None,
    n_rows: int = 2000,
    seed: int = 0,
    *,
    window: float = 0.7,
) -> pd.DataFrame:
    """A match table (MATCH_COLUMNS + outcome) of about `n_rows` rows, whole jobs, with the shift applied.

    `window` is the earliest share of the history the jobs come from: the
    training split's share, so that `none` matches the champion's training rows.
    Deterministic for the same arguments.
    """
    return simulate_market_batch(params, scenario, magnitude, n_rows, seed, window=window).table


def simulate_market_batch(
    params: SimulateParams,
    scenario: str,
    magnitude: float | None = None,
    n_rows: int = 2000,
    seed: int = 0,
    *,
    window: float = 0.7,
) -> MarketBatch:
    """`simulate_batch`'s table with the marketplace's records of its jobs and freelancers (the replay's)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown drift scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if n_rows < 1 or not 0 < window <= 1:
        raise ValueError("n_rows must be positive and window in (0, 1]")
    size = SCENARIOS[scenario].default_magnitude if magnitude is None else float(magnitude)
    wanted_jobs = max(2, math.ceil(n_rows / _MEAN_APPLICANTS * _SLACK))
    oversample = _DEMAND_OVERSAMPLE if scenario == "skill_demand" else 1
    n_jobs = math.ceil(wanted_jobs * oversample / window)
    # The snapshot's freelancers per job, but never a pool so small that rare skills
    # have no holders (applicants then skew away from the skills a job asks for).
    n_freelancers = max(_MIN_POOL, round(wanted_jobs / window * params.n_freelancers / params.n_jobs))
    base = override(params, seed=_batch_seed(params.seed, seed), n_jobs=n_jobs, n_freelancers=n_freelancers)
    sequence = np.random.SeedSequence(base.seed)
    rng_freelancers, rng_jobs, rng_applicants, rng_outcomes = (np.random.default_rng(s) for s in sequence.spawn(4))
    # Separate streams: a shift's own draws must not change which jobs are kept.
    rng_shift, rng_keep = (np.random.default_rng(s) for s in sequence.spawn(2))

    timeline = Timeline.from_params(base.history_start, base.history_months)
    freelancers = simulate_freelancers(rng_freelancers, base, timeline)
    if scenario in _FREELANCER_SHIFTS:
        freelancers = _FREELANCER_SHIFTS[scenario](freelancers, size, rng_shift)
    jobs = _earliest(simulate_jobs(rng_jobs, base, timeline), window)
    if scenario in _JOB_SHIFTS:
        jobs = _JOB_SHIFTS[scenario](jobs, size, rng_shift)
    applicants = sample_applicants(rng_applicants, base, jobs, freelancers)
    weights = _concept_weights(base.utility, size) if scenario == "concept" else base.utility
    outcomes = simulate_outcomes(rng_outcomes, weights, jobs, freelancers, applicants)
    applications = pd.DataFrame(
        {
            "job_id": jobs.table["job_id"].to_numpy()[applicants.job_idx],
            "freelancer_id": freelancers.table["freelancer_id"].to_numpy()[applicants.freelancer_idx],
            "applied_at": timeline.timestamps(applicants.applied_day),
            "outcome": outcomes.outcome.astype(np.int64),
        }
    )
    history = profile_history(freelancers, outcomes.careers, timeline, int(to_seconds(applicants.applied_day).max()))
    table = build_match_frame(applications, jobs.table, freelancers.table, history)
    table = table.assign(outcome=applications["outcome"], true_match_probability=outcomes.true_match_probability)
    table = _whole_jobs(table, n_rows, rng_keep)
    if scenario == "missing_values":
        table = _lose_records(table, size, rng_shift)
    kept_jobs = jobs.table[jobs.table["job_id"].isin(table["job_id"])]
    kept_freelancers = freelancers.table[freelancers.table["freelancer_id"].isin(table["freelancer_id"])]
    return MarketBatch(
        table.loc[:, [*MATCH_COLUMNS, "outcome"]],
        kept_jobs.loc[:, ["job_id", "client_id", "client_region"]].reset_index(drop=True),
        kept_freelancers.loc[:, ["freelancer_id", "signup_date"]].reset_index(drop=True),
        table.loc[:, ["job_id", "freelancer_id", "true_match_probability"]],
    )


def _batch_seed(project_seed: int, seed: int) -> int:
    return int(np.random.SeedSequence((_BATCH_SEED_TAG, project_seed, seed)).generate_state(1)[0])


def _earliest(jobs: JobBoard, window: float) -> JobBoard:
    """The jobs posted in the earliest `window` share of posts (posted_day is sorted)."""
    return _subset(jobs, np.arange(max(1, math.ceil(len(jobs.posted_day) * window))))


def _subset(jobs: JobBoard, rows: np.ndarray) -> JobBoard:
    return JobBoard(
        jobs.table.iloc[rows].reset_index(drop=True),
        [jobs.skill_lists[i] for i in rows],
        jobs.posted_day[rows],
        jobs.hourly_budget[rows],
    )


def _demand_shift(jobs: JobBoard, years: float, rng: np.random.Generator) -> JobBoard:
    """Keep 1 in `_DEMAND_OVERSAMPLE` posts, weighted by `years` of their category's and skills' demand trend.

    Re-weighting whole posts moves the category mix, the required skills and the
    budgets that go with them together, as a real shift in demand does.
    """
    trend = {c.slug: c.trend for c in CATEGORIES}
    category_trend = np.array([trend[c] for c in jobs.table["category"]])
    skill_trend = np.array([SKILL_TREND[s].mean() for s in jobs.skill_lists])
    log_weight = years * (category_trend + skill_trend)
    keep = len(jobs.posted_day) // _DEMAND_OVERSAMPLE
    # Gumbel-top-k: weighted sampling without replacement.
    chosen = np.sort(np.argsort(-(log_weight + rng.gumbel(size=len(log_weight))))[:keep])
    return _subset(jobs, chosen)


def _budget_inflation(jobs: JobBoard, growth: float, _rng: np.random.Generator) -> JobBoard:
    factor = 1.0 + growth
    table = jobs.table.assign(budget_usd=np.round(jobs.table["budget_usd"].to_numpy() * factor, 2))
    return replace(jobs, table=table, hourly_budget=jobs.hourly_budget * factor)


def _region_surge(pool: FreelancerPool, share: float, rng: np.random.Generator) -> FreelancerPool:
    """Move a share of freelancers to the surging region: its UTC offsets and its rate level."""
    slugs = [r.slug for r in REGIONS]
    target = slugs.index(SURGING_REGION)
    table = pool.table.copy()
    region = np.array([slugs.index(r) for r in table["region"]])
    moved = (rng.random(len(table)) < share) & (region != target)
    rate_offset = np.array([r.rate_offset for r in REGIONS])
    rate = table["hourly_rate_usd"].to_numpy() * np.exp(rate_offset[target] - rate_offset[region])
    table["hourly_rate_usd"] = np.where(
        moved, np.round(np.clip(rate, _MIN_RATE_USD, 500.0), 2), table["hourly_rate_usd"]
    )
    table["utc_offset"] = np.where(moved, draw_utc_offsets(rng, np.full(len(table), target)), table["utc_offset"])
    table["region"] = np.where(moved, SURGING_REGION, table["region"]).astype(object)
    return replace(pool, table=table)


def _rate_undercut(pool: FreelancerPool, cut: float, _rng: np.random.Generator) -> FreelancerPool:
    rate = np.clip(pool.table["hourly_rate_usd"].to_numpy() * (1.0 - cut), _MIN_RATE_USD, None)
    return replace(pool, table=pool.table.assign(hourly_rate_usd=np.round(rate, 2)))


def _concept_weights(weights: UtilityWeights, size: float) -> UtilityWeights:
    """Move the clients' weights `size` of the way to a price-first regime.

    Clients now hire the cheap and the new: skills and track record count for
    far less, a rate under budget counts for more. The features the model sees
    stay the same; what they mean for the outcome changes.
    """
    target = {
        "coverage": 0.6,
        "related_coverage": 0.1,
        "over_budget": 3.5,
        "under_budget": -1.5,  # negative: cheaper than the budget is now a plus
        "rating": 0.0,
        "success_rate": 0.0,
        "track_record": -0.2,
        "newcomer": -0.6,  # negative: newcomers are now preferred
        "expert_coverage": 0.0,
    }
    current = weights.model_dump()
    moved = {name: (1.0 - size) * current[name] + size * value for name, value in target.items()}
    return override(weights, **moved)


def _whole_jobs(table: pd.DataFrame, n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Jobs in random order, whole, until `n_rows` rows are reached; rows sorted by job and freelancer."""
    sizes = table.groupby("job_id", sort=True).size()
    order = rng.permutation(len(sizes))
    covered = np.cumsum(sizes.to_numpy()[order])
    keep = sizes.index.to_numpy()[order[: int(np.searchsorted(covered, n_rows)) + 1]]
    kept = table[table["job_id"].isin(keep)]
    return kept.sort_values(["job_id", "freelancer_id"], kind="stable").reset_index(drop=True)


def _lose_records(table: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    lost = rng.random(len(table)) < share
    table = table.copy()
    for column in ("rating", "success_rate"):
        table[column] = table[column].mask(lost)
    return table


_FREELANCER_SHIFTS: dict[str, Callable[[FreelancerPool, float, np.random.Generator], FreelancerPool]] = {
    "new_region": _region_surge,
    "rate_undercut": _rate_undercut,
}
_JOB_SHIFTS: dict[str, Callable[[JobBoard, float, np.random.Generator], JobBoard]] = {
    "skill_demand": _demand_shift,
    "budget_inflation": _budget_inflation,
}
