"""The Dask client a command runs on: a running scheduler's, or a local cluster's that lives as long as the command."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gigmatch.errors import ExitCode, GigmatchError
from gigmatch.params import EngineParams
from gigmatch.settings import read_settings

CONNECT_TIMEOUT_SECONDS = 20


class DaskSettings(BaseSettings):
    """Where the Dask engine's scheduler is: unset, each command starts a local cluster of its own."""

    model_config = SettingsConfigDict(env_prefix="GIGMATCH_DASK_")

    # GIGMATCH_DASK_ADDRESS, e.g. tcp://scheduler:8786
    address: Annotated[str | None, Field(pattern=r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")] = None
    connect_timeout_seconds: Annotated[float, Field(gt=0)] = CONNECT_TIMEOUT_SECONDS


class ClusterError(GigmatchError, RuntimeError):
    """The Dask scheduler cannot be reached, or the local cluster cannot start."""

    exit_code = ExitCode.ERROR


def local_cluster_size(engine: EngineParams) -> tuple[int, int | None]:
    """(workers, memory limit per worker in bytes; None: Dask's own share of the machine's memory)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # macOS: no affinity
    workers = engine.workers or max(1, cores or 1)
    return workers, engine.worker_memory_bytes


@contextmanager
def dask_client(engine: EngineParams) -> Iterator[object]:
    """A `distributed.Client` on GIGMATCH_DASK_ADDRESS, or on a LocalCluster started here and stopped on exit.

    The local cluster's workers are processes of one thread each: LightGBM and the
    feature code hold the GIL, and BLAS or OpenMP threads beside another worker's would
    oversubscribe the cores (ten times slower, measured).
    """
    from distributed import Client, LocalCluster

    settings = read_settings(DaskSettings)
    if settings.address is not None:
        try:
            client = Client(settings.address, timeout=settings.connect_timeout_seconds)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at GIGMATCH_DASK_ADDRESS={settings.address}"
                f" within {settings.connect_timeout_seconds:g} s: {exc}"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    workers, memory = local_cluster_size(engine)
    try:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=memory if memory is not None else "auto",
            silence_logs=40,  # errors only: its info lines would bury the command's own
        )
    except Exception as exc:  # whatever stops it, the command cannot run
        raise ClusterError(f"cannot start a local Dask cluster of {workers} workers: {exc}") from exc
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        with suppress(Exception):  # closing stops the worker processes; a failure here must not hide the body's
            cluster.close()


@contextmanager
def engine_session(engine: EngineParams) -> Iterator[str]:
    """Around a command's stages: the engine's description; with Dask, its client is the default meanwhile."""
    if engine.kind == "in_process":
        yield "in_process"
        return
    with dask_client(engine) as client:
        yield describe(client)


def describe(client: Any) -> str:
    """One line for logs and run tags: where the cluster is and what it holds, asked of the scheduler
    (`client.scheduler_info()` may answer from the client's cache, which its periodic refresh fills
    without workers: "0 workers" in a run's `engine` tag)."""
    workers = client.run_on_scheduler(_worker_resources)
    threads = sum(nthreads for nthreads, _ in workers.values())
    memory = sum(limit for _, limit in workers.values())
    return f"dask at {client.scheduler.address}: {len(workers)} workers, {threads} threads, {memory / 2**30:.1f} GiB"


def _worker_resources(dask_scheduler: Any) -> dict[str, tuple[int, int]]:
    return {address: (w.nthreads, w.memory_limit or 0) for address, w in dask_scheduler.workers.items()}


def one_key(value: object) -> Any:
    """`value` as one key of the task graphs that read it: sent to each worker once, not once per task, and,
    unlike scattered data, rebuilt by the scheduler if the worker holding it dies (with `scatter`, one of two
    runs of the scoring kill test failed, "already forgotten"; with the key, three of three passed). The
    scheduler holds it while the graph runs (the snapshot's jobs and freelancers: 83 MB at 1M applications)."""
    import dask

    return dask.delayed(value, pure=True, traverse=False)


def release_freed_memory(client: Any) -> dict[str, bool]:
    """Hand the memory the workers and this process have freed back to the operating system (glibc's
    `malloc_trim`, as Dask's "memory not released back to the OS" advice says), by worker address (and
    "client"): whether it released any. Without glibc (macOS, musl), nothing is released.

    The joins of the match frame free their texts in pieces the allocator keeps: after featurising
    3M applications each worker still held 1.5-1.8 GB, 0.9-1.0 GB once trimmed, and this process
    2.5 GB, 2.1 GB trimmed."""
    released = dict(client.run(_malloc_trim))
    released["client"] = _malloc_trim()
    return released


def _malloc_trim() -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return False
    return bool(libc.malloc_trim(0))
