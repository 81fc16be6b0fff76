"""Will drift hurt the model? Two estimates that need no outcomes, and the real figure when outcomes are in.

- Reliance: how much of the model's scoring rests on each feature, the mean
  absolute contribution (`gigmatch.model.explain.contributions`: exact SHAP values
  for LightGBM, coefficient x standardised value for the linear model) on
  reference rows, as shares that sum to 1. Drift in a column the model barely
  uses then weighs little.
- Expected NDCG@k: what the model's NDCG would be on a batch if its scores mean
  what they meant on the reference (confidence-based performance estimation, as
  NannyML's CBPE does for classifiers). The probability of each outcome grade
  given the score is fitted on the reference (isotonic regression of "grade at
  least g" on the score, for each g), outcomes are drawn from it for every row,
  and NDCG@k is averaged over the draws. A batch whose jobs offer fewer good
  candidates, or whose candidates the model cannot tell apart, scores lower. The
  same estimate on the reference is the yardstick, so the fit's bias cancels.
- Live NDCG@k: the real thing, once outcomes are known.

Every draw comes from a fixed seed: the same batch gets the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from gigmatch.data.contract import OUTCOMES
from gigmatch.features.names import FEATURE_NAMES
from gigmatch.model.explain import contributions
from gigmatch.monitoring.frame import OUTCOME, SCORE
from gigmatch.training.ranking_metrics import ndcg_per_group

RELIANCE_ROWS = 5000  # reference rows the reliance is measured on (shares move in the third decimal beyond)
EXPECTED_NDCG_MAX_JOBS = 2000  # jobs of a frame the expected NDCG is drawn on (the reference is capped)
_SEED = 20261201


def model_reliance(estimator: BaseEstimator, reference: pd.DataFrame) -> dict[str, float]:
    """Each feature's share of the model's mean absolute contribution, on a fixed sample of reference rows."""
    rows = reference if len(reference) <= RELIANCE_ROWS else reference.sample(RELIANCE_ROWS, random_state=_SEED)
    strength = np.abs(contributions(estimator, rows.loc[:, list(FEATURE_NAMES)].to_numpy(np.float64))).mean(axis=0)
    total = float(strength.sum())
    shares = strength / total if total > 0 else np.full(len(FEATURE_NAMES), 1.0 / len(FEATURE_NAMES))
    return {name: float(share) for name, share in zip(FEATURE_NAMES, shares, strict=True)}


@dataclass(frozen=True)
class GradeCalibration:
    """P(outcome grade >= g | score) for g = 1, 2, 3, fitted on rows whose outcomes are known."""

    at_least: tuple[IsotonicRegression, ...]

    @classmethod
    def fit(cls, score: np.ndarray, outcome: np.ndarray) -> GradeCalibration:
        fits = []
        for grade in OUTCOMES[1:]:
            model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            fits.append(model.fit(score, (outcome >= grade).astype(np.float64)))
        return cls(tuple(fits))

    def cumulative(self, score: np.ndarray) -> np.ndarray:
        """Rows x grades 1..3: the probability of at least that grade, non-increasing across grades."""
        columns = np.column_stack([fit.predict(score) for fit in self.at_least])
        return np.minimum.accumulate(columns, axis=1)


def expected_ndcg(
    job_id: np.ndarray, score: np.ndarray, calibration: GradeCalibration, k: int, draws: int, seed: int = _SEED
) -> float:
    """Mean NDCG@k over `draws` sets of outcomes drawn from the calibration (jobs capped, chosen by seed)."""
    job_id, score = np.asarray(job_id), np.asarray(score, dtype=np.float64)
    rng = np.random.default_rng(seed)
    jobs = np.unique(job_id)
    if len(jobs) > EXPECTED_NDCG_MAX_JOBS:
        keep = np.isin(job_id, rng.choice(jobs, EXPECTED_NDCG_MAX_JOBS, replace=False))
        job_id, score = job_id[keep], score[keep]
    _, group = np.unique(job_id, return_inverse=True)
    cumulative = calibration.cumulative(score)
    n_groups = int(group.max()) + 1 if len(group) else 0
    uniform = rng.random((draws, len(score)))
    # One uniform per row and draw gives an ordinal grade: at least g where it falls under P(grade >= g).
    grades = (uniform[:, :, None] < cumulative[None, :, :]).sum(axis=2)
    groups = (group[None, :] + n_groups * np.arange(draws)[:, None]).ravel()
    _, values = ndcg_per_group(groups, np.tile(score, draws), grades.ravel(), k)
    return float(values.mean()) if len(values) else float("nan")


@dataclass(frozen=True)
class ReferenceQuality:
    """The reference side of the expected-quality rule: its calibration and its own expected NDCG@k.

    Computed once per reference (1.4 s of the gate's 4.5 s on the default data's 84,000
    reference rows); a caller judging many batches against one reference passes it in.
    """

    calibration: GradeCalibration
    expected_ndcg: float

    @classmethod
    def of(cls, reference: pd.DataFrame, k: int, draws: int) -> ReferenceQuality | None:
        """From the reference's rows with known outcomes; None when it has none."""
        if OUTCOME not in reference.columns:
            return None
        known = reference[reference[OUTCOME].notna()]
        if known.empty:
            return None
        score = known[SCORE].to_numpy()
        calibration = GradeCalibration.fit(score, known[OUTCOME].to_numpy())
        return cls(calibration, expected_ndcg(known["job_id"].to_numpy(), score, calibration, k, draws))


def live_ndcg(job_id: np.ndarray, score: np.ndarray, outcome: np.ndarray, k: int) -> tuple[float, int]:
    """NDCG@k of the scores against known outcomes, and over how many jobs (those with a relevant row)."""
    _, per_job = ndcg_per_group(np.asarray(job_id), np.asarray(score), np.asarray(outcome).astype(int), k)
    return (float(per_job.mean()) if len(per_job) else float("nan")), len(per_job)
