"""The scratch workspace a reproduction runs in: isolated environment, logged subprocesses, git.

Every step that runs the commit's own code does it in a subprocess, with its
output in a log file under the scratch's `logs/` and its whole process group
killed on a timeout or an interrupt (the pipeline starts a Prefect server of its
own). The environment points MLflow and Prefect at stores inside the scratch, so
a reproduction never touches the user's servers or state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from gigmatch.errors import ExitCode

DEFAULT_TIMEOUT_SECONDS = 1800
# Environment variables that would point the scratch run at someone's servers or state.
ISOLATED = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "GIGMATCH_ARTIFACT_ROOT", "PREFECT_API_URL", "PREFECT_HOME")


class VerifyError(RuntimeError):
    """A step could not run (not a mismatch): git, DVC or the pipeline failed."""

    def __init__(self, message: str, code: int = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


def pipeline_env(workspace: Path, scratch: Path, prefect_api_url: str | None) -> dict[str, str]:
    """This process's environment, with the stores moved into the scratch and the checkout's code first."""
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    venv_bin = str(Path(sys.executable).parent)
    env |= {
        "PATH": os.pathsep.join([venv_bin, env.get("PATH", "")]),
        # The project is installed editable: put the checkout first so its code runs.
        "PYTHONPATH": str(workspace),
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
        "GIGMATCH_ARTIFACT_ROOT": str(scratch / "mlruns"),
        "PREFECT_HOME": str(scratch / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": env.get(
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"
        ),
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    if prefect_api_url:
        env["PREFECT_API_URL"] = prefect_api_url
    return env


def run_logged(
    args: list[str], cwd: Path, env: Mapping[str, str], timeout: float, log_file: Path, check: bool = True
) -> int:
    """Run a command with its output in `log_file`; its whole process group is killed on timeout or interrupt."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as out:
        process = subprocess.Popen(
            args, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
        except BaseException:
            _kill_group(process)
            raise
    if check and code != 0:
        raise VerifyError(f"{' '.join(args[1:4])} exited with {code} (log: {log_file})\n{log_tail(log_file, 10)}")
    return code


def log_tail(log_file: Path, lines: int) -> str:
    return "\n".join(log_file.read_text(errors="replace").strip().splitlines()[-lines:])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # Only the group this check started (the pipeline and the Prefect server it spawned).
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def git(args: list[str], cwd: Path) -> str:
    try:
        completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise VerifyError(f"git is not available: {exc}") from exc
    if completed.returncode != 0:
        raise VerifyError(f"git {' '.join(args)} failed in {cwd}: {completed.stderr.strip()}")
    return completed.stdout
