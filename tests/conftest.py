"""Shared fixtures: the project's params, and small snapshots made once per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from gigmatch.data.simulator import generate_snapshot
from gigmatch.params import Params, SimulateParams, load_params, override

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
def pinned_snapshot(tmp_path_factory: pytest.TempPathFactory, params: Params) -> Path:
    """The snapshot data.dvc pins: the checkout's data/ when it matches, else regenerated from the seed (~8 s)."""
    from gigmatch.data.pinning import directory_md5, matches, read_pin

    pin = read_pin(ROOT / "data.dvc")
    if matches(ROOT / "data", pin):
        return ROOT / "data"
    target = tmp_path_factory.mktemp("pinned") / "data"
    generate_snapshot(params.simulate, target)
    assert directory_md5(target) == pin.md5, "params.yaml and the simulator no longer give the pinned data"
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


@pytest.fixture
def monitoring_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The monitoring settings pointed into the test's directory: both logs and the reference cache."""
    from pipelines.settings import get_monitoring_settings

    monkeypatch.setenv("GIGMATCH_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("GIGMATCH_OUTCOME_LOG_DIR", str(tmp_path / "outcomes"))
    monkeypatch.setenv("GIGMATCH_REFERENCE_CACHE_DIR", str(tmp_path / "reference-cache"))
    get_monitoring_settings.cache_clear()
    yield tmp_path
    get_monitoring_settings.cache_clear()


@pytest.fixture(scope="module")
def local_dask_cluster() -> Iterator[None]:
    """A LocalCluster of two one-thread worker processes, the current Dask client while the module runs."""
    from gigmatch.params import EngineParams
    from gigmatch.scale.cluster import dask_client

    with dask_client(EngineParams(kind="dask", partition_rows=1000, workers=2, worker_memory_gib=None)):
        yield


def recut_snapshot(snapshot: Path, target: Path, row_group_rows: int = 1500) -> Path:
    """A copy of the snapshot whose applications and truth are written in row groups of `row_group_rows`,
    as a big export is: the Dask engine's stretches and partitions then cut through findings and jobs."""
    import pyarrow.parquet as pq

    from gigmatch.data.contract import APPLICATIONS, SIMULATOR_TRUTH, table_file

    shutil.copytree(snapshot, target)
    for table in (APPLICATIONS, SIMULATOR_TRUTH):
        path = target / table_file(table)
        pq.write_table(pq.read_table(path), path, row_group_size=row_group_rows)
    return target


def params_with_engine(tmp_path: Path, data_dir: Path | None = None, **engine: object) -> Path:
    """A copy of params.yaml in `tmp_path` whose engine section has these values (and data.dir, if given)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["engine"] = {**raw["engine"], **engine}
    if data_dir is not None:
        raw["data"]["dir"] = str(data_dir)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def match_columns_of(requests: list[tuple[dict, list[dict]]]) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    """Jobs and their candidates (plain JSON values) as match columns, built as the API's request path builds them."""
    from operator import itemgetter

    from gigmatch.features.match_frame import FREELANCER_COLUMNS, JOB_COLUMNS, match_columns_from_values

    job_values, candidate_values = itemgetter(*JOB_COLUMNS), itemgetter(*FREELANCER_COLUMNS)
    return match_columns_from_values([(job_values(job), list(map(candidate_values, cs))) for job, cs in requests])


def rank_alone(model: object, rows: object, top_k: int | None = None, n_reasons: int = 3) -> object:
    """One job's candidates (a match frame or match columns) ranked as one request of its own."""
    from gigmatch.features.match_frame import match_columns
    from gigmatch.model.ranking import rank_many

    columns = match_columns(rows)
    [ranking] = rank_many(model, columns, [len(columns["job_id"])], [top_k], n_reasons)  # type: ignore[arg-type]
    if isinstance(ranking, ValueError):
        raise ranking
    return ranking


def request_for(job_id: int, frames: dict) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    """A job and its applicants as an API client sends them: plain JSON values."""
    import pandas as pd

    from gigmatch.features.match_frame import FREELANCER_COLUMNS, JOB_COLUMNS

    job_row = frames["jobs"].set_index("job_id").loc[job_id]
    job = {c: job_row[c] for c in JOB_COLUMNS if c != "job_id"} | {"job_id": int(job_id)}
    job["required_skills"] = list(job["required_skills"])
    job["budget_usd"] = float(job["budget_usd"])
    job["client_utc_offset"] = float(job["client_utc_offset"])
    job["timezone_overlap_hours"] = int(job["timezone_overlap_hours"])
    applicants = frames["applications"].loc[frames["applications"]["job_id"] == job_id, "freelancer_id"].sort_values()
    people = frames["freelancers"].set_index("freelancer_id").loc[applicants]
    candidates = []
    for freelancer_id, row in people.iterrows():
        record = {c: row[c] for c in FREELANCER_COLUMNS if c != "freelancer_id"} | {"freelancer_id": int(freelancer_id)}
        record["skills"] = list(record["skills"])
        for key in ("rating", "success_rate"):
            record[key] = None if pd.isna(record[key]) else float(record[key])
        for key in ("utc_offset", "years_experience", "hourly_rate_usd"):
            record[key] = float(record[key])
        for key in ("jobs_completed", "weekly_availability_hours"):
            record[key] = int(record[key])
        candidates.append(record)
    return job, candidates


def _training_match(training_snapshot: Path) -> tuple[object, object, object]:
    """The training snapshot's match frame, its fitted features and their training data."""
    from gigmatch.data.snapshot import read_tables
    from gigmatch.features.match_frame import build_match_frame
    from gigmatch.features.transformer import MatchFeatures
    from gigmatch.training.estimators import TrainingData

    frames = read_tables(training_snapshot)
    apps = frames["applications"].sort_values(["job_id", "freelancer_id"])
    match = build_match_frame(apps, frames["jobs"], frames["freelancers"], frames["freelancer_history"])
    features = MatchFeatures(text_max_features=2000).fit(match)
    data = TrainingData(features.transform(match), apps["outcome"].to_numpy(), apps["job_id"].to_numpy())
    return match, features, data


def _save_bundle(model: object, match: object, out: Path, code_dir: Path, version: str, method: str) -> Path:
    """A bundle laid out as `gigmatch export` writes it, around `model`."""
    import json

    from mlflow.sklearn import save_model

    from pipelines.tracking import model_save_options

    save_model(model, str(out / "model"), **model_save_options(model, match.head(5), method, code_dir))  # type: ignore[attr-defined]
    lineage = {
        "model_name": "gigmatch-ranker",
        "version": version,
        "run_id": "0123456789abcdef",
        "data_md5": "d41d8cd98f00b204e9800998ecf8427e.dir",
        "git_commit": "0" * 40,
        "test_metrics": {"ndcg_at_10": 0.62},
    }
    (out / "lineage.json").write_text(json.dumps(lineage))
    return out


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, training_snapshot: Path) -> Path:
    """A bundle laid out as `gigmatch export` writes it, around a linear model trained on the training snapshot."""
    from gigmatch.model.pipeline import assemble_pipeline
    from gigmatch.training.estimators import fit_estimator

    match, features, data = _training_match(training_snapshot)
    model = assemble_pipeline(features, fit_estimator("logistic", {"C": 1.0}, data, seed=0, n_jobs=1))  # type: ignore[arg-type]
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    return _save_bundle(model, match, out, tmp_path_factory.mktemp("model-code"), "7", "predict_proba")


