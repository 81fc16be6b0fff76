"""The team stack for a benchmark: `gigmatch stack up` in a scratch directory, on ports of its own, always stopped.

What tests/test_stack.py does to get a stack and a checkout for it, cut to what a timing needs: a
scratch directory under /tmp (PostgreSQL runs as its own user and must walk through it), every port
100 above its default (a stack someone runs on the defaults is left alone), the client environment
`GIGMATCH_PROFILE=team` gives, and, whatever fails, `gigmatch stack down` then SIGKILL for any PID of
its state file still alive. `training_phases` reads the last training deployment's run back from the
Prefect server, to say where the stack's seconds went.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.stack_harness import clone_working_tree, commit_all, env_file, kill_survivors, state_pids  # noqa: E402

GIGMATCH = str(Path(sys.executable).with_name("gigmatch"))
PORT_OFFSET = 100
WORKER_FLOW = "gigmatch-train-on-worker"  # pipelines/deployments.py: TRAINING
TRAINING_FLOW = "gigmatch-train"  # the subflow the deployment runs: the same flow as `gigmatch train` locally


def _ports() -> dict[str, str]:
    """GIGMATCH_STACK_<SERVICE>_PORT for all six servers, each PORT_OFFSET above its default."""
    from gigmatch.stack.settings import StackSettings

    return {
        f"GIGMATCH_STACK_{name.upper()}": str(field.default + PORT_OFFSET)
        for name, field in StackSettings.model_fields.items()
        if name.endswith("_port")
    }


def clone(dest: Path) -> Path:
    """A fresh checkout of this working tree: the deployment is declared from where `gigmatch train` runs."""
    return clone_working_tree(dest, author="bench")


def commit(checkout: Path, message: str) -> None:
    commit_all(checkout, message, author="bench")


class TeamStack:
    def __init__(self, directory: Path):
        self.dir = directory
        (directory / "client").mkdir()  # the client's PREFECT_HOME lives here
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GIGMATCH_", "MLFLOW_", "PREFECT_", "AWS_"))}
        self.stack_env = (
            base
            | _ports()
            | {
                "GIGMATCH_STACK_DIR": str(directory / "stack"),
                "GIGMATCH_STACK_ENV_FILE": str(directory / "env.team"),
                "PREFECT_HOME": str(directory / "client" / "prefect"),
                "COLUMNS": "200",
            }
        )
        self.up_s = 0.0

    def command(self, *verb: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [GIGMATCH, "stack", *verb], cwd=self.dir, env=self.stack_env, capture_output=True, text=True, timeout=600
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"gigmatch stack {' '.join(verb)}: exit {result.returncode}\n{result.stderr[-4000:]}")
        return result

    def client_env(self, deployment_timeout: float) -> dict[str, str]:
        """What `GIGMATCH_PROFILE=team` gives a command: the stack's environment plus the env file it wrote."""
        return (
            self.stack_env | env_file(self.dir / "env.team") | {"GIGMATCH_DEPLOYMENT_TIMEOUT": str(deployment_timeout)}
        )

    def _prefect(self, path: str, body: object) -> list[dict[str, object]]:
        request = urllib.request.Request(
            self.client_env(1)["PREFECT_API_URL"] + path, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    def _latest(self, flow_name: str) -> dict[str, object]:
        runs = self._prefect("/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC"})
        return runs[0]

    def training_phases(self) -> dict[str, float]:
        """The last training deployment's run, from the server's timestamps: how long the worker took to start
        it (created -> Running: poll, process spawn, imports), the run itself, and its slowest tasks."""
        outer, inner = self._latest(WORKER_FLOW), self._latest(TRAINING_FLOW)
        phases = {
            "queued_s": _seconds(outer["created"], outer["start_time"]),
            "flow_run_s": _seconds(outer["start_time"], outer["end_time"]),
            "training_flow_s": _seconds(inner["start_time"], inner["end_time"]),
        }
        tasks = self._prefect("/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": [inner["id"]]}}})
        for run in tasks:
            if run["start_time"] and run["end_time"]:
                phases[f"task {run['name']}_s"] = _seconds(run["start_time"], run["end_time"])
        return phases


def _seconds(start: object, end: object) -> float:
    return (dt.datetime.fromisoformat(str(end)) - dt.datetime.fromisoformat(str(start))).total_seconds()


@contextmanager
def running(keep: bool = False) -> Iterator[TeamStack]:
    """A cold stack for the block; stopped afterwards, whatever happened, and its directory removed unless `keep`."""
    directory = Path(tempfile.mkdtemp(prefix="gigmatch-bench-stack-", dir="/tmp"))
    os.chmod(directory, 0o755)  # PostgreSQL runs as its own user and walks through here to its data
    stack = TeamStack(directory)
    try:
        began = time.perf_counter()
        stack.command("up")
        stack.up_s = time.perf_counter() - began
        yield stack
    finally:
        pids = state_pids(directory / "stack")
        stack.command("down", check=False)
        kill_survivors(pids)  # never leave a server behind
        if keep:
            print(f"stack directory kept: {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
