"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gigmatch.training.ranking_metrics import average_precision_at_k, ndcg_at_k, ndcg_per_group, recall_at_k, top_k_mask


def test_perfect_and_reversed_ranking() -> None:
    group = np.array([1, 1, 1])
    relevance = np.array([3, 1, 0])
    assert ndcg_at_k(group, np.array([0.9, 0.5, 0.1]), relevance, k=3) == pytest.approx(1.0)
    # Reversed: gains 0, 1, 7 at ranks 1..3 against the ideal 7, 1, 0.
    dcg = 0 / math.log2(2) + 1 / math.log2(3) + 7 / math.log2(4)
    idcg = 7 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(group, np.array([0.1, 0.5, 0.9]), relevance, k=3) == pytest.approx(dcg / idcg)


def test_cutoff_and_groups_are_independent() -> None:
    group = np.array([2, 2, 2, 1, 1])
    relevance = np.array([0, 0, 1, 1, 0])
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.1])
    ids, values = ndcg_per_group(group, score, relevance, k=2)
    assert ids.tolist() == [1, 2]
    # Job 1 ranks its only hire first; job 2 leaves it outside the top 2.
    assert values.tolist() == pytest.approx([1.0, 0.0])


def test_groups_without_relevant_rows_are_left_out() -> None:
    group = np.array([1, 1, 2, 2])
    relevance = np.array([0, 0, 2, 0])
    assert ndcg_at_k(group, np.array([1.0, 0.0, 1.0, 0.0]), relevance, k=10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="undefined"):
        ndcg_at_k(group[:2], np.array([1.0, 0.0]), relevance[:2], k=10)


def test_average_precision_by_hand() -> None:
    group = np.array([1, 1, 1, 1])
    relevant = np.array([True, False, True, False])
    score = np.array([0.9, 0.8, 0.7, 0.1])  # hits at ranks 1 and 3
    assert average_precision_at_k(group, score, relevant, k=10) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert average_precision_at_k(group, score, relevant, k=2) == pytest.approx((1 / 1) / 2)


def test_recall_at_k_by_hand() -> None:
    group = np.array([1, 1, 1, 2, 2])
    relevant = np.array([True, False, True, False, True])
    score = np.array([0.9, 0.8, 0.1, 0.5, 0.4])
    # Job 1 finds one of two hires in its top 2; job 2 finds its only hire.
    assert recall_at_k(group, score, relevant, k=2) == pytest.approx((0.5 + 1.0) / 2)
    assert top_k_mask(group, score, 1).tolist() == [True, False, False, True, False]
