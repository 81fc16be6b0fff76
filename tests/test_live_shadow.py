"""The shadow challenger beside the champion, once outcomes arrive: on the same requests only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gigmatch.monitoring.frame import OUTCOME
from gigmatch.monitoring.live import shadow_comparison
from gigmatch.monitoring.prediction_log import CANDIDATE_ID, SCORE


def _rows(version: str, requests: list[str], scores: list[list[float]], hired: list[int]) -> pd.DataFrame:
    """Four candidates per request; candidate `hired[i]` of request i was hired (outcome 2), the rest rejected."""
    records = []
    for request, request_scores, winner in zip(requests, scores, hired, strict=True):
        for candidate, score in enumerate(request_scores):
            outcome = 2 if candidate == winner else 0
            records.append((request, version, candidate + 1, score, outcome))
    return pd.DataFrame(records, columns=["request_id", "model_version", CANDIDATE_ID, SCORE, OUTCOME])


def test_the_challenger_that_ranks_the_hire_first_wins_on_the_common_requests() -> None:
    hired = [0, 1, 2]
    good = [[0.9, 0.1, 0.2, 0.3], [0.1, 0.9, 0.2, 0.3], [0.1, 0.2, 0.9, 0.3]]  # the hire first
    bad = [[0.1, 0.9, 0.8, 0.7], [0.9, 0.1, 0.8, 0.7], [0.9, 0.8, 0.1, 0.7]]  # the hire last
    champion = _rows("3", ["a", "b", "c"], bad, hired)
    challenger = _rows("4", ["a", "b", "c"], good, hired)
    served_only = _rows("3", ["z"], [[0.9, 0.1, 0.2, 0.3]], [0])  # the shadow skipped it: not compared
    report = shadow_comparison(pd.concat([champion, served_only]), challenger, k=10)
    assert report["requests"] == 3
    assert report["champion"]["model_version"] == "3" and report["challenger"]["model_version"] == "4"
    assert report["challenger"]["ndcg_at_10"] == 1.0
    assert report["champion"]["ndcg_at_10"] < 0.5
    assert report["ndcg_at_10_margin"] == round(1.0 - report["champion"]["ndcg_at_10"], 6)
    assert report["score_rank_correlation"] < 0  # opposite orders


def test_the_same_order_correlates_fully_and_no_common_request_says_so() -> None:
    scores = [[0.4, 0.3, 0.2, 0.1]]
    same = shadow_comparison(_rows("3", ["a"], scores, [0]), _rows("4", ["a"], [list(np.sqrt(scores[0]))], [0]), 10)
    assert same["score_rank_correlation"] == 1.0 and same["ndcg_at_10_margin"] == 0.0
    assert shadow_comparison(_rows("3", ["a"], scores, [0]), _rows("4", ["b"], scores, [0]), 10) == {"requests": 0}
