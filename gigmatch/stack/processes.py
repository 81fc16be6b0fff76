"""Start a server as a child process of its own session, know it again by PID, stop it and its children.

A PID alone can be reused once its process has gone, so a started process is known by its PID and
its creation time together: `stop` never signals a stranger that happens to reuse the number.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    create_time: float
    log: str
    argv: tuple[str, ...]

    def as_record(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> Started:
        argv = record.get("argv", ())
        return cls(
            str(record["name"]),
            int(str(record["pid"])),
            float(str(record["create_time"])),
            str(record.get("log", "")),
            tuple(str(a) for a in argv) if isinstance(argv, list | tuple) else (),
        )


def spawn(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    cwd: Path,
    user: str | None = None,
) -> Started:
    """Start `argv` detached from the caller's terminal (its own session), output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal that ran `stack up` does not reach the servers
            user=user,
        )
    return Started(name, process.pid, psutil.Process(process.pid).create_time(), str(log), tuple(argv))


def find(started: Started) -> psutil.Process | None:
    """The process `started` describes, if it still runs (a zombie counts as gone)."""
    try:
        process = psutil.Process(started.pid)
        if abs(process.create_time() - started.create_time) > 0.01 or process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.NoSuchProcess:
        return None


def descendants(started: Started) -> list[psutil.Process]:
    process = find(started)
    if process is None:
        return []
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop(started: Started, signals: Sequence[signal.Signals], timeout: float) -> list[int]:
    """Send `signals` one by one (a second one only if the first did not end it within a second), then
    SIGKILL after `timeout`; then its descendants the same way (a worker's flow runs live in sessions of
    their own, so they outlive it otherwise). Returns the PIDs still alive afterwards (none, normally)."""
    process = find(started)
    if process is None:
        return []
    children = descendants(started)
    for number, sent in enumerate(signals):
        _signal(process, sent)
        if _wait_gone([process], 1.0 if number < len(signals) - 1 else timeout):
            break
    if not _wait_gone([process], 0):
        _signal(process, signal.SIGKILL)
        _wait_gone([process], 5.0)
    _reap(started.pid)
    survivors = [child for child in children if _alive(child)]
    for child in survivors:
        _signal(child, signal.SIGTERM)
    if not _wait_gone(survivors, timeout):
        for child in survivors:
            _signal(child, signal.SIGKILL)
        _wait_gone(survivors, 5.0)
    return [p.pid for p in [process, *children] if _alive(p)]


def _signal(process: psutil.Process, sent: signal.Signals) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(sent)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(processes: Sequence[psutil.Process], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            _reap(process.pid)
        if not any(_alive(p) for p in processes):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (started in this very command)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
