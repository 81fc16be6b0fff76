"""The training flow with the real Prefect (test harness) and a real MLflow store.

The champion gate is exercised end to end: a better model is promoted, a worse
one is not, and a flow that fails part-way never moves the champion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from mlflow import MlflowClient

from gigmatch.training.promotion import CHALLENGER, CHAMPION
from pipelines.training import run_training

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.usefixtures("prefect_harness", "mlflow_store"), pytest.mark.slow]

GOOD = {"logistic": {"kind": "logistic", "params": {"C": 1.0}}}
# A single stump: it can tell at most two groups of applicants apart.
CRIPPLED = {"stump": {"kind": "gbm_classifier", "params": {"max_iter": 1, "max_depth": 1, "learning_rate": 0.01}}}


def _params(tmp_path: Path, snapshot: Path, models: dict[str, Any], **sections: dict[str, Any]) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["dir"] = str(snapshot)
    raw["train"]["models"] = models
    raw["train"]["reports_dir"] = str(tmp_path / "reports")
    # 60 test jobs make the exposure ratio noisy; the gate's logic, not its default bound, is under test.
    raw["evaluate"]["fairness_min_qualified"] = 20
    raw["promote"]["min_fairness_ratio"] = 0.4
    for section, values in sections.items():
        raw[section].update(values)
    path = tmp_path / f"params-{len(list(tmp_path.glob('params-*')))}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _alias(alias: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias("gigmatch-ranker", alias).version)
    except Exception:
        return None


def test_first_run_registers_and_promotes(tmp_path: Path, training_snapshot: Path) -> None:
    outcome = run_training(_params(tmp_path, training_snapshot, GOOD))

    assert outcome.decision.promote and _alias(CHAMPION) == outcome.version == "1"
    metrics = json.loads((tmp_path / "reports" / "train_metrics.json").read_text())
    for key in ("ndcg_at_10", "oracle_ndcg_at_10", "baseline_skill_overlap_ndcg_at_10", "baseline_random_ndcg_at_10"):
        assert 0 < metrics["test"][key] <= 1
    assert metrics["test"]["ndcg_at_10"] > metrics["test"]["baseline_skill_overlap_ndcg_at_10"]
    promotion = json.loads((tmp_path / "reports" / "promotion.json").read_text())
    assert promotion["promote"] is True and "there is no champion yet" in " ".join(promotion["reasons"])
    # Lineage and the decision are in MLflow too.
    version = MlflowClient().get_model_version("gigmatch-ranker", outcome.version)
    run = MlflowClient().get_run(version.run_id)
    assert run.data.tags["data_md5"].endswith(".dir") and run.data.tags["git_commit"]
    parent = MlflowClient().get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["promotion.decision"] == CHAMPION and parent.info.status == "FINISHED"
    # Its splits are the run's MLflow datasets: the snapshot's DVC hash, where it was read (not the pinned version).
    datasets = {d.tags[0].value: d.dataset for d in parent.inputs.dataset_inputs}
    assert set(datasets) == {"training", "validation", "test"}
    for context, split in (("training", "train"), ("validation", "valid"), ("test", "test")):
        dataset = datasets[context]
        assert dataset.digest == run.data.tags["data_md5"] and dataset.name == f"snapshot-{split}"
        assert json.loads(dataset.source) == {"uri": str(training_snapshot.resolve())}
        assert json.loads(dataset.profile)["jobs"] == int(parent.data.params[f"jobs.{split}"])
    candidate = MlflowClient().get_run(version.run_id)  # the same datasets: the candidates compare side by side
    assert {d.dataset.digest for d in candidate.inputs.dataset_inputs} == {run.data.tags["data_md5"]}
    assert len(candidate.inputs.dataset_inputs) == 3
    # A description from the run's own figures, and its source.
    description = parent.data.tags["mlflow.note.content"]
    assert f"**{outcome.selected}**: test NDCG@10 {metrics['test']['ndcg_at_10']:.4f}" in description
    assert f"skill-overlap baseline {metrics['test']['baseline_skill_overlap_ndcg_at_10']:.4f}" in description
    assert run.data.tags["data_md5"] in description and f"Registered as version {outcome.version}" in description
    assert parent.data.tags["mlflow.source.name"].startswith("gigmatch train")
    assert parent.data.tags["mlflow.source.git.commit"] == run.data.tags["git_commit"]


def test_worse_model_is_not_promoted(tmp_path: Path, training_snapshot: Path) -> None:
    champion = run_training(_params(tmp_path, training_snapshot, GOOD)).version

    outcome = run_training(_params(tmp_path, training_snapshot, CRIPPLED))

    assert not outcome.decision.promote
    assert _alias(CHAMPION) == champion and _alias(CHALLENGER) == outcome.version
    assert any(r.startswith("failed: test NDCG@10") and "vs champion" in r for r in outcome.decision.reasons)


def test_better_model_replaces_a_weaker_champion(tmp_path: Path, training_snapshot: Path) -> None:
    weak = run_training(_params(tmp_path, training_snapshot, CRIPPLED)).version
    MlflowClient().set_registered_model_alias("gigmatch-ranker", CHAMPION, weak)  # an old, weaker champion

    outcome = run_training(_params(tmp_path, training_snapshot, GOOD))

    assert outcome.decision.promote and _alias(CHAMPION) == outcome.version != weak
    assert any("vs champion" in r for r in outcome.decision.reasons)


def test_same_inputs_leave_the_champion_in_place(tmp_path: Path, training_snapshot: Path) -> None:
    params = _params(tmp_path, training_snapshot, GOOD)
    first = run_training(params)
    second = run_training(params)

    assert _alias(CHAMPION) == first.version and _alias(CHALLENGER) == second.version
    assert first.metrics == second.metrics, "same data and params must give the same figures"


def test_unfair_model_is_not_promoted(tmp_path: Path, training_snapshot: Path) -> None:
    outcome = run_training(_params(tmp_path, training_snapshot, GOOD, promote={"min_fairness_ratio": 1.0}))
    assert not outcome.decision.promote and _alias(CHAMPION) is None
    assert any(r.startswith("failed: exposure fairness ratio") for r in outcome.decision.reasons)


def test_a_failed_fit_never_moves_the_champion(tmp_path: Path, training_snapshot: Path) -> None:
    champion = run_training(_params(tmp_path, training_snapshot, GOOD)).version
    broken = {**GOOD, "broken": {"kind": "gbm_classifier", "params": {"max_iter": 0}}}

    with pytest.raises(Exception, match="max_iter"):
        run_training(_params(tmp_path, training_snapshot, broken))

    assert _alias(CHAMPION) == champion
    assert [str(v.version) for v in MlflowClient().search_model_versions("name='gigmatch-ranker'")] == [champion]
    failed = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("gigmatch").experiment_id], "attributes.status = 'FAILED'"
    )
    assert failed, "the interrupted run is marked FAILED in MLflow"


def test_failure_after_registration_never_moves_the_champion(tmp_path: Path, training_snapshot: Path) -> None:
    champion = run_training(_params(tmp_path, training_snapshot, GOOD)).version
    # Break the stored champion: measuring it on the test split now fails, after registration.
    stored = list((tmp_path / "mlruns").rglob("model.skops"))
    assert stored
    for model_file in stored:
        model_file.write_bytes(b"corrupt")

    with pytest.raises(Exception):  # noqa: B017 - any failure will do; the point is what it leaves behind
        run_training(_params(tmp_path, training_snapshot, GOOD))

    assert _alias(CHAMPION) == champion
    versions = sorted(int(v.version) for v in MlflowClient().search_model_versions("name='gigmatch-ranker'"))
    assert versions == [int(champion), int(champion) + 1], "the new version is registered but carries no alias"
    assert _alias(CHALLENGER) is None


def test_export_champion_bundle_and_serve_it(tmp_path: Path, training_snapshot: Path) -> None:
    """train -> export -> serve: the bundle carries its lineage and answers /v1/match."""
    from fastapi.testclient import TestClient

    from gigmatch.cli import ExitCode, main
    from gigmatch.data.snapshot import read_tables
    from serving.main import create_app
    from serving.settings import ServingSettings
    from tests.conftest import request_for

    params = _params(tmp_path, training_snapshot, GOOD)
    assert main(["export", "--out", str(tmp_path / "none"), "--params", str(params)]) == ExitCode.ERROR
    outcome = run_training(params)

    assert main(["export", "--out", str(tmp_path / "bundle"), "--params", str(params)]) == ExitCode.OK

    lineage = json.loads((tmp_path / "bundle" / "lineage.json").read_text())
    assert lineage["version"] == outcome.version and lineage["model_spec"] == "logistic"
    assert lineage["data_md5"].endswith(".dir") and lineage["test_metrics"]["ndcg_at_10"] > 0
    frames = read_tables(training_snapshot)
    job, candidates = request_for(int(frames["jobs"]["job_id"].iloc[-1]), frames)
    settings = ServingSettings(bundle_path=tmp_path / "bundle", log_dir=tmp_path / "logs")
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/match", json={"job": job, "candidates": candidates})
    assert response.status_code == 200 and response.json()["model_version"] == outcome.version

    # The bundle carries the version's fingerprint as committed: the one file of it DVC hashes.
    committed = (tmp_path / "reports" / "fingerprint.json").read_bytes()
    assert (tmp_path / "bundle" / "fingerprint.json").read_bytes() == committed
    # A version registered before models carried it (here: its artifact removed) still exports.
    run_id = MlflowClient().get_model_version("gigmatch-ranker", outcome.version).run_id
    artifacts = Path(urlparse(MlflowClient().get_run(run_id or "").info.artifact_uri).path)
    (artifacts / "fingerprint.json").unlink()
    assert main(["export", "--out", str(tmp_path / "bundle"), "--params", str(params)]) == ExitCode.OK
    stand_in = json.loads((tmp_path / "bundle" / "fingerprint.json").read_text())
    assert stand_in["registered_without_fingerprint"] is True and stand_in["version"] == outcome.version


def test_champion_from_older_feature_code_is_compared_by_its_recorded_figure(
    tmp_path: Path, training_snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a feature-code change the champion cannot be re-scored; on the same split its recorded figure stands in."""
    from gigmatch.features import transformer as features

    champion = run_training(_params(tmp_path, training_snapshot, GOOD)).version
    monkeypatch.setattr(features, "FEATURES_VERSION", features.FEATURES_VERSION + 1)

    outcome = run_training(_params(tmp_path, training_snapshot, GOOD))

    assert not outcome.decision.promote and _alias(CHAMPION) == champion
    assert any("vs champion" in r for r in outcome.decision.reasons)


