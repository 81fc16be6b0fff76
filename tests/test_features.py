"""One feature code path: training-time and serving-time features are identical."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from gigmatch.data.snapshot import read_tables
from gigmatch.features import lookups as feature_lookups
from gigmatch.features.match_frame import build_match_frame
from gigmatch.features.names import FEATURE_NAMES
from gigmatch.features.skills import rarity_sum
from gigmatch.features.transformer import MatchFeatures
from gigmatch.model.pipeline import TRUSTED_MODEL_TYPES, assemble_pipeline
from gigmatch.params import Params
from gigmatch.training.estimators import TrainingData, fit_estimator
from tests.conftest import match_columns_of, request_for


@pytest.fixture(scope="module")
def frames(training_snapshot: Path) -> dict[str, pd.DataFrame]:
    return read_tables(training_snapshot)


@pytest.fixture(scope="module")
def match(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    apps = frames["applications"].sort_values(["job_id", "freelancer_id"])
    return build_match_frame(apps, frames["jobs"], frames["freelancers"])


@pytest.fixture(scope="module")
def fitted(match: pd.DataFrame) -> MatchFeatures:
    return MatchFeatures(text_max_features=2000).fit(match)


def test_training_and_serving_features_are_identical(
    frames: dict[str, pd.DataFrame], match: pd.DataFrame, fitted: MatchFeatures
) -> None:
    training = fitted.transform(match)
    for job_id in frames["jobs"]["job_id"].iloc[[0, 57, 203, 399]]:
        job, candidates = request_for(int(job_id), frames)
        served = fitted.transform(match_columns_of([(job, candidates)]))  # as the API builds them
        rows = np.flatnonzero(match["job_id"].to_numpy() == job_id)
        np.testing.assert_array_equal(served, training[rows])


def test_features_are_finite_and_named(match: pd.DataFrame, fitted: MatchFeatures) -> None:
    matrix = fitted.transform(match)
    assert matrix.shape == (len(match), len(FEATURE_NAMES)) and np.isfinite(matrix).all()
    assert list(fitted.get_feature_names_out()) == list(FEATURE_NAMES)


def test_scikit_learn_conventions(match: pd.DataFrame) -> None:
    features = MatchFeatures(text_max_features=500)
    assert features.get_params() == {"text_max_features": 500}
    with pytest.raises(NotFittedError):
        features.transform(match)
    first = clone(features).fit(match).transform(match)
    np.testing.assert_array_equal(first, clone(features).fit(match).transform(match))
    with pytest.raises(ValueError, match="text_max_features"):
        MatchFeatures(text_max_features=0).fit(match)
    with pytest.raises(ValueError, match="missing columns: skills"):
        MatchFeatures().fit(match.drop(columns=["skills"]))


def test_within_job_features_see_the_competition(match: pd.DataFrame, fitted: MatchFeatures) -> None:
    one_job = match[match["job_id"] == match["job_id"].iloc[0]]
    alone = fitted.transform(one_job.iloc[[0]])
    together = fitted.transform(one_job)[0]
    names = list(FEATURE_NAMES)
    assert alone[0, names.index("n_applicants")] == 1 and together[names.index("n_applicants")] == len(one_job)
    np.testing.assert_array_equal(
        alone[0, : names.index("text_similarity") + 1], together[: names.index("text_similarity") + 1]
    )


def test_rarity_sums_do_not_depend_on_the_rows_summed_with_them() -> None:
    # The API ranks the requests that arrive together in one pass, so a row's features must be the
    # same bits in any batch; a BLAS matrix product (`indicator @ rarity`) fails this check.
    rng = np.random.default_rng(1)
    rarity = -np.log(rng.random(149))
    indicator = rng.random((400, 149)) < 0.05
    together = rarity_sum(indicator, rarity)
    for size in (1, 3, 7):
        for lo in range(0, len(indicator), size):
            np.testing.assert_array_equal(rarity_sum(indicator[lo : lo + size], rarity), together[lo : lo + size])


def test_unknown_skills_are_ignored_not_fatal(match: pd.DataFrame, fitted: MatchFeatures) -> None:
    rows = match.head(3).copy()
    rows["skills"] = rows["skills"] + " quantum_basket_weaving"
    np.testing.assert_array_equal(fitted.transform(rows), fitted.transform(match.head(3)))


def test_missing_ratings_are_filled_from_training(match: pd.DataFrame, fitted: MatchFeatures) -> None:
    rows = match.head(2).copy()
    rows["rating"] = np.nan
    matrix = fitted.transform(rows)
    names = list(FEATURE_NAMES)
    assert (matrix[:, names.index("rating")] == fitted.rating_fill_).all()
    assert (matrix[:, names.index("has_rating")] == 0).all()


@pytest.mark.parametrize("name", ["logistic", "gbm_classifier", "lambdarank"])
def test_every_model_kind_serialises_with_the_trusted_types_only(
    name: str, params: Params, match: pd.DataFrame, fitted: MatchFeatures, frames: dict[str, pd.DataFrame]
) -> None:
    rows = slice(0, 2000)
    apps = frames["applications"].sort_values(["job_id", "freelancer_id"])
    data = TrainingData(
        fitted.transform(match.iloc[rows]), apps["outcome"].to_numpy()[rows], apps["job_id"].to_numpy()[rows]
    )
    spec = params.train.models[name]
    pipeline = assemble_pipeline(fitted, fit_estimator(spec.kind, spec.params, data, seed=0, n_jobs=1))
    untrusted = set(sio.get_untrusted_types(data=sio.dumps(pipeline)))
    assert untrusted <= set(TRUSTED_MODEL_TYPES)
    loaded = sio.loads(sio.dumps(pipeline), trusted=list(TRUSTED_MODEL_TYPES))
    np.testing.assert_array_equal(
        np.asarray(loaded.predict(match.head(50))), np.asarray(pipeline.predict(match.head(50)))
    )


def test_a_model_fitted_by_other_feature_code_is_refused(match: pd.DataFrame) -> None:
    fitted = MatchFeatures(text_max_features=500).fit(match)
    fitted.features_version_ = 1
    with pytest.raises(ValueError, match="fitted by features version 1"):
        fitted.transform(match.head(3))


def test_columns_and_frame_give_the_same_features(match: pd.DataFrame, fitted: MatchFeatures) -> None:
    one_job = match[match["job_id"] == match["job_id"].iloc[7]]
    columns = {name: one_job[name].to_numpy() for name in one_job.columns}
    np.testing.assert_array_equal(fitted.transform(columns), fitted.transform(one_job))
    with pytest.raises(ValueError, match="differ in length"):
        fitted.transform({**columns, "rating": columns["rating"][:-1]})


def test_cached_lookups_change_nothing_and_stay_bounded(
    match: pd.DataFrame, fitted: MatchFeatures, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = match.head(600)
    uncached = clone(fitted).fit(match)  # a fresh instance: its own, empty lookups
    monkeypatch.setattr(feature_lookups, "TEXT_CACHE_SIZE", 5)
    monkeypatch.setattr(feature_lookups, "SKILL_CACHE_SIZE", 3)
    small = clone(fitted).fit(match)
    first = small.transform(sample)
    again = small.transform(sample)  # hits for the texts still held, misses for the evicted ones
    assert np.array_equal(first, again)
    assert np.array_equal(first, uncached.transform(sample))
    lookups = feature_lookups.lookups_for(small)
    assert len(lookups.text_vectors) <= 5 and len(lookups.skill_rows) <= 3
    # The lookups live beside the transformer, not in it: what skops saves is unchanged.
    assert set(vars(small)) == set(vars(clone(fitted).fit(match)))


def test_refitting_starts_new_lookups(match: pd.DataFrame) -> None:
    features = MatchFeatures(text_max_features=50).fit(match)
    narrow = features.transform(match.head(200))[:, FEATURE_NAMES.index("text_similarity")]
    features.set_params(text_max_features=2000).fit(match)
    wide = features.transform(match.head(200))[:, FEATURE_NAMES.index("text_similarity")]
    fresh = MatchFeatures(text_max_features=2000).fit(match).transform(match.head(200))
    assert np.array_equal(wide, fresh[:, FEATURE_NAMES.index("text_similarity")])
    assert not np.array_equal(narrow, wide)
    assert feature_lookups.lookups_for(features).is_for(features)


def test_rows_sharing_ids_but_not_texts_keep_their_own_texts(match: pd.DataFrame, fitted: MatchFeatures) -> None:
    """Text similarity follows the text, not the id: a profile updated between two rows is read as written."""
    rows = match.head(2).copy()
    rows["freelancer_id"] = rows["freelancer_id"].iloc[0]
    rows["job_id"] = rows["job_id"].iloc[0]
    assert rows["profile_text"].nunique() == 2
    column = FEATURE_NAMES.index("text_similarity")
    each_alone = [fitted.transform(rows.iloc[[i]])[0, column] for i in range(2)]
    assert fitted.transform(rows)[:, column].tolist() == each_alone


@pytest.mark.slow  # the pinned snapshot (regenerated when data/ is absent) and a fit on its training split: ~25 s
def test_text_similarity_is_scikit_learns_tfidf_cosine_on_the_pinned_data(
    pinned_snapshot: Path, params: Params
) -> None:
    """The fast text cosine (shared terms only, cached vectors) against the plain computation: the fitted
    TfidfVectorizer's own L2-normalised vectors of each row's description and profile, multiplied out."""
    from gigmatch.training.splits import split_snapshot

    sets = split_snapshot(read_tables(pinned_snapshot), params.split)
    fitted = MatchFeatures(text_max_features=params.train.text_max_features).fit(sets.train.frame)
    rows = pd.concat([s.frame for s in sets.by_name().values()], ignore_index=True)
    ours = fitted.transform(rows)[:, FEATURE_NAMES.index("text_similarity")]

    vectorizer = fitted.text_vectorizer_
    descriptions, description_row = np.unique(rows["description"].to_numpy(dtype=str), return_inverse=True)
    profiles, profile_row = np.unique(rows["profile_text"].to_numpy(dtype=str), return_inverse=True)
    plain = vectorizer.transform(descriptions)[description_row].multiply(vectorizer.transform(profiles)[profile_row])
    expected = np.asarray(plain.sum(axis=1)).ravel()
    assert len(ours) > 100_000 and (expected > 0).mean() > 0.5  # the whole snapshot, mostly texts that share terms
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
