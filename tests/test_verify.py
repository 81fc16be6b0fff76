"""The client reproduction check: fingerprints, their diff, and `verify` end to end in a throwaway git repo.

The end-to-end tests copy the project's files (working tree, so uncommitted work is
what is tested) into a temporary git repository with a small params variant,
reproduce it once (`dvc repro`, every stage) to commit its fingerprint and dvc.lock,
then run `verify` on clean clones of it: unchanged (exit 0, exact tier; then the
rest of the graph in its scratch, a fresh clone with a registry of its own, twice,
leaves the tree clean), with a param or a seed changed,
with one data row changed, on data nobody pushed, on a broken contract. The
numerical tier, across BLAS kernels, is in tests/test_tiers.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from gigmatch.cli.repro import run_verify_command
from gigmatch.errors import ExitCode
from gigmatch.files import json_text
from gigmatch.params import Params
from gigmatch.repro.differences import ABSENT, Difference, diff
from gigmatch.repro.environment import lock_differences
from gigmatch.repro.fingerprint import (
    LOCAL_FINGERPRINT_FILE,
    PROBE_JOBS,
    SCORE_DECIMALS,
    committed_form,
    fingerprint_document,
    probe_rows,
    probe_summary,
    scores_sha256,
)
from gigmatch.repro.tiers import EXACT
from gigmatch.repro.verify import verify

ROOT = Path(__file__).resolve().parents[1]
# One worker builds the verified repository (a real `dvc repro`, ~40 s) for every test here (pytest -n).
pytestmark = pytest.mark.xdist_group("verify")
VENV_BIN = Path(sys.executable).parent
SMALL_SIMULATE = {"n_jobs": 400, "n_freelancers": 3000}
SMALL_MODELS = {
    "logistic": {"kind": "logistic", "params": {"C": 1.0}},
    "lambdarank": {
        "kind": "lambdarank",
        "params": {"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 20},
    },
}


# ---------------------------------------------------------------- the fingerprint and its diff (fast)


def _document(params: Params, **changes: Any) -> dict[str, Any]:
    frame = pd.DataFrame({"job_id": [3, 3, 5], "freelancer_id": [10, 11, 10]})
    document = fingerprint_document(
        params=params,
        data_md5="382e58e8f7b0f27e332c77e8904d65fa.dir",
        selected="logistic",
        probe=probe_summary(frame, np.array([0.25, 0.5, 0.125])),
        test_metrics={"ndcg_at_10": 0.62331, "hire_auc": 0.800525},
        valid_ndcg_at_10={"logistic": 0.638381, "lambdarank": 0.635702},
    )
    loaded: dict[str, Any] = json.loads(json_text(document))  # compared as read back from the committed file
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = loaded
        for key in parents:
            node = node[key]
        node[leaf] = value
    return loaded


def test_same_inputs_give_no_difference_and_the_committed_form_names_no_platform(params: Params) -> None:
    expected = _document(params)
    assert diff(expected, _document(params)) == []
    assert json_text(expected) == json_text(_document(params)), "the document is a pure function of its inputs"
    committed = committed_form(expected)
    assert "platform" not in committed and committed["model"]["probe"]["score_decimals"] == SCORE_DECIMALS
    ranking = committed["model"]["probe"]["ranking"]
    assert ranking == {
        "3": {"freelancers": [11, 10], "scores": [0.5, 0.25]},
        "5": {"freelancers": [10], "scores": [0.125]},
    }


def test_diff_names_a_changed_param(params: Params) -> None:
    expected = _document(params)
    actual = json.loads(json.dumps(expected))
    actual["params"]["train"]["models"]["logistic"]["params"]["C"] = 0.5

    [difference] = diff(expected, actual)
    assert difference == Difference("params", "params.train.models.logistic.params.C", 1.0, 0.5)
    assert difference.describe() == "params.train.models.logistic.params.C: 1.0 -> 0.5 (-0.5)"


def test_diff_names_a_changed_metric_and_the_data_md5_first(params: Params) -> None:
    expected = _document(params)
    actual = _document(params, metrics__test__ndcg_at_10=0.61, data__md5="0" * 32 + ".dir")

    differences = diff(expected, actual)
    assert [(d.stage, d.figure) for d in differences] == [("data", "data.md5"), ("metrics", "metrics.test.ndcg_at_10")]
    assert differences[1].change == "-0.01331"


def test_diff_reports_figures_that_appear_or_vanish(params: Params) -> None:
    expected = _document(params)
    actual = _document(params)
    del actual["metrics"]["test"]["hire_auc"]
    actual["model"]["params"]["l1_ratio"] = 0.1
    assert {(d.figure, d.expected, d.actual) for d in diff(expected, actual)} == {
        ("metrics.test.hire_auc", 0.800525, ABSENT),
        ("model.params.l1_ratio", ABSENT, 0.1),
    }


def test_probe_is_the_first_jobs_by_id_with_all_their_applicants() -> None:
    job_ids = np.array([7, 7, 2, 9, 2, 4, 4, 4])
    assert probe_rows(job_ids, 2).tolist() == [2, 4, 5, 6, 7]
    assert len(probe_rows(np.arange(100).repeat(3))) == 3 * PROBE_JOBS


def test_scores_hash_sees_a_single_bit() -> None:
    scores = np.array([0.1, 0.2, 0.3])
    nudged = scores.copy()
    nudged[1] = np.nextafter(nudged[1], 1.0)
    assert scores_sha256(scores) != scores_sha256(nudged)
    assert round(float(nudged[1]), SCORE_DECIMALS) == round(float(scores[1]), SCORE_DECIMALS), (
        "the committed form would"
    )


def test_environment_must_match_the_lock(tmp_path: Path) -> None:
    import numpy

    lock = tmp_path / "uv.lock"
    lock.write_text(
        'version = 1\n[[package]]\nname = "numpy"\nversion = "' + numpy.__version__ + '"\n'
        '[[package]]\nname = "not-installed-anywhere"\nversion = "1.0"\n'
        '[[package]]\nname = "gigmatch"\nversion = "0.0.1"\nsource = { editable = "." }\n'
    )
    assert lock_differences(lock) == []
    lock.write_text('version = 1\n[[package]]\nname = "numpy"\nversion = "1.0.0"\n')
    assert lock_differences(lock) == [Difference("environment", "uv.lock.numpy", "1.0.0", numpy.__version__)]


# ---------------------------------------------------------------- two trainings, one fingerprint


def _training_params(tmp_path: Path, snapshot: Path, name: str) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["dir"] = str(snapshot)
    raw["train"]["models"] = SMALL_MODELS | {
        "gbm_classifier": {"kind": "gbm_classifier", "params": {"max_iter": 30, "max_leaf_nodes": 15}}
    }
    raw["train"]["text_max_features"] = 2000
    raw["train"]["reports_dir"] = str(tmp_path / name)
    raw["evaluate"]["fairness_min_qualified"] = 20  # as in test_training: the gate's bound is not under test
    raw["promote"]["min_fairness_ratio"] = 0.4
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "mlflow_store")
def test_two_trainings_on_the_same_inputs_give_the_same_fingerprint(tmp_path: Path, training_snapshot: Path) -> None:
    from pipelines.training import run_training

    first = run_training(_training_params(tmp_path, training_snapshot, "first"))
    second = run_training(_training_params(tmp_path, training_snapshot, "second"))

    # The second run finds a champion in the registry and becomes challenger: registry state must not leak in.
    assert first.decision.promote and not second.decision.promote
    a = (tmp_path / "first" / "fingerprint.json").read_bytes()
    b = (tmp_path / "second" / "fingerprint.json").read_bytes()
    assert a == b
    document = json.loads(a)
    assert document["model"]["name"] == first.selected
    assert document["model"]["probe"]["jobs"] == PROBE_JOBS and "platform" not in document
    assert document["metrics"]["test"]["ndcg_at_10"] == first.metrics["test"]["ndcg_at_10"]  # type: ignore[index]
    local = [json.loads((tmp_path / name / LOCAL_FINGERPRINT_FILE).read_text()) for name in ("first", "second")]
    assert local[0]["scores_sha256"] == local[1]["scores_sha256"] and len(local[0]["scores_sha256"]) == 64
    assert local[0]["platform"]["blas_kernels"], "the local record names the kernel the bits came from"
    assert committed_form(local[0]["fingerprint"]) == document


# ---------------------------------------------------------------- verify, end to end


def _sh(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{args} failed in {cwd}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _dvc(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    return _sh([sys.executable, "-m", "dvc", *args], cwd, env)


def _commit(repo: Path, message: str) -> None:
    _sh(["git", "add", "-A"], repo)
    _sh(["git", "commit", "--quiet", "--no-verify", "-m", message], repo)


@contextlib.contextmanager
def _git_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as env:
        for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
            env.setenv(var, "gigmatch tests")
        for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
            env.setenv(var, "tests@gigmatch.invalid")
        env.setenv("DVC_NO_ANALYTICS", "1")
        env.setenv("DVC_SITE_CACHE_DIR", str(tmp_path_factory.mktemp("dvc-site")))
        yield


@pytest.fixture(scope="module")
def git_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with _git_identity(tmp_path_factory):
        yield


@pytest.fixture(scope="session")
def prefect_url(prefect_harness: None) -> str:
    """The session's Prefect test server: the scratch runs use it instead of starting their own."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url
    return str(url)


