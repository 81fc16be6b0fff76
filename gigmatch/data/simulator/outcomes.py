"""The latent match utility and the graded outcome of every application.

For an application of freelancer f to job j the simulator scores

    u = w_cov * coverage + w_rel * related_coverage
        - w_over * max(g, 0) - w_under * max(-g, 0)           g = log(rate / hourly budget)
        - w_miss * missing_years - w_excess * excess_years     vs the job's experience level
        - w_tz * timezone_shortfall_hours                      required minus actual overlap
        + w_rating * (rating - 4.5) + w_success * (success_rate - 0.85)
        + w_track * log1p(jobs_completed) - w_new * [no completed jobs]
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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gigmatch.data.contract import HIRED, HIRED_FIVE_STARS, REJECTED, SHORTLISTED
from gigmatch.data.market import LEVEL_MAX_YEARS, LEVEL_MIN_YEARS, level_index, timezone_overlap_hours
from gigmatch.data.simulator.applications import Applicants
from gigmatch.data.simulator.freelancers import FreelancerPool
from gigmatch.data.simulator.jobs import JobBoard
from gigmatch.data.simulator.sampling import SKILL_CATEGORY, membership_matrix
from gigmatch.data.taxonomy import CATEGORIES, EXPERIENCE_LEVELS, SKILLS
from gigmatch.groups import rank_within_groups
from gigmatch.params import UtilityWeights


@dataclass(frozen=True)
class Outcomes:
    utility: np.ndarray
    true_match_probability: np.ndarray
    outcome: np.ndarray


def skill_rarity(freelancers: FreelancerPool) -> np.ndarray:
    holders = np.bincount(np.concatenate(freelancers.skill_lists), minlength=len(SKILLS))
    return -np.log(np.maximum(holders, 1) / len(freelancers.skill_lists))


def match_utility(
    weights: UtilityWeights, jobs: JobBoard, freelancers: FreelancerPool, applicants: Applicants
) -> np.ndarray:
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
    jobs_done = ft["jobs_completed"].to_numpy()[f]
    rating = np.nan_to_num(ft["rating"].to_numpy(dtype=float)[f] - 4.5)
    success = np.nan_to_num(ft["success_rate"].to_numpy(dtype=float)[f] - 0.85)
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
        + w.rating * rating
        + w.success_rate * success
        + w.track_record * np.log1p(jobs_done)
        - w.newcomer * (jobs_done == 0)
        + w.hidden_quality * quality
        + w.expert_coverage * coverage * expert
        + w.quality_coverage * quality * coverage
    )


def simulate_outcomes(
    rng: np.random.Generator,
    weights: UtilityWeights,
    jobs: JobBoard,
    freelancers: FreelancerPool,
    applicants: Applicants,
) -> Outcomes:
    utility = match_utility(weights, jobs, freelancers, applicants)
    job = applicants.job_idx
    starts = np.r_[0, np.flatnonzero(np.diff(job)) + 1]
    sizes = np.diff(np.r_[starts, len(job)])
    no_hire = weights.no_hire + rng.normal(0.0, weights.no_hire_spread, len(starts))

    # Softmax over each job's applicants plus its outside option, stabilised by the max.
    peak = np.maximum(np.maximum.reduceat(utility, starts), no_hire)
    peak_per_row = np.repeat(peak, sizes)
    expu = np.exp(utility - peak_per_row)
    denom = np.add.reduceat(expu, starts) + np.exp(no_hire - peak)
    probability = expu / np.repeat(denom, sizes)

    noisy = utility + rng.gumbel(size=len(utility))
    outside = no_hire + rng.gumbel(size=len(starts))
    _, rank = rank_within_groups(job, noisy)
    best = np.maximum.reduceat(noisy, starts)
    hired = (rank == 0) & np.repeat(best > outside, sizes)
    shortlist_size = np.maximum(1, np.round(weights.shortlist_share * sizes)).astype(np.int64)
    shortlisted = ~hired & (rank < np.repeat(shortlist_size, sizes) + 1)

    listed_quality = freelancers.hidden_quality[applicants.freelancer_idx]
    five_star_logit = weights.five_star_base + weights.five_star_quality * listed_quality
    five_star = hired & (rng.random(len(job)) < 1.0 / (1.0 + np.exp(-five_star_logit)))
    outcome = np.full(len(job), REJECTED, dtype=np.int8)
    outcome[shortlisted] = SHORTLISTED
    outcome[hired] = HIRED
    outcome[five_star] = HIRED_FIVE_STARS
    return Outcomes(utility, probability, outcome)
