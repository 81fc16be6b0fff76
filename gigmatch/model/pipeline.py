"""The model: the fitted feature transformer and an estimator as one scikit-learn pipeline.

This is the object training logs and registers, `gigmatch export` bundles and
serving loads: the features are its first step, so no consumer computes them
another way. Scores are "higher is better" whatever the estimator: the hire
probability of a classifier, the raw score of a ranker.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from gigmatch.features.transformer import MatchFeatures

FEATURES_STEP = "features"
ESTIMATOR_STEP = "model"

# Types outside scikit-learn's own that skops must be told to trust when it
# (de)serialises our pipelines. Listed, not discovered: a new type in a model
# fails loudly at logging time instead of being trusted blindly.
TRUSTED_MODEL_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    f"{MatchFeatures.__module__}.{MatchFeatures.__qualname__}",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMRanker",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def assemble_pipeline(features: MatchFeatures, estimator: BaseEstimator) -> Pipeline:
    """The fitted transformer and the fitted estimator as one model (no refit)."""
    return Pipeline([(FEATURES_STEP, features), (ESTIMATOR_STEP, estimator)])


def features_of(model: Pipeline) -> MatchFeatures:
    return model.named_steps[FEATURES_STEP]


def estimator_of(model: Pipeline) -> BaseEstimator:
    return model.named_steps[ESTIMATOR_STEP]


def is_model_pipeline(model: object) -> bool:
    return isinstance(model, Pipeline) and FEATURES_STEP in model.named_steps and ESTIMATOR_STEP in model.named_steps


def match_scores(model: Pipeline | BaseEstimator, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """A 1-d score per row, higher is better: hire probability for classifiers, raw score for rankers."""
    if is_probabilistic(model):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X), dtype=float)


def is_probabilistic(model: Pipeline | BaseEstimator) -> bool:
    return hasattr(model, "predict_proba")
