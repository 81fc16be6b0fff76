"""Simulated freelancer profiles.

Profile statistics (jobs completed, rating, success rate) are drawn here as
they stand when the history window opens; freelancers who sign up during the
window start with no track record. From then on they grow with the jobs the
freelancer completes (`gigmatch.data.simulator.careers`). Each freelancer also
has a hidden quality that drives outcomes but is never written to a table a
feature may read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gigmatch.data.simulator.sampling import (
    DAYS_PER_YEAR,
    SKILL_CATEGORY,
    SKILL_SUPPLY,
    Timeline,
    affinity_matrix,
    categorical,
    draw_utc_offsets,
    normalise,
    top_k_without_replacement,
)
from gigmatch.data.simulator.text import profile_texts
from gigmatch.data.taxonomy import CATEGORIES, REGIONS, SKILLS
from gigmatch.params import SimulateParams

MIN_SKILLS, MAX_SKILLS = 3, 12
_MAX_TENURE_YEARS = 9.0


@dataclass(frozen=True)
class FreelancerPool:
    table: pd.DataFrame
    hidden_quality: np.ndarray
    skill_lists: list[np.ndarray]
    signup_day: np.ndarray  # days from the history start (negative: before it)
    # Last day they apply: who starts without a track record gives up after a while (most never
    # land a job); without this, the newcomers' share of applicants would only grow with sign-ups.
    active_until: np.ndarray


def simulate_freelancers(rng: np.random.Generator, params: SimulateParams, timeline: Timeline) -> FreelancerPool:
    n = params.n_freelancers
    region = rng.choice(len(REGIONS), size=n, p=normalise([r.freelancer_share for r in REGIONS]))
    utc_offset = draw_utc_offsets(rng, region)
    is_new = rng.random(n) < params.new_freelancer_share
    signup_day = np.where(
        is_new,
        rng.random(n) * timeline.days * 0.97,
        -(rng.random(n) ** 0.8) * _MAX_TENURE_YEARS * DAYS_PER_YEAR,
    )
    primary = _primary_category(rng, signup_day / DAYS_PER_YEAR, params.demand_trend_scale)
    secondary = categorical(rng, affinity_matrix()[primary])
    n_skills = MIN_SKILLS + rng.binomial(MAX_SKILLS - MIN_SKILLS, 0.35, n)
    skill_lists = _draw_skills(rng, primary, secondary, n_skills)

    quality = rng.standard_normal(n)
    years = np.clip(rng.gamma(2.0, 3.2, n), 0.0, 40.0)
    premium = np.array([c.rate_premium for c in CATEGORIES])[primary]
    rate_offset = np.array([r.rate_offset for r in REGIONS])[region]
    log_rate = 3.55 + rate_offset + premium + 0.045 * np.minimum(years, 20) + 0.10 * quality
    hourly_rate = np.clip(np.exp(log_rate + rng.normal(0, 0.30, n)), 3.0, 500.0)

    tenure_years = np.maximum(-signup_day, 0) / DAYS_PER_YEAR
    mean_jobs = 7.0 * tenure_years**0.9 * np.exp(0.25 * quality)
    jobs_completed = np.where(is_new | (rng.random(n) < 0.12), 0, rng.negative_binomial(1.5, 1.5 / (1.5 + mean_jobs)))
    has_record = jobs_completed > 0
    shrink = 1.0 / np.sqrt(1.0 + jobs_completed / 4.0)
    rating = np.clip(4.55 + 0.28 * quality + rng.normal(0, 0.35, n) * shrink, 1.0, 5.0)
    success_rate = np.clip(0.86 + 0.06 * quality + rng.normal(0, 0.10, n) * shrink, 0.0, 1.0)
    hours = np.clip(rng.choice([10, 20, 30, 40], n, p=[0.2, 0.35, 0.2, 0.25]) + rng.integers(-4, 5, n), 5, 60)
    signup = timeline.timestamps(signup_day)
    signup_year = signup.astype("datetime64[Y]").astype(int) + 1970

    table = pd.DataFrame(
        {
            "freelancer_id": np.arange(1, n + 1, dtype=np.int64),
            "region": np.array([r.slug for r in REGIONS], dtype=object)[region],
            "utc_offset": utc_offset,
            "years_experience": np.round(years, 1),
            "hourly_rate_usd": np.round(hourly_rate, 2),
            "skills": [np.array([SKILLS[s].slug for s in skills], dtype=object) for skills in skill_lists],
            "rating": np.where(has_record, np.round(rating, 2), np.nan),
            "jobs_completed": jobs_completed.astype(np.int64),
            "success_rate": np.where(has_record, np.round(success_rate, 3), np.nan),
            "weekly_availability_hours": hours.astype(np.int64),
            "profile_text": profile_texts(rng, primary, years, signup_year, hours, skill_lists),
            "signup_date": signup,
        }
    )
    starts_new = jobs_completed == 0
    patience = rng.exponential(params.newcomer_patience_days, n)
    active_until = np.where(starts_new, np.maximum(signup_day, 0.0) + patience, np.inf)
    return FreelancerPool(table, quality, skill_lists, signup_day, active_until)


def _primary_category(rng: np.random.Generator, signup_years: np.ndarray, trend_scale: float) -> np.ndarray:
    """Supply follows demand: people who join later pick growing categories more often."""
    supply = np.bincount(SKILL_CATEGORY, weights=SKILL_SUPPLY, minlength=len(CATEGORIES))
    trend = np.array([c.trend for c in CATEGORIES]) * trend_scale
    # Before the window the market moved more slowly; clamp the extrapolation.
    t = np.clip(signup_years, -2.0, None)[:, None]
    logits = np.log(supply)[None, :] + 0.8 * trend[None, :] * t
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return categorical(rng, probs / probs.sum(axis=1, keepdims=True))


def _draw_skills(
    rng: np.random.Generator, primary: np.ndarray, secondary: np.ndarray, n_skills: np.ndarray
) -> list[np.ndarray]:
    log_w = np.broadcast_to(np.log(SKILL_SUPPLY), (len(primary), len(SKILLS))).copy()
    log_w += np.where(SKILL_CATEGORY[None, :] == primary[:, None], np.log(12.0), 0.0)
    log_w += np.where(SKILL_CATEGORY[None, :] == secondary[:, None], np.log(3.0), 0.0)
    return top_k_without_replacement(rng, log_w, n_skills)
