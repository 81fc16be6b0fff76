"""Step 1 of verify: a clean clone of the commit, so nothing uncommitted in the working tree can leak in."""

from __future__ import annotations

from pathlib import Path

from gigmatch.repro.scratch import VerifyError, git


def repository_root(path: Path) -> Path:
    return Path(git(["rev-parse", "--show-toplevel"], Path(path).resolve()).strip())


def checkout(repo_root: Path, rev: str, workspace: Path) -> str:
    """Clone `repo_root` into `workspace` (which must not exist) at `rev`, detached; returns the commit."""
    commit = git(["rev-parse", "--verify", f"{rev}^{{commit}}"], repo_root).strip()
    if workspace.exists():
        raise VerifyError(f"{workspace} already exists: give verify an empty scratch directory")
    git(["clone", "--quiet", "--no-checkout", str(repo_root), str(workspace)], repo_root)
    git(["-c", "advice.detachedHead=false", "checkout", "--quiet", commit], workspace)
    return commit


def uncommitted_notes(repo_root: Path) -> list[str]:
    changed = git(["status", "--porcelain", "--untracked-files=no"], repo_root).splitlines()
    if not changed:
        return []
    return [f"{len(changed)} uncommitted change(s) in {repo_root} are not part of this check (it verifies the commit)"]
