"""Shared fixtures: the project's params, and small snapshots made once per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def training_snapshot(tmp_path_factory: pytest.TempPathFactory, params: Params) -> Path:
    """Big enough for stable ranking figures (400 jobs, about 9,600 applications), small enough to train in seconds."""
    target = tmp_path_factory.mktemp("training") / "data"
    generate_snapshot(override(params.simulate, n_jobs=400, n_freelancers=3000), target)
    return target


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the session (starting one costs ~15 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def migrated_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite store; copying it is faster than migrating again."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(tmp_path: Path, migrated_mlflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real, private MLflow tracking store and registry (SQLite + local artifacts)."""
    from pipelines.settings import get_tracking_settings

    db = tmp_path / "mlflow.db"
    shutil.copy(migrated_mlflow_db, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("GIGMATCH_ARTIFACT_ROOT", str(tmp_path / "mlruns"))
    get_tracking_settings.cache_clear()
    yield uri  # the flow points MLflow at it through the settings, so nothing global leaks
    get_tracking_settings.cache_clear()
