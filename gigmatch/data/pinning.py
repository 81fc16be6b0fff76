"""Materialise exactly the data snapshot that `data.dvc` pins.

Order of attempts: the workspace already matches; `dvc checkout` from the local
cache; `dvc pull` from the default remote; regenerate from the seed in
`params.yaml`. Each attempt is checked against the pinned md5 (computed the way
DVC hashes a directory), and a regenerated snapshot is checked *before* it is
swapped into place, so a mismatch fails loudly and leaves the workspace as it
was. DVC runs as the real command-line tool, in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from gigmatch.errors import ExitCode, GigmatchError

_CHUNK = 1 << 20


class PinError(GigmatchError, RuntimeError):
    """The data on disk cannot be made to match the pin."""

    exit_code = ExitCode.CHECK_FAILED


@dataclass(frozen=True)
class Pin:
    path: Path  # the pinned directory, relative to the .dvc file's folder
    md5: str  # DVC's directory hash, ending in ".dir"


def read_pin(dvc_file: Path) -> Pin:
    try:
        spec = yaml.safe_load(Path(dvc_file).read_text())
        out = spec["outs"][0]
        return Pin(Path(dvc_file).parent / out["path"], str(out["md5"]))
    except FileNotFoundError as exc:
        raise PinError(f"{dvc_file} not found: nothing pins the data") from exc
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise PinError(f"{dvc_file} is not a valid DVC pin file: {exc!r}") from exc


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def directory_md5(directory: Path) -> str:
    """DVC 3's hash of a directory: md5 of the sorted JSON listing of its files' md5s."""
    directory = Path(directory)
    entries = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d not in {".git", ".dvc"}]
        for name in files:
            path = Path(root) / name
            entries.append({"md5": file_md5(path), "relpath": path.relative_to(directory).as_posix()})
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def matches(directory: Path, pin: Pin) -> bool:
    return directory.is_dir() and directory_md5(directory) == pin.md5


def run_dvc(args: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real DVC command line, in a subprocess with `env` (default: this process's environment)."""
    env = {**(os.environ if env is None else env), "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def remote_url(repo: Path, name: str | None = None) -> str | None:
    """The URL of DVC remote `name` (None: the default remote) as `dvc config` reads `repo`'s configuration,
    local overrides included; None when there is no such remote, or no DVC project."""
    if not (repo / ".dvc").is_dir():
        return None
    listed = run_dvc(["config", "--list"], repo)  # one call: a DVC command takes about a second to start
    if listed.returncode != 0:
        return None
    config = dict(line.split("=", 1) for line in listed.stdout.splitlines() if "=" in line)
    chosen = name or config.get("core.remote")
    url = config.get(f"remote.{chosen}.url") if chosen else None
    if url is None or "://" in url:
        return url
    return str((repo / ".dvc" / Path(url).expanduser()).resolve())  # DVC reads a relative path from .dvc/


@dataclass(frozen=True)
class Materialised:
    how: str  # "present", "checkout", "pull" or "regenerate"
    md5: str


def materialise(
    dvc_file: Path,
    regenerate: Callable[[Path], None],
    force: bool = False,
    log: Callable[[str], None] = print,
    env: Mapping[str, str] | None = None,
    remote: str | None = None,
) -> Materialised:
    """Make the pinned directory match `dvc_file`, or raise PinError and change nothing.

    `regenerate(target)` must write a fresh snapshot into the directory `target`.
    With `force`, a workspace copy that differs from the pin is replaced; without
    it, such a copy is someone's work and is left alone. DVC runs with `env`
    (default: this process's environment) and pulls from `remote` (default: the default remote).
    """
    pin = read_pin(dvc_file)
    repo = Path(dvc_file).parent
    target = pin.path
    if target.exists():
        if matches(target, pin):
            return Materialised("present", pin.md5)
        if not force:
            raise PinError(
                f"{target} differs from the pin in {dvc_file} (expected {pin.md5}, found {directory_md5(target)}). "
                "Pin your change with `dvc add`, or replace it with `gigmatch data pull --force`."
            )
    backup = _move_aside(target)
    try:
        pin_name = Path(dvc_file).name
        for how, args in (
            ("checkout", ["checkout", pin_name]),
            ("pull", ["pull", *(["-r", remote] if remote else []), pin_name]),
        ):
            result = run_dvc(args, repo, env)
            if result.returncode == 0 and matches(target, pin):
                return _done(how, pin, backup)
            log(f"dvc {how} did not restore the pinned data: {_reason(result)}")
            _remove(target)
        log("regenerating the snapshot from the seed in params.yaml")
        staging = target.with_name(f".{target.name}.regen-{uuid.uuid4().hex[:8]}")
        try:
            regenerate(staging)
            found = directory_md5(staging)
            if found != pin.md5:
                raise PinError(
                    f"regenerated data does not match the pin in {dvc_file}: expected {pin.md5}, got {found}. "
                    "params.yaml, the simulator or the locked dependencies differ from those that made the pin."
                )
            staging.rename(target)
        finally:
            _remove(staging)
        # Put the regenerated files in the DVC cache so `dvc push` can share them.
        committed = run_dvc(["commit", "--force", pin_name], repo, env)
        if committed.returncode != 0:
            log(f"dvc commit failed, the cache stays empty: {_reason(committed)}")
        return _done("regenerate", pin, backup)
    except BaseException:
        _remove(target)
        if backup is not None:
            backup.rename(target)
        raise


def _move_aside(target: Path) -> Path | None:
    if not target.exists():
        return None
    backup = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex[:8]}")
    target.rename(backup)
    return backup


def _done(how: str, pin: Pin, backup: Path | None) -> Materialised:
    _remove(backup)
    return Materialised(how, pin.md5)


def _remove(path: Path | None) -> None:
    if path is not None and path.exists():
        shutil.rmtree(path)


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    """DVC's first ERROR line (its last line is usually a help link)."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit code {result.returncode}"])[0]
