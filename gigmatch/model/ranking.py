"""Ranking jobs' candidates with a model pipeline: scores, ranks and reasons.

`rank_many` is the API's path (several requests in one pass through the model,
each ranked exactly as alone); `score_frame` is batch scoring of a whole table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from gigmatch.data.validation import ContractError, Violation
from gigmatch.features.match_frame import match_columns, match_frame_from_table
from gigmatch.features.names import FEATURE_LABELS, FEATURE_NAMES
from gigmatch.groups import rank_within_groups
from gigmatch.model.explain import contributions, row_wise_scores, top_reasons
from gigmatch.model.pipeline import estimator_of, features_of, match_scores

_LABELS = tuple(FEATURE_LABELS[name] for name in FEATURE_NAMES)


@dataclass(frozen=True)
class Ranking:
    """One job's candidates ranked; arrays, so that a response is built in one pass."""

    freelancer_ids: np.ndarray  # every candidate, in request order
    features: np.ndarray  # every candidate, in request order
    scores: np.ndarray  # every candidate, in request order
    order: np.ndarray  # request positions, best first, cut to top_k
    reason_features: np.ndarray  # ranked rows x reasons: indices into FEATURE_NAMES, largest effect first
    reason_effects: np.ndarray  # ranked rows x reasons: contribution to the score (> 0 pushed it up)

    def ranked(self) -> list[dict[str, object]]:
        """Best first: freelancer_id, rank, match_score and reasons (feature, label, value, effect)."""
        k = self.reason_features.shape[1]
        features = self.reason_features.ravel().tolist()
        values = np.take_along_axis(self.features[self.order], self.reason_features, axis=1).ravel().tolist()
        effects = self.reason_effects.ravel().tolist()
        # One flat pass, then cut per candidate: a comprehension per candidate costs more than its reasons.
        reasons = [
            {"feature": FEATURE_NAMES[j], "label": _LABELS[j], "value": value, "effect": effect}
            for j, value, effect in zip(features, values, effects, strict=True)
        ]
        return [
            {"freelancer_id": freelancer_id, "rank": i + 1, "match_score": score, "reasons": reasons[i * k : i * k + k]}
            for i, (freelancer_id, score) in enumerate(
                zip(self.freelancer_ids[self.order].tolist(), self.scores[self.order].tolist(), strict=True)
            )
        ]


def rank_many(
    model: Pipeline,
    columns: Mapping[str, np.ndarray],
    sizes: Sequence[int],
    top_ks: Sequence[int | None],
    n_reasons: int,
) -> list[Ranking | ValueError]:
    """Rank several jobs' candidates with one pass through the model.

    `columns` holds the jobs' rows one job after another, `sizes[i]` rows for job i.
    Each job is ranked exactly as it would be alone: its candidates compete with
    each other only, even when two jobs carry the same job id. A job that cannot be
    scored gets a ValueError in its place; the others are unaffected.
    """
    if not sizes or not all(sizes):
        raise ValueError("no candidates to rank")
    rows = match_columns(columns)  # a new dict: the job ids can be replaced below
    if sum(sizes) != len(rows["job_id"]):
        raise ValueError(f"sizes add up to {sum(sizes)} rows, the columns hold {len(rows['job_id'])}")
    rows["job_id"] = np.repeat(np.arange(len(sizes)), sizes)  # the group the within-job features compare
    features = features_of(model).transform(rows)
    estimator = estimator_of(model)
    # Scores, every row's contributions and so its reasons, for the whole batch at once where the model allows it.
    both = row_wise_scores(estimator, features)
    row_wise = both is not None
    if both is not None:
        scores, all_effects = both
        all_reasons = top_reasons(all_effects, n_reasons)
        all_reason_effects = np.take_along_axis(all_effects, all_reasons, axis=1)
    else:
        scores = match_scores(estimator, features)
    finite = np.isfinite(features).all(axis=1)
    freelancer_ids = rows["freelancer_id"]
    bounds = list(zip(top_ks, np.cumsum([0, *sizes[:-1]]), np.cumsum(sizes), strict=True))
    orders = [np.argsort(-scores[lo:hi], kind="stable")[: top_k or hi - lo] for top_k, lo, hi in bounds]
    if not row_wise:  # contributions cost model calls: only for the rows that are returned
        all_reasons, all_reason_effects = _returned_reasons(estimator, features, orders, bounds, finite, n_reasons)
    rankings: list[Ranking | ValueError] = []
    for order, (_, lo, hi) in zip(orders, bounds, strict=True):
        job_features = features[lo:hi]
        if not finite[lo:hi].all():
            bad = sorted({FEATURE_NAMES[j] for j in np.flatnonzero(~np.isfinite(job_features).all(axis=0))})
            rankings.append(ValueError(f"features out of range for these inputs: {', '.join(bad)}"))
            continue
        rankings.append(
            Ranking(
                freelancer_ids=freelancer_ids[lo:hi],
                features=job_features,
                scores=scores[lo:hi],
                order=order,
                reason_features=all_reasons[lo:hi][order],
                reason_effects=all_reason_effects[lo:hi][order],
            )
        )
    return rankings


def _returned_reasons(
    estimator: BaseEstimator,
    features: np.ndarray,
    orders: list[np.ndarray],
    bounds: list[tuple[int | None, int, int]],
    finite: np.ndarray,
    n_reasons: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Every row's reasons (feature indices, effects), filled in for the returned rows of jobs that can be scored.

    One call per job: the mean replacement compares a job's own candidates.
    """
    count = min(n_reasons, features.shape[1])
    reasons, effects = np.zeros((len(features), count), dtype=np.intp), np.zeros((len(features), count))
    for order, (_, lo, hi) in zip(orders, bounds, strict=True):
        if not count or not finite[lo:hi].all():
            continue
        rows = lo + order
        row_effects = contributions(estimator, features[rows])
        reasons[rows] = top_reasons(row_effects, count)
        effects[rows] = np.take_along_axis(row_effects, reasons[rows], axis=1)
    return reasons, effects


def read_match_table(path: Path) -> pd.DataFrame:
    """The match frame of a Parquet file of match columns; ContractError names the file and what is wrong."""
    try:
        table = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise ContractError([Violation("input", None, "readable_parquet", 0, (f"{path}: {exc}",))]) from exc
    return checked_match_frame(table)


def checked_match_frame(table: pd.DataFrame) -> pd.DataFrame:
    """`match_frame_from_table`, its ValueError as the ContractError scoring answers bad input with (exit 2)."""
    try:
        return match_frame_from_table(table)
    except ValueError as exc:
        raise ContractError([Violation("input", None, "match_columns", 0, (str(exc),))]) from exc


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
