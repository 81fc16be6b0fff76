"""Marketplace rules that both the simulator and the model's features use.

Plain domain arithmetic (how many working hours two timezones share, what a
fixed budget means per hour, what experience a level expects), so the two
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gigmatch.data.taxonomy import EXPERIENCE_LEVELS, TYPICAL_HOURS
from gigmatch.groups import distinct_codes

# Years of experience each level expects: below the floor hurts, far above the
# ceiling hurts a little (over-qualified, likely to leave).
LEVEL_MIN_YEARS = np.array([0.0, 2.0, 6.0])
LEVEL_MAX_YEARS = np.array([4.0, 10.0, np.inf])
WORKDAY_HOURS = 8.0
_LEVELS = {name: i for i, name in enumerate(EXPERIENCE_LEVELS)}


def lookup(values: np.ndarray, table: Mapping[str, float], missing: float) -> np.ndarray:
    """`table[str(value)]` for each value (`missing` when absent), each distinct value looked up once.

    Columns such as a job's duration repeat on every candidate's row: a handful of
    distinct values over many rows.
    """
    rows, distinct = distinct_codes(values)
    return np.array([table.get(value, missing) for value in distinct], dtype=float)[rows]


def level_index(levels: np.ndarray) -> np.ndarray:
    """Experience level names to 0 (entry), 1 (intermediate), 2 (expert); unknown names to -1."""
    return lookup(levels, _LEVELS, -1).astype(np.int64)


def timezone_overlap_hours(offset_a: np.ndarray, offset_b: np.ndarray) -> np.ndarray:
    """Shared hours of two 9-to-5 workdays in two UTC offsets (circular)."""
    d = np.abs(np.asarray(offset_a, dtype=float) - np.asarray(offset_b, dtype=float)) % 24.0
    return np.maximum(WORKDAY_HOURS - np.minimum(d, 24.0 - d), 0.0)


def implied_hourly_budget(budget_type: np.ndarray, budget_usd: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Hourly budgets as they are; fixed budgets spread over the duration's typical hours."""
    hours = lookup(duration, TYPICAL_HOURS, np.nan)
    hourly = np.asarray(budget_type) == "hourly"
    return np.where(hourly, np.asarray(budget_usd, dtype=float), np.asarray(budget_usd, dtype=float) / hours)
