"""Data pinning with the real DVC: md5s, push/pull round trips, regeneration, loud mismatches."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from gigmatch.cli import ExitCode, main
from gigmatch.data.pinning import PinError, directory_md5, materialise, read_pin, remote_url
from gigmatch.data.simulator import generate_snapshot
from gigmatch.params import Params, SimulateParams, override
from gigmatch.repro.datasets import snapshot_uri
from gigmatch.repro.lineage import current_lineage

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _dvc(args: list[str], cwd: Path) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _git_identity(env: pytest.MonkeyPatch) -> None:
    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        env.setenv(var, "gigmatch tests")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env.setenv(var, "tests@gigmatch.invalid")
    env.setenv("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="module")
def pinned_repo_master(
    tmp_path_factory: pytest.TempPathFactory, small_snapshot_master: Path, small_simulate: SimulateParams
) -> Path:
    """A git + DVC repository whose data.dvc pins the small snapshot; its remote is ../remote."""
    with pytest.MonkeyPatch.context() as env:
        _git_identity(env)
        env.setenv("DVC_SITE_CACHE_DIR", str(tmp_path_factory.mktemp("dvc-site-cache")))
        repo = tmp_path_factory.mktemp("pinned") / "repo"
        repo.mkdir()
        _run(["git", "init", "-q"], repo)
        _dvc(["init", "-q"], repo)
        shutil.copytree(small_snapshot_master, repo / "data")
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        raw["simulate"] = json.loads(small_simulate.model_dump_json())
        (repo / "params.yaml").write_text(yaml.safe_dump(raw))
        _dvc(["add", "-q", "data"], repo)
        # A sibling of the repository (DVC stores it relative to .dvc/), so every copy gets its own.
        _dvc(["remote", "add", "-d", "storage", "../remote"], repo)
        _run(["git", "add", "-A"], repo)
        _run(["git", "commit", "-qm", "pin data"], repo)
    return repo


@pytest.fixture
def pinned_repo(pinned_repo_master: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the pinned repository, with an empty remote beside it."""
    _git_identity(monkeypatch)
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site-cache"))
    repo = tmp_path / "repo"
    shutil.copytree(pinned_repo_master, repo, symlinks=True)
    return repo


def _small_regenerate(simulate: SimulateParams):
    return lambda target: generate_snapshot(simulate, target)


def _never(_target: Path) -> None:
    raise AssertionError("regeneration was not expected")


def _forget_data(repo: Path) -> None:
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)


def test_directory_md5_is_dvcs_hash(pinned_repo: Path) -> None:
    assert directory_md5(pinned_repo / "data") == read_pin(pinned_repo / "data.dvc").md5


def test_push_pull_round_trip(pinned_repo: Path, small_snapshot_master: Path) -> None:
    _dvc(["push"], pinned_repo)
    _forget_data(pinned_repo)

    result = materialise(pinned_repo / "data.dvc", _never)

    assert result.how == "pull"
    for original in small_snapshot_master.iterdir():
        assert (pinned_repo / "data" / original.name).read_bytes() == original.read_bytes()
    assert json.loads(_dvc(["status", "--json"], pinned_repo) or "{}") == {}


def test_checkout_from_cache_needs_no_remote(pinned_repo: Path) -> None:
    shutil.rmtree(pinned_repo / "data")
    assert materialise(pinned_repo / "data.dvc", _never).how == "checkout"


def test_regenerates_when_remote_is_empty_then_push_works(
    pinned_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _forget_data(pinned_repo)
    monkeypatch.chdir(pinned_repo)

    assert main(["data", "pull"]) == ExitCode.OK

    assert "via regenerate" in capsys.readouterr().err
    assert json.loads(_dvc(["status", "--json", "data.dvc"], pinned_repo) or "{}") == {}
    _dvc(["push"], pinned_repo)  # the regenerated files went into the cache, so they can be shared
    _forget_data(pinned_repo)
    assert materialise(pinned_repo / "data.dvc", _never).how == "pull"


def test_mismatch_fails_loudly_and_changes_nothing(pinned_repo: Path, small_simulate: SimulateParams) -> None:
    _forget_data(pinned_repo)
    other_seed = override(small_simulate, seed=small_simulate.seed + 1)

    with pytest.raises(PinError, match="does not match the pin"):
        materialise(pinned_repo / "data.dvc", _small_regenerate(other_seed))

    assert not (pinned_repo / "data").exists()
    assert not [p.name for p in pinned_repo.iterdir() if p.name.startswith(".data")], "staging left behind"


def test_mismatch_exit_code(
    pinned_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _forget_data(pinned_repo)
    raw = yaml.safe_load((pinned_repo / "params.yaml").read_text())
    raw["simulate"]["seed"] += 1
    (pinned_repo / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(pinned_repo)

    assert main(["data", "pull"]) == ExitCode.CHECK_FAILED
    assert "regenerated data does not match the pin" in capsys.readouterr().err


def test_modified_data_is_kept_unless_forced(pinned_repo: Path) -> None:
    edited = pinned_repo / "data" / "jobs.parquet"
    edited.write_bytes(edited.read_bytes() + b"local edit")

    with pytest.raises(PinError, match="differs from the pin"):
        materialise(pinned_repo / "data.dvc", _never)
    assert edited.read_bytes().endswith(b"local edit")

    assert materialise(pinned_repo / "data.dvc", _never, force=True).how == "checkout"
    assert not edited.read_bytes().endswith(b"local edit")


def test_failed_forced_pull_restores_the_local_copy(pinned_repo: Path, small_simulate: SimulateParams) -> None:
    shutil.rmtree(pinned_repo / ".dvc" / "cache")
    edited = pinned_repo / "data" / "jobs.parquet"
    edited.write_bytes(b"local edit")
    wrong = override(small_simulate, seed=small_simulate.seed + 1)

    with pytest.raises(PinError):
        materialise(pinned_repo / "data.dvc", _small_regenerate(wrong), force=True)

    assert edited.read_bytes() == b"local edit"


@pytest.mark.slow
def test_committed_pin_is_reproducible_from_the_seed(tmp_path: Path, params: Params) -> None:
    """data.dvc in this repository pins exactly what params.yaml's seed regenerates."""
    generate_snapshot(params.simulate, tmp_path / "data")
    assert directory_md5(tmp_path / "data") == read_pin(ROOT / "data.dvc").md5


def test_a_pinned_snapshot_is_named_by_its_place_on_the_dvc_remote(
    pinned_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a training run logs as its datasets' source (`snapshot_uri`): the pinned version's `.dir` file on the
    remote once pushed (DVC's own layout), and the folder itself for data that is not the pinned version."""
    monkeypatch.chdir(pinned_repo)
    _dvc(["push"], pinned_repo)
    remote = remote_url(pinned_repo)
    assert remote == str((pinned_repo.parent / "remote").resolve()) and remote_url(pinned_repo, "nope") is None
    lineage = current_lineage(pinned_repo / "data", pinned_repo / "data.dvc")
    uri = snapshot_uri(pinned_repo / "data", lineage, remote)
    assert lineage.data_pinned
    assert {entry["relpath"] for entry in json.loads(Path(uri).read_text())} == {
        p.name for p in (pinned_repo / "data").iterdir()
    }
    unpinned = replace(lineage, data_pinned=False)
    assert snapshot_uri(pinned_repo / "data", unpinned, remote) == str((pinned_repo / "data").resolve())
