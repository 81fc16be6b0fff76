"""Two tiers of "the same model", and the comparison that says which one holds.

- **exact**: every probe score has the same bits (the same platform: CPU, BLAS kernel, OS).
- **numerical**: on another CPU, kernel, OS or architecture: every probe score within
  `SCORE_TOLERANCE` (times the score where it exceeds 1, as LambdaRank's may), every probe
  job's applicants in the same order, every metric within `METRIC_TOLERANCE`, and
  everything else (format, environment, data md5, params, model kind and
  hyperparameters, the probe's rows) exactly equal.

Anything else is a different model, and the comparison names the figure: a changed param
or data md5, a score beyond the tolerance, two applicants that swap places. Applicants
whose scores lie within the tolerance of each other are a tie: their order is not
reproducible, so it is counted, not failed.

Where the tolerance comes from (README, "The same model on another machine"): the five
OpenBLAS kernels this CPU can run disagreed by at most 6.3e-14 on a score; the smallest
real change measured, C 1.0 -> 1.001, moved probe scores by 6.9e-7. 1e-9 sits about
16,000 times above the first, for BLAS libraries and architectures not measured, and 690
times below the second.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gigmatch.repro.differences import ABSENT, Difference, diff, flatten, in_stage_order, same_value

EXACT = "exact"
NUMERICAL = "numerical"
SCORE_TOLERANCE = 1e-9
METRIC_TOLERANCE = 1e-6
_FLOAT_SLACK = 1e-12  # a metric rounded to 6 places, one unit apart, is within 1e-6 of the other


@dataclass
class Agreement:
    """How a fresh fingerprint compares with a reference: the tier that holds, or the differences."""

    tier: str | None  # EXACT, NUMERICAL, or None: a different model
    differences: list[Difference] = field(default_factory=list)
    rows: int = 0
    max_score_deviation: float = 0.0
    worst_row: str = ""  # "job_id/freelancer_id" of the largest deviation
    reference_decimals: int | None = None  # the reference's scores were rounded to this many places
    ties: int = 0  # applicant pairs in another order, within the tolerance of each other

    @property
    def holds(self) -> bool:
        return self.tier is not None

    def summary(self) -> str:
        """One line for people: which tier, and the figures behind it."""
        if not self.holds:
            first = self.differences[0].describe()
            return f"a different model: {len(self.differences)} figure(s) differ, first {first}"
        ties = f", {self.ties} near-tied pair(s) in another order" if self.ties else ""
        if self.tier == EXACT:
            return f"exact: all {self.rows} probe scores bit for bit identical, every ranking identical{ties}"
        places = self.reference_decimals
        against = f" against the committed scores (kept to {places} places)" if places else ""
        return (
            f"numerically equal: max |Δscore| {self.max_score_deviation:.1e} over {self.rows} probe rows{against} "
            f"(tolerance {SCORE_TOLERANCE:.0e}), every ranking identical{ties}, metrics within {METRIC_TOLERANCE:.0e}"
        )


def agreement(reference: Mapping[str, Any], fresh: Mapping[str, Any]) -> Agreement:
    """Compare a fresh fingerprint with a reference (committed, or this machine's last run)."""
    result = Agreement(None)
    result.differences += diff(_exact_part(reference), _exact_part(fresh))
    try:
        ref_probe, fresh_probe = _probe(reference), _probe(fresh)
    except (KeyError, TypeError, ValueError) as exc:
        unreadable = Difference("format", "model.probe.ranking", "a ranking", ABSENT, f"unreadable: {exc!r}")
        result.differences.append(unreadable)
        return result
    result.reference_decimals = ref_probe.decimals
    bits_equal = _compare_probe(ref_probe, fresh_probe, result)
    metrics_equal = _compare_metrics(reference.get("metrics") or {}, fresh.get("metrics") or {}, result)
    result.differences = in_stage_order(result.differences)
    if not result.differences:
        full_precision = ref_probe.decimals is None and fresh_probe.decimals is None
        result.tier = EXACT if bits_equal and metrics_equal and full_precision else NUMERICAL
    return result


# ---------------------------------------------------------------- the parts


@dataclass(frozen=True)
class _Probe:
    decimals: int | None
    jobs: dict[str, tuple[list[int], list[float]]]  # job -> applicants in rank order, their scores

    def half_step(self) -> float:
        return 0.0 if self.decimals is None else 0.5 * 10.0**-self.decimals


def _probe(document: Mapping[str, Any]) -> _Probe:
    probe = document["model"]["probe"]
    jobs = {}
    for job, entry in probe["ranking"].items():
        people, scores = [int(f) for f in entry["freelancers"]], [float(s) for s in entry["scores"]]
        if len(people) != len(scores):
            raise ValueError(f"job {job}: {len(people)} applicants, {len(scores)} scores")
        jobs[str(job)] = (people, scores)
    decimals = probe.get("score_decimals")
    return _Probe(None if decimals is None else int(decimals), jobs)


def _exact_part(document: Mapping[str, Any]) -> dict[str, Any]:
    """Everything compared exactly: the document without the probe's ranking and the metrics."""
    exact = {k: v for k, v in document.items() if k != "metrics"}
    model = dict(exact.get("model") or {})
    model["probe"] = {k: v for k, v in (model.get("probe") or {}).items() if k not in ("ranking", "score_decimals")}
    exact["model"] = model
    return exact


def _compare_probe(reference: _Probe, fresh: _Probe, result: Agreement) -> bool:
    """Scores within the tolerance and every ranking identical; True if every score has the same bits."""
    slack = reference.half_step() + fresh.half_step()  # rounding of either side
    bits_equal, beyond, rows = True, 0, 0
    worst: tuple[float, str, float, float, float] = (-1.0, "", 0.0, 0.0, 0.0)  # (|Δ|, row, expected, actual, bound)
    for job in sorted(reference.jobs.keys() | fresh.jobs.keys(), key=int):
        figure = f"model.probe.ranking.{job}"
        if job not in reference.jobs or job not in fresh.jobs:
            got = fresh.jobs.get(job)
            had = reference.jobs.get(job)
            result.differences.append(
                Difference("model", figure, had[0] if had else ABSENT, got[0] if got else ABSENT, "another probe job")
            )
            continue
        ref_people, ref_scores = reference.jobs[job]
        fresh_people, fresh_scores = fresh.jobs[job]
        if sorted(ref_people) != sorted(fresh_people):
            result.differences.append(
                Difference("model", figure, sorted(ref_people), sorted(fresh_people), "other applicants")
            )
            continue
        fresh_by_person = dict(zip(fresh_people, fresh_scores, strict=True))
        in_reference_order = [fresh_by_person[f] for f in ref_people]
        for person, expected, actual in zip(ref_people, ref_scores, in_reference_order, strict=True):
            rows += 1
            deviation = abs(actual - expected)
            bits_equal &= _same_bits(expected, actual)
            bound = SCORE_TOLERANCE * max(1.0, abs(expected)) + slack
            beyond += deviation > bound
            if deviation > worst[0]:
                worst = (deviation, f"{job}/{person}", expected, actual, bound)
        _compare_order(figure, ref_people, in_reference_order, slack, result)
    result.rows = rows
    result.max_score_deviation, result.worst_row = max(worst[0], 0.0), worst[1]
    if beyond:
        deviation, row, expected, actual, bound = worst
        result.differences.append(
            Difference(
                "model",
                "model.probe.scores",
                expected,
                actual,
                f"job/freelancer {row}: |Δ| {deviation:.2e} > tolerance {bound:.1e}; "
                f"{beyond} of {rows} probe scores beyond it",
            )
        )
    return bits_equal


def _compare_order(figure: str, people: list[int], fresh_scores: list[float], slack: float, result: Agreement) -> None:
    """The reference's order must still rank the fresh scores: a pair out of order beyond the tolerance is a swap."""
    for rank, (upper, lower) in enumerate(itertools.pairwise(fresh_scores), start=1):
        if lower <= upper:
            continue
        bound = SCORE_TOLERANCE * max(1.0, abs(upper)) + slack
        if lower - upper <= bound:
            result.ties += 1
            continue
        a, b = people[rank - 1], people[rank]
        result.differences.append(
            Difference(
                "model",
                figure,
                [a, b],
                [b, a],
                f"freelancers {a} and {b} swap ranks {rank} and {rank + 1} (scores now {upper:.6g} and {lower:.6g})",
            )
        )
        return  # the first swap names the job; the scores' difference says how far the rest moved


def _compare_metrics(reference: Mapping[str, Any], fresh: Mapping[str, Any], result: Agreement) -> bool:
    """Every metric within METRIC_TOLERANCE; True if every one is equal."""
    old, new = flatten(reference, "metrics."), flatten(fresh, "metrics.")
    equal = True
    for figure in sorted(old.keys() | new.keys()):
        a, b = old.get(figure, ABSENT), new.get(figure, ABSENT)
        if same_value(a, b):
            continue
        equal = False
        if _numbers(a, b) and abs(float(b) - float(a)) <= METRIC_TOLERANCE + _FLOAT_SLACK:  # type: ignore[arg-type]
            continue
        detail = f"beyond the tolerance {METRIC_TOLERANCE:.0e}" if _numbers(a, b) else ""
        result.differences.append(Difference("metrics", figure, a, b, detail))
    return equal


def _numbers(a: object, b: object) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (a, b))


def _same_bits(a: float, b: float) -> bool:
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
