"""A model fingerprint: what a reproduction must give back, bit for bit.

The training flow writes `reports/fingerprint.json` for the model *this run*
trained and selected (not whatever the local registry's champion is: the
registry is local state that a fresh clone does not have, and the selected
model is what a fresh clone's first run makes its champion). `gigmatch verify`
reproduces the pipeline from a clean checkout and compares its fingerprint with
the committed one, figure by figure.

The document is grouped by the stage a difference points at:

- `environment`: versions of the libraries that compute (compared; a lock bump
  that changes them is expected to change bits, so it says so first).
- `data`: the DVC md5 of the snapshot the model was trained on.
- `params`: the params.yaml sections that determine the model and its figures
  (`split`, `train` without its output path, `evaluate`). `promote` and
  `register` decide only what the registry does, so they are left out.
- `model`: the selected model's name, its kind and hyperparameters, and its scores
  on a fixed probe set, through the assembled pipeline (features + estimator,
  the object that is logged and served): the sha256 of the float64 bytes, plus a
  few rounded scores for humans.
- `metrics`: the selected model's test metrics and the validation NDCG@10 of
  every trained model (the figures the selection was made on).
- `platform`: where it was made (OS, CPU, BLAS kernel). Not compared, shown when
  anything differs: bit-for-bit identity is promised on the same platform only.

The probe set is derived from the pinned data, not committed beside it: the
first `PROBE_JOBS` jobs of the test split (by job id) with all their applicants,
in (job_id, freelancer_id) order. The test split is the latest 15% of postings,
which the model never trained on, and deriving it needs no second file that
could drift from the data contract.

What makes two runs give the same bytes (see also `gigmatch/verify.py`): seeds
in params.yaml (`train.seed`, `evaluate.baseline_seed`, `simulate.seed`); one
thread per estimator (`train.threads`: LightGBM's `n_jobs`, and threadpoolctl
caps OpenMP and BLAS, also around the whole flow so models fitted side by side cannot
restore each other's limits); LightGBM `deterministic=True, force_row_wise=True`;
rows sorted by (job_id, freelancer_id) before anything is fitted; no wall clock,
run id or registry state in the document; and the library versions that
`uv.lock` pins.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gigmatch.files import json_text, write_json
from gigmatch.model.pipeline import match_scores
from gigmatch.params import Params
from gigmatch.training.evaluation import EvaluationSet
from gigmatch.training.fitting import TrainedModel

FINGERPRINT_FILE = "fingerprint.json"
FORMAT = 2  # 2: train.models (was train.candidates), model.name (was model.candidate)
PROBE_JOBS = 25
SAMPLE_ROWS = 5
# The libraries whose arithmetic the scores depend on.
COMPUTING_PACKAGES = ("numpy", "scipy", "scikit-learn", "lightgbm", "pandas", "pyarrow", "threadpoolctl")
# Compared in this order; the first stage that differs is usually the cause of the rest.
STAGES = ("format", "environment", "data", "params", "model", "metrics")
INFORMATIONAL = ("platform",)
ABSENT = "(absent)"


@dataclass(frozen=True)
class Difference:
    stage: str  # environment, data, params, model, metrics
    figure: str  # dotted path inside the document, e.g. params.train.models.logistic.params.C
    expected: object  # the committed value (ABSENT when the figure is new)
    actual: object  # the reproduced value (ABSENT when the figure is gone)

    @property
    def change(self) -> str:
        """The signed change of a number ("+0.0012"), else empty."""
        a, b = self.expected, self.actual
        numbers = isinstance(a, int | float) and isinstance(b, int | float)
        if numbers and not isinstance(a, bool) and not isinstance(b, bool):
            return f"{b - a:+.6g}"  # type: ignore[operator]
        return ""

    def describe(self) -> str:
        change = f" ({self.change})" if self.change else ""
        return f"{self.stage}: {self.figure}: {show_value(self.expected)} -> {show_value(self.actual)}{change}"


def probe_rows(job_ids: np.ndarray, n_jobs: int = PROBE_JOBS) -> np.ndarray:
    """Positions of the rows of the first `n_jobs` jobs by id (all their applicants), in row order."""
    chosen = np.unique(job_ids)[:n_jobs]
    return np.flatnonzero(np.isin(job_ids, chosen))


def scores_sha256(scores: np.ndarray) -> str:
    """sha256 of the scores as little-endian float64 bytes: equal only if every bit is equal."""
    return hashlib.sha256(np.ascontiguousarray(scores, dtype="<f8").tobytes()).hexdigest()


def probe_summary(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, object]:
    """The probe's identity and the model's scores on it (the frame holds exactly the probe rows)."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(frame):
        raise ValueError(f"{len(scores)} scores for {len(frame)} probe rows")
    jobs = frame["job_id"].to_numpy(dtype=np.int64)
    people = frame["freelancer_id"].to_numpy(dtype=np.int64)
    sample = {f"{j}/{f}": round(float(s), 6) for j, f, s in zip(jobs, people, scores[:SAMPLE_ROWS], strict=False)}
    return {
        "jobs": len(np.unique(jobs)),
        "rows": len(frame),
        "job_ids": [int(j) for j in np.unique(jobs)],
        "rows_sha256": hashlib.sha256(np.stack([jobs, people]).astype("<i8").tobytes()).hexdigest(),
        "scores_sha256": scores_sha256(scores),
        "scores_sample": sample,  # job_id/freelancer_id -> score, rounded to 6 places
    }


