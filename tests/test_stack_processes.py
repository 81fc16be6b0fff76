"""How the stack starts and stops processes: by PID and start time, a second signal for what ignores the
first, the children of a server too; and a failed `stack up` stops what it started and names why."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from devtools.ports import free_port
from gigmatch.stack.processes import Started, find, spawn, stop

GIGMATCH = str(Path(sys.executable).with_name("gigmatch"))

# Ignores the first SIGTERM (as Prefect's worker does), and starts a child in a session of its own
# (as the worker's flow runs are), which would outlive it.
STUBBORN = """
import signal, subprocess, sys, time
seen = []
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0) if seen else seen.append(1))
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""


def _started(tmp_path: Path) -> Started:
    started = spawn("stubborn", [sys.executable, "-c", STUBBORN], dict(os.environ), tmp_path / "log", tmp_path)
    deadline = time.monotonic() + 30
    while "ready" not in (tmp_path / "log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return started


def test_a_second_signal_stops_what_ignores_the_first_and_its_children_go_too(tmp_path: Path) -> None:
    started = _started(tmp_path)
    children = psutil.Process(started.pid).children(recursive=True)
    assert len(children) == 1
    assert stop(started, (signal.SIGTERM, signal.SIGTERM), timeout=10) == []
    assert find(started) is None
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)


def test_one_signal_alone_escalates_to_sigkill_after_the_timeout(tmp_path: Path) -> None:
    started = _started(tmp_path)
    began = time.monotonic()
    assert stop(started, (signal.SIGTERM,), timeout=1) == []
    assert 1 <= time.monotonic() - began < 10
    assert find(started) is None


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        impostor = Started("gone", bystander.pid, psutil.Process(bystander.pid).create_time() - 100, "", ())
        assert find(impostor) is None
        assert stop(impostor, (signal.SIGKILL,), timeout=1) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.stack
def test_a_failed_up_stops_what_it_started_and_names_the_setting() -> None:
    directory = Path(tempfile.mkdtemp(prefix="gigmatch-stack-fail-", dir="/tmp"))
    os.chmod(directory, 0o755)
    try:
        _fail_up(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _fail_up(directory: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        s3_port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIGMATCH_")} | {
            "GIGMATCH_STACK_DIR": str(directory / "stack"),
            "GIGMATCH_STACK_ENV_FILE": str(directory / "env.team"),
            "GIGMATCH_STACK_POSTGRES_PORT": str(free_port()),
            "GIGMATCH_STACK_S3_PORT": str(s3_port),  # someone else's: S3 cannot start
        }
        result = subprocess.run(
            [GIGMATCH, "stack", "up"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    assert result.returncode == 3, result.stderr
    assert f"s3: port {s3_port}" in result.stderr and "GIGMATCH_STACK_S3_PORT" in result.stderr, result.stderr
    assert "postgres: healthy" in result.stderr  # it had started, and was stopped again:
    assert (directory / "stack" / "state.json").read_text().strip() == "{}"
    assert not (directory / "env.team").exists()
    data = directory / "stack" / "postgres" / "data"
    assert not any(str(data) in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])), (
        "PostgreSQL is still running"
    )
