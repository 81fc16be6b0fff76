"""The monitoring flow: new prediction-log lines in, drift gate, retraining on drift.

Each run first measures live quality: the outcomes clients reported to
/v1/outcomes joined to the answers they concern, once matured
(`gigmatch.monitoring.live`), per model version, into `live_quality.json`. Then it
gates what serving logged since the previous run (the cursor in
`gigmatch.monitoring.log_cursor`), the ranking-quality rule reading the champion's
matured outcomes, writes the HTML report and the JSON verdict, and moves the
cursor only after the gate has judged those lines. Too few new rows to judge (the
thresholds are calibrated for `drift.min_current_rows`) and the lines wait for the
next run. On drift it starts the training flow as a subflow; that flow promotes a
new champion only through its own gate, so monitoring can never ship a worse model.

Scheduled with `flow.serve` on `GIGMATCH_MONITOR_CRON` (`gigmatch monitor --serve`),
or run once (`gigmatch monitor`, `make monitor`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gigmatch.files import atomic_write_text, write_json
from gigmatch.model.bundle import read_lineage
from gigmatch.monitoring.gate import GateOutcome, run_gate
from gigmatch.monitoring.live import live_report, ranking_rows
from gigmatch.monitoring.log_cursor import NewLines, new_lines, read_cursor, save_cursor
from gigmatch.monitoring.prediction_log import candidate_count
from gigmatch.params import Params, load_params
from pipelines.evidently_report import build_html_report
from pipelines.settings import get_monitoring_settings
from pipelines.training import TrainingOutcome, run_training

CURSOR_FILE = "monitor_cursor.json"
LIVE_QUALITY_FILE = "live_quality.json"
BATCHES_DIR = "batches"  # each gated batch is kept beside the reports it produced


@dataclass(frozen=True)
class MonitorOutcome:
    status: str  # "waiting" (too few new rows), "no_drift", "warning" or "drift"
    new_rows: int
    live_quality: dict[str, object] | None = None
    batch: Path | None = None
    gate: GateOutcome | None = None
    retraining: TrainingOutcome | None = None


@task(name="collect-new-predictions", cache_policy=NO_CACHE)
def collect_new_predictions(log_dir: Path, cursor_path: Path) -> NewLines:
    return new_lines(log_dir, read_cursor(cursor_path))


@task(name="count-candidate-rows", cache_policy=NO_CACHE)
def count_candidate_rows(batch: NewLines) -> int:
    """Rows the gate will see: one per candidate in each logged request.

    A line that does not parse counts for nothing here; the gate's reader names it.
    """
    rows = 0
    for line in batch.lines:
        try:
            record = json.loads(line)
            rows += candidate_count(record) if isinstance(record, dict) else 0
        except ValueError:
            continue
    return rows


@task(name="stage-batch", cache_policy=NO_CACHE)
def stage_batch(batch: NewLines, report_dir: Path) -> Path:
    """The lines being gated, kept as a file: the report can always be traced to its input."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = report_dir / BATCHES_DIR / f"predictions-{stamp}.jsonl"
    atomic_write_text(path, "".join(line + "\n" for line in batch.lines))
    return path


@task(name="live-quality", cache_policy=NO_CACHE)
def live_quality(
    params: Params, log_dir: Path, bundle: Path, report_dir: Path
) -> tuple[dict[str, object], pd.DataFrame]:
    """Matured outcomes joined to their answers: figures per model version, and the champion's rows."""
    matured_before = dt.datetime.now(dt.UTC) - dt.timedelta(hours=params.drift.outcome_maturity_hours)
    outcome_dir = get_monitoring_settings().outcome_log_dir
    joined, document = live_report(log_dir, outcome_dir, matured_before, params.drift.ndcg_k)
    write_json(report_dir / LIVE_QUALITY_FILE, document, sort_keys=True)
    return document, ranking_rows(joined, str(read_lineage(bundle)["version"]))


@task(name="drift-gate", cache_policy=NO_CACHE)
def drift_gate(params: Params, batch: Path, bundle: Path, report_dir: Path, outcomes: pd.DataFrame) -> GateOutcome:
    cache_dir = get_monitoring_settings().reference_cache_dir
    graded = outcomes if len(outcomes) else None
    return run_gate(params, batch, None, bundle, report_dir, build_html_report, cache_dir, graded)


@task(name="advance-cursor", cache_policy=NO_CACHE)
def advance_cursor(cursor_path: Path, batch: NewLines) -> None:
    save_cursor(cursor_path, batch.offsets)


@flow(name="gigmatch-monitor", log_prints=True)
def monitor_flow(
    params_path: Path = Path("params.yaml"),
    bundle: Path = Path("bundle"),
    log_dir: Path | None = None,
    report_dir: Path | None = None,
    retrain_on_drift: bool = True,
) -> MonitorOutcome:
    params = load_params(params_path)
    log_dir = Path(log_dir or get_monitoring_settings().log_dir)
    report_dir = Path(report_dir or params.drift.report_dir)
    cursor_path = report_dir / CURSOR_FILE
    logger = get_run_logger()

    quality, champion_outcomes = live_quality(params, log_dir, bundle, report_dir)
    print(f"live quality per model version: {quality['by_model_version']}")
    batch = collect_new_predictions(log_dir, cursor_path)
    rows = count_candidate_rows(batch)
    if rows < params.drift.min_current_rows:
        logger.info("%d new rows in %s, fewer than %d: waiting for more", rows, log_dir, params.drift.min_current_rows)
        return MonitorOutcome("waiting", rows, quality)

    staged = stage_batch(batch, report_dir)
    gate = drift_gate(params, staged, bundle, report_dir, champion_outcomes)
    advance_cursor(cursor_path, batch)  # only once the gate has judged these lines
    failed = ", ".join(gate.verdict.failed_rules) or "none"
    warned = ", ".join(gate.verdict.warnings) or "none"
    print(
        f"{rows} rows gated against model version {gate.verdict.model_version}: "
        f"failed blocking rules {failed}; warnings {warned}"
    )
    if not gate.verdict.drift_detected:
        return MonitorOutcome(gate.verdict.status, rows, quality, staged, gate)
    retraining = run_training(params_path) if retrain_on_drift else None
    if retraining is not None:
        print(f"retrained: version {retraining.version}, {retraining.decision.summary()}")
    return MonitorOutcome("drift", rows, quality, staged, gate, retraining)


def serve_monitoring(params_path: Path = Path("params.yaml"), bundle: Path = Path("bundle")) -> None:
    """Run the flow on GIGMATCH_MONITOR_CRON until stopped (needs a Prefect API: PREFECT_API_URL)."""
    monitor_flow.serve(
        name="gigmatch-monitor",
        cron=get_monitoring_settings().monitor_cron,
        parameters={"params_path": str(params_path), "bundle": str(bundle)},
    )
