"""Refuse to commit local state, secrets, model files and large files (a pre-commit hook).

    python -m devtools.repo_guard [--check paths|size|all] [--max-kb N] FILE...

prints one line per refused file (which file, why, how to fix it) and exits 1; it exits 0
when every file may be committed. `.pre-commit-config.yaml` runs it twice, once per check,
so each refusal appears under its own hook name. The rules are pure functions of the path
and the size, so they are tested without git; `.gitignore` is the first line of defence,
this is the second (it also catches `git add -f`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Literal, NamedTuple

Check = Literal["paths", "size", "all"]
DEFAULT_MAX_KB = 1024
MODEL_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".skops", ".onnx", ".pt", ".pth", ".h5", ".keras", ".safetensors", ".ckpt"}
)
# mlruns/ keeps a placeholder so the directory exists in a fresh clone; nothing else in it is source.
MLRUNS_PLACEHOLDERS = frozenset({".gitkeep", "README.md"})
ENV_TEMPLATE = ".env.example"
_SQLITE = re.compile(r"\.(db|sqlite3?)(-journal|-wal|-shm)?$", re.IGNORECASE)

_UNSTAGE = "unstage: git rm --cached {path}"
_MLFLOW = "runs and models belong on a tracking server (MLFLOW_TRACKING_URI, see README)"


class RefusedFile(NamedTuple):
    """A file that must not be committed, and what to do instead."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def path_reason(path: str) -> str | None:
    """Why this path must not be committed, whatever its content; None when it may be."""
    p = PurePosixPath(path.replace("\\", "/"))
    name, dirs, suffix = p.name, p.parts[:-1], p.suffix.lower()
    unstage = _UNSTAGE.format(path=p)
    if name == "mlflow.db":
        return f"the MLflow tracking database is local state; {_MLFLOW}; {unstage}"
    if ".prefect" in dirs or name == "prefect.db":
        return (
            "Prefect's orchestration state is local (PREFECT_HOME=.prefect); flows report to a Prefect server "
            f"(PREFECT_API_URL, see README); {unstage}"
        )
    if _SQLITE.search(name):
        return f"a SQLite database is local state, not source; {unstage}"
    if name == ".env" or (name.startswith(".env.") and name != ENV_TEMPLATE):
        return (
            f"environment files hold secrets and machine-local settings (put placeholders in {ENV_TEMPLATE}); {unstage}"
        )
    if ("mlruns" in dirs and not (dirs[-1] == "mlruns" and name in MLRUNS_PLACEHOLDERS)) or "mlartifacts" in dirs:
        return f"MLflow's local run and artifact store; {_MLFLOW}; {unstage}"
    if dirs[:1] == ("bundle",):
        return f"the serving bundle is rebuilt from the registry's champion by `make export`, not versioned; {unstage}"
    if name == "MLmodel" or suffix in MODEL_SUFFIXES:
        return f"model files live in the MLflow registry (or an exported bundle/), not in git; {unstage}"
    return None


def size_reason(path: str, size: int, max_kb: int = DEFAULT_MAX_KB) -> str | None:
    """Why a file of `size` bytes is too large for git; None when it is within `max_kb` KB."""
    if size <= max_kb * 1024:
        return None
    return (
        f"{size / 1024:,.0f} KB is over the {max_kb:,} KB limit; large files and data belong in DVC: "
        f"git rm --cached {path} && dvc add {path}, then commit {path}.dvc"
    )


def violations(
    paths: Iterable[str], sizes: Mapping[str, int], *, max_kb: int = DEFAULT_MAX_KB, check: Check = "all"
) -> list[RefusedFile]:
    """The refused files among `paths`, at most one reason each (the path rule first).

    `sizes` maps a path to its size in bytes; a path without a size is not size-checked.
    """
    found = []
    for path in paths:
        reason = path_reason(path) if check in ("paths", "all") else None
        if reason is None and check in ("size", "all") and path in sizes:
            reason = size_reason(path, sizes[path], max_kb)
        if reason is not None:
            found.append(RefusedFile(path, reason))
    return found


def _file_sizes(paths: Iterable[str]) -> dict[str, int]:
    """Sizes of the paths that exist (a symlink counts as the link itself, not its target)."""
    return {path: os.lstat(path).st_size for path in paths if os.path.lexists(path)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.repo_guard",
        description="Refuse local state, secrets, model files and large files (pre-commit passes the staged files).",
    )
    parser.add_argument("files", nargs="*", help="paths relative to the repository root")
    parser.add_argument(
        "--check",
        choices=("paths", "size", "all"),
        default="all",
        help="which rules: the path rules, the size limit, or both (default)",
    )
    parser.add_argument("--max-kb", type=int, default=DEFAULT_MAX_KB, help="size limit in KB (default %(default)s)")
    args = parser.parse_args(argv)
    sizes = _file_sizes(args.files) if args.check != "paths" else {}
    found = violations(args.files, sizes, max_kb=args.max_kb, check=args.check)
    for violation in found:
        print(violation)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