@pytest.fixture(scope="module")
def verified_repo(verified_origin: Path, git_env: None) -> Path:
    """A git repo of the project on small data, whose committed fingerprint was made by a real `dvc repro`."""
    return verified_origin


@pytest.fixture(scope="session")
def verified_origin(tmp_path_factory: pytest.TempPathFactory, prefect_url: str) -> Path:
    """`verified_repo`, made once a session (two minutes): the xdist group keeps this module's tests on one
    worker, but that worker may run another module's tests between them, which ends a module fixture."""
    with _git_identity(tmp_path_factory):  # while it is made; the tests have theirs (git_env)
        return _verified_origin(tmp_path_factory, prefect_url)


def _verified_origin(tmp_path_factory: pytest.TempPathFactory, prefect_url: str) -> Path:
    from gigmatch.data.simulator import generate_snapshot
    from gigmatch.params import load_params

    base = tmp_path_factory.mktemp("verify")
    repo = base / "origin"
    listed = _sh(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT).split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not name.startswith("data/"):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["simulate"].update(SMALL_SIMULATE)
    raw["train"]["models"] = SMALL_MODELS
    raw["train"]["text_max_features"] = 2000
    raw["evaluate"]["fairness_min_qualified"] = 20
    raw["promote"]["min_fairness_ratio"] = 0.4  # few test jobs per region: the gate's bound is not under test
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    generate_snapshot(load_params(repo / "params.yaml").simulate, repo / "data")  # as `gigmatch data generate`

    _sh(["git", "init", "--quiet", "-b", "main"], repo)
    _dvc(["remote", "add", "--default", "--force", "local-storage", str(base / "remote")], repo)
    _dvc(["add", "data"], repo)
    _dvc(["push"], repo)
    _commit(repo, "small project")

    _dvc(["repro"], repo, _stage_env(repo, base / "origin-stores", prefect_url))
    assert (repo / "reports" / "fingerprint.json").is_file() and (repo / "bundle" / "fingerprint.json").is_file()
    _commit(repo, "reproduce: dvc.lock, reports and the fingerprint")
    return repo


