"""`gigmatch verify`: reproduce a commit in a scratch clone and show how its fingerprint compares."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gigmatch.cli.app import app

if TYPE_CHECKING:
    from gigmatch.repro.verify import VerifyResult


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

    Clones the commit, checks the installed packages against uv.lock, compares
    its inputs with the fingerprint's, materialises the data data.dvc pins (md5
    checked), runs `dvc repro --force train` with a fresh MLflow store, and
    compares the selected model's fingerprint (its ranking of a probe set,
    parameters, test metrics) with reports/fingerprint.json. Exit codes: 0 the same
    model, exact (the bits of this machine's last run) or numerically equal (another
    CPU: every probe score within 1e-9, every ranking identical), said in the
    verdict; 1 it differs (the diff names the stage and figure); 2 the data contract
    is broken; 3 any other error.
    """
    code = run_verify_command(Path("."), keep_scratch, rev=rev, scratch_dir=scratch, full=full)
    if code:
        raise typer.Exit(code)


def run_verify_command(
    repo: Path,
    keep_scratch: bool = False,
    *,
    rev: str = "HEAD",
    scratch_dir: Path | None = None,
    full: bool = False,
    prefect_api_url: str | None = None,
) -> int:
    """Run the check, print the verdict and the diff, return the exit code.

    A temporary scratch is removed on success unless `keep_scratch`; it is kept on
    failure (its logs/ explain what happened). A given `scratch_dir` is never removed.
    """
    from gigmatch.repro.verify import verify as run_verify

    console = Console(stderr=True, soft_wrap=True, highlight=False)
    with console.status("verifying") as status:
        result = run_verify(
            repo,
            scratch_dir,
            rev=rev,
            full=full,
            prefect_api_url=prefect_api_url,
            log=lambda m: status.update(f"verify: {m}"),
        )
    show_result(console, result, rev)
    if scratch_dir is None and result.ok and not keep_scratch:
        shutil.rmtree(result.scratch, ignore_errors=True)
    else:
        console.print(f"scratch kept: {result.scratch}")
    return result.code


def show_result(console: Console, result: VerifyResult, rev: str) -> None:
    """The notes, the verdict with its tier, and on failure the differences grouped by stage."""
    from gigmatch.repro.differences import show_value
    from gigmatch.repro.fingerprint import kernels

    commit = result.commit[:12] if result.commit else rev
    timings = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in result.seconds.items())
    for line in result.notes:
        console.print(f"[yellow]note[/yellow]: {escape(line)}")
    if result.ok and result.comparison is not None:
        summary = escape(result.comparison.summary())
        console.print(f"[green]verified[/green]: commit {commit} reproduces its model: {summary}")
        console.print(f"timings: {timings}")
        return
    console.print(f"[red]verification failed[/red] ({commit}, exit {result.code}): {escape(result.message)}")
    stage = None
    for difference in result.differences:
        if difference.stage != stage:
            stage = difference.stage
            console.print(f"[bold]{stage}[/bold]")
        line = f"  {difference.figure}: {show_value(difference.expected)} -> {show_value(difference.actual)}"
        line += f" ({difference.change})" if difference.change else ""
        console.print(escape(line + (f": {difference.detail}" if difference.detail else "")))
    if result.comparison is not None:
        console.print(f"reproduced with BLAS kernel {kernels(result.comparison.fresh)}")
    console.print(f"timings: {timings}")
