"""Train, export, serve and batch-score the model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gigmatch.cli.app import ParamsOption, app, console
from gigmatch.params import DEFAULT_PARAMS_PATH, load_params


@app.command("train")
def train(params_path: ParamsOption = DEFAULT_PARAMS_PATH) -> None:
    """Train the models in params.yaml and gate the champion (a Prefect flow, tracked in MLflow).

    Splits the pinned snapshot by time, trains every model in train.models
    (in parallel), evaluates them per job against baselines and the oracle,
    registers the best by validation NDCG@10, and moves the `champion` alias
    to it only if it passes the gate in params.yaml (promote); otherwise it
    becomes the `challenger`. Writes the DVC metrics and plots under
    train.reports_dir. MLFLOW_TRACKING_URI points at a team's MLflow server;
    PREFECT_API_URL at a Prefect server (unset: an ephemeral one).
    """
    from pipelines.settings import get_team_settings

    if get_team_settings().work_pool:
        _train_on_worker(params_path)
        return
    from pipelines.training import run_training

    outcome = run_training(params_path)
    test = outcome.metrics["test"]
    assert isinstance(test, dict)
    console.print(
        f"selected {outcome.selected}: test NDCG@10 {test['ndcg_at_10']:.4f}"
        + (f" (oracle {test['oracle_ndcg_at_10']:.4f})" if "oracle_ndcg_at_10" in test else "")
        + f", skill-overlap baseline {test['baseline_skill_overlap_ndcg_at_10']:.4f}"
    )
    console.print(f"registered version {outcome.version}: {outcome.decision.summary()}")


def _train_on_worker(params_path: Path) -> None:
    """GIGMATCH_WORK_POOL set: the training deployment, run by a worker of that pool, awaited here."""
    import json

    from pipelines import deployments, preflight
    from pipelines.settings import get_team_settings, get_tracking_settings

    team = get_team_settings()
    assert team.work_pool is not None
    preflight.check_prefect(os.environ.get("PREFECT_API_URL"))
    preflight.check_mlflow(get_tracking_settings().mlflow_tracking_uri)
    preflight.check_mlflow_artifacts(get_tracking_settings().mlflow_tracking_uri)
    deployments.deploy(deployments.TRAINING, team.work_pool, Path.cwd())
    run = deployments.run_and_wait(
        deployments.TRAINING, team.work_pool, team.deployment_timeout, team.worker_silence, console.log
    )
    promotion = json.loads((Path(load_params(params_path).train.reports_dir) / "promotion.json").read_text())
    verdict = "promoted to champion" if promotion.get("promote") else "kept as challenger"
    console.print(
        f"flow run {run.name} completed on pool {team.work_pool}: registered version {promotion['version']} "
        f"({promotion['selected_model']}), {verdict}"
    )


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Bundle directory to write (replaced atomically).")] = Path("bundle"),
    alias: Annotated[str, typer.Option(help="Registry alias to export.")] = "champion",
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Export the model an alias points to into a self-contained serving bundle.

    The bundle holds the model (features + estimator), its signature and its
    lineage: registered name, version, run id, data md5, git commit and test
    metrics. Serving loads only the bundle, no tracking database. The new bundle
    is checked (it must load and score its own example) before it replaces the
    old one.
    """
    from pipelines import preflight
    from pipelines.export import export_bundle
    from pipelines.settings import get_tracking_settings

    preflight.check_mlflow(get_tracking_settings().mlflow_tracking_uri)
    params = load_params(params_path)
    bundle = export_bundle(params.register_.model_name, alias, out, get_tracking_settings())
    console.print(f"exported {bundle.model_name} version {bundle.version} ({alias}) to {out}")


