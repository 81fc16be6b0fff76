"""Array operations on rows that come in groups: a job's applicants, a column's repeated values.

One home for ranking within groups (the simulator's hires, the ranking metrics,
batch scoring), group medians and average ranks (the within-job features), and
the distinct values of a column (the feature lookups): plain numpy, vectorised
over every group at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rank_within_groups(group: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, rank): rows sorted by group then score descending, and each row's 0-based rank in its group.

    Ties in score keep the input order, so a constant score ranks rows as given.
    """
    group = np.asarray(group)
    order = np.lexsort((-np.asarray(score, dtype=float), group))
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(sorted_group[1:] != sorted_group[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(group)])
    rank = np.empty(len(group), dtype=np.int64)
    rank[order] = np.arange(len(group)) - np.repeat(starts, sizes)
    return order, rank


def average_rank_descending(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """1-based rank of each value within its group, largest first, ties sharing their average rank."""
    order = np.lexsort((-value, group))
    g, v = group[order], value[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    position = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)])) + 1.0
    tie_start = np.r_[True, (g[1:] != g[:-1]) | (v[1:] != v[:-1])]
    tie_id = np.cumsum(tie_start) - 1
    tie_mean = np.bincount(tie_id, weights=position) / np.bincount(tie_id)
    rank = np.empty(len(g))
    rank[order] = tie_mean[tie_id]
    return rank


def group_median(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Median of `value` per group (groups numbered 0..k-1)."""
    order = np.lexsort((value, group))
    g, v = group[order], value[order]
    counts = np.bincount(g)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    low = starts + (counts - 1) // 2
    high = starts + counts // 2
    return (v[low] + v[high]) / 2.0


def distinct_codes(values: np.ndarray | Sequence[object]) -> tuple[np.ndarray, list[str]]:
    """Each row's position among the distinct values, and those values as text, in order of first sight.

    A match column repeats a job's fields on every candidate's row, and a
    freelancer's on every application: work per distinct value, not per row
    (with the shared-terms text cosine: features of the 120,505 pinned rows, 2.07 s -> 1.37 s).
    Unhashable values (lists) are told apart by their text.
    """
    try:
        distinct = dict.fromkeys(values)
    except TypeError:
        values = [str(value) for value in values]
        distinct = dict.fromkeys(values)
    position = {value: i for i, value in enumerate(distinct)}
    rows = np.fromiter(map(position.__getitem__, values), dtype=np.intp, count=len(values))
    return rows, [str(value) for value in position]