@pytest.fixture(scope="session")
def ranker_bundle_dir(tmp_path_factory: pytest.TempPathFactory, ranker_model: object, training_snapshot: Path) -> Path:
    """The same layout around the small LambdaRank pipeline (`ranker_model`): the default data's champion kind."""
    match, _, _ = _training_match(training_snapshot)
    out = tmp_path_factory.mktemp("ranker-bundle") / "bundle"
    return _save_bundle(ranker_model, match, out, tmp_path_factory.mktemp("ranker-code"), "9", "predict")


@pytest.fixture(scope="session")
def ranker_model(training_snapshot: Path) -> object:
    """A small LambdaRank pipeline (LightGBM) on the training snapshot: the model kind the default data promotes."""
    from gigmatch.model.pipeline import assemble_pipeline
    from gigmatch.training.estimators import fit_estimator

    _, features, data = _training_match(training_snapshot)
    params = {"n_estimators": 80, "learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20}
    return assemble_pipeline(features, fit_estimator("lambdarank", params, data, seed=0, n_jobs=1))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def drift_reference(tmp_path_factory: pytest.TempPathFactory, params: Params, bundle_dir: Path) -> Path:
    """A monitoring frame of 20,000 `none` rows scored by the test bundle: the drift gate's reference."""
    from gigmatch.files import write_parquet
    from gigmatch.model.bundle import load_bundle
    from gigmatch.monitoring.frame import frame_from_match_table
    from gigmatch.monitoring.scenarios import simulate_batch

    table = simulate_batch(params.simulate, "none", None, 20_000, seed=9_001)
    path = tmp_path_factory.mktemp("drift") / "reference.parquet"
    write_parquet(frame_from_match_table(table, load_bundle(bundle_dir).model), path)
    return path


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of requests in each batch the serving batcher ranks, in order (it still ranks them)."""
    from serving import batching

    sizes: list[int] = []
    rank_many = batching.rank_many

    def counting_rank_many(*args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(len(args[2]))
        return rank_many(*args, **kwargs)

    monkeypatch.setattr(batching, "rank_many", counting_rank_many)
    return sizes
