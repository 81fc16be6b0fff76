"""The repository's own contract: thin workflows, Make as the one task runner, local stores ignored."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# DVC commands on the checkout itself take its repository lock: these run in one worker (pytest -n).
pytestmark = pytest.mark.xdist_group("checkout-dvc")
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_there_are_workflows() -> None:
    assert WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(workflow: Path) -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(workflow)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_steps_are_make_calls(workflow: Path) -> None:
    spec = yaml.safe_load(workflow.read_text())
    for job in spec["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                assert step["run"].strip().startswith("make "), f"logic belongs in the Makefile: {step['run']!r}"


def test_make_help_lists_the_contract_targets() -> None:
    make = shutil.which("make")
    assert make, "make is required"
    out = subprocess.run(
        [make, "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for target in ("run", "test", "install", "data", "repro", "lint", "bench"):
        assert f" {target} " in out, out


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


@pytest.mark.parametrize(
    "path", ["mlflow.db", ".env", "mlruns/1/model.pkl", ".prefect/prefect.db", "data/jobs.parquet"]
)
def test_local_stores_are_ignored_by_git(path: str) -> None:
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
    assert result.returncode == 0, f"{path} would be committed"


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_dvc_metrics_show_the_ranking_figures() -> None:
    """The committed training metrics, read through the real `dvc metrics show --json`."""
    if not (ROOT / "reports" / "train_metrics.json").exists():
        pytest.skip("no training committed yet (a new client project): import data, make repro, commit")
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "metrics", "show", "--json"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    files = json.loads(result.stdout)[""]["data"]
    metrics = _flatten(files["reports/train_metrics.json"]["data"])
    for key in ("test.ndcg_at_10", "test.baseline_skill_overlap_ndcg_at_10", "test.baseline_random_ndcg_at_10"):
        assert isinstance(metrics[key], float), key
    assert metrics["test.baseline_random_ndcg_at_10"] < metrics["test.baseline_skill_overlap_ndcg_at_10"]
    assert metrics["test.baseline_skill_overlap_ndcg_at_10"] < metrics["test.ndcg_at_10"]
    if "test.oracle_ndcg_at_10" in metrics:  # only simulated data knows the truth
        assert metrics["test.ndcg_at_10"] <= metrics["test.oracle_ndcg_at_10"]


def test_dvc_pipeline_is_well_formed() -> None:
    result = subprocess.run([sys.executable, "-m", "dvc", "dag"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "validate" in result.stdout and "train" in result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_make_calls_name_real_targets(workflow: Path) -> None:
    """Every `make TARGET VAR=...` a workflow runs resolves in the Makefile (a dry run)."""
    spec = yaml.safe_load(workflow.read_text())
    runs = [step["run"] for job in spec["jobs"].values() for step in job["steps"] if "run" in step]
    for run in runs:
        # Expressions such as ${{ inputs.scenario || 'none' }} are GitHub's; stand in a plain value.
        call = re.sub(r"\$\{\{.*?\}\}", "none", run).split()
        result = subprocess.run(["make", "-n", *call[1:]], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, f"{run}: {result.stderr}"


def test_the_deployment_waits_for_the_drift_gate() -> None:
    spec = yaml.safe_load((ROOT / ".github" / "workflows" / "pipeline.yml").read_text())
    gate_steps = [step.get("run", "") for step in spec["jobs"]["gate"]["steps"]]
    assert "make drift" in gate_steps and "make repro" in gate_steps
    assert spec["jobs"]["image"]["needs"] == "gate"
    assert any("build-push-action" in step.get("uses", "") for step in spec["jobs"]["image"]["steps"])
