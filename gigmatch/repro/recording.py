"""Writing a run's fingerprint: the committed file changes only when the model does.

A run on another CPU gives scores a few ulps away from the committed ones. Rewriting
`fingerprint.json` then would dirty every clone's tree with noise, so a run whose model
is numerically the same as the committed one (`gigmatch.repro.tiers`) keeps the file
as it is, and writes its own bits to the untracked local record only. DVC must not
delete the file before the stage runs for this to work: the train stage's output is
declared `persist: true` in dvc.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gigmatch.files import write_json
from gigmatch.repro.fingerprint import (
    FINGERPRINT_FILE,
    LOCAL_FINGERPRINT_FILE,
    FingerprintError,
    committed_form,
    local_record,
    read_fingerprint,
    write_fingerprint,
)
from gigmatch.repro.tiers import agreement


@dataclass(frozen=True)
class RecordedFingerprint:
    committed: dict[str, Any]  # what fingerprint.json holds after the run
    local: dict[str, Any]  # what fingerprint.local.json holds: this run's bits and platform
    kept: bool  # the committed file was left as it was (the same model)
    why: str  # one line for the run's log


def fingerprint_to_commit(existing: Mapping[str, Any] | None, fresh: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The existing committed document if the fresh run is numerically the same model, else the fresh one's."""
    if existing is None:
        return committed_form(fresh), "no committed fingerprint yet"
    found = agreement(existing, fresh)
    if found.holds:
        return dict(existing), f"kept: {found.summary()}"
    return committed_form(fresh), f"rewritten: {found.differences[0].describe()}"


def record_fingerprint(reports_dir: Path, fresh: Mapping[str, Any], commit: str, dirty: bool) -> RecordedFingerprint:
    """Decide what the committed file holds and describe this run locally (nothing is written: see `write`)."""
    try:
        existing: dict[str, Any] | None = read_fingerprint(Path(reports_dir) / FINGERPRINT_FILE)
    except FingerprintError:
        existing = None  # none yet, or unreadable: the fresh one replaces it
    committed, why = fingerprint_to_commit(existing, fresh)
    kept = existing is not None and committed == existing
    return RecordedFingerprint(committed, local_record(fresh, commit, dirty), kept, why)


def write_recorded(reports_dir: Path, recorded: RecordedFingerprint) -> None:
    """The local record always; the committed file only when it changes (each write atomic)."""
    write_json(Path(reports_dir) / LOCAL_FINGERPRINT_FILE, recorded.local)
    if not recorded.kept:
        write_fingerprint(Path(reports_dir) / FINGERPRINT_FILE, recorded.committed)
