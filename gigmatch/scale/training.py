"""Training the LambdaRank candidate on the cluster: `lightgbm.dask.DaskLGBMRanker`, whole jobs per partition.

LightGBM's ranker learns from each job's candidates together, so every partition of
the training rows holds whole jobs and `group` carries each partition's job sizes
(LightGBM refuses a job split between partitions: "Sum of query counts differs from the
length of #data"). The cuts are `partitions.job_divisions`'s. Each worker trains on its
partitions and LightGBM's data-parallel learner merges their histograms over its own
sockets between the workers. The fitted model comes back as a plain `LGBMRanker`
(`to_local`), so it is logged, exported and served like one trained in-process.

With one partition (fewer training rows than `engine.partition_rows`), one worker
trains on all of them: the same model, bit for bit, as in-process. With several, each
worker finds its own bin boundaries from its rows, so the trees differ slightly, and
from run to run: lightgbm.dask orders its workers (their ranks) and each worker's
partitions by `Client.who_has`, whose keys pass through a set.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
from lightgbm import LGBMRanker
from sklearn.base import BaseEstimator

from gigmatch.errors import GigmatchError
from gigmatch.params import EngineParams, ModelSpec
from gigmatch.scale.partitions import job_divisions
from gigmatch.training.estimators import RANKERS, TrainingData, lambdarank_options, query_sizes

# One Dask fit at a time on a cluster: LightGBM holds one task on every worker that has data until
# training ends, so two fits side by side (candidates run as task runs on the workers) can each hold
# a worker the other waits for (LightGBM issue 4942), until its two-hour network time-out.
_ONE_FIT_AT_A_TIME = "gigmatch-lightgbm-fit"  # a `distributed.Lock`'s name: held on the scheduler
_WATCH_SECONDS = 0.5  # how often a fit looks for lost workers
_NOTICE_POLLS = 6  # how long a failed fit waits for the scheduler to see a lost worker (times _WATCH_SECONDS)
_TRAINING_TASK = "_train_part"  # the key of LightGBM's task on each worker it trains on (lightgbm.dask)


def ranker_fit(
    engine: EngineParams, spec: ModelSpec, seed: int, threads: int
) -> Callable[[TrainingData], BaseEstimator] | None:
    """How this candidate is fitted on the engine: on the current Dask client's cluster for a ranker, else None
    (in this process, as always)."""
    if engine.kind != "dask" or spec.kind not in RANKERS:
        return None
    return partial(
        fit_ranker_on_dask,
        None,
        spec.params,
        seed=seed,
        partition_rows=engine.partition_rows,
        threads=threads,
    )


def job_chunks(group: np.ndarray, partition_rows: int) -> tuple[tuple[int, ...], tuple[int, ...], np.ndarray]:
    """(rows per partition, jobs per partition, every job's size in order) for rows of contiguous, sorted jobs."""
    jobs, sizes = query_sizes(group)
    divisions = job_divisions(jobs, sizes, partition_rows)
    first_jobs = np.searchsorted(jobs, divisions[:-1])
    jobs_per_partition = np.diff([*first_jobs, len(jobs)])
    rows_per_partition = np.add.reduceat(sizes, first_jobs)
    return tuple(int(n) for n in rows_per_partition), tuple(int(n) for n in jobs_per_partition), sizes


def fit_ranker_on_dask(
    client: Any | None, params: dict[str, Any], data: TrainingData, seed: int, partition_rows: int, threads: int
) -> LGBMRanker:
    """The LambdaRank candidate fitted on the client's workers (None: the cluster this runs on or beside),
    returned as a local `LGBMRanker` that predicts with `threads` threads, as the in-process one does."""
    if client is None:
        with _cluster_client() as found:
            return fit_ranker_on_dask(found, params, data, seed, partition_rows, threads)
    # Imported here: the training flow imports this module, and needs Dask only on the Dask engine.
    from distributed import Lock
    from lightgbm.dask import DaskLGBMRanker

    rows, jobs, sizes = job_chunks(data.group, partition_rows)
    placed = _placement(client, rows)
    features, relevance, group = (
        _scattered(client, array, chunks, placed)
        for array, chunks in ((data.features, rows), (data.relevance, rows), (sizes, jobs))
    )
    # No n_jobs: LightGBM's Dask estimators give each worker as many threads as the worker has (one on
    # the local cluster: OpenMP threads beside another worker's ran ten times slower on 2 cores).
    options = {key: value for key, value in lambdarank_options(params, seed, n_jobs=1).items() if key != "n_jobs"}
    with Lock(_ONE_FIT_AT_A_TIME):  # on the client's cluster (the worker's, or the default client's)
        ranker = _failing_on_a_lost_worker(
            client, lambda: DaskLGBMRanker(client=client, **options).fit(features, relevance, group=group)
        )
    return ranker.to_local().set_params(n_jobs=threads)


def _placement(client: Any, rows: tuple[int, ...]) -> list[str]:
    """The worker each partition goes to: the largest first, each to the worker with the fewest rows so far
    (every worker trains: LightGBM trains on the workers that hold parts)."""
    load = dict.fromkeys(sorted(client.nthreads()), 0)  # asked of the scheduler
    placed = [""] * len(rows)
    for part in sorted(range(len(rows)), key=lambda i: -rows[i]):
        placed[part] = min(load, key=lambda worker: load[worker])
        load[placed[part]] += rows[part]
    return placed


def _scattered(client: Any, array: np.ndarray, chunks: tuple[int, ...], placed: list[str]) -> Any:
    """`array` as a Dask array of `chunks` rows per part, each part on its `placed` worker.

    Not `da.from_array`, which puts the parts in the graph: the scheduler would hold the
    whole training matrix (1.7 GB at 10M applications) until the fit ends. And not
    `scatter(..., workers=placed)` alone: a task on a worker (a candidate's task run) scatters
    to its own worker whatever it asks, and LightGBM then trained on that one worker only
    (10M applications: the other worker idle for the fit's nine minutes). So each part is
    scattered here (this worker's copy is a view of `array`) and fetched by its worker (by another, if
    that one has left: a part is never left waiting for a worker that is gone)."""
    import dask.array as da
    from distributed import wait

    spans = list(itertools.pairwise(np.cumsum((0, *chunks))))
    here = client.scatter([array[start:end] for start, end in spans], hash=False)
    holders = client.who_has(here)
    parts = [
        part
        if worker in holders[part.key]
        else client.submit(_same, part, workers=[worker], allow_other_workers=True, pure=False)
        for part, worker in zip(here, placed, strict=True)
    ]
    wait(parts)
    del here, holders  # the moved parts' scattered copies
    return da.concatenate(
        [
            da.from_delayed(part, (end - start, *array.shape[1:]), dtype=array.dtype)
            for part, (start, end) in zip(parts, spans, strict=True)
        ]
    )


def _same(part: np.ndarray) -> np.ndarray:
    return part


@contextmanager
def _cluster_client() -> Iterator[Any]:
    """The client of the cluster this runs on: on a worker (a candidate run by Prefect's Dask task runner), one
    that secedes this task from the worker's threads while the fit runs, since LightGBM trains on that worker
    too and would wait for its one thread forever; beside the cluster, the default client."""
    from distributed import default_client, get_worker, worker_client

    try:
        get_worker()
    except ValueError:
        yield default_client()
        return
    with worker_client() as client:
        yield client


class WorkerLostError(GigmatchError):
    """A Dask worker left while LightGBM trained on it."""


def _failing_on_a_lost_worker(client: Any, fit: Callable[[], Any]) -> Any:
    """`fit()`, or WorkerLostError as soon as a worker LightGBM trains on leaves the cluster while it runs.

    LightGBM pins one training task to each worker holding data and its workers train
    together: a lost worker's task can run nowhere else, and LightGBM waits for it forever
    (measured: still waiting after six minutes, a `dask worker` SIGKILLed). So the fit is
    watched from here, and on a loss LightGBM's tasks are cancelled and the fit fails, which
    fails the training run before its registry step: `champion` does not move. A worker
    that holds none of LightGBM's tasks (their worker restrictions, on the scheduler) may come
    and go: Dask reruns its other tasks. Until LightGBM has submitted its tasks, any loss
    counts, as LightGBM may have counted on that worker's data.
    """
    from distributed import Future

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["model"] = fit()
        except BaseException as exc:  # handed to the caller's thread, raised there
            outcome["error"] = exc

    def pinned_and_present(dask_scheduler: Any) -> tuple[set[str], set[str]]:  # on the scheduler: pickled by value
        tasks = dask_scheduler.tasks.items()
        pinned = {w for key, task in tasks if _TRAINING_TASK in str(key) for w in task.worker_restrictions or ()}
        return pinned, set(dask_scheduler.workers)

    # The workers as the scheduler lists them, not `client.scheduler_info()`: that returns the client's cache,
    # which its periodic refresh fills without workers (distributed 2026.8), so read between the two every
    # worker looked lost (training 10M failed at once: "tcp://127.0.0.1:39085, tcp://127.0.0.1:46031 left").
    watched = client.run_on_scheduler(pinned_and_present)[1]
    training: set[str] = set()  # the workers LightGBM's tasks are pinned to, once it has submitted them

    def lost(everyone: bool = False) -> set[str]:
        pinned, present = client.run_on_scheduler(pinned_and_present)
        training.update(pinned)
        return ((training | watched) if everyone else (training or watched)) - present

    fitting = threading.Thread(target=run, name="dask-lightgbm-fit", daemon=True)
    fitting.start()
    while fitting.is_alive():
        fitting.join(_WATCH_SECONDS)
        gone = lost()
        if gone and fitting.is_alive():
            pinned: list[Any] = [Future(key, client) for key in list(client.futures) if _TRAINING_TASK in str(key)]
            client.cancel(pinned, force=True)
            fitting.join(_WATCH_SECONDS * 10)
            raise _lost_error(gone)
    if "error" in outcome:
        # The survivors may notice first ("Socket recv error, Connection reset by peer"), or the lost worker's
        # task is forgotten before its restriction was seen, with the scattered data it needed ("cancelled for
        # reason: already forgotten"): a failed fit counts any worker gone since it started, once the
        # scheduler knows (it learns from the lost connection, within moments).
        for _ in range(_NOTICE_POLLS):
            gone = lost(everyone=True)
            if gone:
                raise _lost_error(gone) from outcome["error"]
            time.sleep(_WATCH_SECONDS)
        raise outcome["error"]
    return outcome["model"]


def _lost_error(workers: set[str]) -> WorkerLostError:
    return WorkerLostError(
        f"Dask worker(s) {', '.join(sorted(workers))} left while LightGBM trained the ranker on them: LightGBM's "
        "workers train together and cannot hand a lost worker's part to another, so the fit failed (train "
        "again; give the workers more memory if they were killed for it)"
    )
