"""Reproduce a commit (verify) and start a client project (new-project)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gigmatch.cli.common import app, console
from gigmatch.new_project import create_project


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
    root = Path(__file__).resolve().parents[2]  # gigmatch/cli/project.py -> the repository
    target = dest or root.parent / name
    created = create_project(root, name, target, dvc_remote)
    console.print(f"[green]created[/green] {created.dest} ({created.files} files, commit {created.commit[:12]})")
    typer.echo(created.next_steps)
