"""Step 6 of verify: the reproduced fingerprint against the committed one and this machine's, and what else moved.

The reproduction must agree with the committed fingerprint at least numerically
(`gigmatch.repro.tiers`). When this machine has a record of its own last run
(`reports/fingerprint.local.json`, written by `make run`) of the same model, the
reproduction is also compared with its bits: equal bits are the exact tier, and
otherwise the deviation shown is the true one, not the committed rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gigmatch.repro.fingerprint import FINGERPRINT_FILE, LOCAL_FINGERPRINT_FILE, kernels, read_local_record
from gigmatch.repro.scratch import VerifyError, git
from gigmatch.repro.tiers import EXACT, Agreement, agreement


@dataclass
class Comparison:
    committed: Agreement  # the reproduction against the committed fingerprint
    fresh: dict[str, Any]  # the reproduction's local record
    local: Agreement | None = None  # against this machine's last run, when that is of the same model
    reference: dict[str, Any] | None = None  # this machine's last run's local record
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Agreement:
        return self.local if self.local is not None and self.local.holds else self.committed

    @property
    def tier(self) -> str | None:
        return self.verdict.tier if self.committed.holds else None

    def summary(self) -> str:
        """Which tier held and why, with the kernels behind it."""
        verdict, here = self.verdict, kernels(self.fresh)
        if verdict is self.committed:
            return (
                f"{verdict.summary()}; kernel {here} (no run of this machine to compare bits with: "
                "`make run` records one, for the exact tier)"
            )
        made_at = _made_at(self.reference)
        if verdict.tier == EXACT:
            digest = str(self.fresh.get("scores_sha256", ""))[:16]
            return f"{verdict.summary()}, as this machine's last run ({made_at}, sha256 {digest}); kernel {here}"
        return f"{verdict.summary()}; kernels {kernels(self.reference)} (this machine's last run, {made_at}) vs {here}"


def _made_at(record: dict[str, Any] | None) -> str:
    """The commit a local record was made at, short (its `dirty` flag is not shown: during `dvc repro`
    the lock file is rewritten before training, so the flag says little)."""
    made_at = (record or {}).get("made_at") or {}
    return str(made_at.get("commit", "unknown"))[:12]


def compare_fingerprints(expected: dict[str, Any], workspace: Path, repo_root: Path) -> Comparison:
    """The reproduction (the scratch's local record) against the committed fingerprint and this machine's run."""
    fresh = read_local_record(workspace / "reports" / LOCAL_FINGERPRINT_FILE)
    if fresh is None:
        raise VerifyError(f"the pipeline ran but wrote no readable reports/{LOCAL_FINGERPRINT_FILE}")
    comparison = Comparison(agreement(expected, fresh["fingerprint"]), fresh)
    reference = read_local_record(repo_root / "reports" / LOCAL_FINGERPRINT_FILE)
    if reference is None:
        return comparison
    if not agreement(expected, reference["fingerprint"]).holds:
        comparison.notes.append(
            f"this machine's last run (reports/{LOCAL_FINGERPRINT_FILE}) is of another model than the commit's: "
            "compared with the committed fingerprint only"
        )
        return comparison
    comparison.reference = reference
    comparison.local = agreement(reference["fingerprint"], fresh["fingerprint"])
    if comparison.local.tier != EXACT and reference.get("platform") == fresh.get("platform"):
        comparison.notes.append(
            "the same platform as this machine's last run gave other bits: the code or packages changed since "
            f"that run (at {_made_at(reference)}), or a step is not deterministic"
        )
    return comparison


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
