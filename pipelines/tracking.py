"""MLflow I/O for the training flow: runs, logged models, the registry and its aliases.

Every function takes explicit run ids instead of relying on MLflow's active-run
state, which is per thread and would be lost inside a task runner's workers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.artifacts
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn.pipeline import Pipeline

from gigmatch.files import json_text
from gigmatch.model.bundle import load_model_dir
from gigmatch.model.pipeline import TRUSTED_MODEL_TYPES
from gigmatch.repro.code import REPOSITORY_ROOT, closure_files, import_closure
from gigmatch.training.promotion import RecordedFigures
from pipelines.settings import TrackingSettings

if TYPE_CHECKING:
    from gigmatch.repro.datasets import SplitDataset

# What a served model needs, pinned to the versions it was trained with: the libraries
# its pipeline and the code it carries (`model_code`) import.
_MODEL_PACKAGES = ("scikit-learn", "lightgbm", "numpy", "pandas", "scipy", "skops", "pyarrow", "pandera")


def configure(settings: TrackingSettings) -> None:
    # pip_requirements below pin what a model needs; copying the whole project's
    # uv.lock into every model would pin what it does not.
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_registry_uri or settings.mlflow_tracking_uri)


def ensure_experiment(name: str, settings: TrackingSettings) -> str:
    """The experiment's id, creating it (artifacts under the local artifact root) if needed."""
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    local_store = (
        settings.mlflow_tracking_uri.startswith(("sqlite:", "file:")) or "://" not in settings.mlflow_tracking_uri
    )
    location = (settings.gigmatch_artifact_root / name).resolve().as_uri() if local_store else None
    return str(mlflow.create_experiment(name, artifact_location=location))


def model_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _MODEL_PACKAGES]


@contextmanager
def run(
    experiment_id: str, name: str, parent_run_id: str | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Create a run (nested under `parent_run_id` if given) and yield its id.

    The run ends FINISHED, FAILED if the body raises, KILLED if it is interrupted.
    """
    client = MlflowClient()
    run_tags = dict(tags or {})
    if parent_run_id is not None:
        run_tags["mlflow.parentRunId"] = parent_run_id
    created = client.create_run(experiment_id, run_name=name, tags=run_tags)
    run_id = created.info.run_id
    try:
        yield run_id
    except KeyboardInterrupt:
        client.set_terminated(run_id, "KILLED")
        raise
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")


def log_figures(run_id: str, params: Mapping[str, Any], metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
    client = MlflowClient()
    for key, value in params.items():
        client.log_param(run_id, key, value)
    finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    for key, value in finite.items():
        client.log_metric(run_id, key, value)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def log_json(run_id: str, payload: Mapping[str, object], artifact_file: str) -> None:
    """As `gigmatch.files.write_json` writes it, so an artifact and its file in reports/ are the same bytes."""
    MlflowClient().log_text(run_id, json_text(payload), artifact_file)


def source_tags(entrypoint: str, git_commit: str) -> dict[str, str]:
    """MLflow's source tags (the UI's "Source"): the command that ran, and the commit it ran at."""
    from mlflow.entities import SourceType
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE

    tags = {MLFLOW_SOURCE_TYPE: SourceType.to_string(SourceType.LOCAL), MLFLOW_SOURCE_NAME: entrypoint}
    if git_commit != "unknown":  # outside a git checkout
        tags[MLFLOW_GIT_COMMIT] = git_commit
    return tags


def describe(run_id: str, description: str) -> None:
    """The run's description (Markdown), as the MLflow UI shows and edits it."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    MlflowClient().set_tag(run_id, MLFLOW_RUN_NOTE, description)