def test_incomparable_champion_blocks_the_gate_loudly(
    tmp_path: Path, training_snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gigmatch.features import transformer as features
    from gigmatch.training.promotion import GateError

    champion = run_training(_params(tmp_path, training_snapshot, GOOD)).version
    monkeypatch.setattr(features, "FEATURES_VERSION", features.FEATURES_VERSION + 1)

    with pytest.raises(GateError, match="cannot be scored by this code"):
        run_training(_params(tmp_path, training_snapshot, GOOD, split={"test_fraction": 0.2}))
    assert _alias(CHAMPION) == champion and _alias(CHALLENGER) is None


def test_champion_whose_classes_moved_is_compared_by_its_recorded_figure(
    tmp_path: Path, training_snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A champion pickled with a class this code no longer has (the feature code moved) is not loaded
    on trust: on the same split its recorded figure stands in; on another, the gate refuses to decide."""
    from gigmatch.model import bundle
    from gigmatch.model.pipeline import TRUSTED_MODEL_TYPES
    from gigmatch.training import fitting
    from gigmatch.training.promotion import GateError
    from pipelines import tracking

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "legacy_gigmatch_features.py").write_text(
        "from gigmatch.features.transformer import MatchFeatures as Moved\n\n\nclass MatchFeatures(Moved):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(legacy))
    import legacy_gigmatch_features  # type: ignore[import-not-found]

    trusted = (*TRUSTED_MODEL_TYPES, "legacy_gigmatch_features.MatchFeatures")
    with monkeypatch.context() as old_code:  # the code the champion was trained with
        old_code.setattr(fitting, "MatchFeatures", legacy_gigmatch_features.MatchFeatures)
        old_code.setattr(tracking, "TRUSTED_MODEL_TYPES", trusted)
        old_code.setattr(bundle, "TRUSTED_MODEL_TYPES", trusted)
        champion = run_training(_params(tmp_path, training_snapshot, GOOD)).version

    outcome = run_training(_params(tmp_path, training_snapshot, GOOD))
    assert not outcome.decision.promote and _alias(CHAMPION) == champion
    assert any("vs champion" in r for r in outcome.decision.reasons)

    with pytest.raises(GateError, match="cannot be scored by this code"):
        run_training(_params(tmp_path, training_snapshot, GOOD, split={"test_fraction": 0.2}))
    assert _alias(CHAMPION) == champion


def test_the_dask_engine_trains_the_ranker_on_a_cluster_and_serves_it_unchanged(
    tmp_path: Path, training_snapshot: Path
) -> None:
    """engine.kind dask: a local cluster for the run, the ranker fitted on its two workers, the engine in the
    run's tags, and the model exported and served through the same bundle as one trained in-process."""
    from fastapi.testclient import TestClient

    from gigmatch.cli import ExitCode, main
    from gigmatch.data.snapshot import read_tables
    from serving.main import create_app
    from serving.settings import ServingSettings
    from tests.conftest import request_for

    ranker = {"lambdarank": {"kind": "lambdarank", "params": {"n_estimators": 60, "num_leaves": 15}}}
    engine = {"kind": "dask", "partition_rows": 1000, "workers": 2}  # about six partitions of training rows
    params = _params(tmp_path, training_snapshot, {**CRIPPLED, **ranker}, engine=engine)
    outcome = run_training(params)
    assert outcome.selected == "lambdarank"
    # One candidate at a time beside the one copy of the matrices, each starting once the one before it ended.
    trained = _candidate_runs_of_the_latest_training()
    assert len(trained) == 2 and trained[0].end_time <= trained[1].start_time, trained

    version = MlflowClient().get_model_version("gigmatch-ranker", outcome.version)
    tags = MlflowClient().get_run(MlflowClient().get_run(version.run_id).data.tags["mlflow.parentRunId"]).data.tags
    assert tags["engine"].startswith("dask at tcp://127.0.0.1:") and ": 2 workers, 2 threads" in tags["engine"]
    assert main(["export", "--out", str(tmp_path / "bundle"), "--params", str(params)]) == ExitCode.OK
    frames = read_tables(training_snapshot)
    job, candidates = request_for(int(frames["jobs"]["job_id"].iloc[-1]), frames)
    settings = ServingSettings(bundle_path=tmp_path / "bundle", log_dir=tmp_path / "logs")
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/match", json={"job": job, "candidates": candidates}).json()
    assert answer["model_version"] == outcome.version and all(len(c["reasons"]) == 3 for c in answer["candidates"])


def _candidate_runs_of_the_latest_training() -> list[Any]:
    """The `train-model` task runs of the latest `gigmatch-train` flow run, in the order they started."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        latest = client.read_flow_runs(
            flow_filter=filters.FlowFilter(name=filters.FlowFilterName(any_=["gigmatch-train"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )[0]
        of_latest = filters.TaskRunFilter(
            flow_run_id=filters.TaskRunFilterFlowRunId(any_=[latest.id]),
            name=filters.TaskRunFilterName(like_="train-model"),
        )
        runs = client.read_task_runs(task_run_filter=of_latest)
    return sorted(runs, key=lambda r: r.start_time)


FEATURE_TASKS = ("_featurised",)  # the tasks that join and featurise the partitions (gigmatch.scale.features)


def test_training_on_a_loopback_cluster_survives_a_lost_worker_and_refuses_bad_data(
    tmp_path: Path, training_snapshot: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIGMATCH_DASK_ADDRESS: a `dask scheduler` and two `dask worker` processes. A broken snapshot is refused
    as in-process (exit 2, the same findings, nothing registered); a worker killed while the partitions are
    featurised is survived (the scheduler runs its tasks again on the other), and the model is the in-process
    one: a linear candidate on the same matrices, the same figures exactly."""
    import shutil

    import pandas as pd
    from distributed import Client

    from devtools.dask_harness import loopback_cluster
    from gigmatch.cli import ExitCode, main

    broken = tmp_path / "broken"
    shutil.copytree(training_snapshot, broken)
    applications = pd.read_parquet(broken / "applications.parquet")
    applications.loc[[5, 4000], "freelancer_id"] = 999_999
    applications.to_parquet(broken / "applications.parquet", index=False)
    assert main(["train", "--params", str(_params(tmp_path, broken, GOOD))]) == ExitCode.CONTRACT_BROKEN
    in_process_refusal = capsys.readouterr().err
    in_process = run_training(_params(tmp_path, training_snapshot, GOOD))
    with loopback_cluster(tmp_path / "cluster", workers=2) as cluster:
        monkeypatch.setenv("GIGMATCH_DASK_ADDRESS", cluster.address)
        engine = {"kind": "dask", "partition_rows": 1000}
        assert (
            main(["train", "--params", str(_params(tmp_path, broken, GOOD, engine=engine))]) == ExitCode.CONTRACT_BROKEN
        )
        refusal = capsys.readouterr().err
        assert "applications.freelancer_id: check 'foreign_key" in refusal
        assert refusal.split("violation(s)")[1] == in_process_refusal.split("violation(s)")[1]
        assert _alias(CHAMPION) == in_process.version  # nothing registered, nothing moved
        with cluster.killing_a_worker_while(FEATURE_TASKS) as killed:
            on_dask = run_training(_params(tmp_path, training_snapshot, GOOD, engine=engine))
        assert killed, "no worker was caught featurising: the partitions were done before the kill"
        assert sum(w.poll() is None for w in cluster.workers) == 1
        with Client(cluster.address, timeout=30) as client:  # the candidates ran there, as Prefect task runs
            prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        assert "train" in prefixes, prefixes
    assert all(p.poll() is not None for p in [cluster.scheduler, *cluster.workers])  # stopped by their PIDs
    assert on_dask.metrics == in_process.metrics
    assert on_dask.selected == in_process.selected and not on_dask.decision.promote  # the same model: no gain
