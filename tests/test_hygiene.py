"""Repository hygiene: the commit guard's rules, the hook config, and a real `git commit` through the hooks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devtools.repo_guard import DEFAULT_MAX_KB, main, violations

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".pre-commit-config.yaml"
VENV = Path(sys.prefix)

REFUSED = {
    "mlflow.db": "MLflow tracking database",
    "sub/dir/mlflow.db": "MLflow tracking database",
    "prefect.db": "Prefect",
    ".prefect/prefect.db": "Prefect",
    ".prefect/storage/result.json": "Prefect",
    "cache.sqlite": "SQLite",
    "cache.sqlite3": "SQLite",
    "notes.db": "SQLite",
    "mlflow.db-journal": "SQLite",
    ".env": "secrets",
    ".env.local": "secrets",
    "serving/.env.production": "secrets",
    "mlruns/1/meta.yaml": "run and artifact store",
    "mlruns/1/abc/artifacts/model/model.pkl": "run and artifact store",
    "mlruns/1/.gitkeep": "run and artifact store",
    "mlartifacts/1/x.json": "run and artifact store",
    "bundle/lineage.json": "serving bundle",
    "bundle/MLmodel": "serving bundle",
    "models/ranker.pkl": "model files",
    "ranker.pickle": "model files",
    "ranker.joblib": "model files",
    "ranker.skops": "model files",
    "ranker.ONNX": "model files",
    "net.pt": "model files",
    "net.h5": "model files",
    "export/MLmodel": "model files",
}
ALLOWED = [
    "devtools/repo_guard.py",
    "gigmatch/model/bundle.py",
    "tests/test_hygiene.py",
    ".env.example",
    ".envrc",
    "params.yaml",
    "data.dvc",
    "dvc.lock",
    "uv.lock",
    "mlruns/.gitkeep",
    "reports/train_metrics.json",
    "serving/Dockerfile",
    "docs/database.md",
]


@pytest.mark.parametrize(("path", "why"), REFUSED.items())
def test_refused_paths_name_the_file_and_the_reason(path: str, why: str) -> None:
    [found] = violations([path], {})
    assert found.path == path
    assert why in found.reason
    assert f"git rm --cached {path}" in str(found)
    assert str(found).startswith(f"{path}: ")


@pytest.mark.parametrize("path", ALLOWED)
def test_source_and_pins_are_allowed(path: str) -> None:
    assert violations([path], {path: 10_000}) == []


def test_large_files_are_refused_and_pointed_to_dvc() -> None:
    limit = DEFAULT_MAX_KB * 1024
    sizes = {"data/big.csv": limit + 1, "data/edge.csv": limit, "notes.md": 10}
    [found] = violations(sizes, sizes)
    assert found.path == "data/big.csv"
    assert "dvc add data/big.csv" in found.reason
    assert violations(["data/edge.csv"], sizes, max_kb=1) != []


def test_checks_can_run_separately() -> None:
    sizes = {"mlflow.db": 5 << 20, "big.bin": 5 << 20}
    assert [v.path for v in violations(sizes, sizes, check="paths")] == ["mlflow.db"]
    assert [v.path for v in violations(sizes, sizes, check="size")] == ["mlflow.db", "big.bin"]
    # One line per file: the path rule wins over the size rule.
    assert ["local state" in v.reason for v in violations(sizes, sizes)] == [True, False]


def test_main_prints_one_line_per_refused_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "big.parquet").write_bytes(b"\0" * (3 << 10))
    (tmp_path / "ok.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    assert main(["ok.py"]) == 0
    assert main(["--max-kb", "2", "ok.py", "big.parquet", ".env", "gone.txt"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["big.parquet", ".env"]


def test_tracked_files_pass_the_guard() -> None:
    """Catches what `git commit --no-verify` or `git add -f` let in."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [p for p in tracked.decode().split("\0") if p]
    sizes = {p: (ROOT / p).lstat().st_size for p in paths if (ROOT / p).exists()}
    assert [str(v) for v in violations(paths, sizes)] == []


def test_hook_config_is_local_only_and_valid() -> None:
    """Hooks cloned from GitHub cannot be fetched offline or in CI: every hook must be local."""
    config = yaml.safe_load(CONFIG.read_text())
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"repo-guard", "no-large-files", "ruff-check", "ruff-format"} <= hooks.keys()
    for hook in hooks.values():
        assert hook["language"] == "unsupported"
        assert hook["entry"].startswith(".venv/bin/"), "hooks run the tools pinned in uv.lock, not whatever is on PATH"
    subprocess.run([str(VENV / "bin" / "pre-commit"), "validate-config", str(CONFIG)], check=True)


