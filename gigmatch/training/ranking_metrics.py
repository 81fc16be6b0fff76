"""Ranking metrics computed per job (query group), vectorised over all jobs.

Relevance is the graded outcome (0 rejected .. 3 hired and rated five stars)
with exponential gain 2^rel - 1. Jobs whose applicants all have relevance 0
have no ideal ranking and are left out of NDCG, as in most IR toolkits.
"""

from __future__ import annotations

import numpy as np

from gigmatch.groups import rank_within_groups


def dcg_per_group(group: np.ndarray, score: np.ndarray, relevance: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """DCG@k per group; returns (group ids, dcg) with groups in ascending order."""
    group_ids, group_pos = np.unique(group, return_inverse=True)
    _, rank = rank_within_groups(group_pos, score.astype(float))
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


def top_k_mask(group: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Rows ranked in the top k of their group."""
    _, rank = rank_within_groups(np.unique(group, return_inverse=True)[1], np.asarray(score, dtype=float))
    return rank < k


def average_precision_at_k(group: np.ndarray, score: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Mean over groups with a relevant row of AP@k (precision at each relevant hit, over min(k, #relevant))."""
    group_ids, group_pos = np.unique(group, return_inverse=True)
    order, rank = rank_within_groups(group_pos, np.asarray(score, dtype=float))
    relevant = np.asarray(relevant, dtype=bool)
    sorted_pos, sorted_rel, sorted_rank = group_pos[order], relevant[order], rank[order]
    hits_so_far = np.cumsum(sorted_rel) - np.repeat(
        np.r_[0, np.cumsum(np.bincount(sorted_pos, weights=sorted_rel))[:-1]].astype(np.int64),
        np.bincount(sorted_pos),
    )
    precision = np.where(sorted_rel & (sorted_rank < k), hits_so_far / (sorted_rank + 1.0), 0.0)
    n_relevant = np.bincount(group_pos, weights=relevant, minlength=len(group_ids))
    ap = np.bincount(sorted_pos, weights=precision, minlength=len(group_ids))
    has = n_relevant > 0
    if not has.any():
        raise ValueError("no group has a relevant row; AP is undefined")
    return float((ap[has] / np.minimum(n_relevant[has], k)).mean())


def recall_at_k(group: np.ndarray, score: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Mean over groups with a relevant row of the share of its relevant rows ranked in the top k."""
    relevant = np.asarray(relevant, dtype=bool)
    group_ids, group_pos = np.unique(group, return_inverse=True)
    found = np.bincount(group_pos, weights=relevant & top_k_mask(group, score, k), minlength=len(group_ids))
    total = np.bincount(group_pos, weights=relevant, minlength=len(group_ids))
    has = total > 0
    if not has.any():
        raise ValueError("no group has a relevant row; recall is undefined")
    return float((found[has] / total[has]).mean())