@app.command("rollout")
def rollout(
    alias: Annotated[str, typer.Option(help="Registry alias to roll out.")] = "champion",
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Export an alias into GIGMATCH_ROLLOUT_BUNDLE_PATH and reload the servers in GIGMATCH_SERVING_URLS.

    Each server must then report the new version on /v1/model (GIGMATCH_ADMIN_KEY opens the reload
    route; GIGMATCH_API_KEY reads /v1/model). If one does not, the previous bundle is put back and the
    servers reload it: the old model keeps serving, exit 3. The training flow runs this after a promotion.
    """
    from pipelines.rollout import roll_out
    from pipelines.settings import get_rollout_settings, get_tracking_settings

    settings = get_rollout_settings()
    done = roll_out(
        load_params(params_path).register_.model_name, alias, settings.rollout_bundle_path, settings.serving_urls,
        settings.admin_key.get_secret_value() if settings.admin_key else None, get_tracking_settings(), console.log,
    )  # fmt: skip
    console.print(f"version {done.version} (was {done.previous_version}) serving on {len(done.servers)} server(s)")


@app.command("rollback")
def rollback(params_path: ParamsOption = DEFAULT_PARAMS_PATH) -> None:
    """Move `champion` back to the version that held it before, and roll that out (as `gigmatch rollout`).

    Exit 3, with nothing changed, when there is no earlier champion or a server does not take it.
    """
    from pipelines.rollout import roll_back
    from pipelines.settings import get_rollout_settings, get_tracking_settings

    settings = get_rollout_settings()
    done = roll_back(
        load_params(params_path).register_.model_name, settings.rollout_bundle_path, settings.serving_urls,
        settings.admin_key.get_secret_value() if settings.admin_key else None, get_tracking_settings(), console.log,
    )  # fmt: skip
    console.print(f"rolled back: version {done.version} (was {done.previous_version}) is the champion and serving")


@app.command("serve")
def serve(
    bundle: Annotated[Path, typer.Option(envvar="GIGMATCH_BUNDLE_PATH", help="Bundle directory to serve.")] = Path(
        "bundle"
    ),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve the bundle with FastAPI (uvicorn, one worker): /v1/match, /v1/outcomes, /v1/model, /health, /ready.

    Also /metrics (Prometheus). Settings come from GIGMATCH_* environment variables (see
    serving/settings.py): GIGMATCH_API_KEY, GIGMATCH_ADMIN_KEY, GIGMATCH_LOG_DIR,
    GIGMATCH_OUTCOME_LOG_DIR, GIGMATCH_MAX_CANDIDATES, GIGMATCH_MAX_BODY_BYTES. Send SIGHUP, or
    POST /v1/admin/reload with the X-Admin-Key header, to load a new bundle without a restart.
    """
    import os

    import uvicorn

    os.environ["GIGMATCH_BUNDLE_PATH"] = str(bundle)
    uvicorn.run("serving.main:create_app", factory=True, host=host, port=port, workers=1, log_level="info")


@app.command("score")
def score(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Parquet file, or a folder of them: one row per (job, candidate).")
    ],
    output_path: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="Where the ranking goes: a Parquet file (a folder with Dask).")
    ],
    bundle: Annotated[Path, typer.Option(help="Bundle directory (gigmatch export).")] = Path("bundle"),
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Rank many jobs' candidates from Parquet with the same bundle the API serves.

    INPUT has the match columns (the job's and the freelancer's fields, as in
    /v1/match; skills as lists or space-separated slugs). OUTPUT gets job_id,
    freelancer_id, match_score, rank and model_version, written atomically: one
    Parquet file in-process, a folder of them (one per partition of whole jobs)
    with engine.kind dask in params.yaml (on GIGMATCH_DASK_ADDRESS's cluster, or a
    local one). Either reads back with pandas.read_parquet(OUTPUT). Exits 2 if INPUT
    is unreadable or lacks a column, 3 if the cluster cannot be reached.
    """
    from gigmatch.model.bundle import load_bundle
    from gigmatch.params import load_engine

    engine = load_engine(params_path)  # outside a checkout a bundle is all scoring needs: in-process
    if engine.kind == "in_process" and output_path.is_dir():
        problem = f"{output_path} is a folder (a Dask engine's output?): give a file"
        raise typer.BadParameter(problem, param_hint="OUTPUT")
    model = load_bundle(bundle)
    if engine.kind == "dask":
        from gigmatch.scale.cluster import dask_client, describe
        from gigmatch.scale.scoring import score_on_dask

        with dask_client(engine) as client:
            console.print(f"engine: {describe(client)}")
            with console.status("scoring on the cluster"):
                scored = score_on_dask(model, input_path, output_path, engine.partition_rows)
        console.print(f"ranked {scored.rows:,} candidates in {scored.partitions} partitions -> {output_path}")
        return
    from gigmatch.files import write_parquet
    from gigmatch.model.ranking import read_match_table, score_frame

    frame = read_match_table(input_path)
    with console.status(f"scoring {len(frame):,} rows"):
        ranked = score_frame(model.model, frame).assign(model_version=model.version)
    write_parquet(ranked, output_path)
    console.print(f"ranked {len(ranked):,} candidates for {ranked['job_id'].nunique():,} jobs -> {output_path}")
