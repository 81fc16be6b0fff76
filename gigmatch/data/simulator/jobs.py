"""Simulated job posts over the history window.

Demand moves with time: each category's share of posts follows its trend in
the taxonomy (LLM work and annotation grow, writing shrinks), skills within a
category follow their own trends, posting volume grows, and budgets inflate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gigmatch.data.simulator.sampling import (
    SKILL_CATEGORY,
    SKILL_SUPPLY,
    SKILL_TREND,
    Timeline,
    affinity_matrix,
    categorical,
    draw_utc_offsets,
    normalise,
    top_k_without_replacement,
)
from gigmatch.data.simulator.text import job_descriptions
from gigmatch.data.taxonomy import (
    BUDGET_TYPES,
    CATEGORIES,
    DURATIONS,
    EXPERIENCE_LEVELS,
    REGIONS,
    SKILLS,
    TYPICAL_HOURS,
)
from gigmatch.params import SimulateParams

MIN_REQUIRED_SKILLS, MAX_REQUIRED_SKILLS = 2, 6
_VOLUME_GROWTH = 0.6  # posting rate at the end of the window vs its start, minus one
_OVERLAP_HOURS = np.array([0, 2, 4, 6, 8])
_OVERLAP_PROBS = np.array([0.35, 0.25, 0.22, 0.13, 0.05])
_LEVEL_LOG_BUDGET = np.array([-0.45, 0.0, 0.45])
_SENIOR_CATEGORIES = {"machine_learning", "mlops", "llm_apps", "data_engineering"}


@dataclass(frozen=True)
class JobBoard:
    table: pd.DataFrame
    skill_lists: list[np.ndarray]
    posted_day: np.ndarray  # days from the history start
    hourly_budget: np.ndarray  # implied hourly budget (fixed budgets over typical hours)


def simulate_jobs(rng: np.random.Generator, params: SimulateParams, timeline: Timeline) -> JobBoard:
    n = params.n_jobs
    posted_day = np.sort(_posting_days(rng, n, timeline.days))
    t_years = posted_day / 365.25

    n_clients = max(1, int(n * 0.4))
    client_weight = 1.0 / np.arange(1, n_clients + 1) ** 0.8
    client_of_job = rng.choice(n_clients, size=n, p=client_weight / client_weight.sum())
    client_region = rng.choice(len(REGIONS), size=n_clients, p=normalise([r.client_share for r in REGIONS]))
    client_offset = draw_utc_offsets(rng, client_region)

    category = _draw_categories(rng, t_years, params.demand_trend_scale)
    level = _draw_levels(rng, category)
    n_skills = MIN_REQUIRED_SKILLS + rng.binomial(MAX_REQUIRED_SKILLS - MIN_REQUIRED_SKILLS, 0.35, n)
    skill_lists = _draw_required_skills(rng, category, t_years, n_skills, params.demand_trend_scale)

    budget_type = np.where(rng.random(n) < 0.45, 0, 1)
    duration = np.where(
        budget_type == 0,
        rng.choice(len(DURATIONS), n, p=[0.2, 0.35, 0.25, 0.2]),
        rng.choice(len(DURATIONS), n, p=[0.55, 0.3, 0.1, 0.05]),
    )
    hours = np.array([TYPICAL_HOURS[d] for d in DURATIONS])[duration]
    region_of_job = client_region[client_of_job]
    client_premium = np.where(region_of_job == 0, 0.0, np.where(region_of_job == 2, -0.05, -0.3))
    inflation = (1.0 + params.budget_inflation_per_year) ** t_years
    log_hourly = (
        3.55
        + _LEVEL_LOG_BUDGET[level]
        + np.array([c.rate_premium for c in CATEGORIES])[category]
        + client_premium
        + rng.normal(0, 0.30, n)
    )
    hourly = np.maximum(np.round(np.exp(log_hourly) * inflation), 5.0)
    fixed = np.maximum(np.round(hourly * hours * np.exp(rng.normal(0, 0.35, n)) / 5.0) * 5.0, 5.0)
    budget = np.where(budget_type == 0, hourly, fixed)
    overlap = rng.choice(_OVERLAP_HOURS, n, p=_OVERLAP_PROBS)
    level_names = [EXPERIENCE_LEVELS[v] for v in level]

    table = pd.DataFrame(
        {
            "job_id": np.arange(1, n + 1, dtype=np.int64),
            "client_id": (client_of_job + 1).astype(np.int64),
            "client_region": np.array([r.slug for r in REGIONS], dtype=object)[region_of_job],
            "client_utc_offset": client_offset[client_of_job],
            "posted_at": timeline.timestamps(posted_day),
            "category": np.array([c.slug for c in CATEGORIES], dtype=object)[category],
            "required_skills": [np.array([SKILLS[s].slug for s in skills], dtype=object) for skills in skill_lists],
            "budget_type": np.array(BUDGET_TYPES, dtype=object)[budget_type],
            "budget_usd": budget.astype(np.float64),
            "duration": np.array(DURATIONS, dtype=object)[duration],
            "experience_level": np.array(level_names, dtype=object),
            "description": job_descriptions(rng, category, level_names, overlap, skill_lists),
            "timezone_overlap_hours": overlap.astype(np.int64),
        }
    )
    return JobBoard(table, skill_lists, posted_day, budget / np.where(budget_type == 0, 1.0, hours))


def _posting_days(rng: np.random.Generator, n: int, days: float) -> np.ndarray:
    """Posting times with a rate growing linearly over the window (inverse CDF)."""
    g = _VOLUME_GROWTH
    u = rng.random(n)
    return days * (np.sqrt(1.0 + 2.0 * g * u * (1.0 + g / 2.0)) - 1.0) / g


def _draw_categories(rng: np.random.Generator, t_years: np.ndarray, trend_scale: float) -> np.ndarray:
    demand = np.log([c.demand for c in CATEGORIES])
    trend = np.array([c.trend for c in CATEGORIES]) * trend_scale
    logits = demand[None, :] + trend[None, :] * t_years[:, None]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return categorical(rng, probs / probs.sum(axis=1, keepdims=True))


def _draw_levels(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    probs = np.empty((len(category), 3))
    slugs = np.array([c.slug for c in CATEGORIES])[category]
    probs[:] = [0.30, 0.50, 0.20]
    probs[np.isin(slugs, list(_SENIOR_CATEGORIES))] = [0.15, 0.50, 0.35]
    probs[slugs == "data_annotation"] = [0.60, 0.35, 0.05]
    return categorical(rng, probs)


def _draw_required_skills(
    rng: np.random.Generator,
    category: np.ndarray,
    t_years: np.ndarray,
    n_skills: np.ndarray,
    trend_scale: float,
) -> list[np.ndarray]:
    """Mostly skills of the job's category, sometimes one from a related category."""
    affinity = affinity_matrix()
    same = SKILL_CATEGORY[None, :] == category[:, None]
    related = affinity[category][:, SKILL_CATEGORY]
    log_w = 0.5 * np.log(SKILL_SUPPLY)[None, :] + trend_scale * SKILL_TREND[None, :] * t_years[:, None]
    log_w += np.where(same, 0.0, np.log(0.06 * related + 0.002))
    skills = top_k_without_replacement(rng, log_w, n_skills)
    # Lead with the category's own skills so descriptions read naturally.
    return [s[np.argsort(SKILL_CATEGORY[s] != c, kind="stable")] for s, c in zip(skills, category, strict=True)]
