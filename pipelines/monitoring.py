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
With the marketplace's records (GIGMATCH_MARKET_DIR) it first grows the snapshot by
the matured outcomes joined back to their jobs and freelancers (`gigmatch.data.feedback`)
and commits that as a new DVC data version (data.dvc), the one the retraining trains on:
its md5 is the model's lineage `data_md5`, the one it grew from a tag of the run.

With GIGMATCH_LOG_STORE set, the logs are those serving's hosts shipped to object storage
(`pipelines.log_store`), mirrored first. Each run's outcome goes to `monitor_outcome.json`, and,
against a tracking server, to a run of the `gigmatch-monitoring` experiment (the dashboards read it).

Scheduled on `GIGMATCH_MONITOR_CRON`: with `flow.serve` (`gigmatch monitor --serve`), or, with a
work pool (GIGMATCH_WORK_POOL), as the pool's `gigmatch-monitor/team` deployment. Or run once
(`gigmatch monitor`, `make monitor`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gigmatch.data.feedback import DataVersion, commit_data_version, grow_snapshot, read_market
from gigmatch.data.pinning import run_dvc
from gigmatch.data.snapshot import read_tables
from gigmatch.files import atomic_write_text, write_json
from gigmatch.model.bundle import read_lineage
from gigmatch.monitoring.frame import OUTCOME
from gigmatch.monitoring.gate import GateOutcome, run_gate
from gigmatch.monitoring.live import LiveOutcomes, LiveReference, live_reference, live_report, ranking_rows
from gigmatch.monitoring.log_cursor import NewLines, new_lines, read_cursor, save_cursor
from gigmatch.monitoring.prediction_log import candidate_count
from gigmatch.params import Params, load_params
from gigmatch.training.promotion import CHALLENGER, CHAMPION, decide_online
from pipelines import log_store, tracking
from pipelines.evidently_report import build_html_report
from pipelines.rollout import rollout_flow
from pipelines.settings import get_monitoring_settings, get_rollout_settings, get_team_settings, get_tracking_settings
from pipelines.training import TrainingOutcome, run_training

CURSOR_FILE = "monitor_cursor.json"
LIVE_QUALITY_FILE = "live_quality.json"
OUTCOME_FILE = "monitor_outcome.json"
MONITORING_EXPERIMENT = "gigmatch-monitoring"
BATCHES_DIR = "batches"  # each gated batch is kept beside the reports it produced


@dataclass(frozen=True)
class MonitorOutcome:
    status: str  # "waiting" (too few new rows), "no_drift", "warning" or "drift"
    new_rows: int
    live_quality: dict[str, object] | None = None
    batch: Path | None = None
    gate: GateOutcome | None = None
    retraining: TrainingOutcome | None = None
    data_version: DataVersion | None = None  # the snapshot grown by the matured outcomes, retrained on
    online_promotion: dict[str, object] | None = None  # the challenger judged on its live evidence (promote.online)


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


@task(name="mirror-shipped-logs", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def mirror_shipped_logs(store: str, mirror_dir: Path) -> tuple[Path, Path, Path]:
    """The logs serving's hosts shipped, mirrored locally: (prediction, outcome, shadow log dirs)."""
    kinds = (log_store.PREDICTIONS, log_store.OUTCOMES, log_store.SHADOW)
    fetched = [log_store.mirror(store, kind, mirror_dir / kind.name) for kind in kinds]
    get_run_logger().info("%d new shipped log files from %s", sum(map(len, fetched)), store)
    predictions, outcomes, shadow = (mirror_dir / kind.name for kind in kinds)
    return predictions, outcomes, shadow


@task(name="live-quality", cache_policy=NO_CACHE)
def live_quality(
    params: Params, log_dir: Path, outcome_dir: Path, shadow_dir: Path, bundle: Path, report_dir: Path
) -> tuple[dict[str, object], LiveOutcomes, pd.DataFrame]:
    """Matured outcomes joined to their answers: figures per model version (and the shadow challenger
    beside the champion on the same requests), the join, and the champion's rows."""
    matured_before = dt.datetime.now(dt.UTC) - dt.timedelta(hours=params.drift.outcome_maturity_hours)
    joined, document = live_report(log_dir, outcome_dir, matured_before, params.drift.ndcg_k, shadow_dir)
    write_json(report_dir / LIVE_QUALITY_FILE, document, sort_keys=True)
    return document, joined, ranking_rows(joined, str(read_lineage(bundle)["version"]))


@task(name="live-reference", cache_policy=NO_CACHE)
def served_live_reference(params: Params, joined: LiveOutcomes, bundle: Path) -> LiveReference | None:
    """The served version's live baseline and latest matured requests, once it has enough (drift.live_*)."""
    drift = params.drift
    version = str(read_lineage(bundle)["version"])
    return live_reference(joined, version, drift.live_baseline_requests, drift.live_window_requests, drift.ndcg_k)


@task(name="grow-data-version", cache_policy=NO_CACHE)
def grow_data_version(params: Params, joined: LiveOutcomes, market_dir: Path) -> DataVersion | None:
    """The pinned snapshot plus the matured outcomes, as a new DVC data version (pushed with GIGMATCH_DVC_REMOTE)."""
    logger = get_run_logger()
    matured = joined.rows.loc[:, ["job_id", "freelancer_id", OUTCOME]].astype({"job_id": "int64"})
    grown = grow_snapshot(read_tables(params.data.dir), read_market(market_dir), matured)
    for note in grown.notes:
        logger.warning(note)
    if not grown.added.get("applications"):
        logger.info("no matured outcome adds to the snapshot (%s): retraining on the pinned data", grown.summary())
        return None
    version = commit_data_version(grown, params.data.dir, Path.cwd())
    print(f"new data version {version.md5} (from {version.parent_md5}): {grown.summary()}")
    remote = get_team_settings().dvc_remote
    if remote:
        pushed = run_dvc(["push", "-r", remote, f"{Path(params.data.dir).name}.dvc"], Path.cwd())
        if pushed.returncode != 0:
            raise RuntimeError(f"dvc push to {remote} failed: {pushed.stderr.strip()[-500:]}")
    return version


@task(name="promote-on-evidence", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def promote_on_evidence(params: Params, quality: dict[str, object]) -> dict[str, object] | None:
    """With promote.online.required: the challenger becomes champion once its shadow's live figures beat
    the champion's on enough matured requests (then it is rolled out to GIGMATCH_SERVING_URLS)."""
    evidence = quality.get("shadow")
    if not isinstance(evidence, dict):
        return None
    settings = get_tracking_settings()
    tracking.configure(settings)
    name = params.register_.model_name
    challenger = tracking.alias_version(name, CHALLENGER)
    if challenger is None or challenger == tracking.alias_version(name, CHAMPION):
        return None
    passed = tracking.version_tag(name, challenger, tracking.OFFLINE_GATE_TAG) == "passed"
    decision = decide_online(evidence, challenger, params.promote.online, passed)
    print(f"challenger {challenger} online: {decision.summary()}")
    if decision.promote:
        tracking.set_alias(name, CHAMPION, challenger)
        tracking.record_champion(name, challenger)
        if get_rollout_settings().serving_urls:
            rollout_flow(name)
    return {"challenger_version": challenger, "promote": decision.promote, "reasons": decision.reasons}


@task(name="drift-gate", cache_policy=NO_CACHE)
def drift_gate(
    params: Params, batch: Path, bundle: Path, report_dir: Path, outcomes: pd.DataFrame, live: LiveReference | None
) -> GateOutcome:
    """The gate; its ranking rule reads the version's latest matured requests against its live baseline
    when it has one, else all its matured outcomes against its test figure."""
    cache_dir = get_monitoring_settings().reference_cache_dir
    if live is not None:
        baseline = (live.baseline_ndcg, live.baseline_requests)
        return run_gate(params, batch, None, bundle, report_dir, build_html_report, cache_dir, live.window, baseline)
    graded = outcomes if len(outcomes) else None
    return run_gate(params, batch, None, bundle, report_dir, build_html_report, cache_dir, graded)


@task(name="advance-cursor", cache_policy=NO_CACHE)
def advance_cursor(cursor_path: Path, batch: NewLines) -> None:
    save_cursor(cursor_path, batch.offsets)


@task(name="record-outcome", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def record_outcome(outcome: MonitorOutcome, report_dir: Path) -> None:
    """`monitor_outcome.json` for whoever started the run; a run in MLflow for the dashboards."""
    summary = outcome_summary(outcome)
    write_json(report_dir / OUTCOME_FILE, summary, sort_keys=True)
    settings = get_tracking_settings()
    if outcome.gate is None or not settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        return  # a local store gets no run per gate: its file is enough on one machine
    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(MONITORING_EXPERIMENT, settings)
    tags = {"status": outcome.status, "model_version": str(outcome.gate.verdict.model_version)}
    with tracking.run(experiment_id, f"gate-{outcome.status}", tags=tags) as run_id:
        tracking.log_figures(run_id, {}, _monitor_metrics(outcome), {})
        tracking.log_json(run_id, summary, OUTCOME_FILE)


def outcome_summary(outcome: MonitorOutcome) -> dict[str, object]:
    verdict = outcome.gate.verdict if outcome.gate is not None else None
    return {
        "status": outcome.status,
        "new_rows": outcome.new_rows,
        "model_version": None if verdict is None else verdict.model_version,
        "failed_rules": [] if verdict is None else list(verdict.failed_rules),
        "warnings": [] if verdict is None else list(verdict.warnings),
        "verdict": None if outcome.gate is None else str(outcome.gate.verdict_path),
        "retrained_version": None if outcome.retraining is None else outcome.retraining.version,
        "data_version": None if outcome.data_version is None else asdict(outcome.data_version),
        "live_quality": outcome.live_quality,
        "online_promotion": outcome.online_promotion,
    }


def _monitor_metrics(outcome: MonitorOutcome) -> dict[str, float]:
    assert outcome.gate is not None
    verdict = outcome.gate.verdict
    metrics = {
        "monitor_blocked": float(verdict.drift_detected),
        "monitor_warned": float(bool(verdict.warnings)),
        "monitor_drifted_share": float(verdict.drifted_share),
        "monitor_rows": float(outcome.new_rows),
    }
    by_version = (outcome.live_quality or {}).get("by_model_version", {})
    champion = by_version.get(str(verdict.model_version)) if isinstance(by_version, dict) else None
    if isinstance(champion, dict) and isinstance(champion.get("ndcg_at_10"), int | float):
        metrics["monitor_live_ndcg_at_10"] = float(champion["ndcg_at_10"])
    return metrics


@flow(name="gigmatch-monitor", log_prints=True)
def monitor_flow(
    params_path: Path = Path("params.yaml"),
    bundle: Path = Path("bundle"),
    log_dir: Path | None = None,
    report_dir: Path | None = None,
    retrain_on_drift: bool = True,
) -> MonitorOutcome:
    params = load_params(params_path)
    report_dir = Path(report_dir or params.drift.report_dir)
    outcome = _monitor(params, params_path, bundle, log_dir, report_dir, retrain_on_drift)
    record_outcome(outcome, report_dir)
    return outcome


def _monitor(
    params: Params, params_path: Path, bundle: Path, log_dir: Path | None, report_dir: Path, retrain_on_drift: bool
) -> MonitorOutcome:
    settings, store = get_monitoring_settings(), get_team_settings().log_store
    if store and log_dir is None:
        log_dir, outcome_dir, shadow_dir = mirror_shipped_logs(store, settings.log_mirror_dir)
    else:
        log_dir, outcome_dir, shadow_dir = (
            Path(log_dir or settings.log_dir),
            settings.outcome_log_dir,
            settings.shadow_log_dir,
        )
    cursor_path = report_dir / CURSOR_FILE
    logger = get_run_logger()

    quality, joined, champion_outcomes = live_quality(params, log_dir, outcome_dir, shadow_dir, bundle, report_dir)
    print(f"live quality per model version: {quality['by_model_version']}")
    online = promote_on_evidence(params, quality) if params.promote.online.required else None
    batch = collect_new_predictions(log_dir, cursor_path)
    rows = count_candidate_rows(batch)
    if rows < params.drift.min_current_rows:
        logger.info("%d new rows in %s, fewer than %d: waiting for more", rows, log_dir, params.drift.min_current_rows)
        return MonitorOutcome("waiting", rows, quality, online_promotion=online)

    staged = stage_batch(batch, report_dir)
    gate = drift_gate(
        params, staged, bundle, report_dir, champion_outcomes, served_live_reference(params, joined, bundle)
    )
    advance_cursor(cursor_path, batch)  # only once the gate has judged these lines
    failed = ", ".join(gate.verdict.failed_rules) or "none"
    warned = ", ".join(gate.verdict.warnings) or "none"
    print(
        f"{rows} rows gated against model version {gate.verdict.model_version}: "
        f"failed blocking rules {failed}; warnings {warned}"
    )
    if not gate.verdict.drift_detected:
        return MonitorOutcome(gate.verdict.status, rows, quality, staged, gate, online_promotion=online)
    if not retrain_on_drift or (online or {}).get("promote"):
        if retrain_on_drift:  # judged on the traffic of the model this run replaced: the new one gets its own
            print(f"not retraining: challenger {online['challenger_version']} was promoted on this run")  # type: ignore[index]
        return MonitorOutcome("drift", rows, quality, staged, gate, online_promotion=online)
    data_version = grow_data_version(params, joined, settings.market_dir) if settings.market_dir else None
    retraining = run_training(params_path, data_version.tags() if data_version else None)
    print(f"retrained: version {retraining.version}, {retraining.decision.summary()}")
    return MonitorOutcome("drift", rows, quality, staged, gate, retraining, data_version, online)


def serve_monitoring(params_path: Path = Path("params.yaml"), bundle: Path = Path("bundle")) -> None:
    """Run the flow on GIGMATCH_MONITOR_CRON until stopped (needs a Prefect API: PREFECT_API_URL)."""
    monitor_flow.serve(
        name="gigmatch-monitor",
        cron=get_monitoring_settings().monitor_cron,
        parameters={"params_path": str(params_path), "bundle": str(bundle)},
    )
