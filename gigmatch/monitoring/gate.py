"""Running the drift gate end to end: read both sides, decide, write the two reports.

The verdict comes from `gigmatch.monitoring.rules`; the HTML page for people is drawn by a
renderer passed in (`pipelines.evidently_report.build_html_report`, Evidently), which
keeps the report library out of the domain package. Both outputs land in the
report directory, each written atomically; nothing is written unless the whole
run succeeds, so a broken input leaves the previous reports in place.

The verdict is a function of its inputs alone (no clock: when it was made is the file's
time and the run's), so the same batch against the same model writes the same bytes and
its hash in dvc.lock means something; the HTML page carries Evidently's own timestamp
and ids, so the DVC graph does not hash it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
from sklearn.pipeline import Pipeline

from gigmatch.errors import ExitCode
from gigmatch.files import atomic_write_text, write_json
from gigmatch.model.bundle import load_bundle, read_lineage
from gigmatch.model.pipeline import estimator_of
from gigmatch.monitoring.frame import ReferenceBuilder, champion_reference, read_frame, training_frame
from gigmatch.monitoring.quality import model_reliance
from gigmatch.monitoring.rules import Verdict, evaluate_drift
from gigmatch.params import DriftParams, Params

HTML_FILE = "drift_report.html"
VERDICT_FILE = "drift_verdict.json"

HtmlRenderer = Callable[[pd.DataFrame, pd.DataFrame, DriftParams], str]


@dataclass(frozen=True)
class GateOutcome:
    verdict: Verdict
    html_path: Path
    verdict_path: Path

    @property
    def exit_code(self) -> int:
        return ExitCode.CHECK_FAILED if self.verdict.drift_detected else ExitCode.OK


def run_gate(
    params: Params,
    current: Path,
    reference: Path | None,
    bundle: Path,
    report_dir: Path,
    render_html: HtmlRenderer,
    reference_cache_dir: Path,
    outcomes: pd.DataFrame | None = None,
    live_baseline: tuple[float, int] | None = None,
    build_reference: ReferenceBuilder = training_frame,
) -> GateOutcome:
    """Compare `current` with `reference` (default: the champion's training rows, scored once per model
    and data version by `build_reference` and kept in `reference_cache_dir`) and write both reports."""
    lineage = read_lineage(bundle)  # the champion's version and test figures; fails early if there is no bundle
    model = _model_loader(bundle)
    current_frame = read_frame(current, model)
    if reference is None:
        key = f"{lineage['model_name']}-v{lineage['version']}"
        reference_frame, reference_source = champion_reference(
            params.data.dir, params.split, model, key, reference_cache_dir, build_reference
        )
    else:
        reference_frame, reference_source = read_frame(reference, model), reference
    test_metrics = lineage.get("test_metrics") or {}
    reference_ndcg = test_metrics.get(f"ndcg_at_{params.drift.ndcg_k}")
    verdict = evaluate_drift(
        reference_frame,
        current_frame,
        params.drift,
        None if reference_ndcg is None else float(reference_ndcg),
        str(lineage["version"]),
        model_reliance(estimator_of(model()), reference_frame),
        outcomes,
        live_baseline=live_baseline,
    )
    html = render_html(reference_frame, current_frame, params.drift)
    sources = {"reference": str(reference_source), "current": str(current)}
    return write_reports(verdict, html, Path(report_dir), sources, str(lineage["model_name"]))


def verdict_document(verdict: Verdict, sources: dict[str, str], model_name: str) -> dict[str, object]:
    """The JSON verdict: the rules' outcome plus where it came from and which exit code it means."""
    exit_code = int(ExitCode.CHECK_FAILED if verdict.drift_detected else ExitCode.OK)  # warnings exit 0
    return {
        **verdict.to_dict(),
        "exit_code": exit_code,
        "model_name": model_name,
        "sources": sources,
        "html_report": HTML_FILE,
    }


def write_reports(
    verdict: Verdict, html: str, report_dir: Path, sources: dict[str, str], model_name: str
) -> GateOutcome:
    """HTML first, then the verdict: a reader that sees the new verdict finds the matching page."""
    html_path, verdict_path = report_dir / HTML_FILE, report_dir / VERDICT_FILE
    document = verdict_document(verdict, sources, model_name)
    atomic_write_text(html_path, html)
    write_json(verdict_path, document, sort_keys=False)
    return GateOutcome(verdict, html_path, verdict_path)


def _model_loader(bundle: Path) -> Callable[[], Pipeline]:
    """Load the model once, when first needed (scoring a side, or measuring its reliance)."""

    @cache
    def load() -> Pipeline:
        return load_bundle(bundle).model

    return load