def _stage_env(repo: Path, stores: Path, prefect_url: str) -> dict[str, str]:
    """What `make` gives DVC's stages in `repo`: its code first, and an MLflow store of its own in `stores`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "GIGMATCH_"))}
    stores.mkdir(parents=True, exist_ok=True)
    return env | {
        "PATH": f"{VENV_BIN}{os.pathsep}{env['PATH']}",
        "PYTHONPATH": str(repo),
        "PYTHONHASHSEED": "0",  # the verify runs get random hash seeds: nothing may depend on it
        "MLFLOW_TRACKING_URI": f"sqlite:///{stores / 'mlflow.db'}",
        "GIGMATCH_ARTIFACT_ROOT": str(stores / "mlruns"),
        "PREFECT_API_URL": prefect_url,
    }


def _clone(origin: Path, tmp_path: Path) -> Path:
    """A private clone that a test may change and commit to (it shares the origin's DVC remote)."""
    clone = tmp_path / "repo"
    _sh(["git", "clone", "--quiet", str(origin), str(clone)], tmp_path)
    return clone


def _change_one_application(repo: Path, which: int = 0) -> None:
    from gigmatch.data.snapshot import write_table

    path = repo / "data" / "applications.parquet"
    frame = pd.read_parquet(path)
    row = int(np.flatnonzero(frame["outcome"].to_numpy() == 0)[which])
    frame.loc[row, "outcome"] = 1  # one rejected applicant is shortlisted instead
    write_table(frame, "applications", path)


@pytest.mark.slow
def test_verify_passes_on_an_unchanged_commit(
    verified_repo: Path, tmp_path: Path, prefect_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = verify(verified_repo, tmp_path / "scratch", prefect_api_url=prefect_url)

    assert result.code == ExitCode.OK, (result.message, [d.describe() for d in result.differences], result.notes)
    assert result.differences == [] and committed_form(result.actual or {}) == result.expected
    # The origin's own `dvc repro` left its local record: the same machine gives the same bits.
    assert result.tier == EXACT and result.comparison is not None
    assert result.comparison.summary().startswith("exact: all"), result.comparison.summary()

    # The scratch is a fresh clone with a registry of its own (new run and model ids, paths), trained by
    # verify: the rest of the graph there must move no committed file and no hash in dvc.lock, twice.
    clone = tmp_path / "scratch" / "repo"
    env = _stage_env(clone, tmp_path / "scratch", prefect_url)
    assert _sh(["git", "status", "--porcelain"], clone) == ""
    first = _dvc(["repro"], clone, env)
    assert {"export", "batch", "drift"} <= set(re.findall(r"Running stage '(\w+)'", first)), first
    assert _sh(["git", "status", "--porcelain"], clone) == ""
    second = _dvc(["repro"], clone, env)
    assert "Running stage" not in second and _sh(["git", "status", "--porcelain"], clone) == ""
    bundle = (clone / "bundle" / "fingerprint.json").read_bytes()
    assert bundle == (clone / "reports" / "fingerprint.json").read_bytes(), "the bundle carries the committed model"
    assert (tmp_path / "scratch" / "repo" / "reports" / "fingerprint.json").read_bytes() == (
        verified_repo / "reports" / "fingerprint.json"
    ).read_bytes(), "two independent fresh runs give the same bytes"
    assert any(note.startswith("data: pull") for note in result.notes), result.notes
    assert set(result.seconds) >= {"checkout", "environment", "inputs", "data", "pipeline", "compare", "total"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "value", "shown"),
    [
        (
            ("train", "models", "logistic", "params", "C"),
            0.05,
            "params.train.models.logistic.params.C: 1.0 -> 0.05 (-0.95)",
        ),
        (("train", "seed"), 8, "params.train.seed: 7 -> 8 (+1)"),
    ],
    ids=["C", "seed"],
)
def test_verify_names_a_changed_param(
    verified_repo: Path,
    tmp_path: Path,
    prefect_url: str,
    capsys: pytest.CaptureFixture[str],
    path: tuple[str, ...],
    value: object,
    shown: str,
) -> None:
    repo = _clone(verified_repo, tmp_path)
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _commit(repo, f"{'.'.join(path)} changed, fingerprint not refreshed")

    code = run_verify_command(repo, scratch_dir=tmp_path / "scratch", prefect_api_url=prefect_url)

    assert code == ExitCode.CHECK_FAILED
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "made from other inputs (params first)" in err
    assert shown in err
    assert not (tmp_path / "scratch" / "mlflow.db").exists(), "a stale fingerprint is caught before training"


@pytest.mark.slow
def test_verify_names_the_data_md5_when_a_row_changes(verified_repo: Path, tmp_path: Path, prefect_url: str) -> None:
    repo = _clone(verified_repo, tmp_path)
    _dvc(["pull"], repo)
    _change_one_application(repo)
    _dvc(["add", "data"], repo)
    _dvc(["push"], repo)
    _commit(repo, "one application's outcome corrected, fingerprint not refreshed")
    committed = yaml.safe_load((verified_repo / "data.dvc").read_text())["outs"][0]["md5"]
    new = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"]

    result = verify(repo, tmp_path / "scratch", prefect_api_url=prefect_url)

    assert result.code == ExitCode.CHECK_FAILED and result.first_stage == "data"
    assert result.differences == [Difference("data", "data.md5", committed, new)]


@pytest.mark.slow
def test_verify_fails_when_the_pinned_data_cannot_be_had(verified_repo: Path, tmp_path: Path) -> None:
    """A pin nobody pushed: the cache and the remote lack it and the seed regenerates the old data."""
    repo = _clone(verified_repo, tmp_path)
    _dvc(["pull"], repo)
    _change_one_application(repo, which=1)  # not the row another test pushed to the shared remote
    _dvc(["add", "data"], repo)  # not pushed
    _commit(repo, "a pin nobody pushed")
    pinned = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"]
    original = yaml.safe_load((verified_repo / "data.dvc").read_text())["outs"][0]["md5"]

    result = verify(repo, tmp_path / "scratch", full=True)  # past the input check, which would stop it first

    assert result.code == ExitCode.CHECK_FAILED and "cannot be made to match its pin" in result.message
    assert result.differences == [Difference("data", "data.md5", pinned, original)]
    assert "pipeline" not in result.seconds, "nothing is trained on data that is not the pinned one"


@pytest.mark.slow
@pytest.mark.parametrize("full", [False, True], ids=["stops-before-training", "full"])
def test_verify_exits_2_when_the_data_contract_is_broken(verified_repo: Path, tmp_path: Path, full: bool) -> None:
    """The new data is also stale against the fingerprint, but a broken contract is what must be said (exit 2)."""
    repo = _clone(verified_repo, tmp_path)
    _dvc(["pull"], repo)
    path = repo / "data" / "freelancers.parquet"
    frame = pd.read_parquet(path)
    frame.loc[0, "hourly_rate_usd"] = -5.0  # the contract's range; write it raw, past the writer's checks
    frame.to_parquet(path, index=False)
    _dvc(["add", "data"], repo)
    _dvc(["push"], repo)
    _commit(repo, "a broken snapshot")

    result = verify(repo, tmp_path / "scratch", full=full)

    assert result.code == ExitCode.CONTRACT_BROKEN and "contract is broken" in result.message, result.message
    assert "hourly_rate_usd" in result.message
    assert ("pipeline" in result.seconds) is full, "without --full, the contract is checked before any training"


def test_verify_refuses_a_fingerprint_of_another_format(verified_repo: Path, tmp_path: Path) -> None:
    repo = _clone(verified_repo, tmp_path)
    path = repo / "reports" / "fingerprint.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"format": 2}))
    _commit(repo, "a fingerprint an older version of the code wrote")

    result = verify(repo, tmp_path / "scratch")

    assert result.code == ExitCode.CHECK_FAILED and "of format 2 and this verify reads format 3" in result.message
    assert result.differences == [Difference("format", "format", 2, 3)] and "inputs" not in result.seconds
