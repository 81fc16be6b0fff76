"""Step 5 of verify: the stages that make the model, run by DVC in the scratch checkout."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from gigmatch.errors import ExitCode
from gigmatch.repro.scratch import VerifyError, log_tail, run_logged

_STAGE_FAILED = re.compile(r"failed to reproduce '(?P<stage>[^']+)'.*?exited with (?P<code>\d+)", re.DOTALL)


def reproduce_training(workspace: Path, log_file: Path, env: Mapping[str, str], timeout: float) -> None:
    """`dvc repro --force train`: train and what it depends on (validate).

    Serving the model and gating drift come after the fingerprint and need a champion this
    run may not earn. A broken data contract (validate exits 2) is reported as such.
    """
    command = [sys.executable, "-m", "dvc", "repro", "--force", "train"]
    completed = run_logged(command, workspace, env, timeout, log_file, check=False)
    if completed == 0:
        return
    failed = _STAGE_FAILED.search(log_file.read_text(errors="replace"))
    tail = log_tail(log_file, 15)
    if failed and failed["stage"] == "validate" and int(failed["code"]) == ExitCode.CONTRACT_BROKEN:
        raise VerifyError(
            f"stage validate: the data contract is broken (log: {log_file})\n{tail}", ExitCode.CONTRACT_BROKEN
        )
    stage = f"stage {failed['stage']} exited with {failed['code']}" if failed else f"dvc repro exited with {completed}"
    raise VerifyError(f"{stage} (log: {log_file})\n{tail}")


def validate_contract(workspace: Path, log_file: Path, env: Mapping[str, str], timeout: float) -> None:
    """The validate stage's check alone, by the commit's code: VerifyError (exit 2) if the contract is broken."""
    report = log_file.with_suffix(".json")
    command = [sys.executable, "-m", "gigmatch", "data", "validate", "data", "--report", str(report)]
    code = run_logged(command, workspace, env, timeout, log_file, check=False)
    if code == ExitCode.CONTRACT_BROKEN:
        raise VerifyError(
            f"the data contract is broken (log: {log_file})\n{log_tail(log_file, 15)}", ExitCode.CONTRACT_BROKEN
        )
