"""Who applies to which job.

Applicants skew toward related skills: a share of each job's applicants is drawn
from freelancers who list one of its required skills, the rest from the whole
market. Only freelancers who had signed up by the posting date, and not yet given
up (`FreelancerPool.active_until`), can apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gigmatch.data.simulator.freelancers import FreelancerPool
from gigmatch.data.simulator.jobs import JobBoard
from gigmatch.data.simulator.sampling import membership_matrix
from gigmatch.data.taxonomy import SKILLS
from gigmatch.groups import rank_within_groups
from gigmatch.params import SimulateParams

_MAX_ROUNDS = 50
MAX_DELAY_DAYS = 14.0  # an application arrives within this many days of the posting


@dataclass(frozen=True)
class Applicants:
    """Application pairs, grouped by job (contiguous, jobs in id order)."""

    job_idx: np.ndarray
    freelancer_idx: np.ndarray
    applied_day: np.ndarray


def sample_applicants(
    rng: np.random.Generator, params: SimulateParams, jobs: JobBoard, freelancers: FreelancerPool
) -> Applicants:
    wanted = _applicant_counts(rng, params, jobs.hourly_budget)
    holders = membership_matrix(freelancers.skill_lists, len(SKILLS)).T.tocsr()
    job_skills = membership_matrix(jobs.skill_lists, len(SKILLS))
    chosen_job: list[np.ndarray] = []
    chosen_freelancer: list[np.ndarray] = []
    have = np.zeros(len(wanted), dtype=np.int64)
    taken = np.empty(0, dtype=np.int64)
    n_freelancers = len(freelancers.signup_day)
    for _ in range(_MAX_ROUNDS):
        deficit = wanted - have
        if not deficit.any():
            break
        job = np.repeat(np.arange(len(wanted)), np.ceil(deficit * 1.4).astype(np.int64))
        freelancer = _draw_candidates(rng, job, params.related_applicant_share, job_skills, holders, n_freelancers)
        posted = jobs.posted_day[job]
        ok = (freelancers.signup_day[freelancer] <= posted) & (posted <= freelancers.active_until[freelancer])
        job, freelancer = job[ok], freelancer[ok]
        key = job * n_freelancers + freelancer
        first = _first_occurrences(key)
        fresh = ~_sorted_contains(taken, key[first])
        job, freelancer, key = job[first[fresh]], freelancer[first[fresh]], key[first[fresh]]
        # Keep at most the remaining deficit per job, in draw order (a constant score ranks rows as drawn).
        _, rank = rank_within_groups(job, np.zeros(len(job)))
        keep = rank < deficit[job]
        job, freelancer = job[keep], freelancer[keep]
        taken = np.sort(np.concatenate([taken, key[keep]]))
        have += np.bincount(job, minlength=len(wanted))
        chosen_job.append(job)
        chosen_freelancer.append(freelancer)
    else:
        raise RuntimeError("could not find enough eligible applicants; raise n_freelancers")

    job_idx = np.concatenate(chosen_job)
    freelancer_idx = np.concatenate(chosen_freelancer)
    order = np.lexsort((freelancer_idx, job_idx))
    job_idx, freelancer_idx = job_idx[order], freelancer_idx[order]
    delay = np.minimum(rng.exponential(1.3, len(job_idx)), MAX_DELAY_DAYS)
    return Applicants(job_idx, freelancer_idx, jobs.posted_day[job_idx] + delay)


def _applicant_counts(rng: np.random.Generator, params: SimulateParams, hourly_budget: np.ndarray) -> np.ndarray:
    """Better-paid jobs attract more applicants."""
    z = np.log(hourly_budget)
    z = (z - z.mean()) / (z.std() + 1e-9)
    share = np.clip(0.47 + 0.12 * z, 0.05, 0.95)
    return params.min_applicants + rng.binomial(params.max_applicants - params.min_applicants, share)


def _draw_candidates(
    rng: np.random.Generator,
    job: np.ndarray,
    related_share: float,
    job_skills: sp.csr_matrix,  # jobs x skills
    holders: sp.csr_matrix,  # skills x freelancers
    n_freelancers: int,
) -> np.ndarray:
    n = len(job)
    candidate = rng.integers(0, n_freelancers, n)
    skill_count = np.diff(job_skills.indptr)[job]
    skill = job_skills.indices[job_skills.indptr[job] + (rng.random(n) * skill_count).astype(np.int64)]
    holder_count = np.diff(holders.indptr)[skill]
    pick = holders.indptr[skill] + (rng.random(n) * holder_count).astype(np.int64)
    related = (rng.random(n) < related_share) & (holder_count > 0)
    candidate[related] = holders.indices[np.minimum(pick[related], len(holders.indices) - 1)]
    return candidate


def _first_occurrences(key: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct key, in input order.

    A stable sort, not np.unique: numpy's hash-based unique is several times slower here.
    """
    if len(key) == 0:  # a top-up round where every drawn candidate signed up after the post
        return np.empty(0, dtype=np.intp)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    is_first = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    return np.sort(order[is_first])


def _sorted_contains(sorted_values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Membership test against a sorted array (np.isin would hash both sides)."""
    if len(sorted_values) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_values, keys), len(sorted_values) - 1)
    return sorted_values[pos] == keys
