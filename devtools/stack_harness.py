"""What the stack's test and its benchmark both need around a running team stack (developer tooling).

A scratch checkout of the working tree (the training deployment is declared from the directory
`gigmatch train` runs in), the env file `gigmatch stack up` writes, and the processes its state file
names, so that whoever started a stack can make sure nothing of it is left alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def clone_working_tree(dest: Path, author: str = "stack harness") -> Path:
    """A fresh checkout of this working tree (tracked and new files, nothing ignored), as one commit."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True, capture_output=True)
    commit_all(dest, "fresh clone", author)
    return dest


def commit_all(checkout: Path, message: str, author: str = "stack harness") -> None:
    """Everything not ignored, committed: a run's lineage then names a clean commit."""
    identity = ["-c", f"user.name={author}", "-c", "user.email=harness@test.invalid"]
    subprocess.run(["git", "add", "-A"], cwd=checkout, check=True, capture_output=True)
    subprocess.run(
        ["git", *identity, "commit", "-q", "--allow-empty", "-m", message],
        cwd=checkout,
        check=True,
        capture_output=True,
    )


def env_file(path: Path) -> dict[str, str]:
    """The KEY=value lines of an env file such as `.env.team` (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def state_pids(stack_dir: Path) -> list[int]:
    """Every process the stack's state file names, with their children (the worker's flow runs)."""
    state = json.loads((stack_dir / "state.json").read_text()) if (stack_dir / "state.json").exists() else {}
    pids = []
    for record in state.values():
        try:
            process = psutil.Process(int(record["pid"]))
            pids += [process.pid, *(child.pid for child in process.children(recursive=True))]
        except psutil.NoSuchProcess:
            continue
    return pids


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (a zombie is not)."""
    running = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.append(pid)
        except psutil.NoSuchProcess:
            continue
    return running


def kill_survivors(pids: list[int]) -> None:
    """SIGKILL whatever of `pids` `gigmatch stack down` left running: never leave a server behind."""
    for pid in alive(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
