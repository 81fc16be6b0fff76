"""Reasons: LightGBM's path attributions from their leaf table equal the textbook walk down each tree, and add up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from gigmatch.data.snapshot import read_tables
from gigmatch.model.explain import PathAttributions, contributions, path_attributions_of, reason_contributions
from gigmatch.model.pipeline import estimator_of, features_of
from tests.conftest import match_columns_of, request_for


@pytest.fixture(scope="module")
def rows(ranker_model: Pipeline, training_snapshot: Path) -> np.ndarray:
    frames = read_tables(training_snapshot)
    jobs = frames["jobs"]["job_id"].iloc[[2, 30, 77, 120]]
    return features_of(ranker_model).transform(match_columns_of([request_for(int(j), frames) for j in jobs]))


def _walked(booster: Any, row: np.ndarray) -> tuple[np.ndarray, float]:
    """The plain version: follow the row down every tree, crediting each split's feature with the change in value."""
    credit, expected = np.zeros(len(row)), 0.0
    for tree in booster.dump_model()["tree_info"]:
        node = tree["tree_structure"]
        expected += node.get("internal_value", node.get("leaf_value"))
        while "leaf_index" not in node:
            value = row[node["split_feature"]]
            assert node["decision_type"] == "<=" and not np.isnan(value)
            child = node["left_child"] if value <= node["threshold"] else node["right_child"]
            change = child.get("internal_value", child.get("leaf_value")) - node["internal_value"]
            credit[node["split_feature"]] += change
            node = child
    return credit, expected


def test_the_leaf_table_gives_the_walk_down_each_tree(ranker_model: Pipeline, rows: np.ndarray) -> None:
    estimator = estimator_of(ranker_model)
    attributions = PathAttributions.of(estimator.booster_)
    table = attributions(rows)
    for i in range(0, len(rows), 7):
        credit, expected = _walked(estimator.booster_, rows[i])
        np.testing.assert_allclose(table[i], credit, rtol=1e-12, atol=1e-12)
        assert attributions.expected_score == pytest.approx(expected, rel=1e-12)
    # A row's attributions do not depend on the rows beside it.
    np.testing.assert_array_equal(attributions(rows[5:6])[0], table[5])


def test_path_attributions_add_up_to_the_raw_score(ranker_model: Pipeline, rows: np.ndarray) -> None:
    estimator = estimator_of(ranker_model)
    attributions = path_attributions_of(estimator)
    assert path_attributions_of(estimator) is attributions  # built once per model
    raw = estimator.booster_.predict(rows, raw_score=True)
    np.testing.assert_allclose(attributions(rows).sum(axis=1) + attributions.expected_score, raw, rtol=0, atol=1e-9)
    # So do SHAP values; the two agree in sign on the features that matter most.
    shap = contributions(estimator, rows)
    shap_expected = estimator.booster_.predict(rows, pred_contrib=True)[:, -1]
    np.testing.assert_allclose(shap.sum(axis=1) + shap_expected, raw, rtol=0, atol=1e-9)
    reasons = reason_contributions(estimator, rows)
    top = np.argsort(-np.abs(shap), axis=1)[:, :3]
    same_sign = np.sign(np.take_along_axis(shap, top, 1)) == np.sign(np.take_along_axis(reasons, top, 1))
    assert same_sign.mean() > 0.95
    unused = np.flatnonzero(estimator.booster_.feature_importance("split") == 0)
    assert (reasons[:, unused] == 0).all()


def test_the_table_scores_bit_for_bit_as_lightgbm_predicts(ranker_model: Pipeline, rows: np.ndarray) -> None:
    """The speed trick: one pass down the trees gives the scores too, the same bits as the model's own predict."""
    estimator = estimator_of(ranker_model)
    scores, effects = path_attributions_of(estimator).scores_and_contributions(rows)
    np.testing.assert_array_equal(scores, estimator.predict(rows))
    np.testing.assert_array_equal(effects, reason_contributions(estimator, rows))


def test_a_tree_of_one_leaf_scores_and_explains_like_lightgbm() -> None:
    """A round that finds no split (here: every label the same) leaves a one-leaf tree, dumped without an index."""
    from lightgbm import LGBMRanker

    rows = np.random.default_rng(0).normal(size=(60, 4))
    ranker = LGBMRanker(n_estimators=3, min_child_samples=5, verbose=-1).fit(rows, np.zeros(60), group=[20, 20, 20])
    trees = ranker.booster_.dump_model()["tree_info"]
    assert all("leaf_index" not in tree["tree_structure"] for tree in trees)
    scores, effects = path_attributions_of(ranker).scores_and_contributions(rows)
    np.testing.assert_array_equal(scores, ranker.predict(rows))
    assert (effects == 0).all()  # no split, no credit
    empty_scores, empty_effects = path_attributions_of(ranker).scores_and_contributions(rows[:0])
    assert empty_scores.shape == (0,) and empty_effects.shape == (0, 4)


def test_a_refitted_estimator_gets_a_new_table(ranker_model: Pipeline, rows: np.ndarray) -> None:
    from lightgbm import LGBMRanker

    ranker = LGBMRanker(n_estimators=5, min_child_samples=5, verbose=-1)
    labels = np.random.default_rng(1).integers(0, 3, size=len(rows))
    groups = [len(rows) // 2, len(rows) - len(rows) // 2]
    first = path_attributions_of(ranker.fit(rows, labels, group=groups))
    second = path_attributions_of(ranker.set_params(n_estimators=9).fit(rows, labels, group=groups))
    assert second is not first
    np.testing.assert_array_equal(second.scores_and_contributions(rows)[0], ranker.predict(rows))
