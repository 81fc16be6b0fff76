"""Each drift scenario moves what it should, and the gate's rules see it (no report library needed)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gigmatch.cli import main
from gigmatch.data.contract import PROFILE_STATISTICS
from gigmatch.data.taxonomy import REGION_SLUGS
from gigmatch.features.match_frame import MATCH_COLUMNS
from gigmatch.model.bundle import load_bundle
from gigmatch.monitoring.frame import frame_from_match_table
from gigmatch.monitoring.rules import Verdict, evaluate_drift
from gigmatch.monitoring.scenarios import SCENARIOS, SURGING_REGION, simulate_batch
from gigmatch.params import Params

ROOT = Path(__file__).resolve().parents[1]
SEED = 21
# scenario -> a column the shift must drift (None: the shift is not in the features), and a rule that must fail
EXPECTED = {
    "skill_demand": ("category", "dataset_drift"),
    "budget_inflation": ("log_implied_hourly_budget", "dataset_drift"),
    "new_region": ("region", "dataset_drift"),
    "rate_undercut": ("hourly_rate_usd", "dataset_drift"),
    "concept": (None, "ranking_quality"),
    "missing_values": ("has_rating", "missing_values"),
}


@pytest.fixture(scope="module")
def gate(params: Params, bundle_dir: Path, drift_reference: Path):
    model = load_bundle(bundle_dir).model
    reference = pd.read_parquet(drift_reference)

    @cache
    def run(scenario: str) -> tuple[pd.DataFrame, pd.DataFrame, Verdict]:
        table = simulate_batch(params.simulate, scenario, None, 2000, SEED)
        frame = frame_from_match_table(table, model)
        # The test bundle's own test NDCG is unknown here; use the reference batch's, as a champion would record it.
        return table, frame, evaluate_drift(reference, frame, params.drift, _ndcg(reference, params), "7")

    return run


def _ndcg(frame: pd.DataFrame, params: Params) -> float:
    from gigmatch.training.ranking_metrics import ndcg_at_k

    return ndcg_at_k(frame["job_id"].to_numpy(), frame["match_score"].to_numpy(), frame["outcome"].to_numpy(), 10)


def _statistic(verdict: Verdict, column: str) -> float:
    return next(c.statistic for c in verdict.columns if c.column == column)


def test_every_scenario_is_documented_and_none_has_no_shift(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(EXPECTED) | {"none"} == set(SCENARIOS)
    assert SCENARIOS["none"].default_magnitude == 0.0 and all(s.doc for s in SCENARIOS.values())
    assert main(["data", "scenarios"]) == 0
    listed = " ".join(capsys.readouterr().err.split())  # the table, wrapped to the terminal
    for name, scenario in SCENARIOS.items():
        assert name in listed and f"{scenario.default_magnitude:g}" in listed


def test_the_pipeline_workflow_offers_every_scenario() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pipeline.yml").read_text())
    trigger = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on:` as true
    assert trigger["workflow_dispatch"]["inputs"]["scenario"]["options"] == list(SCENARIOS)


def test_none_batch_passes_every_rule(gate) -> None:
    _, _, verdict = gate("none")
    assert not verdict.drift_detected, verdict.rules


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_scenario_trips_its_rule(gate, scenario: str) -> None:
    column, rule = EXPECTED[scenario]
    _, _, baseline = gate("none")
    _, _, shifted = gate(scenario)
    assert rule in shifted.tripped_rules
    if column is not None:
        drifted = next(c for c in shifted.columns if c.column == column)
        assert drifted.drifted and drifted.statistic > 2 * _statistic(baseline, column)


def test_only_what_hurts_the_model_blocks(gate) -> None:
    """Lost ratings and changed clients hurt the ranking: they block. Cheaper rates move columns but the
    model ranks as well as before (live NDCG within the margin): a warning, exit 0."""
    assert {"missing_values"} <= set(gate("missing_values")[2].failed_rules)
    assert gate("concept")[2].failed_rules == ["ranking_quality"]
    undercut = gate("rate_undercut")[2]
    assert not undercut.drift_detected and undercut.status == "warning" and "dataset_drift" in undercut.warnings
    quality = next(r for r in undercut.rules if r.rule == "ranking_quality")
    assert quality.passed and quality.blocks


def test_concept_drift_keeps_the_candidates_and_changes_outcomes(gate) -> None:
    none_table, none_frame, _ = gate("none")
    concept_table, concept_frame, verdict = gate("concept")
    # Clients hire others, so other freelancers complete jobs: only track records move, and few of them.
    steady = [c for c in MATCH_COLUMNS if c not in PROFILE_STATISTICS]
    pd.testing.assert_frame_equal(none_table[steady], concept_table[steady])
    moved = (none_table["jobs_completed"] != concept_table["jobs_completed"]).mean()
    assert 0 < moved < 0.05
    assert (none_frame["outcome"] != concept_frame["outcome"]).any()
    assert verdict.failed_rules == ["ranking_quality"]


def test_shifts_stay_inside_the_data_contract(gate) -> None:
    table, _, _ = gate("new_region")
    assert set(table["region"]) <= set(REGION_SLUGS)
    assert (table["region"] == SURGING_REGION).mean() > 0.15
    missing, _, _ = gate("missing_values")
    assert missing["rating"].isna().mean() > gate("none")[0]["rating"].isna().mean() + 0.15


@pytest.mark.parametrize("scenario", ["none", "rate_undercut"])
def test_batches_are_deterministic_and_sized(params: Params, scenario: str) -> None:
    first = simulate_batch(params.simulate, scenario, None, 1000, seed=3)
    pd.testing.assert_frame_equal(first, simulate_batch(params.simulate, scenario, None, 1000, seed=3))
    assert list(first.columns) == [*MATCH_COLUMNS, "outcome"]
    assert 1000 <= len(first) <= 1000 + params.simulate.max_applicants
    other = simulate_batch(params.simulate, scenario, None, 1000, seed=4)
    assert not np.array_equal(first["hourly_rate_usd"].to_numpy()[:50], other["hourly_rate_usd"].to_numpy()[:50])


def test_magnitude_zero_is_no_shift(params: Params) -> None:
    none = simulate_batch(params.simulate, "none", None, 500, seed=8)
    pd.testing.assert_frame_equal(none, simulate_batch(params.simulate, "rate_undercut", 0.0, 500, seed=8))
    with pytest.raises(ValueError, match="unknown drift scenario"):
        simulate_batch(params.simulate, "tsunami", None, 500, seed=8)
