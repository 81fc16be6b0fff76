"""Ranking one job's candidates with a model pipeline: scores, ranks and reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from gigmatch.explain import contributions, top_reasons
from gigmatch.features import FEATURE_LABELS, FEATURE_NAMES
from gigmatch.metrics import rank_within_groups
from gigmatch.models import match_scores

_LABELS = tuple(FEATURE_LABELS[name] for name in FEATURE_NAMES)


@dataclass(frozen=True)
class Reason:
    feature: str
    label: str
    value: float
    effect: float  # > 0 pushed the score up, < 0 pushed it down


@dataclass(frozen=True)
class RankedCandidate:
    freelancer_id: int
    rank: int
    match_score: float
    reasons: list[Reason]


@dataclass(frozen=True)
class Ranking:
    candidates: list[RankedCandidate]  # best first, cut to top_k
    features: np.ndarray  # all candidates, in request order
    scores: np.ndarray  # all candidates, in request order


def rank_candidates(
    model: Pipeline, frame: pd.DataFrame | Mapping[str, np.ndarray], top_k: int | None, n_reasons: int
) -> Ranking:
    """Rank one job's candidates (a match frame, or match columns); ties keep the request order."""
    if len(set(np.asarray(frame["job_id"]).tolist())) != 1:
        raise ValueError("rank one job's candidates at a time")
    features = model.named_steps["features"].transform(frame)
    if not np.isfinite(features).all():
        bad = sorted({FEATURE_NAMES[j] for j in np.flatnonzero(~np.isfinite(features).all(axis=0))})
        raise ValueError(f"features out of range for these inputs: {', '.join(bad)}")
    estimator = model.named_steps["model"]
    scores = match_scores(estimator, features)
    order = np.argsort(-scores, kind="stable")[: top_k or len(scores)]
    effects = contributions(estimator, features[order]) if n_reasons > 0 else np.zeros((len(order), 0))
    reason_columns = top_reasons(effects, n_reasons)  # ranked rows x n_reasons feature indices
    freelancer_ids = np.asarray(frame["freelancer_id"])[order].tolist()
    ranked_scores = scores[order].tolist()
    values = np.take_along_axis(features[order], reason_columns, axis=1).tolist()
    reason_effects = np.take_along_axis(effects, reason_columns, axis=1).tolist()
    ranked = [
        RankedCandidate(
            freelancer_ids[i],
            i + 1,
            ranked_scores[i],
            [
                Reason(FEATURE_NAMES[j], _LABELS[j], value, effect)
                for j, value, effect in zip(reason_columns[i].tolist(), values[i], reason_effects[i], strict=True)
            ],
        )
        for i in range(len(order))
    ]
    return Ranking(ranked, features, scores)


def score_frame(model: Pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """Score and rank many jobs' candidates at once: job_id, freelancer_id, match_score, rank."""
    order = np.lexsort((frame["freelancer_id"].to_numpy(), frame["job_id"].to_numpy()))
    frame = frame.iloc[order].reset_index(drop=True)
    scores = match_scores(model, frame)
    _, rank = rank_within_groups(frame["job_id"].to_numpy(), scores)
    return pd.DataFrame(
        {
            "job_id": frame["job_id"].to_numpy(),
            "freelancer_id": frame["freelancer_id"].to_numpy(),
            "match_score": scores,
            "rank": rank + 1,
        }
    )
