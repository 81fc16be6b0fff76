"""Ranking metrics computed per job (query group), vectorised over all jobs.

Relevance is the graded outcome (0 rejected .. 3 hired and rated five stars)
with exponential gain 2^rel - 1. Jobs whose applicants all have relevance 0
have no ideal ranking and are left out of NDCG, as in most IR toolkits.
"""

from __future__ import annotations

import numpy as np


def _rank_within_groups(group: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (order, rank): rows sorted by group then score descending, and each row's rank.

    Ties in score keep the input order, so a constant score ranks rows as given.
    """
    order = np.lexsort((-score, group))
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(sorted_group[1:] != sorted_group[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(group)])
    rank = np.empty(len(group), dtype=np.int64)
    rank[order] = np.arange(len(group)) - np.repeat(starts, sizes)
    return order, rank


def dcg_per_group(group: np.ndarray, score: np.ndarray, relevance: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """DCG@k per group; returns (group ids, dcg) with groups in ascending order."""
    group_ids, group_pos = np.unique(group, return_inverse=True)
    _, rank = _rank_within_groups(group_pos, score.astype(float))
    gain = (2.0 ** relevance.astype(float) - 1.0) / np.log2(rank + 2.0)
    gain[rank >= k] = 0.0
    return group_ids, np.bincount(group_pos, weights=gain, minlength=len(group_ids))


def ndcg_per_group(
    group: np.ndarray, score: np.ndarray, relevance: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """NDCG@k per group with at least one relevant row; returns (group ids, ndcg)."""
    group = np.asarray(group)
    relevance = np.asarray(relevance)
    ids, dcg = dcg_per_group(group, np.asarray(score), relevance, k)
    _, ideal = dcg_per_group(group, relevance, relevance, k)
    has_relevant = ideal > 0
    return ids[has_relevant], dcg[has_relevant] / ideal[has_relevant]


def ndcg_at_k(group: np.ndarray, score: np.ndarray, relevance: np.ndarray, k: int) -> float:
    """Mean NDCG@k over jobs that have at least one relevant applicant."""
    _, values = ndcg_per_group(group, score, relevance, k)
    if len(values) == 0:
        raise ValueError("no group has a relevant row; NDCG is undefined")
    return float(values.mean())
