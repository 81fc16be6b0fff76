"""The gate's two model-aware rules: reliance-weighted drift and expected NDCG without outcomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gigmatch.features.names import FEATURE_NAMES
from gigmatch.model.bundle import load_bundle
from gigmatch.model.pipeline import estimator_of
from gigmatch.monitoring.frame import SCORE
from gigmatch.monitoring.quality import GradeCalibration, ReferenceQuality, expected_ndcg, model_reliance
from gigmatch.monitoring.rules import evaluate_drift
from gigmatch.params import Params


@pytest.fixture(scope="module")
def reference(drift_reference: Path) -> pd.DataFrame:
    return pd.read_parquet(drift_reference)


@pytest.fixture(scope="module")
def reliance(bundle_dir: Path, reference: pd.DataFrame) -> dict[str, float]:
    return model_reliance(estimator_of(load_bundle(bundle_dir).model), reference)


def _half(frame: pd.DataFrame, first: bool) -> pd.DataFrame:
    jobs = np.sort(frame["job_id"].unique())
    keep = jobs[: len(jobs) // 2] if first else jobs[len(jobs) // 2 :]
    return frame[frame["job_id"].isin(keep)].reset_index(drop=True)


def test_reliance_is_a_share_per_feature(reliance: dict[str, float]) -> None:
    assert list(reliance) == list(FEATURE_NAMES)
    assert all(share >= 0 for share in reliance.values()) and sum(reliance.values()) == pytest.approx(1.0)
    assert max(reliance.values()) < 0.5  # no single feature carries the model


def test_drift_the_model_ignores_warns_and_drift_it_leans_on_blocks(
    params: Params, reference: pd.DataFrame, reliance: dict[str, float]
) -> None:
    baseline, current = _half(reference, True), _half(reference, False)
    by_reliance = sorted(reliance, key=reliance.__getitem__)
    ignored = next(c for c in by_reliance if reference[c].std() > 0)
    # The features the model leans on most, just enough of them to carry the rule's share.
    carried = np.cumsum([reliance[c] for c in reversed(by_reliance)])
    leaned_on = list(reversed(by_reliance))[: int(np.searchsorted(carried, params.drift.max_reliance_drifted)) + 1]

    def shifted(columns: list[str]) -> pd.DataFrame:
        return current.assign(**{c: current[c] + 3 * reference[c].std() for c in columns})

    quiet = evaluate_drift(baseline, shifted([ignored]), params.drift, reliance=reliance)
    assert ignored in {c.column for c in quiet.columns if c.drifted}
    assert "dataset_drift" in quiet.warnings and not quiet.drift_detected
    loud = evaluate_drift(baseline, shifted(leaned_on), params.drift, reliance=reliance)
    rule = next(r for r in loud.rules if r.rule == "reliance_drift")
    assert loud.drift_detected and "reliance_drift" in loud.failed_rules
    assert rule.value == pytest.approx(sum(reliance[c] for c in leaned_on), abs=1e-6)
    assert leaned_on[0] in rule.detail


def test_expected_ndcg_sees_a_model_that_cannot_tell_candidates_apart(params: Params, reference: pd.DataFrame) -> None:
    baseline, current = _half(reference, True), _half(reference, False)
    on_reference = ReferenceQuality.of(baseline, params.drift.ndcg_k, params.drift.expected_ndcg_draws)
    assert on_reference is not None
    same = evaluate_drift(baseline, current.drop(columns="outcome"), params.drift, reference_quality=on_reference)
    rule = next(r for r in same.rules if r.rule == "expected_ranking_quality")
    assert rule.passed and abs(rule.value or 0) < params.drift.max_expected_ndcg_drop
    # Jobs whose candidates all look alike to the model: the ranking it gives cannot be good.
    flat = current.assign(**{SCORE: current.groupby("job_id")[SCORE].transform("mean")})
    blind = evaluate_drift(baseline, flat.drop(columns="outcome"), params.drift, reference_quality=on_reference)
    rule = next(r for r in blind.rules if r.rule == "expected_ranking_quality")
    assert not rule.passed and rule.blocks and blind.drift_detected


def test_expected_ndcg_is_seeded_and_near_the_real_figure_on_the_reference(reference: pd.DataFrame) -> None:
    from gigmatch.training.ranking_metrics import ndcg_at_k

    known = reference[reference["outcome"].notna()]
    calibration = GradeCalibration.fit(known[SCORE].to_numpy(), known["outcome"].to_numpy())
    first = expected_ndcg(known["job_id"].to_numpy(), known[SCORE].to_numpy(), calibration, 10, 20)
    again = expected_ndcg(known["job_id"].to_numpy(), known[SCORE].to_numpy(), calibration, 10, 20)
    real = ndcg_at_k(known["job_id"].to_numpy(), known[SCORE].to_numpy(), known["outcome"].to_numpy().astype(int), 10)
    assert first == again
    assert abs(first - real) < 0.1  # an estimate: competition for one hire per job is not in the draws
    cumulative = calibration.cumulative(np.linspace(known[SCORE].min(), known[SCORE].max(), 50))
    assert (np.diff(cumulative, axis=1) <= 0).all() and (np.diff(cumulative, axis=0) >= 0).all()