def _git_env(tmp: Path) -> dict[str, str]:
    """A clean environment: no outer git state, no user or system git config, a PATH without the venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT")) and k != "SKIP"}
    git = shutil.which("git")
    assert git, "git is required"
    env["PATH"] = os.pathsep.join([str(Path(git).parent), "/usr/bin", "/bin"])
    env["PRE_COMMIT_HOME"] = str(tmp / "pre-commit-home")
    (tmp / "gitconfig").touch()
    env["GIT_CONFIG_GLOBAL"] = str(tmp / "gitconfig")
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    return env


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh clone-alike with the hooks installed: the config, pyproject.toml, .gitignore and a link to .venv."""
    tmp = tmp_path_factory.mktemp("hooks")
    work = tmp / "repo"
    work.mkdir()
    env = _git_env(tmp)
    for name in (".pre-commit-config.yaml", "pyproject.toml", ".gitignore"):
        shutil.copy(ROOT / name, work / name)
    (work / ".venv").symlink_to(VENV)
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.name", "Hygiene Test"],
        ["git", "config", "user.email", "hygiene@example.invalid"],
        ["git", "config", "commit.gpgsign", "false"],
        [str(VENV / "bin" / "pre-commit"), "install"],
        ["git", "add", ".pre-commit-config.yaml", "pyproject.toml", ".gitignore"],
        ["git", "commit", "-q", "-m", "initial"],  # through the hooks already
    ):
        subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
    yield work, env


def _commit(repo: tuple[Path, dict[str, str]], path: str, content: bytes) -> subprocess.CompletedProcess[str]:
    work, env = repo
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_bytes(content)
    subprocess.run(["git", "add", "-f", path], cwd=work, env=env, check=True)  # -f: get past .gitignore
    result = subprocess.run(
        ["git", "commit", "-q", "-m", f"add {path}"], cwd=work, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:  # leave the index as it was for the next case
        subprocess.run(["git", "rm", "-q", "-f", "--cached", path], cwd=work, env=env, check=True)
        (work / path).unlink()
    return result


def test_a_clean_python_file_commits(repo: tuple[Path, dict[str, str]]) -> None:
    result = _commit(repo, "pkg/clean.py", b'"""A clean module."""\n\nANSWER = 42\n')
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("path", "content", "hook"),
    [
        ("mlflow.db", b"SQLite format 3\0", "refuse local state"),
        (".env", b"API_KEY=secret\n", "refuse local state"),
        ("mlruns/1/meta.yaml", b"name: gigmatch\n", "refuse local state"),
        ("data/big.csv", b"a,b\n" * (2 << 18), "refuse files over 1 MB"),
        ("pkg/messy.py", b"x = undefined_name\n", "ruff check"),
    ],
    ids=["mlflow.db", ".env", "mlruns", "2MB", "lint"],
)
def test_the_hooks_refuse_the_commit_naming_the_file(
    repo: tuple[Path, dict[str, str]], path: str, content: bytes, hook: str
) -> None:
    result = _commit(repo, path, content)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert path in output
    failed = [line for line in output.splitlines() if line.endswith("Failed")]
    assert any(line.startswith(hook) for line in failed), output


GROUPED_TESTS = """
import os
from pathlib import Path

import pytest


@pytest.mark.xdist_group("together")
@pytest.mark.parametrize("n", range(12))
def test_grouped(n):
    (Path(os.environ["RECORD_DIR"]) / f"grouped-{n}").write_text(os.environ["PYTEST_XDIST_WORKER"])


@pytest.mark.parametrize("n", range(12))
def test_free(n):
    pass
"""


def test_the_suite_s_xdist_groups_send_a_group_to_one_worker(tmp_path: Path) -> None:
    """`make test` runs `pytest -n N --dist loadgroup`: the tests of an `xdist_group` (one repository or server
    made for them all) must run on one worker. pytest-xdist 3.8 names the group in the test's id, which
    pytest 9.2 no longer reads back, and the groups were silently ignored: pytest is pinned below 9.2."""
    (tmp_path / "test_grouped.py").write_text(GROUPED_TESTS)
    (tmp_path / "record").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup"],
        cwd=tmp_path,
        env={**os.environ, "RECORD_DIR": str(tmp_path / "record")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    workers = {path.read_text() for path in (tmp_path / "record").iterdir()}
    assert len(list((tmp_path / "record").iterdir())) == 12
    assert len(workers) == 1, f"the group ran on {sorted(workers)}"
