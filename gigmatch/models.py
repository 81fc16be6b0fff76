"""Candidate models: a linear model, a gradient-boosted classifier, a learning-to-rank model.

Every candidate is fitted on the same feature matrix (computed once by
`MatchFeatures`) and then joined with that fitted transformer into one
scikit-learn pipeline, the single object that is logged, registered and served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMRanker
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from gigmatch.features import MatchFeatures

HIRED = 2  # outcomes at or above this count as a hire


@dataclass(frozen=True)
class TrainingData:
    features: np.ndarray
    relevance: np.ndarray  # graded outcome 0..3
    group: np.ndarray  # job id per row, rows of a job contiguous

    @property
    def hired(self) -> np.ndarray:
        return (self.relevance >= HIRED).astype(np.int64)


def _logistic(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("classifier", LogisticRegression(random_state=seed, **{"max_iter": 2000, **params})),
        ]
    )


def _gbm_classifier(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    return HistGradientBoostingClassifier(random_state=seed, **{"early_stopping": False, **params})


def _lambdarank(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    # deterministic + force_row_wise + a fixed thread count make LightGBM repeatable bit for bit.
    return LGBMRanker(
        objective="lambdarank",
        random_state=seed,
        n_jobs=n_jobs,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
        **params,
    )


BUILDERS: dict[str, Callable[[dict[str, Any], int, int], BaseEstimator]] = {
    "logistic": _logistic,
    "gbm_classifier": _gbm_classifier,
    "lambdarank": _lambdarank,
}
RANKERS = frozenset({"lambdarank"})


def build_estimator(kind: str, params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    try:
        builder = BUILDERS[kind]
    except KeyError:
        raise ValueError(f"unknown candidate kind {kind!r}; known: {', '.join(sorted(BUILDERS))}") from None
    return builder(params, seed, n_jobs)


def fit_estimator(kind: str, params: dict[str, Any], data: TrainingData, seed: int, n_jobs: int) -> BaseEstimator:
    """Rankers learn the graded outcome per job; classifiers learn whether the applicant was hired."""
    estimator = build_estimator(kind, params, seed, n_jobs)
    # OpenMP pools (scikit-learn's boosting) ignore n_jobs; cap them so candidates
    # trained side by side do not oversubscribe the cores.
    with threadpool_limits(limits=n_jobs):
        if kind in RANKERS:
            if np.any(np.diff(data.group) < 0):
                raise ValueError("rows of a job must be contiguous and jobs sorted for a ranker")
            _, sizes = np.unique(data.group, return_counts=True)
            return estimator.fit(data.features, data.relevance, group=sizes)
        return estimator.fit(data.features, data.hired)


def assemble_pipeline(features: MatchFeatures, estimator: BaseEstimator) -> Pipeline:
    """The fitted transformer and the fitted estimator as one model (no refit)."""
    return Pipeline([("features", features), ("model", estimator)])


def match_scores(model: Pipeline | BaseEstimator, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """A 1-d score per row, higher is better: hire probability for classifiers, raw score for rankers."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X), dtype=float)


def is_probabilistic(model: Pipeline | BaseEstimator) -> bool:
    return hasattr(model, "predict_proba")


# Types outside scikit-learn's own that skops must be told to trust when it
# (de)serialises our pipelines. Listed, not discovered: a new type in a model
# fails loudly at logging time instead of being trusted blindly.
TRUSTED_MODEL_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    "gigmatch.features.MatchFeatures",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMRanker",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
