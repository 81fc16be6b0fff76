"""The Dask engine: partitions hold whole jobs, and batch scoring on a real cluster ranks exactly as in-process.

The clusters are real: a `distributed.LocalCluster` (the engine's default) and a
`dask scheduler` with two `dask worker` processes on loopback (`devtools.dask_harness`),
one of which is killed in the middle of a job. Every process is stopped by its PID.
"""

from __future__ import annotations

import itertools
import time
from functools import partial
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightgbm import LGBMRanker
from scipy.stats import spearmanr

from devtools.dask_harness import loopback_cluster
from gigmatch.cli import ExitCode, main
from gigmatch.data.snapshot import read_tables
from gigmatch.features.match_frame import build_match_frame
from gigmatch.model.pipeline import estimator_of
from gigmatch.params import EngineParams, ModelSpec, Params
from gigmatch.scale.cluster import dask_client
from gigmatch.scale.partitions import by_job
from gigmatch.scale.training import WorkerLostError, fit_ranker_on_dask, job_chunks
from gigmatch.training.fitting import FeatureMatrices, fit_feature_matrices, train_model
from gigmatch.training.splits import SplitSets, split_snapshot
from tests.conftest import params_with_engine

pytestmark = pytest.mark.slow


def split_jobs(frame: dd.DataFrame) -> list[int]:
    """Job ids found in more than one partition (it reads every partition)."""
    per_partition = frame["job_id"].map_partitions(lambda jobs: pd.Series([jobs.unique()]), meta=(None, "object"))
    seen: dict[int, int] = {}
    for jobs in per_partition.compute():
        for job in jobs.tolist():
            seen[job] = seen.get(job, 0) + 1
    return sorted(job for job, count in seen.items() if count > 1)


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=80),
    input_partitions=st.integers(min_value=1, max_value=7),
    partition_rows=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=2**16),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_partitions_never_split_a_job(sizes: list[int], input_partitions: int, partition_rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    jobs = rng.choice(10**6, size=len(sizes), replace=False)
    rows = pd.DataFrame({"job_id": np.repeat(jobs, sizes), "row": np.arange(sum(sizes))})
    rows = rows.iloc[rng.permutation(len(rows))].reset_index(drop=True)  # a job's rows scattered over the input
    frame = by_job(dd.from_pandas(rows, npartitions=input_partitions), partition_rows)
    assert split_jobs(frame) == []
    size_of = dict(zip(jobs.tolist(), sizes, strict=True))
    for part in (partition.compute() for partition in frame.partitions):
        if len(part):  # at most partition_rows rows, plus its last job's
            assert len(part) - size_of[int(part["job_id"].iloc[-1])] < partition_rows
    together = frame.compute()
    assert sorted(together["row"]) == list(range(sum(sizes)))  # nothing lost, nothing doubled
    assert together["job_id"].is_monotonic_increasing  # jobs in order, partition after partition
    if sum(sizes) > 2 * partition_rows + 2 * max(sizes):  # enough rows for several partitions: they are cut
        assert frame.npartitions > 1


@pytest.fixture(scope="module")
def match_input(tmp_path_factory: pytest.TempPathFactory, training_snapshot: Path) -> Path:
    """A folder of Parquet files of match rows, a job's rows spread over several files (as a client's export may be)."""
    frames = read_tables(training_snapshot)
    table = build_match_frame(frames["applications"], frames["jobs"], frames["freelancers"])
    copies = []
    for copy in range(4):  # four times the snapshot's jobs: enough partitions for a worker to die mid-job
        copies.append(table.assign(job_id=table["job_id"] + copy * 10**6))
    table = pd.concat(copies, ignore_index=True)
    table = table.iloc[np.random.default_rng(3).permutation(len(table))].reset_index(drop=True)
    folder = tmp_path_factory.mktemp("match-input") / "rows"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(table)), 5)):
        table.iloc[part].to_parquet(folder / f"export-{i}.parquet", index=False)
    return folder


def _score(match_input: Path, out: Path, bundle_dir: Path, params: Path | None = None) -> int:
    extra = ["--params", str(params)] if params else []
    return main(["score", str(match_input), str(out), "--bundle", str(bundle_dir), *extra])


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory, match_input: Path, bundle_dir: Path) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("in-process") / "ranked.parquet"
    assert _score(match_input, out, bundle_dir) == 0
    return pd.read_parquet(out)


