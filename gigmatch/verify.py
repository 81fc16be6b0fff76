"""The client reproduction check: a clean checkout must give back the committed model fingerprint.

`verify(repo)` does what a client does with a fresh clone, in a scratch directory:

1. **checkout**: `git clone` of the repository and a detached checkout of the commit
   (`HEAD` by default), so nothing uncommitted in the working tree can leak in.
2. **environment**: the running virtual environment must match the scratch's
   `uv.lock` (every locked package that is installed, at the locked version).
3. **data**: materialise exactly what `data.dvc` pins (`gigmatch.pinning`: DVC
   cache, the default remote, else regenerate from the seed with the committed
   simulator), md5 checked.
4. **pipeline**: `dvc repro --force train` (validate, train) with a fresh MLflow SQLite
   store and Prefect home inside the scratch, the locked `.venv` first on PATH and
   the scratch first on PYTHONPATH (the project is installed editable, so without
   it the working tree's code would run instead of the commit's).
5. **compare**: the reproduced `reports/fingerprint.json` against the committed one
   (`gigmatch.fingerprint.diff`), stage by stage: environment, data, params, model,
   metrics.

Exit codes (those of `gigmatch.cli.ExitCode`): 0 the fingerprint matches; 1 it does
not, or the data cannot be made to match its pin, or the environment is not the
locked one (with a readable diff); 2 the data contract is broken (the validate
stage refused the data); 3 any other error (git, DVC or the pipeline crashed).

Bit-for-bit identity of two fresh runs on the same platform rests on: the seeds in
params.yaml (`simulate.seed` for regenerated data, `train.seed`, `evaluate.baseline_seed`);
one thread per estimator (`train.threads`: LightGBM's `n_jobs`; threadpoolctl caps
OpenMP and BLAS per fit and around the whole flow); LightGBM's deterministic mode
(`deterministic=True, force_row_wise=True`); rows sorted by (job_id, freelancer_id)
before anything is fitted; no clock, run id or registry state in the fingerprint;
and `uv.lock` (checked in step 2). Nothing depends on PYTHONHASHSEED: the check does
not set it, so each run gets its own random hash seed. "Same platform" matters
because OpenBLAS picks its kernels by CPU (the fingerprint records them under
`platform`, shown but not compared).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from gigmatch.exit_codes import ExitCode
from gigmatch.fingerprint import ABSENT, FINGERPRINT_FILE, Difference, diff, read_fingerprint
from gigmatch.pinning import PinError, directory_md5, materialise, read_pin

DEFAULT_TIMEOUT_SECONDS = 1800
_STAGE_FAILED = re.compile(r"failed to reproduce '(?P<stage>[^']+)'.*?exited with (?P<code>\d+)", re.DOTALL)
# Environment variables that would point the scratch run at someone's servers or state.
_ISOLATED = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "GIGMATCH_ARTIFACT_ROOT", "PREFECT_API_URL", "PREFECT_HOME")


class VerifyError(RuntimeError):
    """A step could not run (not a mismatch): git, DVC or the pipeline failed."""

    def __init__(self, message: str, code: int = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class VerifyResult:
    code: int  # an ExitCode: OK, CHECK_FAILED, CONTRACT_BROKEN or ERROR
    commit: str | None
    scratch: Path
    differences: list[Difference] = field(default_factory=list)
    message: str = ""  # why it failed, when it did
    notes: list[str] = field(default_factory=list)  # warnings that do not fail the check
    seconds: dict[str, float] = field(default_factory=dict)  # per step
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.code == ExitCode.OK

    @property
    def first_stage(self) -> str | None:
        """The earliest stage that differs: usually the cause of everything after it."""
        return self.differences[0].stage if self.differences else None


def verify(
    repo_root: Path,
    scratch_dir: Path | None = None,
    *,
    rev: str = "HEAD",
    full: bool = False,
    prefect_api_url: str | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    log: Callable[[str], None] = lambda message: None,
) -> VerifyResult:
    """Reproduce `rev` of `repo_root` in `scratch_dir` (a new temporary directory if None) and compare.

    Before training, the commit's inputs (environment, data pin, params) are compared with
    those the committed fingerprint records; if they differ the fingerprint is stale and
    cannot match, so the check stops there with that diff, unless `full` (then it trains
    anyway and shows every figure that moves). `prefect_api_url` runs the flow against an
    existing Prefect server instead of an ephemeral one in the scratch (faster; nothing in
    the fingerprint depends on it).
    """
    scratch = Path(scratch_dir) if scratch_dir is not None else Path(tempfile.mkdtemp(prefix="gigmatch-verify-"))
    scratch.mkdir(parents=True, exist_ok=True)
    workspace = scratch / "repo"
    result = VerifyResult(ExitCode.ERROR, None, scratch)
    started = time.perf_counter()
    try:
        with _timed(result, "checkout"):
            repo_root = Path(_git(["rev-parse", "--show-toplevel"], Path(repo_root).resolve()).strip())
            log(f"checking out {rev} of {repo_root} into {workspace}")
            result.commit = _checkout(repo_root, rev, workspace)
            result.notes += _uncommitted_note(repo_root)
            expected_path = workspace / "reports" / FINGERPRINT_FILE
            if not expected_path.is_file():
                result.code = ExitCode.CHECK_FAILED
                result.message = (
                    f"commit {result.commit[:12]} has no reports/{FINGERPRINT_FILE}: nothing to compare with. "
                    "Run `make repro` and commit the fingerprint with dvc.lock."
                )
                return result
            result.expected = read_fingerprint(expected_path)
        with _timed(result, "environment"):
            log("checking the environment against uv.lock")
            result.differences += lock_differences(workspace / "uv.lock")
            if result.differences:
                result.code = ExitCode.CHECK_FAILED
                result.message = "the environment is not the one uv.lock pins: run `make install` (uv sync --locked)"
                return result
        env = _pipeline_env(workspace, scratch, prefect_api_url)
        with _timed(result, "inputs"):
            log("comparing the commit's inputs with those the fingerprint was made from")
            stale = _input_differences(workspace, result.expected, env, timeout_seconds, result.notes)
            if stale and not full:
                result.differences = stale
                result.code = ExitCode.CHECK_FAILED
                result.message = (
                    f"the committed fingerprint was made from other inputs ({stale[0].stage} first), so it cannot "
                    "be reproduced: refresh it with `dvc repro` (`dvc repro --force train` after a dependency "
                    "upgrade) and commit dvc.lock and reports/; `--full` trains anyway to show every figure that moves"
                )
                return result
            if stale:
                result.notes.append(f"inputs differ from the fingerprint's ({stale[0].describe()}); training anyway")
        with _timed(result, "data"):
            log("materialising the pinned data")
            data_difference = _materialise(workspace, env, timeout_seconds, log, result.notes)
            if data_difference is not None:
                result.differences.append(data_difference)
                result.code = ExitCode.CHECK_FAILED
                result.message = "the data cannot be made to match its pin in data.dvc"
                return result
        with _timed(result, "pipeline"):
            log("reproducing the pipeline (dvc repro --force train)")
            _repro(workspace, scratch / "logs" / "repro.log", env, timeout_seconds)
        with _timed(result, "compare"):
            actual_path = workspace / "reports" / FINGERPRINT_FILE
            if not actual_path.is_file():
                raise VerifyError(f"the pipeline ran but wrote no reports/{FINGERPRINT_FILE}")
            result.actual = read_fingerprint(actual_path)
            result.differences = diff(result.expected, result.actual)
            result.notes += _stale_lock_notes(workspace) + _rewritten_files_notes(workspace)
        if result.differences:
            result.code = ExitCode.CHECK_FAILED
            result.message = f"the reproduced fingerprint differs from the committed one, first in {result.first_stage}"
        else:
            result.code = ExitCode.OK
        return result
    except VerifyError as exc:
        result.code, result.message = exc.code, str(exc)
        return result
    except (OSError, ValueError, PinError) as exc:
        result.code, result.message = ExitCode.ERROR, f"{type(exc).__name__}: {exc}"
        return result
    finally:
        result.seconds["total"] = round(time.perf_counter() - started, 1)


# ---------------------------------------------------------------- steps


def _checkout(repo_root: Path, rev: str, workspace: Path) -> str:
    commit = _git(["rev-parse", "--verify", f"{rev}^{{commit}}"], repo_root).strip()
    if workspace.exists():
        raise VerifyError(f"{workspace} already exists: give verify an empty scratch directory")
    _git(["clone", "--quiet", "--no-checkout", str(repo_root), str(workspace)], repo_root)
    _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", commit], workspace)
    return commit


def _uncommitted_note(repo_root: Path) -> list[str]:
    changed = _git(["status", "--porcelain", "--untracked-files=no"], repo_root).splitlines()
    if not changed:
        return []
    return [f"{len(changed)} uncommitted change(s) in {repo_root} are not part of this check (it verifies the commit)"]


def lock_differences(lock_file: Path) -> list[Difference]:
    """Locked packages installed at another version than uv.lock pins (those not installed are skipped)."""
    try:
        lock = tomllib.loads(Path(lock_file).read_text())
    except FileNotFoundError as exc:
        raise VerifyError(f"{lock_file} not found: the dependencies are not locked") from exc
    differences = []
    for package in lock.get("package", []):
        source = package.get("source", {})
        if "editable" in source or "virtual" in source:
            continue  # the project itself
        name, locked = package["name"], package.get("version")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # another platform's, or an extra that is not installed
        if locked is not None and _normalise(installed) != _normalise(locked):
            differences.append(Difference("environment", f"uv.lock.{name}", locked, installed))
    return differences


def _pipeline_env(workspace: Path, scratch: Path, prefect_api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATED}
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


_INPUTS_PROBE = """
import json
from pathlib import Path
from gigmatch.config import load_params
from gigmatch.fingerprint import input_sections
from gigmatch.pinning import read_pin
print(json.dumps(input_sections(load_params(Path("params.yaml")), read_pin(Path("data.dvc")).md5), sort_keys=True))
"""


def _input_differences(
    workspace: Path, expected: Mapping[str, Any], env: Mapping[str, str], timeout: float, notes: list[str]
) -> list[Difference]:
    """The commit's inputs, computed by its own code in a subprocess, against the committed fingerprint's."""
    log_file = workspace.parent / "logs" / "inputs.log"
    code = _run([sys.executable, "-c", _INPUTS_PROBE], workspace, env, timeout, log_file, check=False)
    lines = log_file.read_text(errors="replace").strip().splitlines()
    try:
        if code != 0:
            raise ValueError(f"exit {code}")
        inputs = json.loads(lines[-1])
    except (ValueError, IndexError) as exc:
        notes.append(f"could not compare the inputs before training ({exc}; log: {log_file}); training anyway")
        return []
    return diff({stage: expected.get(stage, {}) for stage in inputs}, inputs)


def _materialise(
    workspace: Path, env: Mapping[str, str], timeout: float, log: Callable[[str], None], notes: list[str]
) -> Difference | None:
    """Fetch or regenerate the pinned data into the workspace; a Difference if it cannot match the pin."""
    pin = read_pin(workspace / "data.dvc")
    regenerated: list[str] = []
    attempts: list[str] = []  # why the cache or the remote did not serve it; shown only if nothing did

    def regenerate(target: Path) -> None:
        # The committed simulator and params, in a subprocess, like everything else in the scratch.
        _run(
            [sys.executable, "-m", "gigmatch", "data", "generate", "--out", str(target)],
            workspace,
            env,
            timeout,
            workspace.parent / "logs" / "generate.log",
        )
        regenerated.append(directory_md5(target))

    def note(message: str) -> None:
        attempts.append(message)
        log(message)

    with _env(env):  # materialise runs DVC in subprocesses that inherit os.environ
        try:
            done = materialise(workspace / "data.dvc", regenerate, log=note)
        except PinError as exc:
            found = regenerated[-1] if regenerated else "(nothing could be fetched or regenerated)"
            notes.extend([*attempts, str(exc)])
            return Difference("data", "data.md5", pin.md5, found)
    log(f"data matches the pin {done.md5} (via {done.how})")
    notes.append(f"data: {done.how} ({done.md5})")
    return None


def _repro(workspace: Path, log_file: Path, env: Mapping[str, str], timeout: float) -> None:
    # The stages that make the model (train and what it depends on): serving it and
    # gating drift come after the fingerprint and need a champion this run may not earn.
    command = [sys.executable, "-m", "dvc", "repro", "--force", "train"]
    completed = _run(command, workspace, env, timeout, log_file, check=False)
    if completed == 0:
        return
    output = log_file.read_text(errors="replace")
    failed = _STAGE_FAILED.search(output)
    tail = "\n".join(output.strip().splitlines()[-15:])
    if failed and failed["stage"] == "validate" and int(failed["code"]) == ExitCode.CONTRACT_BROKEN:
        raise VerifyError(
            f"stage validate: the data contract is broken (log: {log_file})\n{tail}", ExitCode.CONTRACT_BROKEN
        )
    stage = f"stage {failed['stage']} exited with {failed['code']}" if failed else f"dvc repro exited with {completed}"
    raise VerifyError(f"{stage} (log: {log_file})\n{tail}")


def _stale_lock_notes(workspace: Path) -> list[str]:
    """Deps and params whose hash in the committed dvc.lock differs from what the reproduction found."""
    try:
        committed = yaml.safe_load(_git(["show", "HEAD:dvc.lock"], workspace)) or {}
        current = yaml.safe_load((workspace / "dvc.lock").read_text()) or {}
    except (VerifyError, OSError, yaml.YAMLError):
        return []
    notes = []
    for stage, spec in (current.get("stages") or {}).items():
        old = (committed.get("stages") or {}).get(stage) or {}
        old_deps = {d["path"]: d.get("md5") for d in old.get("deps", [])}
        changed = [d["path"] for d in spec.get("deps", []) if old_deps.get(d["path"]) != d.get("md5")]
        if old.get("params") != spec.get("params"):
            changed.append("params")
        if changed:
            notes.append(
                f"dvc.lock was stale for stage {stage} ({', '.join(changed)}): "
                "run `dvc repro` and commit dvc.lock with its reports"
            )
    return notes


def _rewritten_files_notes(workspace: Path) -> list[str]:
    """Committed files the reproduction rewrote with other bytes (reports other than the fingerprint)."""
    changed = [line[3:] for line in _git(["status", "--porcelain"], workspace).splitlines() if line.startswith(" M")]
    changed = [p for p in changed if p not in {"dvc.lock", f"reports/{FINGERPRINT_FILE}"}]
    if not changed:
        return []
    return [f"the reproduction rewrote committed files with other bytes: {', '.join(changed)}"]


# ---------------------------------------------------------------- helpers


def _git(args: list[str], cwd: Path) -> str:
    try:
        completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise VerifyError(f"git is not available: {exc}") from exc
    if completed.returncode != 0:
        raise VerifyError(f"git {' '.join(args)} failed in {cwd}: {completed.stderr.strip()}")
    return completed.stdout


def _run(args: list[str], cwd: Path, env: Mapping[str, str], timeout: float, log_file: Path, check: bool = True) -> int:
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
        tail = "\n".join(log_file.read_text(errors="replace").strip().splitlines()[-10:])
        raise VerifyError(f"{' '.join(args[1:4])} exited with {code} (log: {log_file})\n{tail}")
    return code


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # Only the group this check started (the pipeline and the Prefect server it spawned).
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def _env(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _timed(result: VerifyResult, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        result.seconds[step] = round(time.perf_counter() - start, 1)


def _normalise(version: str) -> str:
    return version.strip().lower().replace("_", "-")


# ---------------------------------------------------------------- front door


def run_verify_command(
    repo: Path,
    keep_scratch: bool = False,
    *,
    rev: str = "HEAD",
    scratch_dir: Path | None = None,
    full: bool = False,
    prefect_api_url: str | None = None,
) -> int:
    """`gigmatch verify`: run the check, print the verdict and the diff, return the exit code.

    A temporary scratch is removed on success unless `keep_scratch`; it is kept on
    failure (its logs/ explain what happened). A given `scratch_dir` is never removed.
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, soft_wrap=True, highlight=False)
    with console.status("verifying") as status:
        result = verify(
            repo,
            scratch_dir,
            rev=rev,
            full=full,
            prefect_api_url=prefect_api_url,
            log=lambda m: status.update(f"verify: {m}"),
        )
    commit = result.commit[:12] if result.commit else rev
    timings = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in result.seconds.items())
    for line in result.notes:
        console.print(f"[yellow]note[/yellow]: {escape(line)}")
    if result.ok:
        console.print(f"[green]verified[/green]: commit {commit} reproduces its fingerprint bit for bit ({timings})")
    else:
        console.print(f"[red]verification failed[/red] ({commit}, exit {result.code}): {escape(result.message)}")
        stage = None
        for difference in result.differences:
            if difference.stage != stage:
                stage = difference.stage
                console.print(f"[bold]{stage}[/bold]")
            line = f"  {difference.figure}: {_cell(difference.expected)} -> {_cell(difference.actual)}"
            console.print(escape(line + (f" ({difference.change})" if difference.change else "")))
        if result.expected and result.actual and result.expected.get("platform") != result.actual.get("platform"):
            console.print(
                "[yellow]note[/yellow]: "
                + escape(
                    f"made on {result.expected.get('platform')}, reproduced on {result.actual.get('platform')}: "
                    "bits are promised on the same platform only"
                )
            )
        console.print(f"timings: {timings}")
    created = scratch_dir is None
    if created and result.ok and not keep_scratch:
        shutil.rmtree(result.scratch, ignore_errors=True)
    else:
        console.print(f"scratch kept: {result.scratch}")
    return result.code


def _cell(value: object, limit: int = 80) -> str:
    text = ABSENT if value == ABSENT else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
