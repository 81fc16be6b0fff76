"""Writing files so that a reader never sees half of one: text, JSON documents, Parquet, whole directories.

Every output of the lifecycle (reports, the fingerprint, the drift verdict,
batches, scored tables, the snapshot, the serving bundle) is written beside its
target and renamed over it, so a failure part-way leaves the previous file in
place. JSON documents are stable (sorted keys unless asked otherwise, NaN as
null, numpy scalars as numbers), so the same figures give the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


def _process_umask() -> int:
    """The process umask (read once, at import: reading it means setting it, which is not
    safe while other threads create files)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _process_umask()
_FILE_MODE = 0o666 & ~_UMASK  # what `open()` would give a new file
_DIRECTORY_MODE = 0o777 & ~_UMASK


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` writes the file's content to `tmp` (beside `path`), which then replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, _FILE_MODE)  # mkstemp's 0600 would make reports private to one user
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def json_text(payload: Mapping[str, object], *, sort_keys: bool = True) -> str:
    """Stable JSON for a committed or machine-read document: NaN as null, numpy scalars as numbers."""
    return json.dumps(finite(payload), indent=2, sort_keys=sort_keys, default=_plain, allow_nan=False) + "\n"


def write_json(path: Path, payload: Mapping[str, object], *, sort_keys: bool = True) -> None:
    atomic_write_text(path, json_text(payload, sort_keys=sort_keys))


def finite(value: object) -> object:
    """NaN (an undefined figure, e.g. the AUC of a slice with no hires) as None, in nested mappings and lists."""
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def _plain(value: object) -> object:
    if hasattr(value, "item"):
        return finite(value.item())  # numpy scalars
    raise TypeError(f"cannot write {type(value).__name__} to a JSON document")


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory beside `target`; when the body succeeds it replaces `target` whole.

    If the body raises, the staging directory is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    staging.chmod(_DIRECTORY_MODE)  # mkdtemp makes it private; a snapshot or bundle is not
    try:
        yield staging
        backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            target.rename(backup)
        staging.rename(target)
        if backup.is_dir():
            shutil.rmtree(backup, ignore_errors=True)
        else:  # a file the directory replaces (e.g. an in-process score's output)
            backup.unlink(missing_ok=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