def test_scoring_on_a_local_cluster_ranks_exactly_as_in_process(
    tmp_path: Path, match_input: Path, bundle_dir: Path, in_process: pd.DataFrame
) -> None:
    out = tmp_path / "ranked"
    params = params_with_engine(tmp_path, kind="dask", partition_rows=5000, workers=2)
    assert _score(match_input, out, bundle_dir, params) == 0
    files = sorted(out.glob("*.parquet"))
    assert len(files) >= 8  # 38,000 rows in partitions of about 5,000
    ranked = pd.read_parquet(out)
    pd.testing.assert_frame_equal(ranked.reset_index(drop=True), in_process)  # the same rows, order and bits
    first_jobs = [pd.read_parquet(f, columns=["job_id"])["job_id"] for f in files]
    assert all(a.max() < b.min() for a, b in itertools.pairwise(first_jobs))  # whole jobs per file


SCORING_STAGES = ("rank_partition", "toparquet")  # the tasks that rank partitions and write them, not the cuts


def test_a_worker_killed_mid_job_is_survived_on_a_loopback_cluster(
    tmp_path: Path, match_input: Path, bundle_dir: Path, in_process: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:

    with loopback_cluster(tmp_path / "cluster", workers=2) as cluster:
        monkeypatch.setenv("GIGMATCH_DASK_ADDRESS", cluster.address)
        params = params_with_engine(tmp_path, kind="dask", partition_rows=1000)
        with cluster.killing_a_worker_while(SCORING_STAGES, timeout=120) as killed:
            code = _score(match_input, tmp_path / "ranked", bundle_dir, params)
        assert killed, "no worker was caught ranking: the job ended before the kill"
        assert sum(w.poll() is None for w in cluster.workers) == 1
        assert code == 0  # the scheduler ran the lost worker's tasks again on the other one
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ranked").reset_index(drop=True), in_process)
    assert all(p.poll() is not None for p in [cluster.scheduler, *cluster.workers])  # stopped by their PIDs


def test_bad_input_on_dask_is_refused_as_in_process(
    tmp_path: Path, match_input: Path, bundle_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = params_with_engine(tmp_path, kind="dask", partition_rows=5000, workers=2)
    out = tmp_path / "ranked"
    out.mkdir()
    (out / "earlier.parquet").write_bytes(b"an earlier run's output")
    thin = tmp_path / "thin"
    thin.mkdir()
    pd.DataFrame({"job_id": [1], "freelancer_id": [2]}).to_parquet(thin / "a.parquet")
    assert _score(thin, out, bundle_dir, params) == ExitCode.CONTRACT_BROKEN
    assert "input lacks the match columns: " in capsys.readouterr().err
    # A value no match column takes, in one file of five: found on a worker, the same message as in-process.
    broken = tmp_path / "broken"
    broken.mkdir()
    for i, path in enumerate(sorted(match_input.glob("*.parquet"))):
        part = pd.read_parquet(path)
        part["budget_usd"] = part["budget_usd"].astype(str)  # as a spreadsheet export may hold it
        if i == 3:
            part.loc[part.index[7], "budget_usd"] = "a lot"
        part.to_parquet(broken / path.name, index=False)
    assert _score(broken, out, bundle_dir, params) == ExitCode.CONTRACT_BROKEN
    dask_error = capsys.readouterr().err
    assert _score(broken, tmp_path / "in-process.parquet", bundle_dir) == ExitCode.CONTRACT_BROKEN
    assert 'input values do not fit the match columns: Unable to parse string "a lot"' in dask_error
    assert dask_error.split("violation(s)")[1][:100] == capsys.readouterr().err.split("violation(s)")[1][:100]
    # A column whose type differs between files: named, with the files, before any partition is read.
    (broken / "export-0.parquet").write_bytes((match_input / "export-0.parquet").read_bytes())  # budget_usd: double
    assert _score(broken, out, bundle_dir, params) == ExitCode.CONTRACT_BROKEN
    refused = capsys.readouterr().err
    assert "input.budget_usd: check 'the same type in every file (4 of 5 differ)' failed" in refused
    assert "export-0.parquet: float" in refused and "export-1.parquet: string" in refused
    assert [p.name for p in out.iterdir()] == ["earlier.parquet"]  # nothing written over the earlier output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ranked")]  # no staging left behind


def test_an_unreachable_scheduler_is_named_within_the_timeout(
    tmp_path: Path,
    match_input: Path,
    bundle_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GIGMATCH_DASK_ADDRESS", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("GIGMATCH_DASK_CONNECT_TIMEOUT_SECONDS", "3")
    params = params_with_engine(tmp_path, kind="dask")
    start = time.monotonic()
    assert _score(match_input, tmp_path / "ranked", bundle_dir, params) == ExitCode.ERROR
    assert time.monotonic() - start < 30
    assert "cannot reach the Dask scheduler at GIGMATCH_DASK_ADDRESS=tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "ranked").exists()


RANKER = ModelSpec(kind="lambdarank", params={"n_estimators": 80, "learning_rate": 0.1, "num_leaves": 15})


@pytest.fixture(scope="module")
def training_sets(training_snapshot: Path, params: Params) -> tuple[SplitSets, FeatureMatrices]:
    sets = split_snapshot(read_tables(training_snapshot), params.split)
    return sets, fit_feature_matrices(sets, text_max_features=2000)


def test_job_chunks_cut_at_job_boundaries() -> None:
    group = np.repeat([3, 5, 8, 9, 20], [4, 1, 6, 2, 3])
    rows, jobs, sizes = job_chunks(group, partition_rows=5)
    assert rows == (5, 6, 5) and jobs == (2, 1, 2) and sizes.tolist() == [4, 1, 6, 2, 3]
    assert sum(rows) == len(group) and sum(jobs) == 5
    with pytest.raises(ValueError, match="contiguous"):
        job_chunks(np.array([1, 2, 1]), partition_rows=5)


def test_a_candidate_trained_on_the_outcomes_only_is_the_one_trained_on_the_whole_splits(
    training_sets: tuple[SplitSets, FeatureMatrices],
) -> None:
    """What the Dask engine sends to the workers the candidates train on: the same figures and scores, bit for
    bit, from a small share of the bytes (no texts)."""
    sets, features = training_sets
    lean = sets.outcomes_only()
    for name, spec in (("logistic", ModelSpec(kind="logistic", params={})), ("lambdarank", RANKER)):
        whole = train_model(name, spec, features, sets, seed=7, threads=1)
        outcomes = train_model(name, spec, features, lean, seed=7, threads=1)
        assert outcomes.figures == whole.figures, name
        np.testing.assert_array_equal(outcomes.test_scores, whole.test_scores)
    sizes = {n: (s.frame.memory_usage(deep=True).sum(), lean.by_name()[n].frame.memory_usage(deep=True).sum())
             for n, s in sets.by_name().items()}  # fmt: skip
    assert all(kept < whole / 20 for whole, kept in sizes.values()), sizes
    assert lean.job_counts == sets.job_counts
    assert all(np.array_equal(lean.by_name()[n].relevance, s.relevance) for n, s in sets.by_name().items())


def test_the_ranker_on_a_local_cluster_gives_the_in_process_model(
    training_sets: tuple[SplitSets, FeatureMatrices],
) -> None:
    """One partition: the same trees, bit for bit. Several: LightGBM's data-parallel learner ranks as the in-process
    model does (the check of LightGBM's own Dask tests: the scores' rank correlation), within 0.04 NDCG@10.

    The model moves from run to run (lightgbm.dask orders its workers and their partitions by `Client.who_has`,
    whose keys pass through a set). Measured in 12 runs at this size (1,446 test rows): test NDCG@10 0.615 to
    0.645 against 0.621 in-process, Spearman 0.942 to 0.954; MAP@10, 0.530 to 0.576 against 0.534, is too
    noisy on 100-odd test jobs to bound tightly."""
    sets, features = training_sets
    local = train_model("lambdarank", RANKER, features, sets, seed=7, threads=1)
    engine = EngineParams(kind="dask", partition_rows=1000, workers=2, worker_memory_gib=None)
    with dask_client(engine) as client:
        one = partial(fit_ranker_on_dask, client, RANKER.params, seed=7, partition_rows=10**7, threads=1)
        whole = train_model("lambdarank", RANKER, features, sets, seed=7, threads=1, fit=one)
        several = partial(fit_ranker_on_dask, client, RANKER.params, seed=7, partition_rows=1000, threads=1)
        split = train_model("lambdarank", RANKER, features, sets, seed=7, threads=1, fit=several)
    np.testing.assert_array_equal(whole.test_scores, local.test_scores)
    assert isinstance(estimator_of(split.model), LGBMRanker)  # a plain model: exported and served as one
    assert spearmanr(split.test_scores, local.test_scores).statistic > 0.9
    assert split.figures.test["ndcg_at_10"] == pytest.approx(local.figures.test["ndcg_at_10"], abs=0.04)
    assert len(job_chunks(sets.train.group, 1000)[0]) > 2  # several partitions: both workers hold some


def test_the_ranker_fitted_in_a_task_on_a_worker_trains_on_every_worker(
    training_sets: tuple[SplitSets, FeatureMatrices],
) -> None:
    """As the flow's candidates are (Prefect task runs on the workers): a task's `scatter` lands on its own
    worker, and LightGBM trains on the workers that hold parts, so the parts must reach the others."""
    from distributed import get_task_stream

    sets, features = training_sets
    local = train_model("lambdarank", RANKER, features, sets, seed=7, threads=1)
    engine = EngineParams(kind="dask", partition_rows=1000, workers=2, worker_memory_gib=None)
    fit = partial(fit_ranker_on_dask, None, RANKER.params, seed=7, partition_rows=1000, threads=1)
    with dask_client(engine) as client, get_task_stream(client) as stream:
        trained = client.submit(train_model, "lambdarank", RANKER, features, sets, 7, 1, fit).result()
        assert len(client.nthreads()) == 2
    trained_on = {task["worker"] for task in stream.data if "_train_part" in str(task["key"])}
    assert len(trained_on) == 2, stream.data
    assert isinstance(estimator_of(trained.model), LGBMRanker)
    assert spearmanr(trained.test_scores, local.test_scores).statistic > 0.9


def test_a_worker_lost_while_the_ranker_trains_fails_the_fit_promptly(
    tmp_path: Path, training_sets: tuple[SplitSets, FeatureMatrices]
) -> None:
    """LightGBM cannot give a lost worker's part to another (it waited for it forever): the fit fails, named.
    A worker LightGBM does not train on may leave: the fit goes on, to the model trained without the loss."""
    from distributed import Client

    sets, features = training_sets
    long_fit = {**RANKER.params, "n_estimators": 20_000}  # long enough to be caught training
    one_worker_fit = {**RANKER.params, "n_estimators": 1500}  # seconds: outlives the idle worker's loss
    expected = train_model("lambdarank", ModelSpec(kind="lambdarank", params=one_worker_fit), features, sets, 7, 1)
    with loopback_cluster(tmp_path / "cluster", workers=3) as cluster, Client(cluster.address, timeout=30) as client:
        one = partial(fit_ranker_on_dask, client, one_worker_fit, seed=7, partition_rows=10**7, threads=1)
        spec = ModelSpec(kind="lambdarank", params=one_worker_fit)
        with cluster.killing_a_worker_while(("_train_part",), timeout=120, busy=False) as killed:
            start = time.monotonic()
            survived = train_model("lambdarank", spec, features, sets, seed=7, threads=1, fit=one)
            fitted_seconds = time.monotonic() - start
        assert killed, "no idle worker was killed while one trained"
        assert len(client.ncores()) == 2  # asked of the scheduler (`scheduler_info` may answer from a cache)
        assert fitted_seconds > 2 * 0.5  # the fit watched the cluster after the loss (it looks twice a second)
        np.testing.assert_array_equal(survived.test_scores, expected.test_scores)  # one partition: bit for bit
        fit = partial(fit_ranker_on_dask, client, long_fit, seed=7, partition_rows=1000, threads=1)
        start = time.monotonic()
        lost = pytest.raises(WorkerLostError, match="left while LightGBM trained the ranker")
        with cluster.killing_a_worker_while(("_train_part",), timeout=120) as killed, lost:
            train_model("lambdarank", RANKER, features, sets, seed=7, threads=1, fit=fit)
        assert killed, "no worker was caught training"
        assert time.monotonic() - start < 90
    assert all(p.poll() is not None for p in [cluster.scheduler, *cluster.workers])


def test_scoring_needs_no_params_file_outside_a_checkout(
    tmp_path: Path, match_input: Path, bundle_dir: Path, in_process: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no params.yaml here: a bundle is all scoring needs
    assert main(["score", str(match_input), "ranked.parquet", "--bundle", str(bundle_dir)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ranked.parquet"), in_process)
    (tmp_path / "folder").mkdir()  # a Dask run's output: in-process scoring does not write a file over it
    assert main(["score", str(match_input), "folder", "--bundle", str(bundle_dir)]) == ExitCode.USAGE
    assert list((tmp_path / "folder").iterdir()) == []
