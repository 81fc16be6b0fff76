"""The estimators a model can be built on: a linear model, a gradient-boosted classifier, a learning-to-rank model.

Every model in params.yaml (`train.models`) names one of these kinds and its
hyperparameters. Each estimator is fitted on the same feature matrix (computed
once by `MatchFeatures`) and then joined with that fitted transformer into one
scikit-learn pipeline (`gigmatch.model.pipeline`), the single object that is
logged, registered and served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from lightgbm import LGBMRanker
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from gigmatch.data.contract import HIRED


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


def lambdarank_options(params: dict[str, Any], seed: int, n_jobs: int) -> dict[str, Any]:
    """LightGBM's ranker options, in-process or on Dask (`gigmatch.scale.training`): one place for both."""
    # deterministic + force_row_wise + a fixed thread count make LightGBM repeatable bit for bit.
    return {
        "objective": "lambdarank",
        "random_state": seed,
        "n_jobs": n_jobs,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
        **params,
    }


def _lambdarank(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    return LGBMRanker(**lambdarank_options(params, seed, n_jobs))


BUILDERS: dict[str, Callable[[dict[str, Any], int, int], BaseEstimator]] = {
    "logistic": _logistic,
    "gbm_classifier": _gbm_classifier,
    "lambdarank": _lambdarank,
}
RANKERS = frozenset({"lambdarank"})


def query_sizes(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(job ids, rows per job) of rows whose jobs are contiguous and sorted: a ranker's queries, in order."""
    if np.any(np.diff(group) < 0):
        raise ValueError("rows of a job must be contiguous and jobs sorted for a ranker")
    jobs, sizes = np.unique(group, return_counts=True)
    return jobs, sizes


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
            _, sizes = query_sizes(data.group)
            return estimator.fit(data.features, data.relevance, group=sizes)
        return estimator.fit(data.features, data.hired)
