"""Imports point inward, in lifecycle order: the import-linter contracts in pyproject.toml hold, and catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("gigmatch", "pipelines", "serving", "devtools")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # The copy's packages, not the installed ones; wide lines, so a contract's name and verdict share one.
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "400"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


LAYERS, DOMAIN, SERVING, TOOLS = "Layers:", "The domain imports no", "Serving imports only", "The developer tools"


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        # Serving imports the features, so a breach there is also one of what serving may reach.
        ("gigmatch/features/text.py", "import mlflow", {DOMAIN, SERVING}),
        ("gigmatch/features/text.py", "import gigmatch.training.splits", {LAYERS, SERVING}),
        ("gigmatch/data/market.py", "from gigmatch.model import pipeline", {LAYERS}),
        ("serving/settings.py", "import pipelines.settings", {LAYERS}),
        ("serving/routers/health.py", "import gigmatch.data.simulator", {SERVING}),
        ("gigmatch/model/bundle.py", "import devtools.repo_guard", {TOOLS}),
    ],
    ids=["domain-imports-mlflow", "features-import-training", "data-imports-model", "serving-imports-pipelines",
         "serving-imports-simulator", "product-imports-devtools"],
)  # fmt: skip
def test_a_planted_bad_import_breaks_its_contracts(tmp_path: Path, module: str, planted: str, broken: set[str]) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")

    result = _lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    verdicts = [line for line in result.stdout.splitlines() if line.endswith((" KEPT", " BROKEN"))]
    assert len(verdicts) == 4, result.stdout
    found = {prefix for prefix in (LAYERS, DOMAIN, SERVING, TOOLS) for line in verdicts if line.startswith(prefix)
             and line.endswith(" BROKEN")}  # fmt: skip
    assert found == broken, result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout  # the report names the planted import
