"""The drift gate's rules: plain functions over two monitoring frames, no report library needed.

Six rules, each with its thresholds in `params.yaml` (section `drift`). Those listed in
`drift.blocking` block (the verdict is "drift", exit 1, CI stops the deploy); the others
only warn (exit 0, named in the verdict). By default the rules that say the model will
be hurt block, and the ones that only say the data moved warn:

- dataset drift: each monitored column's distance from the reference (normed
  Wasserstein for numbers, Jensen-Shannon for categories, or PSI: the names and
  formulas Evidently uses, so its report agrees; tests/test_drift.py compares
  every column and method with Evidently's ValueDrift) counts as drifted at or above
  its threshold; the batch drifts when the share of drifted columns reaches
  `drift_share`;
- score drift: the same kind of distance on `match_score`, the model's output;
- missing values: a column's missing share rising by more than
  `max_missing_increase` (ratings the features fill in count as missing);
- ranking quality, when outcomes are known: NDCG@k of the current batch more
  than `max_ndcg_drop` below the champion's recorded test NDCG@k; with outcomes from
  production and a live baseline (`gigmatch.monitoring.live.live_reference`), the latest
  matured requests' NDCG@k more than `max_live_ndcg_drop` below the version's baseline;
- reliance drift: the share of the model's reliance (`gigmatch.monitoring.quality`)
  that rests on drifted columns reaching `max_reliance_drifted`, so drift in a
  column the model ignores weighs nothing;
- expected ranking quality, without outcomes: the expected NDCG@k from the model's
  own scores, calibrated on the reference, more than `max_expected_ndcg_drop` below
  the same estimate on the reference.

Blocking by default: missing values, reliance drift, expected and live ranking
quality. Warning only: dataset drift and score drift. The thresholds were
calibrated on same-distribution batches, on the months after the training window
and on every drift scenario (`benchmarks/bench_drift.py`).

Rows are clustered by job (about 25 applicants each), so a batch of 2,000 rows
carries about 80 independent values of a job-level column: those columns vary
more from batch to batch and get higher thresholds (`drift.columns`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from gigmatch.monitoring.frame import MONITORED_CATEGORICAL, MONITORED_NUMERIC, OUTCOME, SCORE
from gigmatch.monitoring.quality import ReferenceQuality, expected_ndcg, live_ndcg
from gigmatch.params import ColumnRule, DriftParams, ParamsError

# Features that fill a missing input: the indicator shows where the input was missing.
# A freelancer with completed jobs always has a rating, so "no rating" there is a lost value.
FILLED_INPUTS = {"rating": "has_rating"}
_MIN_STD = 0.001  # as Evidently: a constant reference column is compared on an absolute scale
_NUMERIC_BINS = 20  # more distinct values than this: binned (Sturges) for JS and PSI, as Evidently
_EMPTY_BIN_SHARE = 0.0001  # as Evidently: an empty bin's share in PSI, unless the smallest share is below it


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # "numeric" or "categorical"
    method: str
    threshold: float
    statistic: float
    drifted: bool


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    value: float | None
    threshold: float
    detail: str
    blocks: bool = True  # a failure blocks (exit 1); False: it only warns


@dataclass(frozen=True)
class Verdict:
    columns: list[ColumnDrift]
    rules: list[RuleResult]
    reference_rows: int
    current_rows: int
    model_version: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def drift_detected(self) -> bool:
        """A blocking rule failed: the model will be hurt (exit 1)."""
        return any(not r.passed and r.blocks for r in self.rules)

    @property
    def failed_rules(self) -> list[str]:
        """The blocking rules that failed."""
        return [r.rule for r in self.rules if not r.passed and r.blocks]

    @property
    def tripped_rules(self) -> list[str]:
        """Every rule that failed, blocking or not."""
        return [r.rule for r in self.rules if not r.passed]

    @property
    def warnings(self) -> list[str]:
        """The warning-only rules that failed: the data moved, the model is not shown to suffer."""
        return [r.rule for r in self.rules if not r.passed and not r.blocks]

    @property
    def status(self) -> str:
        return "drift" if self.drift_detected else "warning" if self.warnings else "no_drift"

    @property
    def drifted_share(self) -> float:
        return sum(c.drifted for c in self.columns) / max(len(self.columns), 1)

    def to_dict(self) -> dict[str, object]:
        """The machine-readable verdict: compact, stable keys, one entry per column."""
        return {
            "verdict": self.status,
            "failed_rules": self.failed_rules,
            "warnings": self.warnings,
            "blocking_rules": [r.rule for r in self.rules if r.blocks],
            "drifted_share": round(self.drifted_share, 4),
            "drifted_columns": [c.column for c in self.columns if c.drifted],
            "columns": {
                c.column: {k: v for k, v in asdict(c).items() if k != "column"} | {"statistic": _rounded(c.statistic)}
                for c in self.columns
            },
            "rules": [asdict(r) | {"value": _rounded(r.value)} for r in self.rules],
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "model_version": self.model_version,
            "notes": self.notes,
        }


def _rounded(value: float | None) -> float | None:
    """Six places; a statistic that could not be computed (NaN) is written as null."""
    return None if value is None else round(float(value), 6)


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    """First Wasserstein distance in units of the reference's standard deviation (Evidently's "wasserstein")."""
    norm = max(float(np.std(reference)), _MIN_STD)
    return float(stats.wasserstein_distance(reference, current)) / norm


def binned_shares(reference: pd.Series, current: pd.Series, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shares per category, or per Sturges bin of the pooled values for a many-valued number (as Evidently bins)."""
    if numeric and reference.nunique() > _NUMERIC_BINS:
        edges = np.histogram_bin_edges(np.concatenate([reference.to_numpy(), current.to_numpy()]), bins="sturges")
        return (
            np.histogram(reference, edges)[0] / len(reference),
            np.histogram(current, edges)[0] / len(current),
        )
    keys = pd.Index(pd.concat([reference, current]).unique())
    ref = reference.value_counts().reindex(keys, fill_value=0).to_numpy() / len(reference)
    cur = current.value_counts().reindex(keys, fill_value=0).to_numpy() / len(current)
    return ref, cur


