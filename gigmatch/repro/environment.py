"""Step 2 of verify: the running environment must be the one the commit's `uv.lock` pins."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from gigmatch.repro.differences import Difference
from gigmatch.repro.scratch import VerifyError


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


def _normalise(version: str) -> str:
    return version.strip().lower().replace("_", "-")
