"""`gigmatch data ...`: generate, validate, pull, import and describe the snapshot; simulate batches."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gigmatch.cli.app import ParamsOption, console, data_app, progress_bar
from gigmatch.params import DEFAULT_PARAMS_PATH, SimulateParams, load_params, override

if TYPE_CHECKING:
    import pandas as pd


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
    from gigmatch.data.pinning import directory_md5
    from gigmatch.data.snapshot import summary_metrics

    params = load_params(params_path)
    overrides = {k: v for k, v in {"seed": seed, "n_jobs": jobs, "n_freelancers": freelancers}.items() if v is not None}
    target = out or params.data.dir
    frames = _simulate_snapshot(override(params.simulate, **overrides), target)
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
    foreign keys from applications to jobs and freelancers, and time order;
    warns when there is no freelancer_history (profile statistics then leak).
    Exits 0 when valid and 2 when not, naming the table, column, failing check
    and a few offending rows. With engine.kind dask in params.yaml the applications
    are checked partition by partition on the cluster: the same findings.
    """
    from gigmatch.data.snapshot import profile_statistics_note, read_tables, summary_metrics
    from gigmatch.files import write_json
    from gigmatch.params import load_engine

    directory = path or load_params(params_path).data.dir
    engine = load_engine(params_path)
    if engine.kind == "dask":
        from gigmatch.scale.cluster import engine_session
        from gigmatch.scale.validation import validate_snapshot_on_dask

        with engine_session(engine) as where:
            console.print(f"engine: {where}")
            with console.status(f"validating {directory} on the cluster"):
                validated = validate_snapshot_on_dask(directory, engine.partition_rows)
        frames, metrics = validated.frames, validated.metrics
    else:
        with console.status(f"validating {directory}"):
            frames = read_tables(directory)
        metrics = summary_metrics(frames)
    if report:
        write_json(report, metrics)
    _print_summary(metrics, directory)
    note = profile_statistics_note(frames)
    if note:
        console.print(f"[yellow]warning[/yellow]: {note}")
    console.print(f"[green]valid[/green]: {directory} meets the data contract")


@data_app.command("pull")
def data_pull(
    dvc_file: Annotated[Path, typer.Option(help="The pin file.")] = Path("data.dvc"),
    force: Annotated[bool, typer.Option(help="Replace a workspace copy that differs from the pin.")] = False,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Materialise exactly the snapshot that data.dvc pins.

    Tries the workspace, the DVC cache, the DVC remote (GIGMATCH_DVC_REMOTE, else
    the default one), then regenerates from the seed in params.yaml. Fails (exit 1)
    and changes nothing if the result's md5 differs from the pin. An S3 remote that
    refuses the keys or cannot be reached fails first (exit 3), naming the setting.
    """
    from gigmatch.data.pinning import materialise

    params = load_params(params_path)
    remote = _checked_remote(dvc_file.parent)

    def regenerate(target: Path) -> None:
        _simulate_snapshot(params.simulate, target)

    log = lambda msg: console.print(f"[yellow]{msg}[/yellow]")  # noqa: E731
    result = materialise(dvc_file, regenerate, force=force, log=log, remote=remote)
    console.print(f"[green]data matches the pin[/green] {result.md5} (via {result.how})")


@data_app.command("push")
def data_push(dvc_file: Annotated[Path, typer.Option(help="The pin file.")] = Path("data.dvc")) -> None:
    """Share the pinned data and the pipeline's cached outputs with the DVC remote (GIGMATCH_DVC_REMOTE,
    else the default one): `dvc push`, after checking that an S3 remote accepts the keys (exit 3 if not)."""
    from gigmatch.data.pinning import run_dvc
    from gigmatch.errors import ExitCode

    remote = _checked_remote(dvc_file.parent)
    result = run_dvc(["push", *(["-r", remote] if remote else [])], dvc_file.parent)
    if result.returncode != 0:
        console.print(f"[red]dvc push to {remote or 'the default remote'} failed[/red]: {result.stderr.strip()}")
        raise typer.Exit(ExitCode.ERROR)
    console.print((result.stdout.strip().splitlines() or ["pushed"])[-1] + f" ({remote or 'default remote'})")


def _checked_remote(repo: Path) -> str | None:
    """GIGMATCH_DVC_REMOTE, if set; an S3 remote's bucket is asked first, so a bad key fails in seconds."""
    from gigmatch.data.pinning import remote_url
    from pipelines.preflight import check_bucket
    from pipelines.settings import get_team_settings

    remote = get_team_settings().dvc_remote
    if remote:
        url = remote_url(repo, remote)
        if url is None:
            raise typer.BadParameter(f"GIGMATCH_DVC_REMOTE={remote}: no such DVC remote in {repo / '.dvc'}")
        if url.startswith("s3://"):
            check_bucket(url)
    return remote


