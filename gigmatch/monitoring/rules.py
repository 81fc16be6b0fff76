"""The drift gate's rules: plain functions over two monitoring frames, no report library needed.

Four rules, each with its thresholds in `params.yaml` (section `drift`):

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
  than `max_ndcg_drop` below the champion's recorded test NDCG@k.

Rows are clustered by job (about 25 applicants each), so a batch of 2,000 rows
carries about 80 independent values of a job-level column: those columns vary
more from batch to batch and get higher thresholds (`drift.columns`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from gigmatch.monitoring.frame import MONITORED_CATEGORICAL, MONITORED_NUMERIC, OUTCOME, SCORE
from gigmatch.params import ColumnRule, DriftParams, ParamsError
from gigmatch.training.ranking_metrics import ndcg_per_group

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
        return any(not r.passed for r in self.rules)

    @property
    def failed_rules(self) -> list[str]:
        return [r.rule for r in self.rules if not r.passed]

    @property
    def drifted_share(self) -> float:
        return sum(c.drifted for c in self.columns) / max(len(self.columns), 1)

    def to_dict(self) -> dict[str, object]:
        """The machine-readable verdict: compact, stable keys, one entry per column."""
        return {
            "verdict": "drift" if self.drift_detected else "no_drift",
            "failed_rules": self.failed_rules,
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


def ranking_quality_rule(current: pd.DataFrame, reference_ndcg: float, k: int, max_drop: float) -> RuleResult | None:
    """NDCG@k of the model on the current batch against the champion's test figure, if outcomes are known."""
    if OUTCOME not in current.columns:
        return None
    known = current[current[OUTCOME].notna()]
    if known.empty:
        return None
    _, per_job = ndcg_per_group(
        known["job_id"].to_numpy(), known[SCORE].to_numpy(), known[OUTCOME].to_numpy().astype(int), k
    )
    if len(per_job) == 0:
        return None
    ndcg = float(per_job.mean())
    drop = reference_ndcg - ndcg
    detail = f"NDCG@{k} {ndcg:.4f} on {len(per_job)} jobs vs the champion's test {reference_ndcg:.4f}"
    return RuleResult("ranking_quality", drop <= max_drop, round(drop, 6), max_drop, detail)


def evaluate_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    params: DriftParams,
    reference_ndcg: float | None = None,
    model_version: str | None = None,
) -> Verdict:
    """Apply every rule; the batch drifts if any rule fails."""
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
    if len(current) < params.min_current_rows:
        notes.append(
            f"{len(current):,} current rows, fewer than the {params.min_current_rows:,} the thresholds are calibrated "
            "for: expect more false alarms"
        )
    if reference_ndcg is None:
        notes.append("no champion test NDCG recorded: ranking quality not checked")
    else:
        quality = ranking_quality_rule(current, reference_ndcg, params.ndcg_k, params.max_ndcg_drop)
        if quality is None:
            notes.append("no outcomes in the current batch: ranking quality not checked")
        else:
            rules.append(quality)
    return Verdict(columns, rules, len(reference), len(current), model_version, notes)