def jensen_shannon(reference: pd.Series, current: pd.Series, numeric: bool) -> float:
    ref, cur = binned_shares(reference, current, numeric)
    return float(distance.jensenshannon(ref, cur))


def population_stability(reference: pd.Series, current: pd.Series, numeric: bool) -> float:
    ref, cur = (_fill_empty_bins(shares) for shares in binned_shares(reference, current, numeric))
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def _fill_empty_bins(shares: np.ndarray) -> np.ndarray:
    """Empty bins get a small share (so the log is defined), chosen as Evidently does."""
    smallest = shares[shares > 0].min()
    fill = smallest / 10**6 if smallest <= _EMPTY_BIN_SHARE else _EMPTY_BIN_SHARE
    return np.where(shares == 0, fill, shares)


def column_statistic(method: str, reference: pd.Series, current: pd.Series, numeric: bool) -> float:
    """The drift distance of one column; missing values are left out (the missing-value rule sees them)."""
    reference, current = reference.dropna(), current.dropna()
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    if method == "wasserstein":
        if not numeric:
            raise ParamsError("wasserstein needs a numeric column; use jensenshannon or psi for categories")
        return wasserstein_normed(reference.to_numpy(dtype=float), current.to_numpy(dtype=float))
    if method == "jensenshannon":
        return jensen_shannon(reference, current, numeric)
    if method == "psi":
        return population_stability(reference, current, numeric)
    raise ParamsError(f"unknown drift method {method!r}")


