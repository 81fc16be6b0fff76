"""Evaluating rankings per job: metrics, baselines, the oracle, slices and exposure fairness.

Every model figure comes with a floor (random, popularity, skill overlap) and,
when the simulator's truth is present, a ceiling (the oracle ranks by the true
match probability). Relevance is the graded outcome; "hired" means outcome >= 2
and "relevant" for MAP means shortlisted or better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from gigmatch.data.contract import HIRED
from gigmatch.data.market import timezone_overlap_hours
from gigmatch.features.skills import skill_coverage
from gigmatch.training.ranking_metrics import average_precision_at_k, ndcg_at_k, ndcg_per_group, recall_at_k, top_k_mask

CURVE_KS = (1, 2, 3, 5, 10, 15, 20)
ORACLE = "oracle"


@dataclass(frozen=True)
class EvaluationSet:
    """What evaluation needs of one split: the match frame and the outcomes."""

    frame: pd.DataFrame  # match frame rows, jobs contiguous
    relevance: np.ndarray
    truth: np.ndarray | None  # true match probability, when the simulator wrote it

    @property
    def group(self) -> np.ndarray:
        return self.frame["job_id"].to_numpy()

    @property
    def hired(self) -> np.ndarray:
        return self.relevance >= HIRED


@dataclass(frozen=True)
class ModelFigures:
    """One trained model's figures: what selection and the reports read."""

    name: str  # its entry in params.yaml train.models
    kind: str
    valid: dict[str, float]
    test: dict[str, float]
    ndcg_curve: list[float]  # test NDCG at CURVE_KS


@dataclass(frozen=True)
class ReferenceFigures:
    """Baselines and the oracle on the test split."""

    test: dict[str, dict[str, float]]  # name -> metrics
    ndcg_curve: dict[str, list[float]]


def model_figures(
    name: str, kind: str, valid: EvaluationSet, test: EvaluationSet, scores: dict[str, np.ndarray], probabilistic: bool
) -> ModelFigures:
    """Metrics on validation and test, and the test NDCG curve, from a model's scores on both."""
    return ModelFigures(
        name,
        kind,
        ranking_metrics(valid, scores["valid"], probabilistic),
        ranking_metrics(test, scores["test"], probabilistic),
        ndcg_curve(test, scores["test"]),
    )


def evaluate_references(test: EvaluationSet, seed: int) -> ReferenceFigures:
    scores = baseline_scores(test, seed)
    return ReferenceFigures(
        {name: ranking_metrics(test, score) for name, score in scores.items()},
        {name: ndcg_curve(test, score) for name, score in scores.items()},
    )


def ranking_metrics(data: EvaluationSet, score: np.ndarray, probabilistic: bool = False) -> dict[str, float]:
    group, relevance, hired = data.group, data.relevance, data.hired
    metrics = {
        "ndcg_at_5": ndcg_at_k(group, score, relevance, 5),
        "ndcg_at_10": ndcg_at_k(group, score, relevance, 10),
        "map_at_10": average_precision_at_k(group, score, relevance >= 1, 10),
        "recall_at_10": recall_at_k(group, score, hired, 10),
        "hire_auc": _auc(hired, score),
    }
    if probabilistic:
        metrics["log_loss"] = float(log_loss(hired, np.clip(score, 1e-7, 1 - 1e-7), labels=[False, True]))
    return {k: round(v, 6) for k, v in metrics.items()}


def _auc(labels: np.ndarray, score: np.ndarray) -> float:
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, score))


def baseline_scores(data: EvaluationSet, seed: int) -> dict[str, np.ndarray]:
    """Floors every model must clear, and the oracle ceiling when the truth is known."""
    frame = data.frame
    rating = frame["rating"].to_numpy(dtype=float)
    success = frame["success_rate"].to_numpy(dtype=float)
    scores = {
        "random": np.random.default_rng(seed).random(len(frame)),
        # Popularity: what a client sees first on a profile, rating and track record.
        "popularity": np.nan_to_num(rating) * np.log1p(frame["jobs_completed"].to_numpy(dtype=float))
        + np.nan_to_num(success),
        "skill_overlap": skill_coverage(frame),
    }
    if data.truth is not None:
        scores[ORACLE] = data.truth
    return scores


