"""`up`, `down` and `status` of the stack: start in order, wait until healthy, stop by PID.

What was started is recorded in the stack folder's `state.json` the moment it starts, so `down` (or a
failed `up`) can stop it even when a later server fails. `up` is idempotent: a server that already
runs and answers is left alone; one that died is started again on the same data.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from gigmatch.files import atomic_write_text
from gigmatch.stack.credentials import load_or_create
from gigmatch.stack.probes import port_open
from gigmatch.stack.processes import Started, descendants, find, stop
from gigmatch.stack.services import HOST, SERVICES, Context, Service, StackError
from gigmatch.stack.settings import StackSettings

STATE_FILE = "state.json"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    purpose: str
    url: str
    pid: int | None
    running: bool
    healthy: bool
    rss_bytes: int  # the server's process and its children


def context(settings: StackSettings, project: Path) -> Context:
    stack_dir = settings.dir if settings.dir.is_absolute() else project / settings.dir
    stack_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(stack_dir, 0o755)  # PostgreSQL's own user walks through it to its data
    return Context(settings, load_or_create(stack_dir), project.resolve(), stack_dir.resolve())


def up(settings: StackSettings, project: Path, progress: Progress) -> list[ServiceStatus]:
    """Start every server that does not already run, each once the one before it is healthy."""
    ctx = context(settings, project)
    state = read_state(ctx.stack_dir)
    started_now: list[Started] = []
    try:
        for service in SERVICES:
            began = time.monotonic()
            running = state.get(service.name)
            if running is not None and find(running) is None:
                running = None  # it died (or the machine restarted): start it again on its data
            if running is None:
                _check_port_free(service, ctx)
                progress(f"{service.name}: starting ({service.purpose})")
                running = service.start(ctx)
                started_now.append(running)
                state[service.name] = running
                write_state(ctx.stack_dir, state)
            _wait_ready(service, ctx, running, progress)
            service.after_ready(ctx)
            progress(f"{service.name}: healthy at {service.url(ctx)} ({time.monotonic() - began:.1f} s)")
    except BaseException:
        for begun in reversed(started_now):  # what this call started; what ran before stays as it was
            stop(begun, _service(begun.name).stop_signals, settings.stop_timeout)
            state.pop(begun.name, None)
        write_state(ctx.stack_dir, state)
        raise
    write_env_file(settings.env_file if settings.env_file.is_absolute() else project / settings.env_file, ctx)
    return status(settings, project)


def down(settings: StackSettings, project: Path, progress: Progress) -> list[int]:
    """Stop every server the stack started, in reverse order; returns the PIDs still alive (none)."""
    ctx = context(settings, project)
    state = read_state(ctx.stack_dir)
    survivors: list[int] = []
    for service in reversed(SERVICES):
        running = state.get(service.name)
        if running is None:
            continue
        if find(running) is None:
            progress(f"{service.name}: not running")
        else:
            began = time.monotonic()
            left = stop(running, service.stop_signals, settings.stop_timeout)
            survivors += left
            progress(f"{service.name}: stopped pid {running.pid} ({time.monotonic() - began:.1f} s)")
        state.pop(service.name)
        write_state(ctx.stack_dir, state)
    return survivors


def status(settings: StackSettings, project: Path) -> list[ServiceStatus]:
    ctx = context(settings, project)
    state = read_state(ctx.stack_dir)
    report = []
    for service in SERVICES:
        running = state.get(service.name)
        process = find(running) if running is not None else None
        healthy = process is not None and service.ready(ctx)
        rss = 0
        if process is not None and running is not None:
            for member in [process, *descendants(running)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += member.memory_info().rss
        pid = running.pid if running is not None and process is not None else None
        report.append(
            ServiceStatus(service.name, service.purpose, service.url(ctx), pid, process is not None, healthy, rss)
        )
    return report


def read_state(stack_dir: Path) -> dict[str, Started]:
    path = stack_dir / STATE_FILE
    if not path.exists():
        return {}
    try:
        records = json.loads(path.read_text())
        return {name: Started.from_record(record) for name, record in records.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise StackError(f"{path} is not the stack's state file ({exc}): stop its servers by hand") from exc


def write_state(stack_dir: Path, state: dict[str, Started]) -> None:
    records = {name: started.as_record() for name, started in state.items()}
    atomic_write_text(stack_dir / STATE_FILE, json.dumps(records, indent=2) + "\n")


def write_env_file(path: Path, ctx: Context) -> None:
    lines = [
        "# Written by `gigmatch stack up`: the team stack's URLs and generated credentials. Never commit it.",
        "# Use: `GIGMATCH_PROFILE=team make run`, or `set -a; source .env.team; set +a` in a shell.",
        *(f"{name}={value}" for name, value in ctx.client_env().items()),
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def _service(name: str) -> Service:
    return next(service for service in SERVICES if service.name == name)


def _check_port_free(service: Service, ctx: Context) -> None:
    port = service.port(ctx)
    if port_open(HOST, port):
        raise StackError(
            f"{service.name}: port {port} on {HOST} is already taken by a process this stack did not start "
            f"(set GIGMATCH_STACK_{service.name.upper()}_PORT to another port, or stop that process)"
        )


def _wait_ready(service: Service, ctx: Context, running: Started, progress: Progress) -> None:
    deadline = time.monotonic() + ctx.settings.startup_timeout
    announced = time.monotonic()
    while not service.ready(ctx):
        if find(running) is None:
            raise StackError(f"{service.name} exited while starting; the end of {running.log}:\n{_tail(running.log)}")
        if time.monotonic() > deadline:
            raise StackError(
                f"{service.name} did not become healthy within {ctx.settings.startup_timeout:.0f} s "
                f"(GIGMATCH_STACK_STARTUP_TIMEOUT); the end of {running.log}:\n{_tail(running.log)}"
            )
        if time.monotonic() - announced > 5:
            progress(f"{service.name}: waiting for {service.url(ctx)}")
            announced = time.monotonic()
        time.sleep(0.2)


def _tail(log: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
