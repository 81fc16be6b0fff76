"""Start a client project from this one: same code, a new name, none of this project's data or runs.

`create_project` copies the files of this repository's working tree that git
would commit (tracked, plus untracked files it does not ignore), so local
state such as `.venv/`, `mlflow.db`, `mlruns/`, `bundle/` and `data/` never
travels, and leaves out what belongs to *our* data: the pin (`data.dvc`), the
stage lock (`dvc.lock`) and the committed reports. It then renames the project
everywhere its name appears, with the case kept: the package directory and its
imports, the command, the distribution in `pyproject.toml` and `uv.lock`, the
model (`NAME-ranker`) and experiment, the environment variables (`NAME_*`), the
metrics prefix, the image name, and the DVC remote (`~/.cache/NAME/dvc-storage`,
or `dvc_remote`). Finally `git init` and one commit, so the client's history
starts clean.

Renaming is a plain text substitution of the project's name: the name is
distinctive, and the test in `tests/test_new_project.py` runs the generated
project's whole lifecycle, so anything it misses shows up there.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_NAME = "gigmatch"
# This project's own results on its own data: a new project makes its own.
LEFT_OUT = ("data.dvc", "dvc.lock", "reports/")
# Files that name the project by its distribution name (uv.lock, `uv export` output).
DISTRIBUTION_FILES = frozenset({"uv.lock", "requirements.txt"})
# Top-level names the project already uses for other packages and folders.
TAKEN = frozenset(
    {"pipelines", "serving", "tests", "benchmarks", "devtools", "data", "reports", "bundle", "logs", "batches"}
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
_VIA_LIST = re.compile(r"(?:^    #   \S+\n)+", re.MULTILINE)
_REMOTE_URL = re.compile(r"^(\s*url\s*=\s*).*$", re.MULTILINE)


class NewProjectError(ValueError):
    """The name or destination cannot be used; nothing was created."""


@dataclass(frozen=True)
class Created:
    dest: Path
    files: int
    commit: str
    next_steps: str


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise NewProjectError(
            f"{name!r} is not a usable package name: 2-41 characters, lowercase letters, digits and _, "
            "starting with a letter (e.g. acme_match)"
        )
    if name == TEMPLATE_NAME or keyword.iskeyword(name) or name in TAKEN or name in sys.stdlib_module_names:
        raise NewProjectError(f"{name!r} is taken (the template's own name, a keyword, a folder or a standard module)")
    if importlib.util.find_spec(name) is not None:
        raise NewProjectError(f"{name!r} is the name of an installed module; the new package would shadow it")


def project_files(root: Path) -> list[str]:
    """Paths git would commit in `root` (tracked or untracked-but-not-ignored), that exist, minus LEFT_OUT."""
    listed = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root).split("\0")
    return sorted(
        {
            path
            for path in listed
            if path and (root / path).is_file() and not any(path == o or path.startswith(o) for o in LEFT_OUT)
        }
    )


def rename_text(text: str, name: str, distribution: bool = False) -> str:
    """The template's name replaced in the three cases it is written in: gigmatch, GIGMATCH, Gigmatch.

    Lock and requirements files name the project by its normalised distribution
    name, with dashes for underscores (`acme-match`): `distribution` writes that form.
    """
    if distribution:
        new = _dist(name)
        return _sort_via_lists(text.replace(_dist(TEMPLATE_NAME), new).replace(TEMPLATE_NAME, new))
    for old, new in (
        (TEMPLATE_NAME, name),
        (TEMPLATE_NAME.upper(), name.upper()),
        (TEMPLATE_NAME.capitalize(), name.capitalize()),
    ):
        text = text.replace(old, new)
    return text


def rename_path(path: str, name: str) -> str:
    return rename_text(path, name)


def _dist(name: str) -> str:
    return name.replace("_", "-")


def _sort_via_lists(text: str) -> str:
    """`uv export` lists a requirement's dependents sorted; a renamed project may belong elsewhere in the list."""
    return _VIA_LIST.sub(lambda m: "".join(sorted(m.group(0).splitlines(keepends=True))), text)


def create_project(root: Path, name: str, dest: Path, dvc_remote: str | None = None) -> Created:
    """Write the new project to `dest` (absent or empty), commit it, and return what to do next."""
    check_name(name)
    dest = Path(dest).expanduser().resolve()
    if dest.exists() and any(dest.iterdir()):
        raise NewProjectError(f"{dest} exists and is not empty")
    if dest.is_relative_to(Path(root).resolve()):
        raise NewProjectError(f"{dest} is inside the template repository {root}; choose a directory outside it")
    files = project_files(root)
    source_commit = _git(["rev-parse", "--short=12", "HEAD"], root).strip()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        for path in files:
            _copy(root / path, dest / rename_path(path, name), name)
        if dvc_remote:
            _set_remote(dest / ".dvc" / "config", dvc_remote)
        commit = _initial_commit(dest, f"Start {name} from the {TEMPLATE_NAME} template ({source_commit})")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return Created(dest, len(files), commit, next_steps(name, dest))


def _copy(source: Path, target: Path, name: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    distribution = source.name in DISTRIBUTION_FILES
    try:
        target.write_text(rename_text(data.decode("utf-8"), name, distribution), encoding="utf-8")
    except UnicodeDecodeError:
        target.write_bytes(data)  # binary: copied as is
    shutil.copymode(source, target)


def _set_remote(config: Path, url: str) -> None:
    text = config.read_text()
    if not _REMOTE_URL.search(text):
        raise NewProjectError(f"{config} has no remote url to replace")
    config.write_text(_REMOTE_URL.sub(lambda m: m.group(1) + url, text, count=1))


def _initial_commit(dest: Path, message: str) -> str:
    _git(["init", "--quiet", "-b", "main"], dest)
    _git(["add", "-A"], dest)
    identity = []
    if not _git(["config", "user.email"], dest, check=False).strip():
        identity = ["-c", "user.name=project template", "-c", "user.email=template@localhost"]
    _git([*identity, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", message], dest)
    return _git(["rev-parse", "HEAD"], dest).strip()


def next_steps(name: str, dest: Path) -> str:
    return f"""
Next steps:
  cd {dest}
  make install
  .venv/bin/{name} data schema        # the tables and columns the pipeline needs
  # map the client's column names in params.yaml (data.import.columns), then check, write and pin their data:
  .venv/bin/{name} data import /path/to/client-tables
  git add data.dvc && git commit -m "Pin the client's data"
  make repro                          # validate, train, export the champion, gate drift
  make serve
  git remote add origin <URL>         # and a shared DVC remote for a team (README: Versioned data)
"""


def _git(args: list[str], cwd: Path, check: bool = True) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NewProjectError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout
