"""The latent match utility and the graded outcome of every application.

For an application of freelancer f to job j the simulator scores

    u = w_cov * coverage + w_rel * related_coverage
        - w_over * max(g, 0) - w_under * max(-g, 0)           g = log(rate / hourly budget)
        - w_miss * missing_years - w_excess * excess_years     vs the job's experience level
        - w_tz * timezone_shortfall_hours                      required minus actual overlap
        + w_rating * (rating - 4.5) + w_success * (success_rate - 0.85)    the profile as of
        + w_track * log1p(jobs_completed) - w_new * [no completed jobs]    the application

        + w_q * q                                              hidden quality, never in a table
        + w_expert * coverage * [expert job] + w_qcov * q * coverage

where coverage is the rarity-weighted share of required skills the freelancer
lists (rarity = -log of the skill's share of freelancers) and related coverage
the share of the rest that falls in a category the freelancer works in.

Applicants compete: the client hires the applicant with the highest noisy
utility u + Gumbel, unless a job-level "no hire" option u0 + Gumbel beats them
all. So the true probability that an applicant is hired is the softmax

    p_i = exp(u_i) / (exp(u0) + sum_k exp(u_k))

which is what `simulator_truth.parquet` records as `true_match_probability`.
The next best few by noisy utility are shortlisted, and a hire is rated five
stars with a probability that grows with hidden quality. Outcomes:
0 rejected, 1 shortlisted, 2 hired, 3 hired and rated five stars.

Profiles evolve (`gigmatch.data.simulator.careers`): a hire becomes a completed
job weeks later and enters the freelancer's record. So outcomes are drawn week by
week of posting, each week's applicants scored on their profiles as of their
application; every random draw is made up front in one fixed order, so the
weekly loop changes no stream.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gigmatch.data.contract import HIRED, HIRED_FIVE_STARS, REJECTED, SHORTLISTED
from gigmatch.data.market import LEVEL_MAX_YEARS, LEVEL_MIN_YEARS, level_index, timezone_overlap_hours
from gigmatch.data.simulator.applications import Applicants
from gigmatch.data.simulator.careers import DECISION_DAYS, Careers, ProfileStats, Reviews, to_seconds
from gigmatch.data.simulator.freelancers import FreelancerPool
from gigmatch.data.simulator.jobs import JobBoard
from gigmatch.data.simulator.sampling import SKILL_CATEGORY, membership_matrix
from gigmatch.data.taxonomy import CATEGORIES, DURATIONS, EXPERIENCE_LEVELS, SKILLS
from gigmatch.groups import rank_within_groups
from gigmatch.params import UtilityWeights


@dataclass(frozen=True)
class Outcomes:
    utility: np.ndarray
    true_match_probability: np.ndarray
    outcome: np.ndarray
    careers: Careers  # every completion the hires led to (profile history)


_ROUND_DAYS = 7.0  # jobs posted in one week are decided together on the profiles of that week


def skill_rarity(freelancers: FreelancerPool) -> np.ndarray:
    holders = np.bincount(np.concatenate(freelancers.skill_lists), minlength=len(SKILLS))
    return -np.log(np.maximum(holders, 1) / len(freelancers.skill_lists))


def fit_utility(
    weights: UtilityWeights, jobs: JobBoard, freelancers: FreelancerPool, applicants: Applicants
) -> np.ndarray:
    """The part of the utility that does not depend on the freelancer's track record."""
    j, f = applicants.job_idx, applicants.freelancer_idx
    rarity = skill_rarity(freelancers)
    required = membership_matrix(jobs.skill_lists, len(SKILLS)).multiply(rarity[None, :]).tocsr()
    required = sp.diags(1.0 / np.asarray(required.sum(axis=1)).ravel()) @ required
    listed = membership_matrix(freelancers.skill_lists, len(SKILLS))
    coverage = np.asarray(required[j].multiply(listed[f]).sum(axis=1)).ravel()
    skill_to_category = sp.csr_matrix(
        (np.ones(len(SKILLS)), (np.arange(len(SKILLS)), SKILL_CATEGORY)), shape=(len(SKILLS), len(CATEGORIES))
    )
    required_by_category = np.asarray((required @ skill_to_category).todense())
    works_in = np.asarray((listed @ skill_to_category).todense()) > 0
    related = np.einsum("ij,ij->i", required_by_category[j], works_in[f]) - coverage

    ft, jt = freelancers.table, jobs.table
    gap = np.log(ft["hourly_rate_usd"].to_numpy()[f] / jobs.hourly_budget[j])
    level = level_index(jt["experience_level"].to_numpy())[j]
    years = ft["years_experience"].to_numpy()[f]
    missing = np.maximum(LEVEL_MIN_YEARS[level] - years, 0.0)
    excess = np.maximum(years - LEVEL_MAX_YEARS[level], 0.0)
    shortfall = np.maximum(
        jt["timezone_overlap_hours"].to_numpy()[j]
        - timezone_overlap_hours(ft["utc_offset"].to_numpy()[f], jt["client_utc_offset"].to_numpy()[j]),
        0.0,
    )
    quality = freelancers.hidden_quality[f]
    expert = level == EXPERIENCE_LEVELS.index("expert")
    w = weights
    return (
        w.coverage * coverage
        + w.related_coverage * related
        - w.over_budget * np.maximum(gap, 0.0)
        - w.under_budget * np.maximum(-gap, 0.0)
        - w.missing_experience_year * missing
        - w.excess_experience_year * excess
        - w.timezone_shortfall_hour * shortfall
        + w.hidden_quality * quality
        + w.expert_coverage * coverage * expert
        + w.quality_coverage * quality * coverage
    )


