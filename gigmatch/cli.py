"""`gigmatch`: the one command-line front door to the lifecycle.

Exit codes, the same for every command:
  0  success
  1  a check failed (the data does not match its pin; the drift gate found drift)
  2  the data contract is broken (missing or mistyped columns, bad values, unreadable files)
  3  any other error (bad params.yaml, a crash)
  64 the command line itself is wrong (unknown option, bad argument)
"""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# Typer vendors its own click; its exceptions live here.
from typer._click import exceptions as click_errors

from gigmatch.bundle import BundleError
from gigmatch.config import DEFAULT_PARAMS_PATH, Params, ParamsError, load_params, override
from gigmatch.dataset import atomic_write_text, read_tables, summary_metrics
from gigmatch.monitoring import ReferenceUnavailableError, write_frame
from gigmatch.new_project import NewProjectError, create_project
from gigmatch.pinning import PinError, directory_md5, materialise
from gigmatch.promotion import GateError
from gigmatch.simulator import SNAPSHOT_STEPS, generate_snapshot
from gigmatch.validation import ContractError, Violation


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1
    CONTRACT_BROKEN = 2
    ERROR = 3
    USAGE = 64


console = Console(stderr=True)
app = typer.Typer(
    help="gigmatch: rank the freelancers who applied to a job post, from pinned data to a served model.\n\n"
    "Exit codes: 0 success, 1 a check failed (drift found), 2 data contract broken, 3 other error, 64 usage error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Generate, validate and materialise the marketplace snapshot (freelancers, jobs, applications).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

ParamsOption = Annotated[
    Path, typer.Option("--params", help="Parameter file (the same one DVC reads).", dir_okay=False)
]


def _params(path: Path) -> Params:
    return load_params(path)


@data_app.command("generate")
def data_generate(
    out: Annotated[
        Path | None, typer.Option(help="Directory to write the snapshot to \\[default: data.dir in params.yaml].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override simulate.seed.")] = None,
    jobs: Annotated[int | None, typer.Option(min=10, help="Override simulate.n_jobs.")] = None,
    freelancers: Annotated[int | None, typer.Option(min=100, help="Override simulate.n_freelancers.")] = None,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Simulate the gig marketplace and write its tables as Parquet.

    Deterministic: the same params give byte-identical files. The snapshot is
    validated against the data contract before it replaces the old one, so a
    failed run leaves the previous snapshot in place.
    """
    params = _params(params_path)
    overrides = {k: v for k, v in {"seed": seed, "n_jobs": jobs, "n_freelancers": freelancers}.items() if v is not None}
    simulate = override(params.simulate, **overrides)
    target = out or params.data.dir
    with _progress() as progress:
        task = progress.add_task("simulating", total=len(SNAPSHOT_STEPS))

        def advance(step: str) -> None:
            progress.update(task, advance=1, description=step)

        frames = generate_snapshot(simulate, target, advance)
    _print_summary(summary_metrics(frames), target)
    console.print(f"md5 {directory_md5(target)}  (compare with data.dvc)")


@data_app.command("validate")
def data_validate(
    path: Annotated[
        Path | None, typer.Argument(help="Snapshot directory \\[default: data.dir in params.yaml].")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write headline figures as JSON here (only when valid).")] = None,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Check a snapshot against the data contract.

    Types, ranges, unique ids, allowed categories and skills, non-empty text,
    foreign keys from applications to jobs and freelancers, and time order.
    Exits 0 when valid and 2 when not, naming the table, column, failing check
    and a few offending rows.
    """
    directory = path or _params(params_path).data.dir
    with console.status(f"validating {directory}"):
        frames = read_tables(directory)
    metrics = summary_metrics(frames)
    if report:
        atomic_write_text(report, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    _print_summary(metrics, directory)
    console.print(f"[green]valid[/green]: {directory} meets the data contract")


@data_app.command("pull")
def data_pull(
    dvc_file: Annotated[Path, typer.Option(help="The pin file.")] = Path("data.dvc"),
    force: Annotated[bool, typer.Option(help="Replace a workspace copy that differs from the pin.")] = False,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Materialise exactly the snapshot that data.dvc pins.

    Tries the workspace, the DVC cache, the default DVC remote, then
    regenerates from the seed in params.yaml. Fails (exit 1) and changes
    nothing if the result's md5 differs from the pin.
    """
    params = _params(params_path)

    def regenerate(target: Path) -> None:
        with _progress() as progress:
            task = progress.add_task("simulating", total=len(SNAPSHOT_STEPS))
            generate_snapshot(params.simulate, target, lambda step: progress.update(task, advance=1, description=step))

    result = materialise(dvc_file, regenerate, force=force, log=lambda msg: console.print(f"[yellow]{msg}[/yellow]"))
    console.print(f"[green]data matches the pin[/green] {result.md5} (via {result.how})")


@data_app.command("batch")
def data_batch(
    out: Annotated[Path, typer.Option(help="Parquet file to write the batch to (written atomically).")],
    scenario: Annotated[str, typer.Option(help="Drift scenario (see above).")] = "none",
    magnitude: Annotated[float | None, typer.Option(help="Size of the shift \\[default: the scenario's].")] = None,
    rows: Annotated[int, typer.Option(min=1, help="About this many rows (whole jobs).")] = 2000,
    seed: Annotated[int, typer.Option(help="Batch seed: the same seed gives the same batch.")] = 0,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Simulate a "current" batch of applications (match table + outcome) with a named drift.

    Drawn from a fresh marketplace with the params in params.yaml, from the same
    part of the history as the training split, so `none` is the training data's
    distribution. Scenarios (default magnitude): none; skill_demand (2.0 years of
    demand trends); budget_inflation (0.25); new_region (0.25 of freelancers from
    a rare region); rate_undercut (0.25 cheaper); concept (1.0: outcomes follow
    other weights, features do not move); missing_values (0.3 of rows lose rating
    and success rate). Feed it to `gigmatch drift --current`.
    """
    from gigmatch.simulator.drift import SCENARIOS, simulate_batch

    if scenario not in SCENARIOS:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}", param_hint="--scenario"
        )
    params = _params(params_path)
    window = 1.0 - params.split.valid_fraction - params.split.test_fraction
    table = simulate_batch(params.simulate, scenario, magnitude, rows, seed, window=window)
    write_frame(table, out)
    console.print(f"{scenario} batch: {len(table):,} rows, {table['job_id'].nunique():,} jobs -> {out}")


@data_app.command("import")
def data_import(
    source: Annotated[
        Path, typer.Argument(help="Directory with the client's jobs, freelancers and applications (.parquet or .csv).")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Snapshot directory to write \\[default: data.dir in params.yaml].")
    ] = None,
    pin: Annotated[bool, typer.Option(help="Pin the snapshot with `dvc add` (writes data.dvc).")] = True,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Bring your own data: read a client's three tables into a snapshot that meets the data contract.

    Columns are renamed by data.import.columns in params.yaml (client name ->
    contract name); skill lists given as text are split by
    data.import.list_separator; timestamps without an offset are read in
    data.import.timezone and stored in UTC. The result is checked with the same
    contract as `data validate` and only then replaces the snapshot; with --pin
    (default) `dvc add` pins it. `gigmatch data schema` lists the columns needed.
    Exits 2 naming each table.column, check and rows if the data breaks the
    contract (nothing is written), 3 on a bad mapping in params.yaml.
    """
    from gigmatch.byo import import_snapshot
    from gigmatch.pinning import run_dvc

    params = _params(params_path)
    target = out or params.data.dir
    with console.status(f"importing {source}"):
        result = import_snapshot(source, target, params.data.import_)
    for table, columns in result.ignored.items():
        if columns:
            console.print(f"{table}: ignored columns not in the contract: {', '.join(columns)}")
    _print_summary(summary_metrics(result.frames), target)
    console.print(f"md5 {directory_md5(target)}")
    if pin:
        added = run_dvc(["add", str(target)], Path("."))
        if added.returncode != 0:
            raise PinError(
                f"{target} was written but `dvc add {target}` failed: {added.stderr.strip() or added.stdout}"
            )
        console.print(f"pinned: `git add {target}.dvc` and commit it, then `dvc repro`")


@data_app.command("schema")
def data_schema() -> None:
    """Print the tables and columns the pipeline needs (Markdown), generated from the data contract.

    Use it to brief a client or to map their columns in params.yaml
    (data.import.columns) before `gigmatch data import`.
    """
    from gigmatch.byo import contract_markdown

    typer.echo(contract_markdown(), nl=False)


@app.command("new-project")
def new_project(
    name: Annotated[str, typer.Argument(help="Package name of the new project: a lowercase Python identifier.")],
    dest: Annotated[
        Path | None, typer.Option(help="Directory to create (must not exist or be empty) \\[default: ../NAME].")
    ] = None,
    dvc_remote: Annotated[
        str | None,
        typer.Option(help="URL of the new project's default DVC remote \\[default: ~/.cache/NAME/dvc-storage]."),
    ] = None,
) -> None:
    """Start a client project: a fresh git repository with this project's code under a new name.

    Copies the files git tracks (and untracked files it does not ignore), renames
    the package, command, model (NAME-ranker), environment variables (NAME_*)
    and DVC remote, leaves out this project's data pin, lock and reports, and
    makes one initial commit. Next steps are printed.
    """
    root = Path(__file__).resolve().parents[1]
    target = dest or root.parent / name
    created = create_project(root, name, target, dvc_remote)
    console.print(f"[green]created[/green] {created.dest} ({created.files} files, commit {created.commit[:12]})")
    typer.echo(created.next_steps)


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

    Checks feature drift (per-column distance and the share of drifted columns),
    score drift, rising missing values and, when the batch has outcomes, NDCG@10
    against the champion's test figure; rules and thresholds are in params.yaml
    (drift). Writes drift_report.html (Evidently, for people) and
    drift_verdict.json (for machines) to the report directory, atomically.

    Exit codes: 0 no drift; 1 drift beyond thresholds; 2 data contract broken
    (missing or mistyped columns, unreadable input); 3 any other error (no
    bundle, bad params.yaml). A run that exits 2 or 3 leaves earlier reports as they were.
    """
    from gigmatch.drift_report import run_gate
    from pipelines.drift_html import build_html_report

    params = _params(params_path)
    outcome = run_gate(params, current, reference, bundle, report_dir or params.drift.report_dir, build_html_report)
    verdict = outcome.verdict
    colour = "red" if verdict.drift_detected else "green"
    console.print(
        f"[{colour}]{'drift' if verdict.drift_detected else 'no drift'}[/{colour}]: "
        f"{verdict.drifted_share:.0%} of columns drifted; failed rules: {', '.join(verdict.failed_rules) or 'none'}"
    )
    console.print(f"reports: {outcome.html_path} and {outcome.verdict_path}")
    if verdict.drift_detected:
        raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command("monitor")
def monitor(
    bundle: Annotated[Path, typer.Option(help="The champion's bundle (gigmatch export).")] = Path("bundle"),
    retrain: Annotated[bool, typer.Option(help="Start the training flow when the gate finds drift.")] = True,
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep running on drift.monitor_cron (needs a Prefect API: PREFECT_API_URL).")
    ] = False,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """The monitoring flow (Prefect): gate the prediction-log lines written since its last run.

    Reads drift.prediction_log_dir from where the last run stopped; with fewer
    than drift.min_current_rows new rows it waits for more. Otherwise it runs the
    drift gate (reports in drift.report_dir) and, on drift, the training flow,
    which promotes a new champion only through its own gate. Exit codes as
    `gigmatch drift`: 0 no drift (or waiting), 1 drift, 2 contract broken, 3 error.
    """
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


@app.command("verify")
def verify(
    rev: Annotated[str, typer.Option(help="Commit to verify.")] = "HEAD",
    keep_scratch: Annotated[bool, typer.Option(help="Keep the scratch workspace (always kept on failure).")] = False,
    scratch: Annotated[
        Path | None, typer.Option(help="Empty scratch directory to use (kept).", file_okay=False)
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Train even when the inputs already differ from the committed fingerprint's.")
    ] = False,
) -> None:
    """Reproduce a commit's pipeline in a scratch clone and compare its model fingerprint.

    Clones the commit, materialises the data data.dvc pins (md5 checked), checks
    the installed packages against uv.lock, runs `dvc repro` with a fresh MLflow
    store, and compares the selected model's fingerprint (scores on a probe set,
    parameters, test metrics) with reports/fingerprint.json. Exit codes: 0 it
    matches bit for bit; 1 it differs (the diff names the stage and figure);
    2 the data contract is broken; 3 any other error.
    """
    from gigmatch.verify import run_verify_command

    code = run_verify_command(Path("."), keep_scratch, rev=rev, scratch_dir=scratch, full=full)
    if code:
        raise typer.Exit(code)


@app.command("train")
def train(params_path: ParamsOption = DEFAULT_PARAMS_PATH) -> None:
    """Train the candidate models and gate the champion (a Prefect flow, tracked in MLflow).

    Splits the pinned snapshot by time, trains every candidate in params.yaml
    (in parallel), evaluates them per job against baselines and the oracle,
    registers the best by validation NDCG@10, and moves the `champion` alias
    to it only if it passes the gate in params.yaml (promote); otherwise it
    becomes the `challenger`. Writes the DVC metrics and plots under
    train.reports_dir. MLFLOW_TRACKING_URI points at a team's MLflow server;
    PREFECT_API_URL at a Prefect server (unset: an ephemeral one).
    """
    # Imported here: the orchestration stack takes seconds to import, the data commands need none of it.
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
    from pipelines.export import export_bundle
    from pipelines.settings import get_tracking_settings

    params = _params(params_path)
    bundle = export_bundle(params.register_.model_name, alias, out, get_tracking_settings())
    console.print(f"exported {bundle.model_name} version {bundle.version} ({alias}) to {out}")


@app.command("serve")
def serve(
    bundle: Annotated[Path, typer.Option(envvar="GIGMATCH_BUNDLE_PATH", help="Bundle directory to serve.")] = Path(
        "bundle"
    ),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve the bundle with FastAPI (uvicorn, one worker): /v1/match, /v1/model, /health, /ready, /metrics.

    Settings come from GIGMATCH_* environment variables (see serving/settings.py):
    GIGMATCH_API_KEY, GIGMATCH_LOG_DIR, GIGMATCH_MAX_CANDIDATES, GIGMATCH_MAX_BODY_BYTES.
    Send SIGHUP or POST /v1/admin/reload to load a new bundle without a restart.
    """
    import os

    import uvicorn

    os.environ["GIGMATCH_BUNDLE_PATH"] = str(bundle)
    uvicorn.run("serving.main:create_app", factory=True, host=host, port=port, workers=1, log_level="info")


@app.command("score")
def score(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Parquet file: one row per (job, candidate).")],
    output_path: Annotated[Path, typer.Argument(metavar="OUTPUT", help="Parquet file to write the ranking to.")],
    bundle: Annotated[Path, typer.Option(help="Bundle directory (gigmatch export).")] = Path("bundle"),
) -> None:
    """Rank many jobs' candidates from a Parquet file with the same bundle the API serves.

    INPUT has the match columns (the job's and the freelancer's fields, as in
    /v1/match; skills as lists or space-separated slugs). OUTPUT gets job_id,
    freelancer_id, match_score, rank and model_version, written atomically.
    Exits 2 if INPUT is unreadable or lacks a column.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gigmatch.bundle import load_bundle
    from gigmatch.matching import match_frame_from_table
    from gigmatch.ranking import score_frame

    model = load_bundle(bundle)
    try:
        table = pq.read_table(input_path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise ContractError([Violation("input", None, "readable_parquet", 0, (f"{input_path}: {exc}",))]) from exc
    try:
        frame = match_frame_from_table(table)
    except ValueError as exc:
        raise ContractError([Violation("input", None, "match_columns", 0, (str(exc),))]) from exc
    with console.status(f"scoring {len(frame):,} rows"):
        ranked = score_frame(model.model, frame).assign(model_version=model.version)
    tmp = output_path.with_name(f".{output_path.name}.tmp")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    ranked.to_parquet(tmp, index=False)
    tmp.replace(output_path)
    console.print(f"ranked {len(ranked):,} candidates for {ranked['job_id'].nunique():,} jobs -> {output_path}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<12}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True
    )


def _print_summary(metrics: dict[str, float | int], directory: Path) -> None:
    table = Table(title=f"snapshot {directory}", show_header=False)
    for key, value in metrics.items():
        table.add_row(key, str(value))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and map failures to the documented exit codes."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except click_errors.UsageError as exc:
        exc.show(file=sys.stderr)
        return ExitCode.USAGE
    except typer.Abort:
        console.print("aborted")
        return ExitCode.ERROR
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONTRACT_BROKEN
    except PinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CHECK_FAILED
    except (BundleError, GateError, ReferenceUnavailableError, NewProjectError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    except click_errors.ClickException as exc:
        exc.show(file=sys.stderr)
        return ExitCode.ERROR
    except Exception as exc:
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    return code if isinstance(code, int) else ExitCode.OK


def entrypoint() -> None:
    sys.exit(main())
