"""`gigmatch new-project`: start a client project from this repository (a developer tool, run from a checkout)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gigmatch.cli.app import app, console
from gigmatch.errors import ExitCode

_CHECKOUT = Path(__file__).resolve().parents[2]  # gigmatch/cli/project.py -> the repository


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
    makes one initial commit. Next steps are printed. The generator is a developer
    tool (`devtools/new_project.py`): it runs from a checkout of the template, not
    from an installed package or a model bundle.
    """
    try:
        from devtools.new_project import NewProjectError, create_project
    except ModuleNotFoundError:
        typer.echo("error: new-project runs from a checkout of the template (devtools/ is not installed)", err=True)
        raise typer.Exit(ExitCode.ERROR) from None
    try:
        created = create_project(_CHECKOUT, name, dest or _CHECKOUT.parent / name, dvc_remote)
    except NewProjectError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.ERROR) from exc
    console.print(f"[green]created[/green] {created.dest} ({created.files} files, commit {created.commit[:12]})")
    typer.echo(created.next_steps)
