"""A model fingerprint: what a reproduction must give back, in two files.

The training flow fingerprints the model *this run* trained and selected (not
whatever the local registry's champion is: the registry is local state that a
fresh clone does not have, and the selected model is what a fresh clone's first
run makes its champion). It is kept in two files beside the other reports:

- `fingerprint.json`, **committed**: the same file on every machine. Its scores
  are kept to `SCORE_DECIMALS` places, below which BLAS kernels disagree, and it
  names no platform. A run whose model is numerically the same as the committed
  one leaves the file as it is (`gigmatch.repro.recording`), so no CPU rewrites it.
- `fingerprint.local.json`, **untracked**: this machine's run, every score at full
  precision, their sha256, the platform and BLAS kernel. It serves the exact tier
  (`gigmatch.repro.tiers`): a reproduction on the same machine must give these bits.

The document is grouped by the stage a difference points at:

- `environment`: Python's minor version and the versions of the libraries that
  compute (uv.lock pins them; a bump is expected to move bits, so it shows first).
- `data`: the DVC md5 of the snapshot the model was trained on.
- `params`: the params.yaml sections that determine the model and its figures
  (`split`, `train` without its output path, `evaluate`). `promote` and
  `register` decide only what the registry does, so they are left out.
- `model`: the selected model's name, kind, hyperparameters, seed, threads, and its
  ranking of a fixed probe set, through the assembled pipeline (features + estimator,
  the object that is logged and served): per probe job, the applicants in rank order
  with their scores.
- `metrics`: the selected model's test metrics and the validation NDCG@10 of every
  trained model (the figures the selection was made on), to 6 places.

The probe set is derived from the pinned data, not committed beside it: the first
`PROBE_JOBS` jobs of the test split (by job id) with all their applicants. The test
split is the latest 15% of postings, which the model never trained on.

What makes two runs on one machine give the same bits: seeds in params.yaml
(`train.seed`, `evaluate.baseline_seed`, `simulate.seed`); one thread per estimator
(`train.threads`: LightGBM's `n_jobs`, and threadpoolctl caps OpenMP and BLAS, also
around the whole flow so models fitted side by side cannot restore each other's
limits); LightGBM `deterministic=True, force_row_wise=True`; rows sorted by (job_id,
freelancer_id) before anything is fitted; no wall clock, run id or registry state in
the document; and the library versions that `uv.lock` pins.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gigmatch.files import write_json
from gigmatch.model.pipeline import match_scores
from gigmatch.params import Params
from gigmatch.training.evaluation import EvaluationSet
from gigmatch.training.fitting import TrainedModel

FINGERPRINT_FILE = "fingerprint.json"
LOCAL_FINGERPRINT_FILE = "fingerprint.local.json"
# 3: the probe as per-job rankings, committed scores rounded, the platform in the local file.
FORMAT = 3
PROBE_JOBS = 25
# Decimal places of the committed scores. Kernels disagreed by at most 6.3e-14 here (README,
# "the same model"), so at 10 places two machines write the same digits: a rounding boundary
# between them is crossed with odds of about 1 in 1,000, and then the file is kept anyway.
SCORE_DECIMALS = 10
# The libraries whose arithmetic the scores depend on.
COMPUTING_PACKAGES = ("numpy", "scipy", "scikit-learn", "lightgbm", "pandas", "pyarrow", "threadpoolctl")


class FingerprintError(ValueError):
    """A fingerprint file cannot be read as one."""


def probe_rows(job_ids: np.ndarray, n_jobs: int = PROBE_JOBS) -> np.ndarray:
    """Positions of the rows of the first `n_jobs` jobs by id (all their applicants), in row order."""
    chosen = np.unique(job_ids)[:n_jobs]
    return np.flatnonzero(np.isin(job_ids, chosen))


def probe_ranking(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, dict[str, list[Any]]]:
    """Per probe job (by id), its applicants in rank order: highest score first, ties by freelancer id."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(frame):
        raise ValueError(f"{len(scores)} scores for {len(frame)} probe rows")
    table = pd.DataFrame(
        {"job_id": frame["job_id"].to_numpy(np.int64), "freelancer_id": frame["freelancer_id"].to_numpy(np.int64)}
    ).assign(score=scores)
    ranked = table.sort_values(["job_id", "score", "freelancer_id"], ascending=[True, False, True], kind="stable")
    return {
        str(job): {"freelancers": [int(f) for f in rows["freelancer_id"]], "scores": [float(s) for s in rows["score"]]}
        for job, rows in ranked.groupby("job_id", sort=True)
    }


