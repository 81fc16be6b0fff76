"""The team stack on this machine: `gigmatch stack up`, `down`, `status`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gigmatch.cli.app import app, console
from gigmatch.errors import ExitCode

if TYPE_CHECKING:
    from gigmatch.stack.lifecycle import ServiceStatus

stack_app = typer.Typer(
    help="The team stack as processes on loopback: PostgreSQL, S3 (SeaweedFS), the MLflow and Prefect servers, "
    "a Prefect worker, Prometheus. Data, logs and PIDs under GIGMATCH_STACK_DIR (default .stack/).",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")


@stack_app.command("up")
def up() -> None:
    """Start every server that is not running, wait until each is healthy, write .env.team.

    Idempotent: what already runs is left alone. If a server fails to start, what this
    command started is stopped again and the error names the server and its log.
    """
    from gigmatch.stack.lifecycle import up as stack_up
    from gigmatch.stack.settings import get_stack_settings

    settings = get_stack_settings()
    with console.status("starting the team stack") as spinner:

        def progress(line: str) -> None:
            spinner.update(line)
            console.log(line)

        report = stack_up(settings, Path.cwd(), progress)
    _print(report)
    console.print(f"clients: `GIGMATCH_PROFILE=team make run`, or `set -a; source {settings.env_file}; set +a`")


@stack_app.command("down")
def down() -> None:
    """Stop every server the stack started, by PID (the worker and its flow runs too)."""
    from gigmatch.stack.lifecycle import down as stack_down
    from gigmatch.stack.settings import get_stack_settings

    survivors = stack_down(get_stack_settings(), Path.cwd(), console.log)
    if survivors:
        console.print(f"[red]still running after SIGKILL: {survivors}[/red]")
        raise typer.Exit(ExitCode.ERROR)
    console.print("the team stack is stopped; its data stays in the stack folder")


@stack_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per server on stdout, for scripts.")] = False,
) -> None:
    """Each server: PID, healthy or not, URL, memory. Exit 1 unless every one is healthy."""
    from dataclasses import asdict

    from gigmatch.stack.lifecycle import status as stack_status
    from gigmatch.stack.settings import get_stack_settings

    report = stack_status(get_stack_settings(), Path.cwd())
    if as_json:
        print(json.dumps([asdict(service) for service in report], indent=2))
    else:
        _print(report)
    if not all(service.healthy for service in report):
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _print(report: list[ServiceStatus]) -> None:
    from rich.table import Table

    table = Table("service", "state", "pid", "url", "memory", "for")
    for service in report:
        state = "[green]healthy[/green]" if service.healthy else "[yellow]running[/yellow]"
        state = state if service.running else "[red]stopped[/red]"
        memory = f"{service.rss_bytes / 2**20:,.0f} MiB" if service.running else "-"
        table.add_row(service.name, state, str(service.pid or "-"), service.url, memory, service.purpose)
    console.print(table)
    total = sum(service.rss_bytes for service in report)
    console.print(f"whole stack: {total / 2**20:,.0f} MiB resident")
