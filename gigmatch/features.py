"""Match features: one scikit-learn transformer used by training and serving alike.

`MatchFeatures` turns a match frame (`gigmatch.matching`) into a numeric matrix.
It is the first step of every logged model pipeline, so serving never
re-implements a feature. What it learns in `fit` (skill rarity, the text
vocabulary, fill values for missing ratings) comes from training rows only.

`transform` takes the match frame as a pandas DataFrame (training, batch) or as
a mapping of column name to 1-d array (the API's request path, where building a
DataFrame would cost more than the features). Both give the same matrix.

Some features compare a candidate with the other applicants to the same job
(rank of skill coverage, rate against the job's median): a ranking is a
choice among competitors, and a request to the API carries all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from gigmatch.feature_lookups import FittedLookups, lookups_for, skill_indicator_row
from gigmatch.market import (
    LEVEL_MAX_YEARS,
    LEVEL_MIN_YEARS,
    implied_hourly_budget,
    level_index,
    lookup,
    timezone_overlap_hours,
)
from gigmatch.matching import MATCH_COLUMNS, distinct_codes, match_columns
from gigmatch.taxonomy import DURATIONS, SKILLS
from gigmatch.text_match import paired_cosine

FEATURE_NAMES: tuple[str, ...] = (
    "skill_coverage",
    "rare_skill_coverage",
    "related_skill_coverage",
    "n_required_skills",
    "n_freelancer_skills",
    "rate_budget_log_ratio",
    "over_budget",
    "under_budget",
    "log_implied_hourly_budget",
    "is_hourly",
    "duration",
    "years_experience",
    "experience_level",
    "missing_years",
    "excess_years",
    "timezone_overlap",
    "timezone_shortfall",
    "rating",
    "has_rating",
    "success_rate",
    "log_jobs_completed",
    "is_newcomer",
    "weekly_availability_hours",
    "text_similarity",
    "coverage_rank_in_job",
    "coverage_vs_job_best",
    "rate_gap_vs_job_median",
    "rating_vs_job_mean",
    "text_similarity_vs_job_mean",
    "n_applicants",
)
# Bump when what `fit` learns or how `transform` computes changes: a model fitted by
# other feature code is refused instead of silently scored with this one.
FEATURES_VERSION = 2
_SKILL_CATEGORY = {s.slug: s.category for s in SKILLS}
_SKILL_BLOCK = 65_536  # rows per dense skill-indicator block
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
        texts = pd.concat([X["required_skills"], freelancers["skills"]]).to_numpy()
        self.skill_vocabulary_ = np.array(sorted({s for text in texts for s in str(text).split()}), dtype=object)
        index = {s: i for i, s in enumerate(self.skill_vocabulary_)}
        held = _skill_indicator(freelancers["skills"].to_numpy(), index)
        share = (held.sum(axis=0) + 1.0) / (len(freelancers) + 1.0)
        self.skill_rarity_ = -np.log(share)
        categories = sorted({_SKILL_CATEGORY.get(s, f"other:{s}") for s in self.skill_vocabulary_})
        self.skill_category_ = np.array(
            [categories.index(_SKILL_CATEGORY.get(s, f"other:{s}")) for s in self.skill_vocabulary_], dtype=np.int64
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
        features = self._skill_features(columns, lookups) | self._price_features(columns) | self._fit_features(columns)
        features |= self._record_features(columns)
        features["text_similarity"] = self._text_similarity(columns, lookups)
        features |= _within_job_features(columns["job_id"], features)
        return np.column_stack([np.asarray(features[name], dtype=np.float64) for name in FEATURE_NAMES])

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.array(FEATURE_NAMES, dtype=object)

    def _skill_features(self, columns: Mapping[str, np.ndarray], lookups: FittedLookups) -> dict[str, np.ndarray]:
        index, to_category = lookups.skill_index, lookups.skill_to_category
        n = len(columns["job_id"])
        names = ("skill_coverage", "rare_skill_coverage", "related_skill_coverage", "n_required_skills")
        out = {name: np.empty(n) for name in (*names, "n_freelancer_skills")}
        # Dense indicator blocks: cheap for one request, bounded memory for a million rows. What depends
        # on one skill list alone is computed once per distinct list: a job's repeats on every candidate's row.
        for lo in range(0, n, _SKILL_BLOCK):
            block = slice(lo, min(lo + _SKILL_BLOCK, n))
            required_rows, required_lists = _distinct_skill_indicator(
                columns["required_skills"][block], index, lookups.skill_rows.get_many
            )
            held_rows, held_lists = _distinct_skill_indicator(
                columns["skills"][block], index, lookups.skill_rows.get_many
            )
            required, held = required_lists[required_rows], held_lists[held_rows]
            covered = required & held
            n_required = np.count_nonzero(required_lists, axis=1).astype(float)[required_rows]
            # A missing skill is related when the freelancer holds another skill of its category.
            in_held_category = ((held_lists @ to_category) > 0)[:, self.skill_category_][held_rows]
            related = np.count_nonzero(required & ~held & in_held_category, axis=1)
            out["skill_coverage"][block] = _safe_divide(np.count_nonzero(covered, axis=1), n_required)
            out["rare_skill_coverage"][block] = _safe_divide(
                _rarity_sum(covered, self.skill_rarity_), _rarity_sum(required_lists, self.skill_rarity_)[required_rows]
            )
            out["related_skill_coverage"][block] = _safe_divide(related, n_required)
            out["n_required_skills"][block] = n_required
            out["n_freelancer_skills"][block] = np.count_nonzero(held_lists, axis=1)[held_rows]
        return out

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
        """Cosine of the TF-IDF vectors of description and profile (see `gigmatch.text_match`).

        Each distinct text is vectorised once; recent ones are kept (`gigmatch.feature_lookups`).
        """
        vectors = lookups.text_vectors
        description_rows, descriptions = distinct_codes(columns["description"])
        profile_rows, profiles = distinct_codes(columns["profile_text"])
        return paired_cosine(vectors.get_many(descriptions), description_rows, vectors.get_many(profiles), profile_rows)


def _skill_indicator(
    skill_strings: np.ndarray,
    index: dict[str, int],
    rows_of: Callable[[list[str]], list[bytes]] | None = None,
) -> np.ndarray:
    """Rows x skill vocabulary boolean matrix; skills outside the vocabulary are ignored."""
    rows, indicator = _distinct_skill_indicator(skill_strings, index, rows_of)
    return indicator[rows]


def _distinct_skill_indicator(
    skill_strings: np.ndarray,
    index: dict[str, int],
    rows_of: Callable[[list[str]], list[bytes]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distinct skill list, and the distinct lists x skill vocabulary boolean matrix.

    Each distinct skill list is parsed once (by `rows_of`, e.g. a memo, when given).
    """
    row_codes, texts = distinct_codes(skill_strings)
    rows = rows_of(texts) if rows_of else [skill_indicator_row(text, index) for text in texts]
    return row_codes, np.frombuffer(b"".join(rows), dtype=bool).reshape(len(rows), len(index))


