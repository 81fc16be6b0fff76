"""Which requests share a batch, and when it is ranked: loop turns, not HTTP, are the point here."""

from __future__ import annotations

import asyncio
from operator import itemgetter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from gigmatch.data.snapshot import read_tables
from gigmatch.features.match_frame import FREELANCER_COLUMNS, JOB_COLUMNS
from gigmatch.model.bundle import load_bundle
from gigmatch.model.ranking import Ranking
from serving.batching import MatchBatcher
from tests.conftest import match_columns_of, rank_alone, request_for

Values = tuple[tuple[object, ...], list[tuple[object, ...]]]


@pytest.fixture(scope="module")
def model(bundle_dir: Path) -> Pipeline:
    return load_bundle(bundle_dir).model


@pytest.fixture(scope="module")
def requests(training_snapshot: Path) -> list[tuple[dict, list[dict]]]:
    frames: dict[str, pd.DataFrame] = read_tables(training_snapshot)
    return [request_for(int(job_id), frames) for job_id in frames["jobs"]["job_id"].iloc[-4:-1]]


def _values(job: dict, candidates: list[dict]) -> Values:
    return itemgetter(*JOB_COLUMNS)(job), [itemgetter(*FREELANCER_COLUMNS)(c) for c in candidates]


def _rank_staggered(batcher: MatchBatcher, model: Pipeline, requests: list, turns_apart: int) -> list[Ranking]:
    """Each request joins `turns_apart` event-loop turns after the one before it."""

    async def run() -> list[Ranking]:
        waiting = []
        for job, candidates in requests:
            waiting.append(asyncio.ensure_future(batcher.rank(model, *_values(job, candidates), None, lambda r: r)))
            for _ in range(turns_apart):
                await asyncio.sleep(0)
        return list(await asyncio.gather(*waiting))

    return asyncio.run(run())


def test_requests_arriving_while_the_loop_is_busy_join_the_batch(
    model: Pipeline, requests: list, batch_sizes: list[int]
) -> None:
    rankings = _rank_staggered(MatchBatcher(3, max_rows=20_000, max_wait=1.0), model, requests, turns_apart=1)
    assert batch_sizes == [len(requests)]
    for ranking, (job, candidates) in zip(rankings, requests, strict=True):
        alone = rank_alone(model, match_columns_of([(job, candidates)]))
        np.testing.assert_array_equal(ranking.scores, alone.scores)
        np.testing.assert_array_equal(ranking.order, alone.order)
        np.testing.assert_array_equal(ranking.reason_features, alone.reason_features)


def test_a_quiet_loop_ranks_at_once(model: Pipeline, requests: list, batch_sizes: list[int]) -> None:
    # Two quiet turns close a batch: a request five turns later opens the next one.
    _rank_staggered(MatchBatcher(3, max_rows=20_000, max_wait=1.0), model, requests[:2], turns_apart=5)
    assert batch_sizes == [1, 1]


@pytest.mark.parametrize(("max_rows", "max_wait"), [(1, 1.0), (20_000, 0.0)], ids=["full", "old"])
def test_a_full_or_old_batch_is_ranked_without_waiting_for_quiet(
    model: Pipeline, requests: list, batch_sizes: list[int], max_rows: int, max_wait: float
) -> None:
    batcher = MatchBatcher(3, max_rows=max_rows, max_wait=max_wait)
    rankings = _rank_staggered(batcher, model, requests, turns_apart=1)
    assert batch_sizes == [1] * len(requests)
    assert [len(r.scores) for r in rankings] == [len(candidates) for _, candidates in requests]
