"""What every command shares: the app, the data sub-app, the console, the --params option."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description:<12}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True
    )