def log_datasets(run_id: str, datasets: Sequence[SplitDataset]) -> None:
    """The splits as the run's MLflow datasets (its "Datasets" panel), each with its context, source and profile."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for dataset in datasets:
        with warnings.catch_warnings():  # a local path resolves to one source type under two names
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(dataset.uri)
        entity = Dataset(
            name=dataset.name,
            digest=dataset.digest,
            source_type=source._get_source_type(),
            source=source.to_json(),
            profile=json.dumps(dataset.profile),
        )
        inputs.append(DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, dataset.context)]))
    MlflowClient().log_inputs(run_id, datasets=inputs)


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str


def model_code(directory: Path) -> list[str]:
    """The code a model needs to load and score, copied into `directory`: the import closure of the
    gigmatch classes it holds (its feature transformer), not the CLI, simulator, training or verify code."""
    modules = {name.rpartition(".")[0] for name in TRUSTED_MODEL_TYPES if name.startswith("gigmatch.")}
    for file in closure_files(import_closure(modules)):
        (directory / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPOSITORY_ROOT / file, directory / file)
    return [str(directory / "gigmatch")]


def model_save_options(model: Pipeline, example: pd.DataFrame, predict_fn: str, code_dir: Path) -> dict[str, Any]:
    """How every gigmatch model is stored: signature, example, pinned requirements, its code, skops."""
    scores = model.predict_proba(example)[:, 1] if predict_fn == "predict_proba" else model.predict(example)
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values; ours never do (the contract says so).
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(example, np.asarray(scores))
    return {
        "signature": signature,
        "input_example": example.head(3),
        "pip_requirements": model_requirements(),
        "code_paths": model_code(code_dir),
        "pyfunc_predict_fn": predict_fn,
        "serialization_format": "skops",
        "skops_trusted_types": list(TRUSTED_MODEL_TYPES),
    }


def log_model(run_id: str, model: Pipeline, example: pd.DataFrame, predict_fn: str) -> LoggedModel:
    """Log the whole pipeline (features + estimator) to a run."""
    with tempfile.TemporaryDirectory(prefix="gigmatch-model-code-") as code_dir, mlflow.start_run(run_id=run_id):
        options = model_save_options(model, example, predict_fn, Path(code_dir))
        info = mlflow.sklearn.log_model(model, name="model", **options)
    return LoggedModel(run_id, info.model_uri)


def register(model_uri: str, model_name: str, tags: Mapping[str, str]) -> str:
    version = mlflow.register_model(model_uri, model_name, tags=dict(tags))
    return str(version.version)


def alias_version(model_name: str, alias: str) -> str | None:
    """The version an alias points to, or None when the alias (or the model) does not exist."""
    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise


CHAMPION_HISTORY_TAG = "champion_history"  # the versions `champion` has pointed to, oldest first (JSON list)


def set_alias(model_name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(model_name, alias, version)


def champion_history(model_name: str) -> list[str]:
    tags = MlflowClient().get_registered_model(model_name).tags
    try:
        return [str(v) for v in json.loads(tags.get(CHAMPION_HISTORY_TAG, "[]"))]
    except ValueError:
        return []


def record_champion(model_name: str, version: str) -> None:
    """Append `version` to the champion history (after the alias has moved to it)."""
    history = champion_history(model_name)
    if not history or history[-1] != version:
        MlflowClient().set_registered_model_tag(model_name, CHAMPION_HISTORY_TAG, json.dumps([*history, version]))


def forget_last_champion(model_name: str) -> None:
    """Drop the newest entry: a rollback returns to the one before it."""
    history = champion_history(model_name)
    MlflowClient().set_registered_model_tag(model_name, CHAMPION_HISTORY_TAG, json.dumps(history[:-1]))


OFFLINE_GATE_TAG = "offline_gate"  # on a version: "passed" or "failed", what the champion gate said of it


def set_version_tag(model_name: str, version: str, key: str, value: str) -> None:
    MlflowClient().set_model_version_tag(model_name, version, key, value)


def version_tag(model_name: str, version: str, key: str) -> str | None:
    return MlflowClient().get_model_version(model_name, version).tags.get(key)


def recorded_figures(model_name: str, version: str) -> RecordedFigures:
    """What a registered version's run recorded about its own test split."""
    client = MlflowClient()
    run = client.get_run(client.get_model_version(model_name, version).run_id or "")
    return RecordedFigures(
        run.data.metrics.get("test_ndcg_at_10"), run.data.tags.get("data_md5"), run.data.tags.get("split")
    )


def load_version(model_name: str, version: str) -> Pipeline:
    """A registered version's pipeline, read as serving reads a bundle (skops, this code's trusted types only)."""
    with tempfile.TemporaryDirectory(prefix="gigmatch-version-") as directory:
        model_dir = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{model_name}/{version}", dst_path=directory
        )
        return load_model_dir(Path(model_dir))