def _rarity_sum(indicator: np.ndarray, rarity: np.ndarray) -> np.ndarray:
    """Per row, the rarity of the skills it holds, added up.

    Each row is summed on its own, not by a matrix product: a BLAS product's bits
    for a row depend on which rows it is given with, and a candidate's features
    must not depend on the other requests in its batch.
    """
    return np.where(indicator, rarity, 0.0).sum(axis=1)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=float).ravel()
    denominator = np.asarray(denominator, dtype=float).ravel()
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _within_job_features(job_id: np.ndarray, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each candidate against the other applicants to the same job (numpy only: cheap for one job)."""
    _, group = np.unique(job_id, return_inverse=True)
    size = np.bincount(group).astype(float)
    coverage, gap = columns["rare_skill_coverage"], columns["rate_budget_log_ratio"]
    rating, text = columns["rating"], columns["text_similarity"]
    n = size[group]
    rank = _average_rank_descending(group, coverage)
    best = np.full(len(size), -np.inf)
    np.maximum.at(best, group, coverage)
    return {
        "coverage_rank_in_job": np.where(n > 1, (rank - 1.0) / np.maximum(n - 1.0, 1.0), 0.0),
        "coverage_vs_job_best": coverage - best[group],
        "rate_gap_vs_job_median": gap - _group_median(group, gap)[group],
        "rating_vs_job_mean": rating - (np.bincount(group, weights=rating) / size)[group],
        "text_similarity_vs_job_mean": text - (np.bincount(group, weights=text) / size)[group],
        "n_applicants": n,
    }


def _average_rank_descending(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """1-based rank of each value within its group, largest first, ties sharing their average rank."""
    order = np.lexsort((-value, group))
    g, v = group[order], value[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    position = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)])) + 1.0
    tie_start = np.r_[True, (g[1:] != g[:-1]) | (v[1:] != v[:-1])]
    tie_id = np.cumsum(tie_start) - 1
    tie_mean = np.bincount(tie_id, weights=position) / np.bincount(tie_id)
    rank = np.empty(len(g))
    rank[order] = tie_mean[tie_id]
    return rank


def _group_median(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Median of `value` per group (groups numbered 0..k-1)."""
    order = np.lexsort((value, group))
    g, v = group[order], value[order]
    counts = np.bincount(g)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    low = starts + (counts - 1) // 2
    high = starts + counts // 2
    return (v[low] + v[high]) / 2.0


def skill_coverage(frame: pd.DataFrame) -> np.ndarray:
    """Share of each row's required skills that the freelancer lists (no fitting needed)."""
    required_texts, skill_texts = frame["required_skills"].to_numpy(), frame["skills"].to_numpy()
    index = {s: i for i, s in enumerate(sorted({s for t in (*required_texts, *skill_texts) for s in str(t).split()}))}
    coverage = np.empty(len(frame))
    for lo in range(0, len(frame), _SKILL_BLOCK):
        block = slice(lo, lo + _SKILL_BLOCK)
        required = _skill_indicator(required_texts[block], index)
        covered = required & _skill_indicator(skill_texts[block], index)
        coverage[block] = _safe_divide(covered.sum(axis=1), required.sum(axis=1))
    return coverage


FEATURE_LABELS: dict[str, str] = {
    "skill_coverage": "share of the required skills listed",
    "rare_skill_coverage": "coverage of the rarer required skills",
    "related_skill_coverage": "missing skills in categories the freelancer works in",
    "n_required_skills": "number of required skills",
    "n_freelancer_skills": "number of skills listed",
    "rate_budget_log_ratio": "hourly rate against the budget",
    "over_budget": "rate above the budget",
    "under_budget": "rate below the budget",
    "log_implied_hourly_budget": "size of the budget",
    "is_hourly": "hourly rather than fixed budget",
    "duration": "length of the job",
    "years_experience": "years of experience",
    "experience_level": "experience level asked for",
    "missing_years": "experience short of the level asked for",
    "excess_years": "experience far above the level asked for",
    "timezone_overlap": "working hours shared with the client",
    "timezone_shortfall": "overlap short of what the client needs",
    "rating": "client rating",
    "has_rating": "has been rated",
    "success_rate": "job success rate",
    "log_jobs_completed": "jobs completed",
    "is_newcomer": "no completed jobs yet",
    "weekly_availability_hours": "weekly availability",
    "text_similarity": "profile text matches the job description",
    "coverage_rank_in_job": "skill coverage rank among the applicants",
    "coverage_vs_job_best": "skill coverage against the best applicant",
    "rate_gap_vs_job_median": "rate against the other applicants",
    "rating_vs_job_mean": "rating against the other applicants",
    "text_similarity_vs_job_mean": "text match against the other applicants",
    "n_applicants": "number of applicants",
}
