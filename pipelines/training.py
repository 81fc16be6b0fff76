"""The training flow: pinned snapshot in, evaluated candidates tracked, champion gated.

The flow body reads as a table of contents; each task is a thin call into the
plain functions of `gigmatch`. Candidates train in parallel through the task
runner. The champion alias moves only in the last step, after every other step
has succeeded, so a crashed or interrupted run never moves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner
from threadpoolctl import threadpool_limits

from gigmatch.config import CandidateParams, EvaluateParams, Params, load_params
from gigmatch.dataset import read_tables
from gigmatch.evaluation import (
    EvaluationSet,
    baseline_scores,
    calibration_table,
    exposure_fairness,
    ndcg_curve,
    ranking_metrics,
    slice_metrics,
)
from gigmatch.features import IncompatibleFeaturesError, MatchFeatures
from gigmatch.fingerprint import FINGERPRINT_FILE, fingerprint_document, probe_rows, probe_summary, write_fingerprint
from gigmatch.matching import build_match_frame
from gigmatch.models import TrainingData, assemble_pipeline, fit_estimator, is_probabilistic, match_scores
from gigmatch.promotion import CHAMPION, Decision, GateError, GateFigures, decide
from gigmatch.reports import CandidateFigures, ReferenceFigures, metrics_document, ndcg_curve_frame, write_reports
from gigmatch.schema import APPLICATIONS, FREELANCERS, JOBS, SIMULATOR_TRUTH
from gigmatch.splits import split_jobs_by_time
from pipelines import tracking
from pipelines.lineage import Lineage, current_lineage
from pipelines.settings import get_tracking_settings


@dataclass(frozen=True)
class Splits:
    sets: dict[str, EvaluationSet]  # train, valid, test
    job_counts: dict[str, int]


@dataclass(frozen=True)
class Features:
    transformer: MatchFeatures
    matrices: dict[str, np.ndarray]


@dataclass(frozen=True)
class Candidate:
    figures: CandidateFigures
    model: object  # the fitted pipeline: features + estimator
    test_scores: np.ndarray


@dataclass(frozen=True)
class TrainingOutcome:
    selected: str
    version: str
    decision: Decision
    metrics: dict[str, object]


# ---------------------------------------------------------------- tasks


@task(name="load-snapshot", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def load_snapshot(data_dir: Path) -> tuple[dict[str, pd.DataFrame], Lineage]:
    return read_tables(data_dir), current_lineage(data_dir)


@task(name="split-by-time", cache_policy=NO_CACHE)
def split_by_time(frames: dict[str, pd.DataFrame], params: Params) -> Splits:
    applications = frames[APPLICATIONS].sort_values(["job_id", "freelancer_id"], kind="stable")
    split = split_jobs_by_time(frames[JOBS], params.split.valid_fraction, params.split.test_fraction)
    truth = None
    if SIMULATOR_TRUTH in frames:
        keyed = frames[SIMULATOR_TRUTH].set_index(["job_id", "freelancer_id"])["true_match_probability"]
        truth = keyed.reindex(pd.MultiIndex.from_frame(applications[["job_id", "freelancer_id"]])).to_numpy()
    match = build_match_frame(applications, frames[JOBS], frames[FREELANCERS])
    relevance = applications["outcome"].to_numpy(dtype=np.int64)
    sets = {}
    for name, mask in split.masks(match["job_id"].to_numpy()).items():
        rows = np.flatnonzero(mask)
        sets[name] = EvaluationSet(
            match.iloc[rows].reset_index(drop=True), relevance[rows], None if truth is None else truth[rows]
        )
    return Splits(sets, split.sizes())


@task(name="fit-features", cache_policy=NO_CACHE)
def fit_features(splits: Splits, text_max_features: int) -> Features:
    transformer = MatchFeatures(text_max_features=text_max_features).fit(splits.sets["train"].frame)
    return Features(transformer, {name: transformer.transform(s.frame) for name, s in splits.sets.items()})


@task(name="train-candidate", cache_policy=NO_CACHE)
def train_candidate(name: str, spec: CandidateParams, features: Features, splits: Splits, params: Params) -> Candidate:
    train = splits.sets["train"]
    data = TrainingData(features.matrices["train"], train.relevance, train.group)
    estimator = fit_estimator(spec.kind, spec.params, data, params.train.seed, params.train.threads)
    model = assemble_pipeline(features.transformer, estimator)
    # Score through the estimator on the precomputed matrices: the same numbers the
    # assembled pipeline gives on the frames, without recomputing features.
    scores = {split: match_scores(estimator, features.matrices[split]) for split in ("valid", "test")}
    probabilistic = is_probabilistic(estimator)
    figures = CandidateFigures(
        name,
        spec.kind,
        ranking_metrics(splits.sets["valid"], scores["valid"], probabilistic),
        ranking_metrics(splits.sets["test"], scores["test"], probabilistic),
        ndcg_curve(splits.sets["test"], scores["test"]),
    )
    get_run_logger().info(
        "%s: valid NDCG@10 %.4f, test NDCG@10 %.4f", name, figures.valid["ndcg_at_10"], figures.test["ndcg_at_10"]
    )
    return Candidate(figures, model, scores["test"])


@task(name="evaluate-references", cache_policy=NO_CACHE)
def evaluate_references(splits: Splits, params: EvaluateParams) -> ReferenceFigures:
    test = splits.sets["test"]
    scores = baseline_scores(test, params.baseline_seed)
    return ReferenceFigures(
        {name: ranking_metrics(test, score) for name, score in scores.items()},
        {name: ndcg_curve(test, score) for name, score in scores.items()},
    )


@task(name="log-candidates", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def log_candidates(
    parent_run_id: str,
    experiment_id: str,
    candidates: list[Candidate],
    example: pd.DataFrame,
    params: Params,
    lineage: Lineage,
) -> dict[str, tracking.LoggedModel]:
    logged = {}
    for candidate in candidates:
        spec = params.train.candidates[candidate.figures.name]
        tags = {**lineage.tags(), "split": _split_tag(params)}
        with tracking.run(experiment_id, candidate.figures.name, parent_run_id, tags) as run_id:
            metrics = {f"valid_{k}": v for k, v in candidate.figures.valid.items()}
            metrics |= {f"test_{k}": v for k, v in candidate.figures.test.items()}
            run_params = {
                "kind": spec.kind,
                "seed": params.train.seed,
                **{f"model.{k}": v for k, v in spec.params.items()},
            }
            tracking.log_figures(run_id, run_params, metrics, {"candidate": candidate.figures.name})
            predict_fn = "predict_proba" if is_probabilistic(candidate.model) else "predict"
            logged[candidate.figures.name] = tracking.log_model(run_id, candidate.model, example, predict_fn)
    return logged


@task(name="register-model", cache_policy=NO_CACHE)
def register_model(logged: tracking.LoggedModel, params: Params, lineage: Lineage, selected: str) -> str:
    return tracking.register(logged.model_uri, params.register_.model_name, {**lineage.tags(), "candidate": selected})


def _worth_retrying(task: object, task_run: object, state: State) -> bool:
    """Retry I/O hiccups, not a verdict: a gate that cannot compare will not change its mind."""
    try:
        state.result()
    except GateError:
        return False
    except Exception:  # anything else may be transient
        return True
    return True


@task(
    name="measure-champion",
    retries=2,
    retry_delay_seconds=[2, 5],
    retry_condition_fn=_worth_retrying,
    cache_policy=NO_CACHE,
)
def measure_champion(
    model_name: str, version: str, test: EvaluationSet, lineage: Lineage, split: str
) -> tuple[str | None, float | None]:
    """The current champion's test NDCG@10 on this run's test split (None if there is none).

    A champion fitted by another version of the feature code cannot be scored here;
    its recorded figure stands in only if it was measured on this very test split.
    """
    champion = tracking.alias_version(model_name, CHAMPION)
    if champion is None or champion == version:
        return None, None
    model = tracking.load_version(model_name, champion)
    try:
        return champion, ranking_metrics(test, match_scores(model, test.frame))["ndcg_at_10"]
    except IncompatibleFeaturesError as exc:
        recorded = tracking.recorded_figures(model_name, champion)
        if recorded.test_ndcg_at_10 is not None and (recorded.data_md5, recorded.split) == (lineage.data_md5, split):
            get_run_logger().warning("champion %s: %s; using its recorded test NDCG@10", champion, exc)
            return champion, recorded.test_ndcg_at_10
        raise GateError(
            f"champion version {champion} cannot be scored by this code ({exc}) and was measured on other data "
            "or another split, so the gate cannot compare: move the alias by hand after review, or retrain it"
        ) from exc


@task(name="gate-champion", cache_policy=NO_CACHE)
def gate_champion(model_name: str, version: str, decision: Decision) -> None:
    tracking.set_alias(model_name, decision.alias, version)


# ---------------------------------------------------------------- flow


@flow(name="gigmatch-train", log_prints=True)
def train_flow(params_path: Path = Path("params.yaml")) -> TrainingOutcome:
    params = load_params(params_path)
    settings = get_tracking_settings()
    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(params.register_.experiment, settings)

    frames, lineage = load_snapshot(params.data.dir)
    with tracking.run(experiment_id, "train", tags=lineage.tags()) as parent_run_id:
        splits = split_by_time(frames, params)
        features = fit_features(splits, params.train.text_max_features)
        futures = [
            train_candidate.submit(name, spec, features, splits, params)
            for name, spec in params.train.candidates.items()
        ]
        references = evaluate_references(splits, params.evaluate)
        candidates = [future.result() for future in futures]
        best = max(candidates, key=lambda c: (c.figures.valid["ndcg_at_10"], c.figures.name))
        test = splits.sets["test"]
        fairness = exposure_fairness(
            test,
            best.test_scores,
            params.evaluate.fairness_top_k,
            params.evaluate.qualified_min_coverage,
            params.evaluate.fairness_min_qualified,
        )
        metrics = metrics_document(best.figures.name, [c.figures for c in candidates], references, fairness.ratio)
        _log_run_figures(parent_run_id, params, splits, metrics, lineage)

        logged = log_candidates(parent_run_id, experiment_id, candidates, test.frame.head(5), params, lineage)
        model_name = params.register_.model_name
        version = register_model(logged[best.figures.name], params, lineage, best.figures.name)
        champion_version, champion_ndcg = measure_champion(model_name, version, test, lineage, _split_tag(params))
        decision = decide(
            GateFigures(
                best.figures.test["ndcg_at_10"],
                champion_ndcg,
                references.test["skill_overlap"]["ndcg_at_10"],
                fairness.ratio,
            ),
            params.promote.min_improvement,
            params.promote.min_fairness_ratio,
        )
        promotion = {
            "model_name": model_name,
            "version": version,
            "candidate": best.figures.name,
            "previous_champion": champion_version,
            **decision.as_dict(),
        }
        slices = {"selected_candidate": best.figures.name, "test": slice_metrics(test, best.test_scores)}
        slices["fairness"] = {"ratio": fairness.ratio, "by_region": fairness.by_region}
        tracking.log_json(parent_run_id, promotion, "promotion.json")
        tracking.log_json(parent_run_id, slices, "slices.json")
        tracking.log_figures(
            parent_run_id, {}, {}, {"promotion.decision": decision.alias, "registered_version": version}
        )
        calibration = _calibration(candidates, best, test)
        # The last mutation of the registry: everything before it has succeeded.
        gate_champion(model_name, version, decision)
        write_reports(
            params.train.reports_dir,
            metrics,
            slices,
            promotion,
            ndcg_curve_frame(best.figures.name, [c.figures for c in candidates], references),
            calibration,
        )
        write_fingerprint(
            Path(params.train.reports_dir) / FINGERPRINT_FILE, _fingerprint(params, lineage, best, candidates, test)
        )

    print(f"version {version} of {model_name} ({best.figures.name}) {decision.summary()}")
    return TrainingOutcome(best.figures.name, version, decision, metrics)


def run_training(params_path: Path = Path("params.yaml")) -> TrainingOutcome:
    """Run the flow with the task runner sized from params.yaml."""
    params = load_params(params_path)
    runner: ThreadPoolTaskRunner = ThreadPoolTaskRunner(max_workers=params.train.parallel_candidates)
    # BLAS pools are process-wide: cap them around the whole flow too, so a candidate
    # finishing first cannot restore the default for one still training beside it.
    with threadpool_limits(limits=params.train.threads):
        return train_flow.with_options(task_runner=runner)(params_path=params_path)  # type: ignore[arg-type]


# ---------------------------------------------------------------- helpers


def _split_tag(params: Params) -> str:
    """Identifies the test split together with the data md5."""
    return f"time:{params.split.valid_fraction}/{params.split.test_fraction}"


def _log_run_figures(run_id: str, params: Params, splits: Splits, metrics: dict[str, object], lineage: Lineage) -> None:
    flat = {f"{section}.{k}": v for section in ("test", "valid") for k, v in metrics[section].items()}  # type: ignore[attr-defined]
    run_params = {
        "split.valid_fraction": params.split.valid_fraction,
        "split.test_fraction": params.split.test_fraction,
        "train.seed": params.train.seed,
        "data_md5": lineage.data_md5,
        **{f"jobs.{name}": count for name, count in splits.job_counts.items()},
    }
    tracking.log_figures(run_id, run_params, flat, {"selected_candidate": str(metrics["selected_candidate"])})


def _fingerprint(
    params: Params, lineage: Lineage, best: Candidate, candidates: list[Candidate], test: EvaluationSet
) -> dict[str, object]:
    """The selected model's fingerprint: scored on the probe through the assembled pipeline (what is served)."""
    probe = test.frame.iloc[probe_rows(test.group)].reset_index(drop=True)
    return fingerprint_document(
        params=params,
        data_md5=lineage.data_md5,
        selected=best.figures.name,
        probe=probe_summary(probe, match_scores(best.model, probe)),
        test_metrics=best.figures.test,
        valid_ndcg_at_10={c.figures.name: c.figures.valid["ndcg_at_10"] for c in candidates},
    )


def _calibration(candidates: list[Candidate], best: Candidate, test: EvaluationSet) -> pd.DataFrame:
    """Calibration of the selected model if it gives probabilities, else of the best that does."""
    probabilistic = [c for c in candidates if "log_loss" in c.figures.test]
    chosen = (
        best if best in probabilistic else max(probabilistic, key=lambda c: c.figures.valid["ndcg_at_10"], default=None)
    )
    if chosen is None:
        return pd.DataFrame(columns=["bin", "predicted", "observed", "rows", "model"])
    return calibration_table(chosen.test_scores, test.hired).assign(model=chosen.figures.name)
