"""The exported model bundle: everything serving needs, nothing it does not.

Layout (written by `gigmatch export`):

    bundle/
      model/           the MLflow model directory (MLmodel, model.skops, requirements.txt, ...)
      lineage.json     registered name, version, run id, data md5, git commit, test metrics
      fingerprint.json the version's fingerprint, as committed (gigmatch.repro.fingerprint):
                       the same bytes wherever the same model is exported

Loading needs neither MLflow nor a tracking database: the pipeline is read with
skops, trusting only the types this code base lists (`TRUSTED_MODEL_TYPES`),
never a list the bundle declares about itself. A bundle is checked before it
is used: it must load, and score its own input example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
import yaml
from sklearn.pipeline import Pipeline

from gigmatch.errors import GigmatchError
from gigmatch.features.match_frame import FLOAT_COLUMNS, MATCH_COLUMNS
from gigmatch.model.pipeline import TRUSTED_MODEL_TYPES, is_model_pipeline, match_scores

MODEL_DIR = "model"
LINEAGE_FILE = "lineage.json"
FINGERPRINT_FILE = "fingerprint.json"  # written by export; serving does not need it
REQUIRED_LINEAGE = ("model_name", "version", "run_id", "data_md5", "git_commit", "test_metrics")


class BundleError(GigmatchError, RuntimeError):
    """A bundle is missing, incomplete, corrupt or untrusted."""


class UntrustedModelError(BundleError):
    """The model holds types this code does not trust: most often, it was fitted by another version of it."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    model: Pipeline
    lineage: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.lineage["version"])

    @property
    def model_name(self) -> str:
        return str(self.lineage["model_name"])


def read_lineage(path: Path) -> dict[str, Any]:
    lineage_path = Path(path) / LINEAGE_FILE
    try:
        lineage = json.loads(lineage_path.read_text())
    except FileNotFoundError as exc:
        raise BundleError(f"{lineage_path} not found: is {path} an exported bundle?") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{lineage_path} is not valid JSON: {exc}") from exc
    missing = [key for key in REQUIRED_LINEAGE if key not in lineage]
    if missing:
        raise BundleError(f"{lineage_path} lacks {', '.join(missing)}")
    return dict(lineage)


def load_bundle(path: Path) -> Bundle:
    """Load and check a bundle; raises BundleError naming what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"bundle directory {path} does not exist")
    lineage = read_lineage(path)
    model = load_model_dir(path / MODEL_DIR)
    _smoke_test(model, path / MODEL_DIR)
    return Bundle(path, model, lineage)


def load_model_dir(model_dir: Path) -> Pipeline:
    """The pipeline in an MLflow model directory, read with skops trusting only `TRUSTED_MODEL_TYPES`.

    Raises UntrustedModelError when the file holds other types (a model fitted by
    another version of this code, whose classes lived elsewhere), BundleError when
    it is missing, corrupt or not a gigmatch pipeline.
    """
    model_file = model_dir / _model_file_name(model_dir)
    try:
        untrusted = set(sio.get_untrusted_types(file=model_file)) - set(TRUSTED_MODEL_TYPES)
    except Exception as exc:
        raise BundleError(f"{model_file} is not a readable skops file: {exc}") from exc
    if untrusted:
        raise UntrustedModelError(
            f"{model_file} contains types this code does not trust: {', '.join(sorted(untrusted))}"
        )
    try:
        model = sio.load(model_file, trusted=list(TRUSTED_MODEL_TYPES))
    except Exception as exc:
        raise BundleError(f"{model_file} could not be loaded: {exc}") from exc
    if not is_model_pipeline(model):
        raise BundleError(f"{model_file} does not hold a gigmatch pipeline (features + model)")
    return model


def _model_file_name(model_dir: Path) -> str:
    try:
        spec = yaml.safe_load((model_dir / "MLmodel").read_text())
        flavor = spec["flavors"]["sklearn"]
    except FileNotFoundError as exc:
        raise BundleError(f"{model_dir / 'MLmodel'} not found") from exc
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise BundleError(f"{model_dir / 'MLmodel'} is not an MLflow scikit-learn model: {exc!r}") from exc
    if flavor.get("serialization_format") != "skops":
        raise BundleError(
            f"{model_dir} is serialised as {flavor.get('serialization_format')!r}; only skops is accepted"
        )
    return str(flavor["pickled_model"])


def _smoke_test(model: Pipeline, model_dir: Path) -> None:
    """Score the bundle's own input example: a model that cannot is not ready."""
    try:
        example = json.loads((model_dir / "input_example.json").read_text())
        frame = pd.DataFrame(example["data"], columns=example["columns"]).loc[:, list(MATCH_COLUMNS)]
        scores = match_scores(model, frame.astype(dict.fromkeys(FLOAT_COLUMNS, "float64")))
    except Exception as exc:
        raise BundleError(f"the model in {model_dir} fails on its own input example: {exc}") from exc
    if len(scores) != len(frame) or not np.isfinite(scores).all():
        raise BundleError(f"the model in {model_dir} gives non-finite scores on its input example")
