"""The training flow: pinned snapshot in, evaluated models tracked, champion gated.

The flow body is a table of contents of named tasks; each task is a thin call
into `gigmatch.training` (fitting, evaluation, the report, the promotion rule),
`gigmatch.repro` (lineage, the fingerprint) or `pipelines.tracking` (MLflow).
Models train in parallel through the task runner. The champion alias moves only
in the last registry step, after every other step has succeeded, so a crashed
or interrupted run never moves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.states import State
from threadpoolctl import threadpool_limits

from gigmatch.data.contract import FREELANCER_HISTORY
from gigmatch.data.pinning import remote_url
from gigmatch.data.snapshot import profile_statistics_note, read_tables
from gigmatch.features.transformer import IncompatibleFeaturesError
from gigmatch.model.bundle import UntrustedModelError
from gigmatch.model.pipeline import is_probabilistic, match_scores
from gigmatch.params import EngineParams, EvaluateParams, ModelSpec, Params, SplitParams, load_params
from gigmatch.repro.datasets import SplitDataset, snapshot_uri, split_datasets
from gigmatch.repro.fingerprint import FINGERPRINT_FILE, LOCAL_FINGERPRINT_FILE, model_fingerprint
from gigmatch.repro.lineage import Lineage, current_lineage
from gigmatch.repro.recording import RecordedFingerprint, record_fingerprint, write_recorded
from gigmatch.scale.cluster import engine_session
from gigmatch.scale.training import ranker_fit
from gigmatch.training.evaluation import EvaluationSet, ReferenceFigures, evaluate_references, ranking_metrics
from gigmatch.training.fitting import (
    FeatureMatrices,
    TrainedModel,
    fit_feature_matrices,
    select_model,
    train_model,
)
from gigmatch.training.promotion import (
    CHALLENGER,
    CHAMPION,
    Decision,
    GateError,
    GateFigures,
    decide,
    hold_for_online_evidence,
    promotion_record,
    split_tag,
)
from gigmatch.training.reports import TrainingReport, build_report, run_description, write_reports
from gigmatch.training.splits import SplitSets, split_snapshot
from pipelines import tracking
from pipelines.rollout import rollout_flow, shadow_rollout_flow
from pipelines.settings import get_rollout_settings, get_team_settings, get_tracking_settings
from pipelines.task_runners import (
    api_the_workers_reach,
    candidate_runner,
    one_after_another,
    shared_with_candidates,
)
from pipelines.tracking import OFFLINE_GATE_TAG

if TYPE_CHECKING:  # Dask is an optional extra
    from distributed import Future

    from gigmatch.scale.validation import JobPartitions

EXAMPLE_ROWS = 5  # rows of the test frame logged with each model as its input example
SOURCE = "gigmatch train (pipelines/training.py)"  # the runs' source in MLflow


@dataclass(frozen=True)
class Champion:
    version: str | None  # None: there is no champion yet (or it is the version just registered)
    test_ndcg_at_10: float | None


@dataclass(frozen=True)
class TrainingOutcome:
    selected: str
    version: str
    decision: Decision
    metrics: dict[str, object]


# ---------------------------------------------------------------- flow


@flow(name="gigmatch-train", log_prints=True)
def train_flow(
    params_path: Path = Path("params.yaml"), data_origin: dict[str, str] | None = None, engine: str = "in_process"
) -> TrainingOutcome:
    """`data_origin`: tags saying where the data came from, when not from the pin alone (monitoring's retraining).
    `engine`: where the stages that grow with the data run (`run_training` opens it), logged and tagged."""
    params = load_params(params_path)
    model_name = params.register_.model_name
    experiment_id = open_experiment(params.register_.experiment)
    frames, lineage, partitions = load_snapshot(params.data.dir, params.engine)
    profiles = "as_of_history" if FREELANCER_HISTORY in frames else "current_values"
    tags = {**lineage.tags(), "profile_statistics": profiles, "engine": engine, **(data_origin or {})}
    tags |= tracking.source_tags(SOURCE, lineage.git_commit)
    print(f"engine: {engine}")
    with tracking.run(experiment_id, "train", tags=tags) as run_id:
        features: FeatureMatrices | Future[FeatureMatrices]  # on Dask, left on the worker that assembled them
        if partitions is not None:  # on Dask: the match frame built and featurised part by part on the workers
            sets, features = split_and_fit_features_on_dask(frames, partitions, params)
        else:
            sets = split_by_time(frames, params.split)
            features = fit_features(sets, params.train.text_max_features)
        references = evaluate_baselines(sets.test, params.evaluate)
        trained = train_candidates(params, features, sets)
        del features  # on Dask the matrices' last reference: the worker holding them frees them
        selected = select_best(trained)
        report = report_on_test(selected, trained, references, sets, params.evaluate)
        fingerprint = fingerprint_selected(params, lineage, selected, trained, sets.test)
        log_training_run(run_id, params, sets, report, lineage)
        datasets = log_datasets(run_id, params, sets, lineage)
        example = sets.test.frame.head(EXAMPLE_ROWS)
        logged = log_models(run_id, experiment_id, trained, example, params, lineage, datasets)
        log_fingerprint(logged[selected.name], fingerprint)
        version = register_model(
            logged[selected.name], model_name, {**lineage.tags(), **(data_origin or {})}, selected.name
        )
        champion = measure_champion(model_name, version, sets.test, lineage, params.split)
        decision = gate_champion(selected, champion, references, report, params)
        promotion = record_decision(run_id, model_name, version, selected, champion, decision, report)
        describe_run(run_id, report, sets, lineage, version, decision)
        move_alias(model_name, version, decision)  # the last registry change: everything before it succeeded
        write_training_reports(params, report, promotion, fingerprint)
    if decision.promote and get_rollout_settings().serving_urls:
        rollout_flow(model_name)  # the new champion to the running servers (GIGMATCH_SERVING_URLS)
    elif decision.alias == CHALLENGER:
        shadow_rollout_flow(model_name)  # beside the champion, to earn its online evidence (if servers shadow)
    print(f"version {version} of {model_name} ({selected.name}) {decision.summary()}")
    return TrainingOutcome(selected.name, version, decision, report.metrics)


def train_candidates(
    params: Params, features: FeatureMatrices | Future[FeatureMatrices], sets: SplitSets
) -> list[TrainedModel]:
    """Every candidate in params.yaml trained through the flow's task runner, on the matrices and the outcomes.

    Waits for them here: on Dask the task runner's client submits a task run after this returns, and
    the cluster forgets a Future's data as soon as no client holds it (a candidate then fails with
    "lost dependencies"), so what the candidates read is held until they end."""
    matrices, outcomes = shared_with_candidates(params, features), shared_with_candidates(params, sets.outcomes_only())
    fits: list[PrefectFuture[TrainedModel]] = []
    for name, spec in params.train.models.items():
        before = fits[-1:] if one_after_another(params) else []
        fits.append(train.submit(name, spec, matrices, outcomes, params, return_state=False, wait_for=before))
    return [fit.result() for fit in fits]


def run_training(params_path: Path = Path("params.yaml"), data_origin: dict[str, str] | None = None) -> TrainingOutcome:
    """Run the flow on the engine params.yaml names: the candidates in threads sized from it, or on the cluster."""
    params = load_params(params_path)
    # BLAS pools are process-wide: cap them around the whole flow too, so a model
    # finishing first cannot restore the default for one still training beside it.
    with threadpool_limits(limits=params.train.threads), engine_session(params.engine) as engine:
        flow_run = train_flow.with_options(task_runner=candidate_runner(params))
        with api_the_workers_reach(params):
            return flow_run(params_path=params_path, data_origin=data_origin, engine=engine)


@flow(name="gigmatch-train-on-worker", log_prints=True)
def worker_train_flow(params_path: str = "params.yaml") -> None:
    """What the training deployment runs on a worker (`pipelines.deployments.TRAINING`): the training
    flow as a subflow, with the task runner and BLAS caps of params.yaml, which a deployment's entrypoint
    cannot set on the flow it names."""
    outcome = run_training(Path(params_path))
    print(f"version {outcome.version} ({outcome.selected}) {outcome.decision.summary()}")


# ---------------------------------------------------------------- tasks


@task(name="open-experiment", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def open_experiment(experiment: str) -> str:
    settings = get_tracking_settings()
    tracking.configure(settings)
    return tracking.ensure_experiment(experiment, settings)


@task(name="load-snapshot", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def load_snapshot(
    data_dir: Path, engine: EngineParams
) -> tuple[dict[str, pd.DataFrame], Lineage, JobPartitions | None]:
    """The snapshot's tables, checked; on Dask the tables that grow with the applications are checked on the
    workers and not read here: they stay there, in partitions of whole jobs, for the next task."""
    partitions = None
    if engine.kind == "dask":
        from gigmatch.scale.validation import validate_snapshot_on_dask  # Dask is an optional extra

        validated = validate_snapshot_on_dask(data_dir, engine.partition_rows)
        frames, partitions = validated.frames, validated.partitions
    else:
        frames = read_tables(data_dir)
    note = profile_statistics_note(frames)
    if note:
        get_run_logger().warning(note)
    return frames, current_lineage(data_dir), partitions


@task(name="split-by-time", cache_policy=NO_CACHE)
def split_by_time(frames: dict[str, pd.DataFrame], split: SplitParams) -> SplitSets:
    return split_snapshot(frames, split)


@task(name="fit-features", cache_policy=NO_CACHE)
def fit_features(sets: SplitSets, text_max_features: int) -> FeatureMatrices:
    return fit_feature_matrices(sets, text_max_features)


@task(name="split-and-fit-features-on-dask", cache_policy=NO_CACHE)
def split_and_fit_features_on_dask(
    frames: dict[str, pd.DataFrame], partitions: JobPartitions, params: Params
) -> tuple[SplitSets, Future[FeatureMatrices]]:
    """The matrices stay on the worker that assembled them: the candidates train beside them."""
    from gigmatch.scale.features import splits_on_dask  # Dask is an optional extra

    return splits_on_dask(frames, partitions, params.split, params.train.text_max_features)


@task(name="train-model", cache_policy=NO_CACHE)
def train(name: str, spec: ModelSpec, features: FeatureMatrices, sets: SplitSets, params: Params) -> TrainedModel:
    """`sets`: the splits' outcomes (`SplitSets.outcomes_only`), all a candidate's fit and figures read."""
    fit = ranker_fit(params.engine, spec, params.train.seed, params.train.threads)  # on the cluster run_training opened
    trained = train_model(name, spec, features, sets, params.train.seed, params.train.threads, fit)
    figures = trained.figures
    get_run_logger().info(
        "%s: valid NDCG@10 %.4f, test NDCG@10 %.4f", name, figures.valid["ndcg_at_10"], figures.test["ndcg_at_10"]
    )
    return trained


@task(name="evaluate-baselines", cache_policy=NO_CACHE)
def evaluate_baselines(test: EvaluationSet, evaluate: EvaluateParams) -> ReferenceFigures:
    return evaluate_references(test, evaluate.baseline_seed)


@task(name="select-model", cache_policy=NO_CACHE)
def select_best(trained: list[TrainedModel]) -> TrainedModel:
    return select_model(trained)


@task(name="report-on-test", cache_policy=NO_CACHE)
def report_on_test(
    selected: TrainedModel,
    trained: list[TrainedModel],
    references: ReferenceFigures,
    sets: SplitSets,
    evaluate: EvaluateParams,
) -> TrainingReport:
    return build_report(selected, trained, references, sets.test, evaluate)


@task(name="log-training-run", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def log_training_run(run_id: str, params: Params, sets: SplitSets, report: TrainingReport, lineage: Lineage) -> None:
    metrics = {f"{split}.{k}": v for split in ("test", "valid") for k, v in report.metrics[split].items()}  # type: ignore[attr-defined]
    run_params = {
        "split.valid_fraction": params.split.valid_fraction,
        "split.test_fraction": params.split.test_fraction,
        "train.seed": params.train.seed,
        "data_md5": lineage.data_md5,
        **{f"jobs.{name}": count for name, count in sets.job_counts.items()},
    }
    tracking.log_figures(run_id, run_params, metrics, {"selected_model": report.selected})


@task(name="log-datasets", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def log_datasets(run_id: str, params: Params, sets: SplitSets, lineage: Lineage) -> list[SplitDataset]:
    """The splits of the snapshot as the run's MLflow datasets: its DVC hash, and where DVC keeps it."""
    remote = remote_url(Path.cwd(), get_team_settings().dvc_remote)
    uri = snapshot_uri(params.data.dir, lineage, remote)
    datasets = split_datasets(sets, lineage, uri, split_tag(params.split))
    tracking.log_datasets(run_id, datasets)
    return datasets


