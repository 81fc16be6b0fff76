"""Shared fixtures: the project's params, and small snapshots made once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gigmatch.config import Params, SimulateParams, load_params, override
from gigmatch.simulator import generate_snapshot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def small_simulate(params: Params) -> SimulateParams:
    """The project's simulator settings at a size that generates in well under a second."""
    return override(params.simulate, n_jobs=120, n_freelancers=1500)


@pytest.fixture(scope="session")
def small_snapshot_master(tmp_path_factory: pytest.TempPathFactory, small_simulate: SimulateParams) -> Path:
    target = tmp_path_factory.mktemp("snapshot") / "data"
    generate_snapshot(small_simulate, target)
    return target


@pytest.fixture
def small_snapshot(small_snapshot_master: Path, tmp_path: Path) -> Path:
    """A private copy of a valid small snapshot that a test may break."""
    target = tmp_path / "data"
    shutil.copytree(small_snapshot_master, target)
    return target
