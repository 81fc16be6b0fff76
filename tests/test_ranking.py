"""Ranking several jobs in one pass: each job exactly as alone; the fast scoring paths agree with the slow ones."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from gigmatch.data.snapshot import read_tables
from gigmatch.features import text
from gigmatch.features.text import TextVector, paired_cosine
from gigmatch.model.bundle import load_bundle
from gigmatch.model.explain import is_scaled_linear, scaled_linear_scores
from gigmatch.model.pipeline import estimator_of, features_of, match_scores
from gigmatch.model.ranking import Ranking, rank_many
from tests.conftest import match_columns_of, rank_alone, request_for


@pytest.fixture(scope="module")
def linear_model(bundle_dir: Path) -> Pipeline:
    return load_bundle(bundle_dir).model


@pytest.fixture(scope="module", params=["logistic", "lambdarank"])
def model(request: pytest.FixtureRequest, linear_model: Pipeline, ranker_model: Pipeline) -> Pipeline:
    """Each test runs on both reason paths: the linear model's own and LightGBM's path attributions."""
    return linear_model if request.param == "logistic" else ranker_model


@pytest.fixture(scope="module")
def requests(training_snapshot: Path) -> list[tuple[dict, list[dict]]]:
    frames = read_tables(training_snapshot)
    return [request_for(int(job_id), frames) for job_id in frames["jobs"]["job_id"].iloc[[3, 40, 41, 90, 150]]]


def _same(a: Ranking, b: Ranking) -> None:
    for field in ("freelancer_ids", "features", "scores", "order", "reason_features", "reason_effects"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.ranked() == b.ranked()


def test_each_job_in_a_batch_ranks_exactly_as_alone(model: Pipeline, requests: list) -> None:
    # The same job twice, once with fewer candidates: the two must not compete with each other.
    job, candidates = requests[0]
    batch = [*requests, (job, candidates[: len(candidates) // 2])]
    top_ks = [None, 3, None, 1, None, 2]
    together = rank_many(model, match_columns_of(batch), [len(c) for _, c in batch], top_ks, 3)
    for (job, candidates), top_k, ranking in zip(batch, top_ks, together, strict=True):
        assert isinstance(ranking, Ranking)
        _same(ranking, rank_alone(model, match_columns_of([(job, candidates)]), top_k))
        assert len(ranking.ranked()) == (top_k or len(candidates))


def test_a_job_that_cannot_be_scored_fails_alone(model: Pipeline, requests: list) -> None:
    (job, candidates), (other_job, other_candidates) = requests[:2]
    broken = [{**candidates[0], "hourly_rate_usd": 0.0}, *candidates[1:]]  # log(0): not a finite feature
    batch = [(job, broken), (other_job, other_candidates)]
    first, second = rank_many(model, match_columns_of(batch), [len(broken), len(other_candidates)], [None, None], 3)
    assert isinstance(first, ValueError) and "rate_budget_log_ratio" in str(first)
    assert isinstance(second, Ranking)
    _same(second, rank_alone(model, match_columns_of([(other_job, other_candidates)])))
    with pytest.raises(ValueError, match="no candidates"):
        rank_many(model, match_columns_of([(job, [])]), [0], [None], 3)


def test_the_linear_shortcut_agrees_with_scikit_learn(linear_model: Pipeline, requests: list) -> None:
    estimator = estimator_of(linear_model)
    assert is_scaled_linear(estimator)
    features = features_of(linear_model).transform(match_columns_of(requests))
    scores, effects = scaled_linear_scores(estimator, features)
    np.testing.assert_allclose(scores, match_scores(estimator, features), rtol=1e-12, atol=0)
    scaler, linear = estimator.steps[0][1], estimator.steps[1][1]
    np.testing.assert_array_equal(effects, scaler.transform(features) * linear.coef_[0])
    # A row scores the same bits alone as among others.
    assert scaled_linear_scores(estimator, features[5:6])[0][0] == scores[5]


@pytest.mark.parametrize("table_cells", [1 << 22, 40], ids=["one pass", "blocks of descriptions"])
def test_paired_cosine_is_the_term_by_term_sum_bit_for_bit(table_cells: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text, "_TABLE_CELLS", table_cells)
    rng = random.Random(7)

    def vector(size: int) -> tuple[TextVector, dict[int, float]]:
        terms = rng.sample(range(60), size)
        weights = np.array([rng.random() for _ in terms])
        weights /= np.sqrt(np.sum(weights**2))
        return TextVector.of(terms, weights), dict(zip(terms, weights.tolist(), strict=True))

    descriptions = [vector(rng.randint(0, 25)) for _ in range(6)]
    profiles = [vector(rng.randint(0, 25)) for _ in range(30)]
    description_rows = [rng.randrange(6) for _ in range(200)]
    profile_rows = [rng.randrange(30) for _ in range(200)]
    expected = []
    for j, p in zip(description_rows, profile_rows, strict=True):
        a, b = descriptions[j][1], profiles[p][1]
        if len(a) > len(b):
            a, b = b, a
        expected.append(sum([weight * b[t] for t, weight in a.items() if t in b]))
    got = paired_cosine([d[0] for d in descriptions], description_rows, [p[0] for p in profiles], profile_rows)
    assert got.tolist() == expected
    assert paired_cosine([], [], [], []).shape == (0,)


def test_ranking_a_frame_and_its_columns_agree(model: Pipeline, requests: list) -> None:
    job, candidates = requests[2]
    columns = match_columns_of([(job, candidates)])
    _same(rank_alone(model, pd.DataFrame(columns)), rank_alone(model, columns))