@task(name="log-models", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def log_models(
    parent_run_id: str,
    experiment_id: str,
    trained: list[TrainedModel],
    example: pd.DataFrame,
    params: Params,
    lineage: Lineage,
    datasets: list[SplitDataset],
) -> dict[str, tracking.LoggedModel]:
    """One nested MLflow run per trained model: its params, metrics, datasets and the model itself."""
    logged = {}
    tags = {**lineage.tags(), "split": split_tag(params.split), **tracking.source_tags(SOURCE, lineage.git_commit)}
    for model in trained:
        spec = params.train.models[model.name]
        with tracking.run(experiment_id, model.name, parent_run_id, tags) as run_id:
            metrics = {f"valid_{k}": v for k, v in model.figures.valid.items()}
            metrics |= {f"test_{k}": v for k, v in model.figures.test.items()}
            run_params = {
                "kind": spec.kind,
                "seed": params.train.seed,
                **{f"model.{k}": v for k, v in spec.params.items()},
            }
            tracking.log_figures(run_id, run_params, metrics, {"model_spec": model.name})
            tracking.log_datasets(run_id, datasets)  # the same splits: candidates compare side by side
            predict_fn = "predict_proba" if is_probabilistic(model.model) else "predict"
            logged[model.name] = tracking.log_model(run_id, model.model, example, predict_fn)
    return logged


@task(name="register-model", cache_policy=NO_CACHE)
def register_model(logged: tracking.LoggedModel, model_name: str, lineage_tags: dict[str, str], selected: str) -> str:
    """The version's tags: its lineage (data md5, commit) and, for a retraining, where its data came from."""
    return tracking.register(logged.model_uri, model_name, {**lineage_tags, "model_spec": selected})


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
    model_name: str, version: str, test: EvaluationSet, lineage: Lineage, split: SplitParams
) -> Champion:
    """The current champion's test NDCG@10 on this run's test split.

    A champion fitted by other feature code (another features version, or classes this
    code no longer has) cannot be scored here; its recorded figure stands in only if
    it was measured on this very test split, else the gate cannot compare (GateError).
    """
    champion = tracking.alias_version(model_name, CHAMPION)
    if champion is None or champion == version:
        return Champion(None, None)
    try:
        model = tracking.load_version(model_name, champion)
        return Champion(champion, ranking_metrics(test, match_scores(model, test.frame))["ndcg_at_10"])
    except (IncompatibleFeaturesError, UntrustedModelError) as exc:
        recorded = tracking.recorded_figures(model_name, champion).stand_in_for(lineage.data_md5, split_tag(split))
        if recorded is None:
            raise GateError(
                f"champion version {champion} cannot be scored by this code ({exc}) and was measured on other data "
                "or another split, so the gate cannot compare: move the alias by hand after review, or retrain it"
            ) from exc
        get_run_logger().warning("champion %s: %s; using its recorded test NDCG@10", champion, exc)
        return Champion(champion, recorded)


