"""Imports point inward: the domain package does not depend on orchestration or serving."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_DOMAIN = {"mlflow", "prefect", "fastapi", "uvicorn", "evidently", "dvc", "pipelines", "serving"}
# The CLI (gigmatch/cli/) is the front door and may reach into pipelines and serving; nothing else in gigmatch may.
FRONT_DOOR = {"__main__.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "module",
    [
        p
        for p in sorted((ROOT / "gigmatch").rglob("*.py"))
        if p.name not in FRONT_DOOR and p.parent != ROOT / "gigmatch" / "cli"
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_domain_module_imports_point_inward(module: Path) -> None:
    assert not _imports(module) & FORBIDDEN_IN_DOMAIN