def qualified(frame: pd.DataFrame, min_coverage: float) -> np.ndarray:
    """Applicants who meet the job's stated needs: enough of its skills and the overlap it asks for."""
    overlap = timezone_overlap_hours(frame["utc_offset"].to_numpy(), frame["client_utc_offset"].to_numpy())
    return (skill_coverage(frame) >= min_coverage) & (overlap >= frame["timezone_overlap_hours"].to_numpy())


@dataclass(frozen=True)
class Fairness:
    ratio: float  # the smallest exposure ratio over regions with enough qualified applicants
    by_region: dict[str, dict[str, float]]


def exposure_fairness(
    data: EvaluationSet, score: np.ndarray, k: int, min_coverage: float, min_qualified: int
) -> Fairness:
    """Share of top-k slots per freelancer region against its share of qualified applicants."""
    region = data.frame["region"].to_numpy().astype(str)
    top = top_k_mask(data.group, score, k)
    is_qualified = qualified(data.frame, min_coverage)
    by_region: dict[str, dict[str, float]] = {}
    for name in sorted(set(region)):
        in_region = region == name
        n_qualified = int((is_qualified & in_region).sum())
        exposure = (top & in_region).sum() / max(top.sum(), 1)
        qualified_share = n_qualified / max(is_qualified.sum(), 1)
        by_region[name] = {
            "exposure_share": round(float(exposure), 6),
            "qualified_share": round(float(qualified_share), 6),
            "ratio": round(float(exposure / qualified_share), 6) if qualified_share else float("nan"),
            "qualified": n_qualified,
        }
    counted = [r["ratio"] for r in by_region.values() if r["qualified"] >= min_qualified]
    return Fairness(round(min(counted), 6) if counted else float("nan"), by_region)


def slice_metrics(data: EvaluationSet, score: np.ndarray, k: int = 10) -> dict[str, dict[str, dict[str, float]]]:
    """NDCG@k by job slices; hire recall@k and AUC by freelancer slices."""
    frame = data.frame
    job_ids, ndcg = ndcg_per_group(data.group, score, data.relevance, k)
    per_job = pd.Series(ndcg, index=job_ids)
    jobs = frame.drop_duplicates("job_id").set_index("job_id")
    report: dict[str, dict[str, dict[str, float]]] = {}
    for column in ("category", "experience_level"):
        values = jobs.loc[per_job.index, column]
        report[column] = {
            str(name): {
                "ndcg_at_10": round(float(per_job[values == name].mean()), 6),
                "jobs": int((values == name).sum()),
            }
            for name in sorted(values.unique())
        }
    top = top_k_mask(data.group, score, k)
    freelancer_slices = {str(r): frame["region"].to_numpy() == r for r in sorted(frame["region"].unique())}
    report["freelancer_region"] = {
        name: _hire_slice(data, score, top, mask) for name, mask in freelancer_slices.items()
    }
    newcomer = frame["jobs_completed"].to_numpy() == 0
    report["new_freelancers"] = {
        "no_completed_jobs": _hire_slice(data, score, top, newcomer),
        "with_track_record": _hire_slice(data, score, top, ~newcomer),
    }
    return report


def _hire_slice(data: EvaluationSet, score: np.ndarray, top: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    hires = data.hired & mask
    return {
        "hire_recall_at_10": round(float((top & hires).sum() / hires.sum()), 6) if hires.any() else float("nan"),
        "hire_auc": round(_auc(data.hired[mask], score[mask]), 6),
        "applications": int(mask.sum()),
    }


def ndcg_curve(data: EvaluationSet, score: np.ndarray, ks: tuple[int, ...] = CURVE_KS) -> list[float]:
    return [round(ndcg_at_k(data.group, score, data.relevance, k), 6) for k in ks]


def calibration_table(probability: np.ndarray, hired: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted hire probability against the observed hire rate, by quantile bin."""
    edges = np.unique(np.quantile(probability, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, len(edges) - 2)
    table = pd.DataFrame({"bin": which, "predicted": probability, "observed": hired.astype(float)})
    out = table.groupby("bin").agg(predicted=("predicted", "mean"), observed=("observed", "mean"), rows=("bin", "size"))
    return out.reset_index().round(6)
