"""Export the model an alias points to into a self-contained serving bundle.

The bundle's `fingerprint.json` (the version's committed-form fingerprint, logged with
its run) is the one file of it that is the same on every machine and every export of
the same model, so it is what the DVC graph hashes: the export stage's output and the
drift stage's dependency. The rest (run id, model id, paths, the model's last bits) is
particular to this registry and this CPU.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.artifacts
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from gigmatch.files import staged_directory, write_json
from gigmatch.model.bundle import FINGERPRINT_FILE, LINEAGE_FILE, MODEL_DIR, Bundle, BundleError, load_bundle
from pipelines import tracking
from pipelines.settings import TrackingSettings


class ExportError(BundleError):
    """The registry has nothing to export under that name and alias."""


def export_bundle(model_name: str, alias: str, out: Path, settings: TrackingSettings) -> Bundle:
    """Download `models:/<name>@<alias>` with its lineage into `out`, atomically and checked."""
    tracking.configure(settings)
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        raise ExportError(f"no version of {model_name!r} has the alias {alias!r}: train one first") from exc
    if version.run_id is None:
        raise ExportError(f"version {version.version} of {model_name!r} has no run: it was not made by gigmatch train")
    run = client.get_run(version.run_id)
    lineage = {
        "model_name": model_name,
        "version": str(version.version),
        "alias": alias,
        "run_id": version.run_id,
        "model_spec": run.data.tags.get("model_spec", run.info.run_name),
        "data_md5": run.data.tags.get("data_md5", "unknown"),
        "data_pinned": run.data.tags.get("data_pinned", "unknown") == "true",
        "git_commit": run.data.tags.get("git_commit", "unknown"),
        "test_metrics": {
            k.removeprefix("test_"): v for k, v in sorted(run.data.metrics.items()) if k.startswith("test_")
        },
    }
    with staged_directory(out) as staging:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{model_name}/{version.version}", dst_path=str(staging / MODEL_DIR)
        )
        write_json(staging / LINEAGE_FILE, lineage)
        _download_fingerprint(version.run_id, lineage, staging)
        load_bundle(staging)  # a bundle that does not load never replaces one that does
    return load_bundle(out)


def _download_fingerprint(run_id: str, lineage: dict[str, object], staging: Path) -> None:
    """The version's fingerprint (platform-free: the bundle's identity for DVC), from its training run.

    A version registered before models carried their fingerprint gets the figures its
    registry entry holds instead, so a champion from an older registry still exports.
    """
    try:
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=FINGERPRINT_FILE, dst_path=str(staging))
    except (MlflowException, OSError):
        keys = ("model_name", "version", "model_spec", "data_md5", "test_metrics")
        write_json(
            staging / FINGERPRINT_FILE,
            {"registered_without_fingerprint": True, **{key: lineage[key] for key in keys}},
        )