def record_utility(weights: UtilityWeights, record: ProfileStats) -> np.ndarray:
    """The part of the utility the track record gives: rating, success rate, jobs done, being new."""
    w = weights
    return (
        w.rating * np.nan_to_num(record.rating - 4.5)
        + w.success_rate * np.nan_to_num(record.success_rate - 0.85)
        + w.track_record * np.log1p(record.jobs_completed)
        - w.newcomer * (record.jobs_completed == 0)
    )


def simulate_outcomes(
    rng: np.random.Generator,
    weights: UtilityWeights,
    jobs: JobBoard,
    freelancers: FreelancerPool,
    applicants: Applicants,
) -> Outcomes:
    job = applicants.job_idx
    starts = np.r_[0, np.flatnonzero(np.diff(job)) + 1]
    sizes = np.diff(np.r_[starts, len(job)])
    # Every draw up front, in one order (the weekly loop below only slices them).
    no_hire = weights.no_hire + rng.normal(0.0, weights.no_hire_spread, len(starts))
    noise = rng.gumbel(size=len(job))
    outside = no_hire + rng.gumbel(size=len(starts))
    five_star_draw = rng.random(len(job))
    quality = freelancers.hidden_quality[applicants.freelancer_idx]
    duration = pd.Index(DURATIONS).get_indexer(pd.Index(jobs.table["duration"]))[job]
    reviews = Reviews.draw(rng, duration, quality)

    ft = freelancers.table
    careers = Careers(ft["jobs_completed"].to_numpy(), ft["rating"].to_numpy(float), ft["success_rate"].to_numpy(float))
    fit = fit_utility(weights, jobs, freelancers, applicants)
    applied_second = to_seconds(applicants.applied_day)
    utility = np.empty(len(job))
    probability = np.empty(len(job))
    outcome = np.full(len(job), REJECTED, dtype=np.int8)
    week = np.floor(jobs.posted_day[job[starts]] / _ROUND_DAYS)
    bounds = np.r_[0, np.flatnonzero(np.diff(week)) + 1, len(starts)]  # job blocks of one posting week
    for first_job, end_job in itertools.pairwise(bounds):
        rows = slice(starts[first_job], starts[end_job] if end_job < len(starts) else len(job))
        blocks = slice(first_job, end_job)
        record = careers.as_of(applicants.freelancer_idx[rows], applied_second[rows])
        utility[rows] = fit[rows] + record_utility(weights, record)
        probability[rows], outcome[rows] = _decide(
            utility[rows],
            starts[blocks] - starts[first_job],
            sizes[blocks],
            no_hire[blocks],
            noise[rows],
            outside[blocks],
            weights,
            quality[rows],
            five_star_draw[rows],
        )
        hired = np.flatnonzero(outcome[rows] >= HIRED) + rows.start
        five = outcome[hired] == HIRED_FIVE_STARS
        done_day = jobs.posted_day[job[hired]] + DECISION_DAYS + reviews.job_days[hired]
        careers.record(
            applicants.freelancer_idx[hired],
            to_seconds(done_day),
            np.where(five, 5.0, reviews.stars[hired]),
            five | reviews.rehire[hired],
        )
    return Outcomes(utility, probability, outcome, careers)


def _decide(
    utility: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    no_hire: np.ndarray,
    noise: np.ndarray,
    outside: np.ndarray,
    weights: UtilityWeights,
    quality: np.ndarray,
    five_star_draw: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The true hire probabilities and the graded outcomes of consecutive jobs' applicants."""
    job = np.repeat(np.arange(len(starts)), sizes)
    # Softmax over each job's applicants plus its outside option, stabilised by the max.
    peak = np.maximum(np.maximum.reduceat(utility, starts), no_hire)
    expu = np.exp(utility - np.repeat(peak, sizes))
    denom = np.add.reduceat(expu, starts) + np.exp(no_hire - peak)
    probability = expu / np.repeat(denom, sizes)

    noisy = utility + noise
    _, rank = rank_within_groups(job, noisy)
    best = np.maximum.reduceat(noisy, starts)
    hired = (rank == 0) & np.repeat(best > outside, sizes)
    shortlist_size = np.maximum(1, np.round(weights.shortlist_share * sizes)).astype(np.int64)
    shortlisted = ~hired & (rank < np.repeat(shortlist_size, sizes) + 1)

    five_star_logit = weights.five_star_base + weights.five_star_quality * quality
    five_star = hired & (five_star_draw < 1.0 / (1.0 + np.exp(-five_star_logit)))
    outcome = np.full(len(job), REJECTED, dtype=np.int8)
    outcome[shortlisted] = SHORTLISTED
    outcome[hired] = HIRED
    outcome[five_star] = HIRED_FIVE_STARS
    return probability, outcome