def fingerprint_params(params: Params) -> dict[str, object]:
    """The params.yaml sections that determine the model and its figures."""
    train = params.train.model_dump(mode="json", exclude={"reports_dir"})
    return {
        "split": params.split.model_dump(mode="json"),
        "train": train,
        "evaluate": params.evaluate.model_dump(mode="json"),
    }


def environment() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in COMPUTING_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def platform_info() -> dict[str, object]:
    """Where the fingerprint was made; BLAS kernels differ by CPU, so bits may too."""
    from threadpoolctl import threadpool_info

    libraries = sorted(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture') or ''}".strip() for i in threadpool_info()
    )
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "native_libraries": sorted(set(libraries)),
    }


def input_sections(params: Params, data_md5: str) -> dict[str, object]:
    """The parts of a fingerprint that are fixed before anything is trained: a stale one shows here first."""
    return {"environment": environment(), "data": {"md5": data_md5}, "params": fingerprint_params(params)}


def fingerprint_document(
    *,
    params: Params,
    data_md5: str,
    selected: str,
    probe: Mapping[str, object],
    test_metrics: Mapping[str, float],
    valid_ndcg_at_10: Mapping[str, float],
) -> dict[str, object]:
    spec = params.train.models[selected]
    return {
        "format": FORMAT,
        **input_sections(params, data_md5),
        "model": {
            "name": selected,
            "kind": spec.kind,
            "params": dict(spec.params),
            "seed": params.train.seed,
            "threads": params.train.threads,
            "probe": dict(probe),
        },
        "metrics": {"test": dict(test_metrics), "valid_ndcg_at_10": dict(valid_ndcg_at_10)},
        "platform": platform_info(),
    }


def model_fingerprint(
    params: Params, data_md5: str, selected: TrainedModel, trained: list[TrainedModel], test: EvaluationSet
) -> dict[str, object]:
    """The selected model's fingerprint: scored on the probe through the assembled pipeline (what is served)."""
    probe = test.frame.iloc[probe_rows(test.group)].reset_index(drop=True)
    return fingerprint_document(
        params=params,
        data_md5=data_md5,
        selected=selected.name,
        probe=probe_summary(probe, match_scores(selected.model, probe)),
        test_metrics=selected.figures.test,
        valid_ndcg_at_10={t.name: t.figures.valid["ndcg_at_10"] for t in trained},
    )


def dumps(document: Mapping[str, object]) -> str:
    return json_text(document)


def write_fingerprint(path: Path, document: Mapping[str, object]) -> None:
    write_json(Path(path), document)


def read_fingerprint(path: Path) -> dict[str, Any]:
    document = json.loads(Path(path).read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path} does not hold a fingerprint document")
    return document


def flatten(document: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Nested mappings as dotted keys; lists and scalars are leaves."""
    flat: dict[str, object] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.") if value else {name: {}}
        else:
            flat[name] = value
    return flat


def diff(expected: Mapping[str, object], actual: Mapping[str, object]) -> list[Difference]:
    """Every figure that differs, by stage in pipeline order (platform is not compared)."""
    old, new = flatten(expected), flatten(actual)
    differences = []
    for figure in sorted(old.keys() | new.keys()):
        stage = figure.split(".", 1)[0]
        if stage in INFORMATIONAL:
            continue
        if figure not in old or figure not in new or not _same(old[figure], new[figure]):
            differences.append(Difference(stage, figure, old.get(figure, ABSENT), new.get(figure, ABSENT)))
    order = {stage: i for i, stage in enumerate(STAGES)}
    return sorted(differences, key=lambda d: (order.get(d.stage, len(order)), d.figure))


def _same(a: object, b: object) -> bool:
    # JSON has one number type: 1 and 1.0 are the same figure, True and 1 are not.
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def show_value(value: object, limit: int = 80) -> str:
    """A figure as JSON, cut to `limit` characters."""
    text = ABSENT if value == ABSENT else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
