"""Step 6 of verify: the reproduced fingerprint against the committed one, and what else the run rewrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gigmatch.repro.fingerprint import FINGERPRINT_FILE, Difference, diff, read_fingerprint
from gigmatch.repro.scratch import VerifyError, git


def compare_fingerprints(expected: dict[str, Any], workspace: Path) -> tuple[dict[str, Any], list[Difference]]:
    """The reproduced fingerprint and every figure that differs from the committed one, by stage."""
    actual_path = workspace / "reports" / FINGERPRINT_FILE
    if not actual_path.is_file():
        raise VerifyError(f"the pipeline ran but wrote no reports/{FINGERPRINT_FILE}")
    actual = read_fingerprint(actual_path)
    return actual, diff(expected, actual)


def stale_lock_notes(workspace: Path) -> list[str]:
    """Deps and params whose hash in the committed dvc.lock differs from what the reproduction found."""
    try:
        committed = yaml.safe_load(git(["show", "HEAD:dvc.lock"], workspace)) or {}
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


def rewritten_files_notes(workspace: Path) -> list[str]:
    """Committed files the reproduction rewrote with other bytes (reports other than the fingerprint)."""
    changed = [line[3:] for line in git(["status", "--porcelain"], workspace).splitlines() if line.startswith(" M")]
    changed = [p for p in changed if p not in {"dvc.lock", f"reports/{FINGERPRINT_FILE}"}]
    if not changed:
        return []
    return [f"the reproduction rewrote committed files with other bytes: {', '.join(changed)}"]