@task(name="gate-champion", cache_policy=NO_CACHE)
def gate_champion(
    selected: TrainedModel, champion: Champion, references: ReferenceFigures, report: TrainingReport, params: Params
) -> Decision:
    figures = GateFigures(
        selected.figures.test["ndcg_at_10"],
        champion.test_ndcg_at_10,
        references.test["skill_overlap"]["ndcg_at_10"],
        report.fairness.ratio,
    )
    decision = decide(figures, params.promote.min_improvement, params.promote.min_fairness_ratio)
    return hold_for_online_evidence(decision, champion.version, params.promote.online)


@task(name="record-decision", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def record_decision(
    run_id: str,
    model_name: str,
    version: str,
    selected: TrainedModel,
    champion: Champion,
    decision: Decision,
    report: TrainingReport,
) -> dict[str, object]:
    """What the registry is about to do and why, with the slices it was decided on, in the training run."""
    promotion = promotion_record(model_name, version, selected.name, champion.version, decision)
    tracking.log_json(run_id, promotion, "promotion.json")
    tracking.log_json(run_id, report.slices, "slices.json")
    tracking.log_figures(run_id, {}, {}, {"promotion.decision": decision.alias, "registered_version": version})
    return promotion


@task(name="describe-run", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def describe_run(
    run_id: str, report: TrainingReport, sets: SplitSets, lineage: Lineage, version: str, decision: Decision
) -> None:
    """The run's description for people reading it in MLflow, from its own figures."""
    pinned = "the version data.dvc pins" if lineage.data_pinned else "not the version data.dvc pins"
    outcome = f"Registered as version {version}: {decision.summary()}."
    tracking.describe(run_id, run_description(report, sets.job_counts, f"`{lineage.data_md5}` ({pinned})", outcome))


@task(name="move-alias", cache_policy=NO_CACHE)
def move_alias(model_name: str, version: str, decision: Decision) -> None:
    # The verdict first: online evidence may promote a challenger only if the offline gate passed it.
    tracking.set_version_tag(model_name, version, OFFLINE_GATE_TAG, "passed" if decision.passed_offline else "failed")
    tracking.set_alias(model_name, decision.alias, version)
    if decision.alias == CHAMPION:
        tracking.record_champion(model_name, version)  # what `gigmatch rollback` returns along


@task(name="fingerprint-model", cache_policy=NO_CACHE)
def fingerprint_selected(
    params: Params, lineage: Lineage, selected: TrainedModel, trained: list[TrainedModel], test: EvaluationSet
) -> RecordedFingerprint:
    """The selected model's fingerprint; the committed file is kept when this is numerically the same model."""
    fresh = model_fingerprint(params, lineage.data_md5, selected, trained, test)
    recorded = record_fingerprint(Path(params.train.reports_dir), fresh, lineage.git_commit, lineage.git_dirty)
    get_run_logger().info("%s: %s", FINGERPRINT_FILE, recorded.why)
    return recorded


@task(name="log-fingerprint", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def log_fingerprint(logged: tracking.LoggedModel, fingerprint: RecordedFingerprint) -> None:
    """With the selected model's run, so that an export of its version carries its fingerprint."""
    tracking.log_json(logged.run_id, fingerprint.committed, FINGERPRINT_FILE)
    tracking.log_json(logged.run_id, fingerprint.local, LOCAL_FINGERPRINT_FILE)


@task(name="write-reports", cache_policy=NO_CACHE)
def write_training_reports(
    params: Params, report: TrainingReport, promotion: dict[str, object], fingerprint: RecordedFingerprint
) -> None:
    """The DVC metrics and plots, the promotion record, and the selected model's fingerprint."""
    write_reports(params.train.reports_dir, report, promotion)
    write_recorded(Path(params.train.reports_dir), fingerprint)
