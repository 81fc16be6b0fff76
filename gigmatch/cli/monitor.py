"""The drift gate and the monitoring flow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gigmatch.cli.app import ParamsOption, app, console
from gigmatch.errors import ExitCode
from gigmatch.params import DEFAULT_PARAMS_PATH, load_params


@app.command("drift")
def drift(
    current: Annotated[
        Path, typer.Option(help="Parquet match table or monitoring frame, prediction log (.jsonl), or a directory.")
    ],
    reference: Annotated[
        Path | None, typer.Option(help="Same kinds as --current \\[default: the champion's training rows].")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Where to write the reports \\[default: drift.report_dir].")
    ] = None,
    bundle: Annotated[Path, typer.Option(help="The champion's bundle (gigmatch export).")] = Path("bundle"),
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """The drift gate: compare a batch with the champion's training data.

    Blocking rules (drift.blocking; exit 1): rising missing values, drift in the
    columns the model relies on, expected NDCG@10 from the model's calibrated
    scores and, when the batch has outcomes, live NDCG@10 against the champion's
    test figure. Warning-only rules (exit 0, named in the verdict): the share of
    drifted columns and score drift. Thresholds are in params.yaml (drift). Writes
    drift_report.html (Evidently, for people) and drift_verdict.json (for machines) to the report directory, atomically.

    Exit codes: 0 no drift (or warnings only); 1 a blocking rule failed; 2 data contract broken
    (missing or mistyped columns, unreadable input); 3 any other error (no
    bundle, bad params.yaml). A run that exits 2 or 3 leaves earlier reports as they were.
    The champion's scored training rows are cached in GIGMATCH_REFERENCE_CACHE_DIR; with
    engine.kind dask in params.yaml they are scored on the cluster, partition by partition.
    """
    from functools import partial

    from gigmatch.monitoring.gate import run_gate
    from pipelines.evidently_report import build_html_report
    from pipelines.settings import get_monitoring_settings

    params = load_params(params_path)
    gate = partial(
        run_gate,
        params,
        current,
        reference,
        bundle,
        report_dir or params.drift.report_dir,
        build_html_report,
        get_monitoring_settings().reference_cache_dir,
    )
    if params.engine.kind == "dask":  # the cluster opens only if the reference is not cached
        from gigmatch.scale.reference import reference_on_engine  # the scale extra: only on the Dask engine

        outcome = gate(build_reference=reference_on_engine(params.engine, console.print))
    else:
        outcome = gate()
    verdict = outcome.verdict
    colour = {"drift": "red", "warning": "yellow"}.get(verdict.status, "green")
    label = {"drift": "drift (blocks)", "warning": "no blocking drift, with warnings"}.get(verdict.status, "no drift")
    console.print(
        f"[{colour}]{label}[/{colour}]: {verdict.drifted_share:.0%} of columns drifted; "
        f"failed blocking rules: {', '.join(verdict.failed_rules) or 'none'}; "
        f"warnings: {', '.join(verdict.warnings) or 'none'}"
    )
    console.print(f"reports: {outcome.html_path} and {outcome.verdict_path}")
    if verdict.drift_detected:
        raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command("monitor")
def monitor(
    bundle: Annotated[Path, typer.Option(help="The champion's bundle (gigmatch export).")] = Path("bundle"),
    retrain: Annotated[bool, typer.Option(help="Start the training flow when the gate finds drift.")] = True,
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Keep running on GIGMATCH_MONITOR_CRON (needs a Prefect API: PREFECT_API_URL)."),
    ] = False,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """The monitoring flow (Prefect): gate the prediction-log lines written since its last run.

    Reads the prediction log (GIGMATCH_LOG_DIR) from where the last run stopped; with fewer
    than drift.min_current_rows new rows it waits for more. Otherwise it runs the
    drift gate (reports in drift.report_dir) and, on drift, the training flow,
    which promotes a new champion only through its own gate. Exit codes as
    `gigmatch drift`: 0 no drift (or waiting), 1 drift, 2 contract broken, 3 error.
    """
    from pipelines.settings import get_team_settings

    if get_team_settings().work_pool:
        _monitor_on_worker(serve, params_path)
        return
    from pipelines.monitoring import monitor_flow, serve_monitoring

    if serve:
        serve_monitoring(params_path, bundle)
        return
    outcome = monitor_flow(params_path=params_path, bundle=bundle, retrain_on_drift=retrain)
    if outcome.status == "waiting":
        console.print(f"{outcome.new_rows:,} new rows: waiting for drift.min_current_rows before gating")
        return
    assert outcome.gate is not None
    console.print(f"{outcome.status}: {outcome.new_rows:,} rows gated; reports in {outcome.gate.verdict_path.parent}")
    if outcome.retraining is not None:
        console.print(f"retrained: version {outcome.retraining.version}, {outcome.retraining.decision.summary()}")
    if outcome.status == "drift":
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _monitor_on_worker(serve: bool, params_path: Path) -> None:
    """GIGMATCH_WORK_POOL set: the monitoring deployment (on GIGMATCH_MONITOR_CRON); `--serve` only
    declares it, else one run of it now, awaited, its outcome read back from monitor_outcome.json."""
    import json
    import os

    from pipelines import deployments, preflight
    from pipelines.monitoring import OUTCOME_FILE
    from pipelines.settings import get_monitoring_settings, get_team_settings

    team = get_team_settings()
    assert team.work_pool is not None
    preflight.check_prefect(os.environ.get("PREFECT_API_URL"))
    cron = get_monitoring_settings().monitor_cron
    deployments.deploy(deployments.MONITORING, team.work_pool, Path.cwd(), cron=cron)
    if serve:
        console.print(f"{deployments.MONITORING.full_name} runs on `{cron}` on pool {team.work_pool}")
        return
    run = deployments.run_and_wait(
        deployments.MONITORING, team.work_pool, team.deployment_timeout, team.worker_silence, console.log
    )
    outcome = json.loads((Path(load_params(params_path).drift.report_dir) / OUTCOME_FILE).read_text())
    console.print(
        f"flow run {run.name}: {outcome['status']}, {outcome['new_rows']:,} new rows; "
        f"failed blocking rules: {', '.join(outcome['failed_rules']) or 'none'}"
    )
    if outcome["status"] == "drift":
        raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command("ship-logs")
def ship_logs(
    host: Annotated[
        str | None, typer.Option(help="This host's name in the objects' names [default: hostname].")
    ] = None,
    include_today: Annotated[
        bool, typer.Option("--include-today", help="Ship today's files too (only when this host stops serving).")
    ] = False,
) -> None:
    """Ship serving's finished daily log files (predictions, outcomes) to GIGMATCH_LOG_STORE (s3://...).

    One object per host and day, never rewritten: run it daily (cron, a sidecar), and with
    --include-today when the host stops. The monitoring flow mirrors them before it gates.
    """
    from pipelines import log_store
    from pipelines.settings import get_monitoring_settings, get_team_settings

    store = get_team_settings().log_store
    if not store:
        console.print("error: set GIGMATCH_LOG_STORE to s3://bucket[/prefix] (the team stack's .env.team does)")
        raise typer.Exit(ExitCode.ERROR)
    settings, name = get_monitoring_settings(), host or log_store.host_name()
    shipped = log_store.ship(settings.log_dir, log_store.PREDICTIONS, store, name, include_today)
    shipped += log_store.ship(settings.outcome_log_dir, log_store.OUTCOMES, store, name, include_today)
    shipped += log_store.ship(settings.shadow_log_dir, log_store.SHADOW, store, name, include_today)
    console.print(f"shipped {len(shipped)} file(s) to {store}" + "".join(f"\n  {key}" for key in shipped))
