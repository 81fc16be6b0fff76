"""A real Dask cluster on loopback for tests and benchmarks: `dask scheduler` and `dask worker` processes.

Each process is started here and stopped by its PID when the block ends, whatever happens
(SIGTERM, then SIGKILL after a grace period). Workers run without a nanny, so that a
worker's PID is the process doing the work: killing it is losing that worker, which a
nanny would otherwise restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.ports import free_port

STOP_GRACE_SECONDS = 10
START_TIMEOUT_SECONDS = 90


@dataclass
class LoopbackCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: Path | None = None

    def pids(self) -> list[int]:
        return [self.scheduler.pid, *(w.pid for w in self.workers)]

    def kill_worker(self, index: int) -> int:
        """SIGKILL one worker (no goodbye to the scheduler: it learns from the lost connection); its PID."""
        worker = self.workers[index]
        worker.kill()
        worker.wait(timeout=STOP_GRACE_SECONDS)
        return worker.pid

    @contextlib.contextmanager
    def killing_a_worker_while(
        self, task_names: tuple[str, ...], timeout: float = 240, busy: bool = True
    ) -> Iterator[list[int]]:
        """While the block runs, the first worker seen processing a task whose key holds one of `task_names` is
        SIGKILLed (`busy=False`: a worker not processing one, while one runs); the list holds its PID (empty:
        none was seen, the tasks were done or not yet started)."""
        from distributed import Client

        killed: list[int] = []
        done = threading.Event()

        def watch() -> None:
            with Client(self.address, timeout=30) as watcher:
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and not done.is_set():
                    processing = watcher.processing()
                    running = {a for a, ks in processing.items() if any(n in str(k) for k in ks for n in task_names)}
                    targets = running if busy or not running else set(processing) - running
                    if running and targets:
                        names = watcher.run_on_scheduler(_worker_names)  # not `scheduler_info`: it may be a cache
                        killed.append(self.kill_worker(int(str(names[min(targets)]).rsplit("-", 1)[1])))
                        return
                    time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield killed
        finally:
            done.set()
            watcher.join(timeout=60)


def _dask(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("dask")), *args]


@contextlib.contextmanager
def loopback_cluster(
    workdir: Path, workers: int = 2, memory_limit: str = "auto", env: dict[str, str] | None = None
) -> Iterator[LoopbackCluster]:
    """A scheduler and `workers` one-thread workers on 127.0.0.1, ready when the block starts."""
    from distributed import Client

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    environment = {**os.environ, **(env or {})}
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=environment)
        log.close()  # the child holds its own copy
        processes.append(process)
        return process

    try:
        scheduler = start(
            "scheduler", _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", "--no-show")
        )
        cluster = LoopbackCluster(address, scheduler, logs=workdir)
        for i in range(workers):
            worker = ["worker", address, "--name", f"worker-{i}", "--nthreads", "1", "--no-nanny", "--no-dashboard"]
            worker += ["--host", "127.0.0.1", "--memory-limit", memory_limit, "--death-timeout", "60"]
            worker += ["--local-directory", str(workdir / f"worker-{i}")]
            cluster.workers.append(start(f"worker-{i}", _dask(*worker)))
        with Client(address, timeout=START_TIMEOUT_SECONDS) as client:
            client.wait_for_workers(workers, timeout=START_TIMEOUT_SECONDS)
        yield cluster
    finally:
        stop(processes)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each still running, wait, then SIGKILL what is left: none outlives the block."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_GRACE_SECONDS)


def _worker_names(dask_scheduler: Any) -> dict[str, object]:
    return {address: worker.name for address, worker in dask_scheduler.workers.items()}
