"""Evaluation figures on a real split: floors below, the oracle above, fairness computed per region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gigmatch.data.snapshot import read_tables
from gigmatch.features.match_frame import build_match_frame
from gigmatch.training.evaluation import (
    EvaluationSet,
    baseline_scores,
    exposure_fairness,
    ranking_metrics,
    slice_metrics,
)


@pytest.fixture(scope="module")
def evaluation_set(training_snapshot: Path) -> EvaluationSet:
    frames = read_tables(training_snapshot)
    apps = frames["applications"].sort_values(["job_id", "freelancer_id"])
    truth = (
        frames["simulator_truth"]
        .set_index(["job_id", "freelancer_id"])
        .loc[list(zip(apps.job_id, apps.freelancer_id, strict=True))]
    )
    return EvaluationSet(
        build_match_frame(apps, frames["jobs"], frames["freelancers"]),
        apps["outcome"].to_numpy(),
        truth["true_match_probability"].to_numpy(),
    )


def test_oracle_above_baselines_above_random(evaluation_set: EvaluationSet) -> None:
    scores = baseline_scores(evaluation_set, seed=3)
    ndcg = {name: ranking_metrics(evaluation_set, s)["ndcg_at_10"] for name, s in scores.items()}
    assert ndcg["oracle"] > ndcg["skill_overlap"] > ndcg["random"]
    assert ndcg["oracle"] > ndcg["popularity"] > ndcg["random"]


def test_log_loss_only_for_probabilities(evaluation_set: EvaluationSet) -> None:
    truth = evaluation_set.truth
    assert truth is not None
    assert "log_loss" in ranking_metrics(evaluation_set, truth, probabilistic=True)
    assert "log_loss" not in ranking_metrics(evaluation_set, truth)


def test_exposure_fairness_of_random_ranking_is_near_parity(evaluation_set: EvaluationSet) -> None:
    """A random order gives each region top-k slots in proportion to its applicants."""
    fairness = exposure_fairness(
        evaluation_set, np.random.default_rng(0).random(len(evaluation_set.relevance)), 10, 0.0, 200
    )
    big = [r for r in fairness.by_region.values() if r["qualified"] >= 200]
    assert big and all(0.8 < r["ratio"] < 1.2 for r in big)
    assert fairness.ratio == min(r["ratio"] for r in big)


def test_a_ranking_that_buries_one_region_is_unfair(evaluation_set: EvaluationSet) -> None:
    region = evaluation_set.frame["region"].to_numpy()
    score = np.where(region == "south_asia", -1.0, np.random.default_rng(1).random(len(region)))
    fairness = exposure_fairness(evaluation_set, score, 10, 0.0, 50)
    assert fairness.by_region["south_asia"]["ratio"] < 0.5 and fairness.ratio < 0.5


def test_slices_cover_jobs_and_freelancers(evaluation_set: EvaluationSet) -> None:
    truth = evaluation_set.truth
    assert truth is not None
    slices = slice_metrics(evaluation_set, truth)
    assert sum(s["jobs"] for s in slices["category"].values()) <= evaluation_set.frame["job_id"].nunique()
    assert set(slices["experience_level"]) == {"entry", "intermediate", "expert"}
    assert "south_asia" in slices["freelancer_region"]
    newcomers = slices["new_freelancers"]["no_completed_jobs"]
    assert newcomers["applications"] > 0 and 0 <= newcomers["hire_recall_at_10"] <= 1
