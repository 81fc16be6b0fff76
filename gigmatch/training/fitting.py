"""Fitting: the snapshot split by time into evaluation sets, features fitted once, each model fitted on them.

What the training flow's tasks do, as plain functions: every model in
params.yaml (`train.models`) is fitted on the same feature matrix, scored on
validation and test, and the one with the best validation NDCG@10 is selected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from gigmatch.data.contract import APPLICATIONS, FREELANCERS, JOBS, SIMULATOR_TRUTH
from gigmatch.features.match_frame import build_match_frame
from gigmatch.features.transformer import MatchFeatures
from gigmatch.model.pipeline import assemble_pipeline, is_probabilistic, match_scores
from gigmatch.params import ModelSpec, SplitParams
from gigmatch.training.estimators import TrainingData, fit_estimator
from gigmatch.training.evaluation import EvaluationSet, ModelFigures, model_figures
from gigmatch.training.splits import SPLITS, split_jobs_by_time

SELECTION_METRIC = "ndcg_at_10"  # on validation


@dataclass(frozen=True)
class SplitSets:
    """The snapshot's applications as train, valid and test evaluation sets (rows sorted by job, freelancer)."""

    train: EvaluationSet
    valid: EvaluationSet
    test: EvaluationSet
    job_counts: dict[str, int]

    def by_name(self) -> dict[str, EvaluationSet]:
        return {name: getattr(self, name) for name in SPLITS}


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


def split_snapshot(frames: dict[str, pd.DataFrame], split: SplitParams) -> SplitSets:
    """Jobs split by posting time; rows sorted by (job, freelancer) so every fit sees them in one order."""
    applications = frames[APPLICATIONS].sort_values(["job_id", "freelancer_id"], kind="stable")
    jobs_split = split_jobs_by_time(frames[JOBS], split.valid_fraction, split.test_fraction)
    truth = None
    if SIMULATOR_TRUTH in frames:
        keyed = frames[SIMULATOR_TRUTH].set_index(["job_id", "freelancer_id"])["true_match_probability"]
        truth = keyed.reindex(pd.MultiIndex.from_frame(applications[["job_id", "freelancer_id"]])).to_numpy()
    match = build_match_frame(applications, frames[JOBS], frames[FREELANCERS])
    relevance = applications["outcome"].to_numpy(dtype=np.int64)
    sets = {}
    for name, mask in jobs_split.masks(match["job_id"].to_numpy()).items():
        rows = np.flatnonzero(mask)
        sets[name] = EvaluationSet(
            match.iloc[rows].reset_index(drop=True), relevance[rows], None if truth is None else truth[rows]
        )
    return SplitSets(**sets, job_counts=jobs_split.sizes())


def fit_feature_matrices(sets: SplitSets, text_max_features: int) -> FeatureMatrices:
    """Fit the transformer on the training split, and compute every split's matrix once for all models."""
    transformer = MatchFeatures(text_max_features=text_max_features).fit(sets.train.frame)
    return FeatureMatrices(transformer, {name: transformer.transform(s.frame) for name, s in sets.by_name().items()})


def train_model(
    name: str, spec: ModelSpec, features: FeatureMatrices, sets: SplitSets, seed: int, threads: int
) -> TrainedModel:
    data = TrainingData(features.matrices["train"], sets.train.relevance, sets.train.group)
    estimator = fit_estimator(spec.kind, spec.params, data, seed, threads)
    # Scored through the estimator on the precomputed matrices: the same numbers the
    # assembled pipeline gives on the frames, without computing the features again.
    scores = {split: match_scores(estimator, features.matrices[split]) for split in ("valid", "test")}
    figures = model_figures(name, spec.kind, sets.valid, sets.test, scores, is_probabilistic(estimator))
    return TrainedModel(figures, assemble_pipeline(features.transformer, estimator), scores["test"])


def select_model(trained: list[TrainedModel]) -> TrainedModel:
    """The best validation NDCG@10 (the name breaks ties, so the choice does not depend on order)."""
    return max(trained, key=lambda t: (t.figures.valid[SELECTION_METRIC], t.figures.name))
