"""The training stage's report: the selected model's figures, and the DVC metrics and plots files.

`train_metrics.json` and the plots hold only figures that the data and params
determine (no run ids, no versions), so `dvc metrics diff` shows real change
and a re-run on the same inputs writes the same bytes. Registry outcomes go to
`promotion.json`, which is an output but not a metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gigmatch.files import atomic_write_text, json_text
from gigmatch.params import EvaluateParams
from gigmatch.training.evaluation import (
    CURVE_KS,
    ORACLE,
    EvaluationSet,
    Fairness,
    ModelFigures,
    ReferenceFigures,
    calibration_table,
    exposure_fairness,
    slice_metrics,
)
from gigmatch.training.fitting import TrainedModel

METRICS_FILE = "train_metrics.json"
SLICES_FILE = "train_slices.json"
PROMOTION_FILE = "promotion.json"
NDCG_CURVE_FILE = "plots/ndcg_at_k.csv"
CALIBRATION_FILE = "plots/calibration.csv"


@dataclass(frozen=True)
class TrainingReport:
    """What a training run found, for people (the files) and for the champion gate (fairness)."""

    selected: str
    metrics: dict[str, object]  # train_metrics.json
    slices: dict[str, object]  # train_slices.json
    fairness: Fairness
    ndcg_curve: pd.DataFrame
    calibration: pd.DataFrame


def build_report(
    selected: TrainedModel,
    trained: list[TrainedModel],
    references: ReferenceFigures,
    test: EvaluationSet,
    evaluate: EvaluateParams,
) -> TrainingReport:
    """The selected model on the test split: metrics against the references, slices, fairness, calibration."""
    fairness = exposure_fairness(
        test,
        selected.test_scores,
        evaluate.fairness_top_k,
        evaluate.qualified_min_coverage,
        evaluate.fairness_min_qualified,
    )
    figures = [t.figures for t in trained]
    slices: dict[str, object] = {
        "selected_model": selected.name,
        "test": slice_metrics(test, selected.test_scores),
        "fairness": {"ratio": fairness.ratio, "by_region": fairness.by_region},
    }
    return TrainingReport(
        selected.name,
        metrics_document(selected.name, figures, references, fairness.ratio),
        slices,
        fairness,
        ndcg_curve_frame(selected.name, figures, references),
        _calibration(trained, selected, test),
    )


def metrics_document(
    selected: str, models: list[ModelFigures], references: ReferenceFigures, fairness_ratio: float
) -> dict[str, object]:
    """Flattened under `test`/`valid` so `dvc metrics show` reads e.g. `test.ndcg_at_10`."""
    best = next(m for m in models if m.name == selected)
    test: dict[str, float] = dict(best.test)
    for reference, figures in references.test.items():
        prefix = ORACLE if reference == ORACLE else f"baseline_{reference}"
        test |= {f"{prefix}_{metric}": value for metric, value in figures.items()}
    if ORACLE in references.test:
        test["share_of_oracle_ndcg_at_10"] = round(best.test["ndcg_at_10"] / references.test[ORACLE]["ndcg_at_10"], 6)
    test["fairness_ratio"] = fairness_ratio
    valid = dict(best.valid)
    for model in models:
        test[f"{model.name}_ndcg_at_10"] = model.test["ndcg_at_10"]
        valid[f"{model.name}_ndcg_at_10"] = model.valid["ndcg_at_10"]
    return {"selected_model": selected, "test": test, "valid": valid}


def ndcg_curve_frame(selected: str, models: list[ModelFigures], references: ReferenceFigures) -> pd.DataFrame:
    columns: dict[str, list[float] | tuple[int, ...]] = {"k": CURVE_KS}
    columns["selected"] = next(m.ndcg_curve for m in models if m.name == selected)
    for model in models:
        columns[model.name] = model.ndcg_curve
    for name, curve in references.ndcg_curve.items():
        columns[name if name == ORACLE else f"baseline_{name}"] = curve
    # Without the simulator's truth (a client's data) the oracle column stays, empty, so the
    # plot that dvc.yaml declares keeps every field it names and still draws the rest.
    columns.setdefault(ORACLE, [float("nan")] * len(CURVE_KS))
    return pd.DataFrame(columns)


def _calibration(trained: list[TrainedModel], selected: TrainedModel, test: EvaluationSet) -> pd.DataFrame:
    """Calibration of the selected model if it gives probabilities, else of the best that does."""
    probabilistic = [t for t in trained if "log_loss" in t.figures.test]
    chosen = (
        selected
        if selected in probabilistic
        else max(probabilistic, key=lambda t: t.figures.valid["ndcg_at_10"], default=None)
    )
    if chosen is None:
        return pd.DataFrame(columns=["bin", "predicted", "observed", "rows", "model"])
    return calibration_table(chosen.test_scores, test.hired).assign(model=chosen.name)


def write_reports(directory: Path, report: TrainingReport, promotion: Mapping[str, object]) -> None:
    directory = Path(directory)
    files = {
        METRICS_FILE: json_text(report.metrics),
        SLICES_FILE: json_text(report.slices),
        PROMOTION_FILE: json_text(promotion),
        NDCG_CURVE_FILE: report.ndcg_curve.to_csv(index=False),
        CALIBRATION_FILE: report.calibration.to_csv(index=False),
    }
    for name, text in files.items():
        atomic_write_text(directory / name, text)


def run_description(report: TrainingReport, job_counts: Mapping[str, int], data: str, outcome: str) -> str:
    """The training run's description in MLflow (Markdown, from the run's own figures): what was trained on
    what, what won and by how much, and what the registry did. `data`: the snapshot's DVC hash and whether it
    is the pinned version; `outcome`: the registered version and the gate's decision."""
    test: Mapping[str, object] = report.metrics["test"]  # type: ignore[assignment]
    references = [f"the skill-overlap baseline {test['baseline_skill_overlap_ndcg_at_10']:.4f}"]
    if f"{ORACLE}_ndcg_at_10" in test:
        references.append(f"the oracle {test[f'{ORACLE}_ndcg_at_10']:.4f}")
    jobs = ", ".join(f"{count:,} {name}" for name, count in job_counts.items())
    return (
        f"Ranks the freelancers who applied to a job post. Trained on snapshot {data}, split by posting "
        f"time into {jobs} jobs.\n\n"
        f"Selected **{report.selected}**: test NDCG@10 {test['ndcg_at_10']:.4f} (against "
        f"{' and '.join(references)}), exposure fairness ratio {report.fairness.ratio:.2f}.\n\n{outcome}"
    )
