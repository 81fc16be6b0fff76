"""Match features: one scikit-learn transformer used by training and serving alike.

`MatchFeatures` turns a match frame (`gigmatch.features.match_frame`) into a numeric
matrix whose columns are `FEATURE_NAMES`. It is the first step of every logged model
pipeline, so serving never re-implements a feature. What it learns in `fit` (skill
rarity, the text vocabulary, fill values for missing ratings) comes from training
rows only.

`transform` takes the match frame as a pandas DataFrame (training, batch) or as
a mapping of column name to 1-d array (the API's request path, where building a
DataFrame would cost more than the features). Both give the same matrix.

Some features compare a candidate with the other applicants to the same job
(rank of skill coverage, rate against the job's median): a ranking is a
choice among competitors, and a request to the API carries all of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from gigmatch.data.market import (
    LEVEL_MAX_YEARS,
    LEVEL_MIN_YEARS,
    implied_hourly_budget,
    level_index,
    lookup,
    timezone_overlap_hours,
)
from gigmatch.data.taxonomy import DURATIONS
from gigmatch.features.lookups import FittedLookups, lookups_for
from gigmatch.features.match_frame import MATCH_COLUMNS, match_columns
from gigmatch.features.names import FEATURE_NAMES
from gigmatch.features.skills import fit_skill_vocabulary, skill_features
from gigmatch.features.text import paired_cosine
from gigmatch.groups import average_rank_descending, distinct_codes, group_median

# Bump when what `fit` learns or how `transform` computes changes, or when the class moves (its
# path is stored with every model): a model fitted by other feature code is refused instead of
# silently scored with this one. 3: the class moved to gigmatch.features.transformer.
FEATURES_VERSION = 3
_DURATION_INDEX = {name: i for i, name in enumerate(DURATIONS)}


class IncompatibleFeaturesError(ValueError):
    """The model was fitted by another version of this feature code."""


class MatchFeatures(TransformerMixin, BaseEstimator):
    """Match frame -> feature matrix (float64, columns `FEATURE_NAMES`).

    Parameters
    ----------
    text_max_features : int
        Size of the TF-IDF vocabulary for description/profile similarity.
    """

    def __init__(self, text_max_features: int = 20_000):
        self.text_max_features = text_max_features

    def fit(self, X: pd.DataFrame, y: object = None) -> MatchFeatures:
        if not isinstance(X, pd.DataFrame):  # fitting deduplicates jobs and freelancers: a frame it is
            raise TypeError(f"MatchFeatures.fit expects a match frame (pandas DataFrame), got {type(X).__name__}")
        match_columns(X)  # the same column check transform makes
        if self.text_max_features < 1:
            raise ValueError(f"text_max_features must be positive, got {self.text_max_features}")
        freelancers = X.drop_duplicates("freelancer_id")
        self.skill_vocabulary_, self.skill_rarity_, self.skill_category_ = fit_skill_vocabulary(
            X["required_skills"].to_numpy(), freelancers["skills"].to_numpy()
        )
        texts = pd.concat([X.drop_duplicates("job_id")["description"], freelancers["profile_text"]])
        self.text_vectorizer_ = TfidfVectorizer(
            max_features=self.text_max_features, sublinear_tf=True, min_df=2, dtype=np.float64
        ).fit(texts.astype(str))
        vocabulary = self.text_vectorizer_.vocabulary_
        self.term_idf_ = {term: float(self.text_vectorizer_.idf_[i]) for term, i in vocabulary.items()}
        self.rating_fill_ = float(np.nanmean(freelancers["rating"].to_numpy(dtype=float)))
        self.success_rate_fill_ = float(np.nanmean(freelancers["success_rate"].to_numpy(dtype=float)))
        self.features_version_ = FEATURES_VERSION
        self.n_features_in_ = len(MATCH_COLUMNS)
        self.feature_names_in_ = np.array(MATCH_COLUMNS, dtype=object)
        return self

    def transform(self, X: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        check_is_fitted(self, "text_vectorizer_")
        fitted_with = getattr(self, "features_version_", 1)
        if fitted_with != FEATURES_VERSION:
            raise IncompatibleFeaturesError(
                f"this model was fitted by features version {fitted_with}, this code computes version "
                f"{FEATURES_VERSION}: serve it with the gigmatch release it was trained with, or retrain"
            )
        columns = match_columns(X)
        lookups = lookups_for(self)
        features = skill_features(columns, lookups, self.skill_rarity_, self.skill_category_)
        features |= self._price_features(columns) | self._fit_features(columns) | self._record_features(columns)
        features["text_similarity"] = self._text_similarity(columns, lookups)
        features |= _within_job_features(columns["job_id"], features)
        return np.column_stack([np.asarray(features[name], dtype=np.float64) for name in FEATURE_NAMES])

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.array(FEATURE_NAMES, dtype=object)

    def _price_features(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        hourly_budget = implied_hourly_budget(columns["budget_type"], columns["budget_usd"], columns["duration"])
        gap = np.log(columns["hourly_rate_usd"].astype(float) / hourly_budget)
        return {
            "rate_budget_log_ratio": gap,
            "over_budget": np.maximum(gap, 0.0),
            "under_budget": np.maximum(-gap, 0.0),
            "log_implied_hourly_budget": np.log(hourly_budget),
            "is_hourly": (columns["budget_type"] == "hourly").astype(float),
            "duration": lookup(columns["duration"], _DURATION_INDEX, np.nan),
        }

    def _fit_features(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        level = level_index(columns["experience_level"])
        known = level >= 0
        years = columns["years_experience"].astype(float)
        floor = np.where(known, LEVEL_MIN_YEARS[np.maximum(level, 0)], np.nan)
        ceiling = np.where(known, LEVEL_MAX_YEARS[np.maximum(level, 0)], np.nan)
        overlap = timezone_overlap_hours(columns["utc_offset"], columns["client_utc_offset"])
        return {
            "years_experience": years,
            "experience_level": np.where(known, level, np.nan),
            "missing_years": np.maximum(floor - years, 0.0),
            "excess_years": np.maximum(years - ceiling, 0.0),
            "timezone_overlap": overlap,
            "timezone_shortfall": np.maximum(columns["timezone_overlap_hours"].astype(float) - overlap, 0.0),
        }

    def _record_features(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rating = columns["rating"].astype(float)
        success = columns["success_rate"].astype(float)
        jobs_done = columns["jobs_completed"].astype(float)
        return {
            "rating": np.where(np.isnan(rating), self.rating_fill_, rating),
            "has_rating": (~np.isnan(rating)).astype(float),
            "success_rate": np.where(np.isnan(success), self.success_rate_fill_, success),
            "log_jobs_completed": np.log1p(jobs_done),
            "is_newcomer": (jobs_done == 0).astype(float),
            "weekly_availability_hours": columns["weekly_availability_hours"].astype(float),
        }

    def _text_similarity(self, columns: Mapping[str, np.ndarray], lookups: FittedLookups) -> np.ndarray:
        """Cosine of the TF-IDF vectors of description and profile (see `gigmatch.features.text`).

        Each distinct text is vectorised once; recent ones are kept (`gigmatch.features.lookups`).
        """
        vectors = lookups.text_vectors
        description_rows, descriptions = distinct_codes(columns["description"])
        profile_rows, profiles = distinct_codes(columns["profile_text"])
        return paired_cosine(vectors.get_many(descriptions), description_rows, vectors.get_many(profiles), profile_rows)


def fitting_rows(match: pd.DataFrame) -> pd.DataFrame:
    """The rows `MatchFeatures.fit` learns from: each job's first row and each freelancer's first row, in order.

    `fit` reads a job's skills and description and a freelancer's profile once, from their
    first row, so it learns from these rows exactly what it learns from all of them. A frame
    too big for one process is reduced part by part and once more over the parts' rows (in
    the frame's order): the first rows of the whole frame are among each part's first rows.
    """
    first = ~match["job_id"].duplicated().to_numpy() | ~match["freelancer_id"].duplicated().to_numpy()
    return match.iloc[np.flatnonzero(first)].reset_index(drop=True)


def _within_job_features(job_id: np.ndarray, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each candidate against the other applicants to the same job (numpy only: cheap for one job)."""
    _, group = np.unique(job_id, return_inverse=True)
    size = np.bincount(group).astype(float)
    coverage, gap = columns["rare_skill_coverage"], columns["rate_budget_log_ratio"]
    rating, text = columns["rating"], columns["text_similarity"]
    n = size[group]
    rank = average_rank_descending(group, coverage)
    best = np.full(len(size), -np.inf)
    np.maximum.at(best, group, coverage)
    return {
        "coverage_rank_in_job": np.where(n > 1, (rank - 1.0) / np.maximum(n - 1.0, 1.0), 0.0),
        "coverage_vs_job_best": coverage - best[group],
        "rate_gap_vs_job_median": gap - group_median(group, gap)[group],
        "rating_vs_job_mean": rating - (np.bincount(group, weights=rating) / size)[group],
        "text_similarity_vs_job_mean": text - (np.bincount(group, weights=text) / size)[group],
        "n_applicants": n,
    }
