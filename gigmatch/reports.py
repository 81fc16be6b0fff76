"""The training stage's DVC metrics and plots files.

`train_metrics.json` and the plots hold only figures that the data and params
determine (no run ids, no versions), so `dvc metrics diff` shows real change
and a re-run on the same inputs writes the same bytes. Registry outcomes go to
`promotion.json`, which is an output but not a metric.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gigmatch.dataset import atomic_write_text
from gigmatch.evaluation import CURVE_KS

METRICS_FILE = "train_metrics.json"
SLICES_FILE = "train_slices.json"
PROMOTION_FILE = "promotion.json"
NDCG_CURVE_FILE = "plots/ndcg_at_k.csv"
CALIBRATION_FILE = "plots/calibration.csv"


@dataclass(frozen=True)
class CandidateFigures:
    name: str
    kind: str
    valid: dict[str, float]
    test: dict[str, float]
    ndcg_curve: list[float]  # test NDCG at CURVE_KS


@dataclass(frozen=True)
class ReferenceFigures:
    """Baselines and the oracle on the test split."""

    test: dict[str, dict[str, float]]  # name -> metrics
    ndcg_curve: dict[str, list[float]]


def metrics_document(
    selected: str, candidates: list[CandidateFigures], references: ReferenceFigures, fairness_ratio: float
) -> dict[str, object]:
    """Flattened under `test`/`valid` so `dvc metrics show` reads e.g. `test.ndcg_at_10`."""
    by_name = {c.name: c for c in candidates}
    best = by_name[selected]
    test: dict[str, float] = dict(best.test)
    for reference, figures in references.test.items():
        prefix = "oracle" if reference == "oracle" else f"baseline_{reference}"
        test |= {f"{prefix}_{metric}": value for metric, value in figures.items()}
    if "oracle" in references.test:
        test["share_of_oracle_ndcg_at_10"] = round(best.test["ndcg_at_10"] / references.test["oracle"]["ndcg_at_10"], 6)
    test["fairness_ratio"] = fairness_ratio
    valid = dict(best.valid)
    for candidate in candidates:
        test[f"{candidate.name}_ndcg_at_10"] = candidate.test["ndcg_at_10"]
        valid[f"{candidate.name}_ndcg_at_10"] = candidate.valid["ndcg_at_10"]
    return {"selected_candidate": selected, "test": test, "valid": valid}


def ndcg_curve_frame(selected: str, candidates: list[CandidateFigures], references: ReferenceFigures) -> pd.DataFrame:
    columns: dict[str, list[float] | tuple[int, ...]] = {"k": CURVE_KS}
    columns["selected"] = next(c.ndcg_curve for c in candidates if c.name == selected)
    for candidate in candidates:
        columns[candidate.name] = candidate.ndcg_curve
    for name, curve in references.ndcg_curve.items():
        columns[name if name == "oracle" else f"baseline_{name}"] = curve
    # Without the simulator's truth (a client's data) the oracle column stays, empty, so the
    # plot that dvc.yaml declares keeps every field it names and still draws the rest.
    columns.setdefault("oracle", [float("nan")] * len(CURVE_KS))
    return pd.DataFrame(columns)


def write_reports(
    directory: Path,
    metrics: Mapping[str, object],
    slices: Mapping[str, object],
    promotion: Mapping[str, object],
    ndcg_curve: pd.DataFrame,
    calibration: pd.DataFrame,
) -> None:
    directory = Path(directory)
    files = {
        METRICS_FILE: report_json(metrics),
        SLICES_FILE: report_json(slices),
        PROMOTION_FILE: report_json(promotion),
        NDCG_CURVE_FILE: ndcg_curve.to_csv(index=False),
        CALIBRATION_FILE: calibration.to_csv(index=False),
    }
    for name, text in files.items():
        atomic_write_text(directory / name, text)


def report_json(payload: Mapping[str, object]) -> str:
    """Stable JSON for a committed report: sorted keys, NaN as null, numpy scalars as numbers."""
    return json.dumps(_finite(payload), indent=2, sort_keys=True, default=_plain, allow_nan=False) + "\n"


def _finite(value: object) -> object:
    """NaN (an undefined figure, e.g. AUC of a slice with no hires) becomes null."""
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def _plain(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    raise TypeError(f"cannot write {type(value).__name__} to a report as JSON")
