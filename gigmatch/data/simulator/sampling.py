"""Vectorised sampling helpers shared by the simulator's tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gigmatch.data.taxonomy import CATEGORIES, REGIONS, SKILLS

DAYS_PER_YEAR = 365.25
SKILL_CATEGORY = np.array([[c.slug for c in CATEGORIES].index(s.category) for s in SKILLS])
SKILL_SUPPLY = np.array([s.supply for s in SKILLS])
SKILL_TREND = np.array([s.trend for s in SKILLS])
# Categories whose freelancers often also work in the other categories of the group.
AFFINITY_GROUPS: tuple[tuple[str, ...], ...] = (
    ("data_science", "machine_learning", "llm_apps", "data_engineering", "mlops"),
    ("web_development", "mobile_development", "design", "cloud_devops"),
    ("writing", "marketing", "design", "data_annotation"),
    ("mlops", "cloud_devops", "data_engineering"),
    ("llm_apps", "data_annotation", "writing"),
)


@dataclass(frozen=True)
class Timeline:
    """The simulated history window, in days from its start."""

    start: dt.datetime
    days: float

    @classmethod
    def from_params(cls, start: dt.date, months: int) -> Timeline:
        begin = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
        year, month = divmod(start.month - 1 + months, 12)
        end = dt.datetime(start.year + year, month + 1, start.day, tzinfo=dt.UTC)
        return cls(begin, (end - begin).total_seconds() / 86400)

    @property
    def years(self) -> float:
        return self.days / DAYS_PER_YEAR

    def timestamps(self, day_offsets: np.ndarray) -> np.ndarray:
        """Day offsets to UTC datetimes at whole-second resolution."""
        seconds = np.round(day_offsets * 86400).astype("int64")
        base = np.datetime64(self.start.replace(tzinfo=None), "s")
        return (base + seconds.astype("timedelta64[s]")).astype("datetime64[us]")


def affinity_matrix() -> np.ndarray:
    """Probability of a secondary category given a primary one."""
    slugs = [c.slug for c in CATEGORIES]
    weights = np.full((len(slugs), len(slugs)), 0.15)
    for group in AFFINITY_GROUPS:
        idx = [slugs.index(g) for g in group]
        weights[np.ix_(idx, idx)] += 1.0
    np.fill_diagonal(weights, 0.0)
    return weights / weights.sum(axis=1, keepdims=True)


def normalise(weights: list[float] | np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a row-stochastic matrix (inverse CDF, vectorised)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return np.minimum((u > cdf).sum(axis=1), probs.shape[1] - 1)


def top_k_without_replacement(
    rng: np.random.Generator, log_weights: np.ndarray, k: np.ndarray, chunk: int = 50_000
) -> list[np.ndarray]:
    """Per row, draw k[i] distinct columns with probability proportional to weight.

    The Gumbel-top-k trick: adding Gumbel noise to log-weights and keeping the k
    largest is sampling without replacement, and it vectorises over rows.
    """
    out: list[np.ndarray] = []
    for lo in range(0, len(log_weights), chunk):
        block = log_weights[lo : lo + chunk]
        scores = block + rng.gumbel(size=block.shape)
        # Only the largest max(k) per row matter: partition, then sort just those.
        k_max = int(k[lo : lo + chunk].max())
        top = np.argpartition(-scores, k_max - 1, axis=1)[:, :k_max]
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
        out.extend(order[i, : k[lo + i]] for i in range(len(block)))
    return out


def membership_matrix(lists: list[np.ndarray], n_columns: int) -> sp.csr_matrix:
    """Rows x columns 0/1 matrix from per-row index arrays."""
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate(lists) if lists else np.empty(0, dtype=np.int64)
    data = np.ones(len(indices), dtype=np.float64)
    return sp.csr_matrix((data, indices, indptr), shape=(len(lists), n_columns))


def draw_utc_offsets(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """A UTC offset per row, uniform among its region's offsets."""
    width = max(len(r.utc_offsets) for r in REGIONS)
    table = np.array([list(r.utc_offsets) + [np.nan] * (width - len(r.utc_offsets)) for r in REGIONS])
    counts = np.array([len(r.utc_offsets) for r in REGIONS])
    pick = (rng.random(len(region)) * counts[region]).astype(np.int64)
    return table[region, pick]