@data_app.command("batch")
def data_batch(
    out: Annotated[Path, typer.Option(help="Parquet file to write the batch to (written atomically).")],
    scenario: Annotated[str, typer.Option(help="Drift scenario (`gigmatch data scenarios` lists them).")] = "none",
    magnitude: Annotated[float | None, typer.Option(help="Size of the shift \\[default: the scenario's].")] = None,
    rows: Annotated[int, typer.Option(min=1, help="About this many rows (whole jobs).")] = 2000,
    seed: Annotated[int, typer.Option(help="Batch seed: the same seed gives the same batch.")] = 0,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Simulate a "current" batch of applications (match table + outcome) with a named drift.

    Drawn from a fresh marketplace with the params in params.yaml, from the same
    part of the history as the training split, so `none` is the training data's
    distribution; `gigmatch data scenarios` lists the shifts and their default
    magnitudes. Feed it to `gigmatch drift --current`.
    """
    from gigmatch.files import write_parquet
    from gigmatch.monitoring.scenarios import SCENARIOS, simulate_batch

    if scenario not in SCENARIOS:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}", param_hint="--scenario"
        )
    params = load_params(params_path)
    window = 1.0 - params.split.valid_fraction - params.split.test_fraction
    table = simulate_batch(params.simulate, scenario, magnitude, rows, seed, window=window)
    write_parquet(table, out)
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
    from gigmatch.data.client_import import import_snapshot
    from gigmatch.data.pinning import PinError, directory_md5, run_dvc
    from gigmatch.data.snapshot import summary_metrics

    params = load_params(params_path)
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
    from gigmatch.data.client_import import contract_markdown

    typer.echo(contract_markdown(), nl=False)


@data_app.command("scenarios")
def data_scenarios() -> None:
    """List the drift scenarios `gigmatch data batch --scenario` draws, with their default magnitudes."""
    from gigmatch.monitoring.scenarios import SCENARIOS

    table = Table(title="drift scenarios", show_header=True)
    for column in ("scenario", "default magnitude", "what shifts"):
        table.add_column(column)
    for name, scenario in SCENARIOS.items():
        table.add_row(name, f"{scenario.default_magnitude:g}", scenario.doc)
    console.print(table)


def _simulate_snapshot(simulate: SimulateParams, target: Path) -> dict[str, pd.DataFrame]:
    """The simulator's snapshot written to `target` (validated, atomically), with a progress bar."""
    from gigmatch.data.simulator import SNAPSHOT_STEPS, generate_snapshot

    with progress_bar() as progress:
        task = progress.add_task("simulating", total=len(SNAPSHOT_STEPS))
        return generate_snapshot(simulate, target, lambda step: progress.update(task, advance=1, description=step))


def _print_summary(metrics: dict[str, float | int], directory: Path) -> None:
    table = Table(title=f"snapshot {directory}", show_header=False)
    for key, value in metrics.items():
        table.add_row(key, str(value))
    console.print(table)
