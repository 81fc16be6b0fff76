"""The DVC graph cannot miss a change: every stage lists the repository code its command imports.

Each stage's command is a `gigmatch` command; its code is the import closure of
the CLI and of the command's function (`gigmatch.repro.code`), read from the
source. Every module of the closure must sit under one of the stage's deps. And
the real `dvc status` agrees: a comment appended to a module reruns exactly the
stages that import it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gigmatch.cli import app
from gigmatch.repro.code import closure_files, import_closure

ROOT = Path(__file__).resolve().parents[1]
# DVC on the checkout itself takes its repository lock: such tests share one worker (pytest -n).
pytestmark = pytest.mark.xdist_group("checkout-dvc")


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[str, ...]  # as DVC resolved them, relative to the repository


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {s.name: Stage(s.name, s.cmd, tuple(d.def_path for d in s.deps)) for s in repo.index.stages if s.cmd}


def command_function(argv: list[str]) -> Callable[..., Any]:
    """The function a `gigmatch ...` command line runs, found in typer's own registry of commands and groups."""
    typer_app = app
    for word in argv:
        group = next((g for g in typer_app.registered_groups if g.name == word), None)
        if group is not None:
            typer_app = group.typer_instance
            continue
        command = next(c for c in typer_app.registered_commands if (c.name or c.callback.__name__) == word)
        assert command.callback is not None
        return command.callback
    raise ValueError(f"no command in {argv}")


def stage_code(stage: Stage) -> list[str]:
    """The repository files a stage's command imports: the CLI's import-time closure and its command's."""
    words = shlex.split(stage.cmd)
    assert words[0] == "gigmatch", f"stage {stage.name} runs {words[0]}, not a gigmatch command"
    function = command_function(words[1:])
    # The console script runs gigmatch.cli's entrypoint, which runs the command's function.
    commands = [("gigmatch.cli", "entrypoint"), (function.__module__, function.__name__)]
    closure = import_closure(["gigmatch.cli"], front_door="gigmatch.cli", commands=commands)
    return closure_files(closure)


def uncovered(files: list[str], deps: tuple[str, ...]) -> list[str]:
    """Files no dep covers (a dep covers itself and everything under it)."""
    return [f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)]


def test_every_stage_is_a_gigmatch_command(stages: dict[str, Stage]) -> None:
    assert set(stages) == {"validate", "train", "export", "batch", "drift"}
    for stage in stages.values():
        assert stage_code(stage), stage.name


@pytest.mark.parametrize("name", ["validate", "train", "export", "batch", "drift"])
def test_a_stage_lists_every_module_its_command_imports(stages: dict[str, Stage], name: str) -> None:
    stage = stages[name]
    assert uncovered(stage_code(stage), stage.deps) == [], f"add them to the deps of stage {name} in dvc.yaml"
    for dep in stage.deps:
        assert (ROOT / dep).exists() or dep.startswith(("data", "reports", "bundle", "batches")), dep


def test_every_stage_runs_on_the_locked_packages(stages: dict[str, Stage]) -> None:
    """An upgrade changes uv.lock, and may change any stage's numbers: each one reruns."""
    assert [name for name, stage in stages.items() if "uv.lock" not in stage.deps] == []


def test_the_check_fails_when_a_dep_is_removed(stages: dict[str, Stage]) -> None:
    train = stages["train"]
    files = stage_code(train)
    for removed, missed in [
        ("gigmatch/features", "gigmatch/features/text.py"),
        ("gigmatch/data/market.py", "gigmatch/data/market.py"),
        ("pipelines/tracking.py", "pipelines/tracking.py"),
    ]:
        assert removed in train.deps
        assert missed in uncovered(files, tuple(d for d in train.deps if d != removed)), removed


def test_the_closure_counts_lazy_imports_and_only_the_command_that_runs(stages: dict[str, Stage]) -> None:
    train, validate = stage_code(stages["train"]), stage_code(stages["validate"])
    assert "pipelines/training.py" in train  # imported inside the train command's function
    assert "pipelines/training.py" not in validate and "gigmatch/data/simulator/__init__.py" not in validate
    assert "gigmatch/data/simulator/__init__.py" in stage_code(stages["batch"])


# ---------------------------------------------------------------- what `dvc status` says


def _project_copy(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file() and not name.startswith(("data/", "reports/")):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def _dvc(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the project whose every stage DVC considers up to date (outputs stand-ins, `dvc commit`)."""
    repo = _project_copy(tmp_path_factory.mktemp("dvc-status") / "repo")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(repo.parent / "dvc-site")}
    subprocess.run(["git", "init", "--quiet"], cwd=repo, check=True)
    for stand_in in (
        "data/jobs.parquet", "reports/data_validation.json", "reports/train_metrics.json", "reports/train_slices.json",
        "reports/fingerprint.json", "reports/promotion.json", "reports/plots/ndcg_at_k.csv",
        "reports/plots/calibration.csv", "bundle/fingerprint.json", "batches/pinned.parquet",
        "reports/drift/drift_verdict.json",
    ):  # fmt: skip
        (repo / stand_in).parent.mkdir(parents=True, exist_ok=True)
        (repo / stand_in).write_text("{}\n")
    _dvc(["commit", "--force", "--quiet"], repo, env)
    assert "up to date" in _dvc(["status"], repo, env)
    yield repo, env


@pytest.mark.parametrize(
    ("module", "rerun"),
    [
        ("gigmatch/data/taxonomy.py", {"validate", "train", "export", "batch", "drift"}),
        ("gigmatch/data/simulator/text.py", {"batch"}),
        ("gigmatch/monitoring/rules.py", {"drift"}),
        ("pipelines/training.py", {"train"}),
        ("uv.lock", {"validate", "train", "export", "batch", "drift"}),
    ],
)
def test_a_comment_in_a_module_reruns_the_stages_that_import_it(
    settled: tuple[Path, dict[str, str]], module: str, rerun: set[str]
) -> None:
    repo, env = settled
    path = repo / module
    original = path.read_text()
    path.write_text(original + "# a comment\n")
    try:
        status = _dvc(["status", "--json"], repo, env)
    finally:
        path.write_text(original)
    assert set(json.loads(status)) == rerun
