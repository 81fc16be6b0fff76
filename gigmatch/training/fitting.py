"""Fitting: features fitted once on the training split, each model fitted on them, the best one selected.

What the training flow's tasks do, as plain functions (the split itself is
`gigmatch.training.splits.split_snapshot`): every model in
params.yaml (`train.models`) is fitted on the same feature matrix, scored on
validation and test, and the one with the best validation NDCG@10 is selected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from gigmatch.features.transformer import MatchFeatures
from gigmatch.model.pipeline import assemble_pipeline, is_probabilistic, match_scores
from gigmatch.params import ModelSpec
from gigmatch.training.estimators import TrainingData, fit_estimator
from gigmatch.training.evaluation import ModelFigures, model_figures
from gigmatch.training.splits import SplitSets

SELECTION_METRIC = "ndcg_at_10"  # on validation


@dataclass(frozen=True)
class FeatureMatrices:
    transformer: MatchFeatures  # fitted on the training split
    matrices: dict[str, np.ndarray]  # split name -> feature matrix


@dataclass(frozen=True)
class TrainedModel:
    figures: ModelFigures
    model: Pipeline  # the fitted pipeline: features + estimator
    test_scores: np.ndarray

    @property
    def name(self) -> str:
        return self.figures.name


def fit_feature_matrices(sets: SplitSets, text_max_features: int) -> FeatureMatrices:
    """Fit the transformer on the training split, and compute every split's matrix once for all models."""
    transformer = MatchFeatures(text_max_features=text_max_features).fit(sets.train.frame)
    return FeatureMatrices(transformer, {name: transformer.transform(s.frame) for name, s in sets.by_name().items()})


def train_model(
    name: str,
    spec: ModelSpec,
    features: FeatureMatrices,
    sets: SplitSets,
    seed: int,
    threads: int,
    fit: Callable[[TrainingData], BaseEstimator] | None = None,
) -> TrainedModel:
    """`fit`: how the estimator is fitted, when not in this process (the Dask engine's ranker)."""
    data = TrainingData(features.matrices["train"], sets.train.relevance, sets.train.group)
    estimator = fit(data) if fit else fit_estimator(spec.kind, spec.params, data, seed, threads)
    # Scored through the estimator on the precomputed matrices: the same numbers the
    # assembled pipeline gives on the frames, without computing the features again.
    scores = {split: match_scores(estimator, features.matrices[split]) for split in ("valid", "test")}
    figures = model_figures(name, spec.kind, sets.valid, sets.test, scores, is_probabilistic(estimator))
    return TrainedModel(figures, assemble_pipeline(features.transformer, estimator), scores["test"])


def select_model(trained: list[TrainedModel]) -> TrainedModel:
    """The best validation NDCG@10 (the name breaks ties, so the choice does not depend on order)."""
    return max(trained, key=lambda t: (t.figures.valid[SELECTION_METRIC], t.figures.name))
