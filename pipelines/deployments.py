"""The flows as Prefect deployments on a work pool: declared from this checkout, run by a worker.

`flow.from_source(<this checkout>, <entrypoint>)` deploys the code as it is on disk (no image, no
remote storage): the worker runs it in this directory, which is what a team's shared machine or
`gigmatch stack` gives. A worker on another machine needs the code there too: deploy from a git
URL instead (`from_source("https://...git", ...)`), or an image.

Waiting for a run, the caller watches the pool's workers as well as the run: a worker killed in the
middle leaves its run `Running` for ever, so a run whose pool has sent no heartbeat for
GIGMATCH_WORKER_SILENCE seconds is marked Crashed and reported, not waited on until the timeout.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.states import Crashed

from gigmatch.errors import GigmatchError

DEPLOYMENT = "team"  # every flow's deployment on the team's pool has this name


class DeploymentError(GigmatchError):
    """A deployment's run failed, crashed, timed out, or no worker picked it up."""


@dataclass(frozen=True)
class Deployable:
    flow_name: str  # as in @flow(name=...)
    entrypoint: str  # path:function, relative to the checkout
    parameters: Mapping[str, object]

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{DEPLOYMENT}"


TRAINING = Deployable(
    "gigmatch-train-on-worker", "pipelines/training.py:worker_train_flow", {"params_path": "params.yaml"}
)
MONITORING = Deployable(
    "gigmatch-monitor", "pipelines/monitoring.py:monitor_flow", {"params_path": "params.yaml", "bundle": "bundle"}
)


def deploy(deployable: Deployable, work_pool: str, root: Path, cron: str | None = None) -> UUID:
    """Declare (or update) the deployment of `deployable` on `work_pool`, from the checkout at `root`
    (the project directory the command runs in, where DVC expects the flow's outputs)."""
    from prefect import Flow

    source: Any = Flow.from_source(source=str(root), entrypoint=deployable.entrypoint)  # sync here: a Flow
    deployment_id: UUID = source.deploy(
        name=DEPLOYMENT,
        work_pool_name=work_pool,
        parameters=dict(deployable.parameters),
        cron=cron,
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,
    )
    return deployment_id


def run_and_wait(
    deployable: Deployable, work_pool: str, timeout: float, worker_silence: float, progress: Callable[[str], None]
) -> FlowRun:
    """Start a run of the deployment and wait until it ends: Completed returns it, anything else raises."""
    started: FlowRun = run_deployment(deployable.full_name, timeout=0, as_subflow=False)  # type: ignore[assignment]
    progress(f"flow run {started.name} of {deployable.full_name} scheduled on pool {work_pool}")
    deadline = time.monotonic() + timeout
    last_state: str | None = ""
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(started.id)
            state = run.state
            if state is not None and state.name != last_state:
                last_state = state.name
                progress(f"flow run {run.name}: {state.name}")
            if state is not None and state.is_final():
                if state.is_completed():
                    return run
                raise DeploymentError(
                    f"flow run {run.name} of {deployable.full_name} ended {state.name}: {state.message or ''}".strip()
                )
            silent = _pool_silence(client, work_pool)
            if silent > worker_silence:
                why = f"no worker of pool {work_pool!r} has sent a heartbeat for {silent:.0f} s"
                client.set_flow_run_state(run.id, Crashed(message=why), force=True)
                raise DeploymentError(
                    f"flow run {run.name} of {deployable.full_name} is lost: {why} (is a worker running? "
                    "`gigmatch stack status`; GIGMATCH_WORKER_SILENCE)"
                )
            if time.monotonic() > deadline:
                raise DeploymentError(
                    f"flow run {run.name} of {deployable.full_name} did not end within {timeout:.0f} s "
                    f"(GIGMATCH_DEPLOYMENT_TIMEOUT); it is {last_state}"
                )
            time.sleep(1.0)


def _pool_silence(client: object, work_pool: str) -> float:
    """Seconds since the pool's most recent worker heartbeat (infinite when it has never had one)."""
    workers = client.read_workers_for_work_pool(work_pool)  # type: ignore[attr-defined]
    beats = [w.last_heartbeat_time for w in workers if w.last_heartbeat_time is not None]
    if not beats:
        return float("inf")
    return (dt.datetime.now(dt.UTC) - max(beats)).total_seconds()
