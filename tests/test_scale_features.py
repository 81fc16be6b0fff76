"""The training splits and feature matrices on Dask: the in-process ones, row for row and bit for bit."""

from __future__ import annotations

import sys
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import psutil
import pytest
from distributed import default_client

from gigmatch.data.contract import APPLICATIONS, SIMULATOR_TRUTH
from gigmatch.data.snapshot import read_tables
from gigmatch.features.transformer import MatchFeatures, fitting_rows
from gigmatch.params import Params
from gigmatch.scale.cluster import release_freed_memory
from gigmatch.scale.features import splits_on_dask
from gigmatch.scale.tables import ROW
from gigmatch.scale.validation import validate_snapshot_on_dask
from gigmatch.training.fitting import FeatureMatrices, fit_feature_matrices
from gigmatch.training.splits import SPLITS, SplitSets, split_snapshot
from tests.conftest import recut_snapshot

PARTITION_ROWS = 1000
TEXT_FEATURES = 2000


def _fitted(transformer: MatchFeatures) -> dict[str, object]:
    return {
        "skill_vocabulary": transformer.skill_vocabulary_.tolist(),
        "skill_rarity": transformer.skill_rarity_.tobytes(),
        "skill_category": transformer.skill_category_.tolist(),
        "term_idf": transformer.term_idf_,
        "rating_fill": transformer.rating_fill_,
        "success_rate_fill": transformer.success_rate_fill_,
    }


@pytest.fixture(scope="module")
def recut(training_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recut_snapshot(training_snapshot, tmp_path_factory.mktemp("recut") / "data")


@pytest.fixture(scope="module")
def in_process(recut: Path, params: Params) -> tuple[SplitSets, FeatureMatrices]:
    sets = split_snapshot(read_tables(recut), params.split)
    return sets, fit_feature_matrices(sets, TEXT_FEATURES)


def test_fitting_on_the_first_rows_learns_what_fitting_on_all_rows_learns(
    in_process: tuple[SplitSets, FeatureMatrices],
) -> None:
    sets, features = in_process
    train = sets.train.frame
    first = fitting_rows(train)
    assert len(first) < len(train) / 2  # a real reduction: freelancers apply to several jobs
    reduced = MatchFeatures(text_max_features=TEXT_FEATURES).fit(first)
    assert _fitted(reduced) == _fitted(features.transformer)
    np.testing.assert_array_equal(reduced.transform(sets.test.frame), features.matrices["test"])
    # Reduced part by part, then over the parts' rows: the whole frame's first rows.
    parts = np.array_split(np.arange(len(train)), 5)
    by_parts = fitting_rows(pd.concat([fitting_rows(train.iloc[rows]) for rows in parts], ignore_index=True))
    pd.testing.assert_frame_equal(by_parts, first)


def test_the_splits_and_features_on_dask_are_the_in_process_ones(
    local_dask_cluster: None, recut: Path, params: Params, in_process: tuple[SplitSets, FeatureMatrices]
) -> None:
    sets, features = in_process
    validated = validate_snapshot_on_dask(recut, PARTITION_ROWS)
    frames, partitions = validated.frames, validated.partitions
    assert APPLICATIONS not in frames and SIMULATOR_TRUTH not in frames  # the big tables stay on the workers
    # ... in partitions of whole jobs, every row of the table once, as the check left them.
    parts = dask.compute(*partitions.applications)
    assert len(parts) > 5
    jobs = [set(part["job_id"]) for part in parts]
    assert sum(len(j) for j in jobs) == len(set().union(*jobs))
    rows = np.sort(np.concatenate([part[ROW].to_numpy() for part in parts]))
    np.testing.assert_array_equal(rows, np.arange(len(pd.read_parquet(recut / "applications.parquet"))))
    dask_sets, on_a_worker = splits_on_dask(frames, partitions, params.split, TEXT_FEATURES)
    # The matrices stay on the cluster, on one worker (the candidates train beside them): fetched here to compare.
    assert len(default_client().who_has(on_a_worker)[on_a_worker.key]) == 1
    dask_features = on_a_worker.result()
    assert len(sets.train.relevance) > 5 * PARTITION_ROWS  # the training rows span several partitions
    assert _fitted(dask_features.transformer) == _fitted(features.transformer)
    assert dask_sets.job_counts == sets.job_counts
    for name in SPLITS:
        expected, found = sets.by_name()[name], dask_sets.by_name()[name]
        np.testing.assert_array_equal(dask_features.matrices[name], features.matrices[name], err_msg=name)
        np.testing.assert_array_equal(found.relevance, expected.relevance, err_msg=name)
        np.testing.assert_array_equal(found.truth, expected.truth, err_msg=name)  # type: ignore[arg-type]
        np.testing.assert_array_equal(found.group, expected.group, err_msg=name)
    # The test split's match frame comes back whole (the baselines, slices and champion read it); the others'
    # as their keys (the fit is done, and validation reads the scores, outcomes and jobs).
    pd.testing.assert_frame_equal(dask_sets.test.frame, sets.test.frame, check_exact=True)
    keys = ["job_id", "freelancer_id"]
    for name in ("train", "valid"):
        pd.testing.assert_frame_equal(dask_sets.by_name()[name].frame, sets.by_name()[name].frame[keys], obj=name)


def test_a_snapshot_without_truth_gives_splits_without_truth(
    local_dask_cluster: None, recut: Path, params: Params, tmp_path: Path
) -> None:
    client_data = recut_snapshot(recut, tmp_path / "data")
    (client_data / "simulator_truth.parquet").unlink()  # a client's export has no simulator
    validated = validate_snapshot_on_dask(client_data, PARTITION_ROWS)
    assert validated.partitions.truth is None
    sets, _ = splits_on_dask(validated.frames, validated.partitions, params.split, TEXT_FEATURES)
    assert all(s.truth is None for s in sets.by_name().values())
    applications = pd.read_parquet(recut / "applications.parquet")
    assert sum(len(s.relevance) for s in sets.by_name().values()) == len(applications)


_KEPT: list[bytes] = []  # on each worker: what keeps its heap from shrinking at the top


def _freed_in_the_heap() -> int:
    """400 MB taken from malloc's heap in pages, nine in ten freed: the allocator keeps them. The RSS after."""
    pieces = [bytes(4000) for _ in range(100_000)]
    _KEPT.extend(pieces[::10])
    del pieces
    return _resident()


def _resident() -> int:
    return psutil.Process().memory_info().rss


@pytest.mark.skipif(sys.platform != "linux", reason="malloc_trim is glibc's: elsewhere nothing is released")
def test_memory_the_workers_freed_goes_back_to_the_system(local_dask_cluster: None) -> None:
    client = default_client()
    kept = client.run(_freed_in_the_heap)
    assert client.run(_resident) == pytest.approx(kept, rel=0.05)  # not on its own: the allocator holds it
    released = release_freed_memory(client)
    after = client.run(_resident)
    assert set(released) == {*kept, "client"} and all(released[worker] for worker in kept)
    assert all(after[worker] < kept[worker] - 250 * 2**20 for worker in kept), (kept, after)
