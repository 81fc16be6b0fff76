"""Where a model came from: the code commit and the data version."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from gigmatch.data.pinning import PinError, directory_md5, read_pin


@dataclass(frozen=True)
class Lineage:
    git_commit: str  # "unknown" outside a git checkout
    git_dirty: bool
    data_md5: str  # DVC hash of the snapshot the model was trained on
    data_pinned: bool  # that hash is the one data.dvc pins

    def tags(self) -> dict[str, str]:
        return {
            "git_commit": self.git_commit,
            "git_dirty": str(self.git_dirty).lower(),
            "data_md5": self.data_md5,
            "data_pinned": str(self.data_pinned).lower(),
        }


def current_lineage(data_dir: Path, pin_file: Path = Path("data.dvc")) -> Lineage:
    md5 = directory_md5(data_dir)
    try:
        pinned = read_pin(pin_file).md5 == md5
    except PinError:
        pinned = False
    commit, dirty = _git_state()
    return Lineage(commit, dirty, md5, pinned)


def _git_state() -> tuple[str, bool]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.stdout.strip())
