"""The champion gate as a rule: every condition, each failing on its own."""

from __future__ import annotations

import math

from gigmatch.training.promotion import CHALLENGER, CHAMPION, GateFigures, decide


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
