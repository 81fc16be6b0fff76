"""The champion gate: should the newly registered model replace the current champion?

A pure function of figures measured on the same test split, so the rule can be
read and tested on its own. All three conditions must hold:

1. it beats the current champion's test NDCG@10 by at least `min_improvement`
   (no champion yet counts as passing);
2. it beats the skill-overlap baseline's test NDCG@10;
3. its exposure fairness ratio is at least `min_fairness_ratio`.

Otherwise the model becomes the `challenger` and every failed condition is named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from gigmatch.errors import GigmatchError
from gigmatch.params import OnlineEvidenceParams, SplitParams


class GateError(GigmatchError, RuntimeError):
    """The gate cannot compare the new model with the champion; nothing was promoted."""


CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class GateFigures:
    new_ndcg_at_10: float
    champion_ndcg_at_10: float | None  # None: there is no champion yet
    baseline_skill_overlap_ndcg_at_10: float
    fairness_ratio: float


@dataclass(frozen=True)
class RecordedFigures:
    """What a registered version's run recorded about its own test split."""

    test_ndcg_at_10: float | None
    data_md5: str | None
    split: str | None  # `split_tag` of the params it was measured with

    def stand_in_for(self, data_md5: str, split: str) -> float | None:
        """The recorded test NDCG@10, if it was measured on this very test split (same data, same split)."""
        same_split = (self.data_md5, self.split) == (data_md5, split)
        return self.test_ndcg_at_10 if same_split else None


@dataclass(frozen=True)
class Decision:
    promote: bool
    alias: str
    reasons: list[str] = field(default_factory=list)
    figures: GateFigures | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def passed_offline(self) -> bool:
        """Promoted, or held only for live evidence: every offline condition held."""
        return self.promote or (bool(self.reasons) and not any(r.startswith("failed:") for r in self.reasons))

    def summary(self) -> str:
        verdict = "promoted to champion" if self.promote else "kept as challenger"
        return f"{verdict}: " + "; ".join(self.reasons)


def split_tag(split: SplitParams) -> str:
    """Identifies a test split together with the data md5."""
    return f"time:{split.valid_fraction}/{split.test_fraction}"


def decide(figures: GateFigures, min_improvement: float, min_fairness_ratio: float) -> Decision:
    passed: list[str] = []
    failed: list[str] = []
    new = figures.new_ndcg_at_10
    if figures.champion_ndcg_at_10 is None:
        passed.append("there is no champion yet")
    else:
        needed = figures.champion_ndcg_at_10 + min_improvement
        line = f"test NDCG@10 {new:.4f} vs champion {figures.champion_ndcg_at_10:.4f} + margin {min_improvement}"
        (passed if new >= needed else failed).append(line)
    baseline = figures.baseline_skill_overlap_ndcg_at_10
    line = f"test NDCG@10 {new:.4f} vs skill-overlap baseline {baseline:.4f}"
    (passed if new > baseline else failed).append(line)
    ratio = figures.fairness_ratio
    line = f"exposure fairness ratio {ratio:.3f} vs bound {min_fairness_ratio}"
    (passed if not math.isnan(ratio) and ratio >= min_fairness_ratio else failed).append(line)

    if failed:
        return Decision(False, CHALLENGER, [f"failed: {r}" for r in failed] + [f"passed: {r}" for r in passed], figures)
    return Decision(True, CHAMPION, [f"passed: {r}" for r in passed], figures)


def hold_for_online_evidence(
    decision: Decision, champion_version: str | None, online: OnlineEvidenceParams
) -> Decision:
    """With `promote.online.required`, an offline pass over a champion makes a challenger: live evidence decides."""
    if not (online.required and decision.promote and champion_version is not None):
        return decision
    waiting = f"waiting: live evidence against champion {champion_version} as its shadow (promote.online)"
    return Decision(False, CHALLENGER, [*decision.reasons, waiting], decision.figures)


def decide_online(
    evidence: Mapping[str, object], challenger_version: str, online: OnlineEvidenceParams, passed_offline: bool = True
) -> Decision:
    """The challenger against the champion on the live requests both ranked (`live.shadow_comparison`);
    only a challenger that passed the offline gate (it waits for this evidence alone) can be promoted."""
    if not passed_offline:
        return Decision(False, CHALLENGER, [f"failed: version {challenger_version} did not pass the offline gate"])
    challenger = evidence.get("challenger")
    shadowed = str(challenger.get("model_version")) if isinstance(challenger, Mapping) else None
    requests = int(evidence.get("requests", 0))  # type: ignore[call-overload]
    margin = evidence.get("ndcg_at_10_margin")
    if shadowed != challenger_version:
        return Decision(False, CHALLENGER, [f"waiting: the shadow scores version {shadowed}, not {challenger_version}"])
    if requests < online.min_matured_requests or not isinstance(margin, int | float):
        need = online.min_matured_requests
        return Decision(False, CHALLENGER, [f"waiting: {requests} matured requests both ranked, {need} needed"])
    line = f"live NDCG@10 margin {margin:+.4f} over {requests} requests vs {online.min_ndcg_margin:+.4f}"
    if margin >= online.min_ndcg_margin:
        return Decision(True, CHAMPION, [f"passed: {line}"])
    return Decision(False, CHALLENGER, [f"failed: {line}"])


def promotion_record(
    model_name: str, version: str, selected: str, previous_champion: str | None, decision: Decision
) -> dict[str, object]:
    """What the registry did and why (promotion.json, and the training run's artifact)."""
    return {
        "model_name": model_name,
        "version": version,
        "selected_model": selected,
        "previous_champion": previous_champion,
        **decision.as_dict(),
    }
