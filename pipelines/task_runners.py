"""Where the training flow's candidates run: threads of this process, or the Dask engine's cluster.

On the Dask engine the candidates are Prefect task runs on the cluster's workers
(`prefect_dask.DaskTaskRunner` on the scheduler `engine_session` opened or reached), each
reporting to this flow's Prefect API. Without PREFECT_API_URL that API is the ephemeral
server this process starts: its address is made the setting while the flow runs, since the
task runs carry the flow's settings to the workers, and a worker without it would start an
ephemeral server of its own on the same database. What every candidate reads is on the
cluster once, not once per candidate's task run (`shared_with_candidates`): the feature
matrices where a worker assembled them, the splits' outcomes scattered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from gigmatch.params import Params

if TYPE_CHECKING:  # Dask is an optional extra
    from distributed import Future

T = TypeVar("T")


def candidate_runner(params: Params) -> TaskRunner[Any]:
    """The task runner the candidates are submitted to (call inside `engine_session`)."""
    if params.engine.kind != "dask":
        return ThreadPoolTaskRunner(max_workers=params.train.parallel_fits)
    from distributed import default_client
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=default_client().scheduler.address)


def shared_with_candidates(params: Params, value: T | Future[T]) -> T:
    """`value` as the candidates' task runs are given it: itself in threads; on the Dask engine a Future of it,
    which Dask resolves to the value on the worker a task runs on, and runs the task beside. A Future (the
    feature matrices, left on the worker that assembled them) is passed on as it is; anything else is
    scattered once to the cluster (the task runner sends a task run's parameters with it: three candidates
    would carry three copies)."""
    if params.engine.kind != "dask":
        return cast(T, value)
    from distributed import Future, default_client

    if isinstance(value, Future):
        return cast(T, value)
    return cast(T, default_client().scatter(value, hash=False))


def one_after_another(params: Params) -> bool:
    """Whether each candidate waits for the one before it: on Dask, where every candidate trains beside the
    one copy of the matrices, so that one candidate's working memory is there at a time (the worker has one
    thread, and LightGBM waited for a worker busy with another candidate anyway); in threads they run
    `train.parallel_fits` at a time."""
    return params.engine.kind == "dask"


@contextmanager
def api_the_workers_reach(params: Params) -> Iterator[None]:
    """On the Dask engine with no PREFECT_API_URL: the ephemeral API started now, and named as the setting."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if params.engine.kind != "dask" or PREFECT_API_URL.value():
        yield
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # starts this process's ephemeral server
        url = str(client.api_url)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield
