"""The champion gate as a rule: every condition, each failing on its own."""

from __future__ import annotations

import math

import pytest

from gigmatch.params import OnlineEvidenceParams
from gigmatch.training.promotion import (
    CHALLENGER,
    CHAMPION,
    GateFigures,
    decide,
    decide_online,
    hold_for_online_evidence,
)


def _figures(
    candidate: float = 0.62, champion: float | None = 0.60, baseline: float = 0.42, fairness: float = 0.8
) -> GateFigures:
    return GateFigures(candidate, champion, baseline, fairness)


def test_promotes_when_every_condition_holds() -> None:
    decision = decide(_figures(), min_improvement=0.01, min_fairness_ratio=0.7)
    assert decision.promote and decision.alias == CHAMPION and len(decision.reasons) == 3


def test_first_model_needs_no_champion_but_still_the_baseline_and_fairness() -> None:
    assert decide(_figures(champion=None), 0.01, 0.7).promote
    assert not decide(_figures(champion=None, candidate=0.40), 0.01, 0.7).promote


def test_margin_over_champion_is_required() -> None:
    decision = decide(_figures(candidate=0.605, champion=0.60), min_improvement=0.01, min_fairness_ratio=0.7)
    assert not decision.promote and decision.alias == CHALLENGER
    assert decision.reasons[0].startswith("failed: test NDCG@10 0.6050 vs champion 0.6000 + margin 0.01")


def test_must_beat_the_skill_overlap_baseline() -> None:
    decision = decide(_figures(candidate=0.42, champion=None, baseline=0.42), 0.0, 0.7)
    assert not decision.promote and "skill-overlap baseline" in decision.reasons[0]


def test_fairness_bound_and_undefined_fairness_block_promotion() -> None:
    assert not decide(_figures(fairness=0.69), 0.0, 0.7).promote
    assert not decide(_figures(fairness=math.nan), 0.0, 0.7).promote
    assert "fairness" in decide(_figures(fairness=0.5), 0.0, 0.7).summary()


ONLINE = OnlineEvidenceParams(required=True, min_matured_requests=100, min_ndcg_margin=0.01)


def _evidence(version: str, requests: int, margin: float | None) -> dict[str, object]:
    return {"requests": requests, "challenger": {"model_version": version}, "ndcg_at_10_margin": margin}


def test_with_online_evidence_required_an_offline_pass_waits_as_challenger() -> None:
    passed = decide(GateFigures(0.60, 0.55, 0.40, 0.9), 0.002, 0.7)
    held = hold_for_online_evidence(passed, "3", ONLINE)
    assert (held.promote, held.alias) == (False, CHALLENGER) and "waiting: live evidence" in held.reasons[-1]
    assert hold_for_online_evidence(passed, None, ONLINE) == passed  # the first model has nobody to shadow
    assert hold_for_online_evidence(passed, "3", ONLINE.model_copy(update={"required": False})) == passed


@pytest.mark.parametrize(
    ("evidence", "promote", "word"),
    [
        (_evidence("4", 150, 0.02), True, "passed"),
        (_evidence("4", 150, 0.005), False, "failed"),  # better, but not by the margin
        (_evidence("4", 150, -0.03), False, "failed"),  # worse online: it stays challenger
        (_evidence("4", 99, 0.20), False, "waiting"),  # too few matured requests yet
        (_evidence("5", 500, 0.20), False, "waiting"),  # the shadow scores another version
        ({"requests": 0}, False, "waiting"),
    ],
)
def test_the_online_rule(evidence: dict[str, object], promote: bool, word: str) -> None:
    decision = decide_online(evidence, "4", ONLINE)
    assert decision.promote is promote and decision.alias == (CHAMPION if promote else CHALLENGER)
    assert decision.reasons[0].startswith(word), decision.reasons


def test_only_a_challenger_the_offline_gate_passed_can_win_online() -> None:
    unfair = decide(GateFigures(0.60, 0.55, 0.40, 0.65), 0.002, 0.7)  # better, but fails the fairness bound
    assert not unfair.passed_offline and unfair.alias == CHALLENGER
    waiting = hold_for_online_evidence(decide(GateFigures(0.60, 0.55, 0.40, 0.9), 0.002, 0.7), "3", ONLINE)
    assert waiting.passed_offline and not waiting.promote
    strong = _evidence("4", 500, 0.20)
    refused = decide_online(strong, "4", ONLINE, passed_offline=False)
    assert not refused.promote and refused.reasons == ["failed: version 4 did not pass the offline gate"]
    assert decide_online(strong, "4", ONLINE, passed_offline=True).promote