def column_rules(params: DriftParams) -> dict[str, tuple[str, ColumnRule]]:
    """Every monitored column with its kind and rule: the defaults, then the per-column overrides."""
    rules = {c: ("numeric", params.numeric) for c in MONITORED_NUMERIC}
    rules |= {c: ("categorical", params.categorical) for c in MONITORED_CATEGORICAL}
    unknown = sorted(set(params.columns) - set(rules))
    if unknown:
        raise ParamsError(f"drift.columns names columns the gate does not monitor: {', '.join(unknown)}")
    for column, rule in params.columns.items():
        rules[column] = (rules[column][0], rule)
    return rules


def column_drift(reference: pd.DataFrame, current: pd.DataFrame, params: DriftParams) -> list[ColumnDrift]:
    out = []
    for column, (kind, rule) in column_rules(params).items():
        value = column_statistic(rule.method, reference[column], current[column], kind == "numeric")
        # A column with no values left cannot be compared: the missing-value rule reports it.
        out.append(ColumnDrift(column, kind, rule.method, rule.threshold, value, bool(value >= rule.threshold)))
    return out


def missing_share(frame: pd.DataFrame, column: str) -> float:
    missing = frame[column].isna()
    if column in FILLED_INPUTS:
        missing |= (frame[FILLED_INPUTS[column]] == 0) & (frame["is_newcomer"] == 0)
    return float(missing.mean())


def missing_value_rule(reference: pd.DataFrame, current: pd.DataFrame, limit: float) -> RuleResult:
    rises = {c: missing_share(current, c) - missing_share(reference, c) for c in (*column_rules_names(), SCORE)}
    worst = max(rises, key=lambda c: rises[c])
    over = sorted(c for c, rise in rises.items() if rise > limit)
    detail = (
        f"missing share rose most in {worst} (+{rises[worst]:.3f})" if rises[worst] > 0 else "no more missing values"
    )
    if over:
        detail = f"missing share rose by more than {limit} in: {', '.join(over)}"
    return RuleResult("missing_values", not over, round(rises[worst], 6), limit, detail)


def column_rules_names() -> tuple[str, ...]:
    return (*MONITORED_NUMERIC, *MONITORED_CATEGORICAL)


def ranking_quality_rule(
    current: pd.DataFrame, reference_ndcg: float, k: int, max_drop: float, against: str = "the champion's test"
) -> RuleResult | None:
    """NDCG@k of the model on the current batch against the champion's test figure (or `against` what
    `reference_ndcg` is), if outcomes are known."""
    if OUTCOME not in current.columns:
        return None
    known = current[current[OUTCOME].notna()]
    if known.empty:
        return None
    ndcg, jobs = live_ndcg(known["job_id"].to_numpy(), known[SCORE].to_numpy(), known[OUTCOME].to_numpy(), k)
    if jobs == 0:
        return None
    drop = reference_ndcg - ndcg
    detail = f"NDCG@{k} {ndcg:.4f} on {jobs} jobs vs {against} {reference_ndcg:.4f}"
    return RuleResult("ranking_quality", drop <= max_drop, round(drop, 6), max_drop, detail)


def reliance_drift_rule(columns: list[ColumnDrift], reliance: dict[str, float], limit: float) -> RuleResult:
    """The share of the model's reliance that rests on drifted columns."""
    drifted = sorted((c.column for c in columns if c.drifted and c.column in reliance), key=lambda c: -reliance[c])
    share = sum(reliance[c] for c in drifted)
    named = ", ".join(f"{c} {reliance[c]:.1%}" for c in drifted[:5]) or "no drifted column the model uses"
    detail = f"{share:.1%} of the model's reliance is on drifted columns ({named})"
    return RuleResult("reliance_drift", share < limit, round(share, 6), limit, detail)