def probe_summary(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, object]:
    """The probe's size and the model's ranking of it, at full precision (the frame holds exactly the probe)."""
    ranking = probe_ranking(frame, scores)
    return {"jobs": len(ranking), "rows": len(frame), "score_decimals": None, "ranking": ranking}


def probe_scores(document: Mapping[str, Any]) -> np.ndarray:
    """The probe's scores in document order (jobs by id, then rank)."""
    ranking = document["model"]["probe"]["ranking"]
    return np.array([s for job in sorted(ranking, key=int) for s in ranking[job]["scores"]], dtype=np.float64)


def scores_sha256(scores: np.ndarray) -> str:
    """sha256 of the scores as little-endian float64 bytes: equal only if every bit is equal."""
    return hashlib.sha256(np.ascontiguousarray(scores, dtype="<f8").tobytes()).hexdigest()


def fingerprint_params(params: Params) -> dict[str, object]:
    """The params.yaml sections that determine the model and its figures."""
    train = params.train.model_dump(mode="json", exclude={"reports_dir"})
    return {
        "split": params.split.model_dump(mode="json"),
        "train": train,
        "evaluate": params.evaluate.model_dump(mode="json"),
    }


def environment() -> dict[str, str]:
    # The minor version: patch releases do not change arithmetic, and a client's 3.11.x must not fail.
    versions = {"python": ".".join(platform.python_version_tuple()[:2])}
    for package in COMPUTING_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def platform_info() -> dict[str, object]:
    """Where a run was made; BLAS kernels differ by CPU, and so do the last bits of the scores."""
    from threadpoolctl import threadpool_info

    libraries = threadpool_info()
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "blas_kernels": sorted({str(i["architecture"]) for i in libraries if i.get("architecture")}),
        "native_libraries": sorted(
            {f"{i.get('internal_api')} {i.get('version')} {i.get('architecture') or ''}".strip() for i in libraries}
        ),
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
    """A run's fingerprint at full precision (what the local file holds under `fingerprint`)."""
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


def committed_form(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document as committed: scores rounded to SCORE_DECIMALS, nothing of the platform."""
    committed: dict[str, Any] = json.loads(json.dumps(document))  # a deep copy
    probe = committed["model"]["probe"]
    probe["score_decimals"] = SCORE_DECIMALS
    for entry in probe["ranking"].values():
        entry["scores"] = [round(float(s), SCORE_DECIMALS) for s in entry["scores"]]
    return committed


def local_record(document: Mapping[str, Any], commit: str, dirty: bool) -> dict[str, object]:
    """This machine's run: the full-precision document, its bits' sha256, where and from what it was made."""
    return {
        "format": FORMAT,
        "made_at": {"commit": commit, "dirty": dirty},
        "platform": platform_info(),
        "scores_sha256": scores_sha256(probe_scores(document)),
        "fingerprint": dict(document),
    }


def write_fingerprint(path: Path, document: Mapping[str, object]) -> None:
    write_json(Path(path), document)


def read_fingerprint(path: Path) -> dict[str, Any]:
    """A fingerprint document (committed, or the `fingerprint` of a local record); FingerprintError if it is not one."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FingerprintError(f"{path} cannot be read as a fingerprint: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("model"), dict):
        raise FingerprintError(f"{path} does not hold a fingerprint document")
    return document


def read_local_record(path: Path) -> dict[str, Any] | None:
    """This machine's record, or None when there is none or it is of another format (it is local, not precious)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if isinstance(record, dict) and record.get("format") == FORMAT and isinstance(record.get("fingerprint"), dict):
        return record
    return None


def kernels(record: Mapping[str, Any] | None) -> str:
    """The BLAS kernels a local record was made with, for people ("SkylakeX"), else "unknown"."""
    found = ((record or {}).get("platform") or {}).get("blas_kernels") or []
    return "+".join(str(k) for k in found) or "unknown"