def expected_quality_rule(current: pd.DataFrame, on_reference: ReferenceQuality, params: DriftParams) -> RuleResult:
    """Expected NDCG@k (no outcomes needed) on the current batch against the same estimate on the reference."""
    k, draws = params.ndcg_k, params.expected_ndcg_draws
    expected = expected_ndcg(
        current["job_id"].to_numpy(), current[SCORE].to_numpy(), on_reference.calibration, k, draws
    )
    drop = on_reference.expected_ndcg - expected
    detail = (
        f"expected NDCG@{k} {expected:.4f} from the model's calibrated scores vs "
        f"{on_reference.expected_ndcg:.4f} on the reference"
    )
    limit = params.max_expected_ndcg_drop
    return RuleResult("expected_ranking_quality", bool(drop <= limit), round(drop, 6), limit, detail)


def evaluate_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    params: DriftParams,
    reference_ndcg: float | None = None,
    model_version: str | None = None,
    reliance: dict[str, float] | None = None,
    outcomes: pd.DataFrame | None = None,
    reference_quality: ReferenceQuality | None = None,
    live_baseline: tuple[float, int] | None = None,
) -> Verdict:
    """Apply every rule; the batch drifts if a blocking rule fails (`drift.blocking`), the others warn.

    `reliance` is the model's reliance per feature (`gigmatch.monitoring.quality.model_reliance`);
    without it the reliance rule is not checked. `outcomes` (job_id, match_score, outcome) are the
    matured outcomes from production (`gigmatch.monitoring.live`): when given, the ranking-quality
    rule runs on them instead of on the current batch's own outcomes. `reference_quality`: the
    reference side of the expected-quality rule, when already computed (`ReferenceQuality.of`).
    `live_baseline`: (NDCG@k, requests) of the version's first matured requests; the ranking rule then
    judges `outcomes` against it with `max_live_ndcg_drop` instead of against the test figure.
    """
    columns = column_drift(reference, current, params)
    drifted = sum(c.drifted for c in columns) / len(columns)
    names = ", ".join(c.column for c in columns if c.drifted) or "none"
    rules = [
        RuleResult(
            "dataset_drift",
            drifted < params.drift_share,
            round(drifted, 6),
            params.drift_share,
            f"{drifted:.0%} of {len(columns)} columns drifted: {names}",
        ),
    ]
    score = column_statistic(params.score.method, reference[SCORE], current[SCORE], numeric=True)
    rules.append(
        RuleResult(
            "score_drift",
            bool(score < params.score.threshold),
            round(score, 6),
            params.score.threshold,
            f"{params.score.method} distance of {SCORE}",
        )
    )
    rules.append(missing_value_rule(reference, current, params.max_missing_increase))
    notes = []
    if reliance is None:
        notes.append("no model reliance given: reliance drift not checked")
    else:
        rules.append(reliance_drift_rule(columns, reliance, params.max_reliance_drifted))
    on_reference = reference_quality or ReferenceQuality.of(reference, params.ndcg_k, params.expected_ndcg_draws)
    if on_reference is None:
        notes.append("no outcomes in the reference: expected ranking quality not checked")
    else:
        rules.append(expected_quality_rule(current, on_reference, params))
    if len(current) < params.min_current_rows:
        notes.append(
            f"{len(current):,} current rows, fewer than the {params.min_current_rows:,} the thresholds are calibrated "
            "for: expect more false alarms"
        )
    if live_baseline is not None and outcomes is not None:
        baseline, requests = live_baseline
        against = f"the version's live baseline (its first {requests} matured requests)"
        quality = ranking_quality_rule(outcomes, baseline, params.ndcg_k, params.max_live_ndcg_drop, against)
        rules.extend([quality] if quality is not None else [])
    elif reference_ndcg is None:
        notes.append("no champion test NDCG recorded: ranking quality not checked")
    else:
        graded = current if outcomes is None else outcomes
        quality = ranking_quality_rule(graded, reference_ndcg, params.ndcg_k, params.max_ndcg_drop)
        if quality is None:
            notes.append("no outcomes in the current batch: ranking quality not checked")
        else:
            rules.append(quality)
    blocking = set(params.blocking)
    rules = [replace(rule, blocks=rule.rule in blocking) for rule in rules]
    return Verdict(columns, rules, len(reference), len(current), model_version, notes)
