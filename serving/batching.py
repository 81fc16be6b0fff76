"""Rank the match requests that arrive together in one pass through the model.

A request hands its candidates to `MatchBatcher.rank` and awaits its ranking. The
first request of an event-loop turn schedules one run for right after the other
requests that are already in hand have been parsed; that run ranks them all with
`gigmatch.ranking.rank_many`. So nothing waits for a timer: a lone request is
ranked at once, and under load each turn ranks everything that arrived during
the previous one.

Why: the model's work for 50 candidates is mostly fixed cost per call (array
set-up, not arithmetic), so a batch of 16 requests costs far less than 16 calls.
And requests of one turn are answered together instead of one after another in
whatever order the sockets were read, which keeps the slowest answers close to
the typical one.

Every ranking is exactly what the request alone would get (`rank_many` keeps
jobs apart and sums each row on its own); requests that picked up different
bundles during a hot swap are ranked by their own bundle's model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sklearn.pipeline import Pipeline

from gigmatch.matching import match_columns_from_jobs
from gigmatch.ranking import Ranking, rank_many

Record = Mapping[str, object]
T = TypeVar("T")


@dataclass(frozen=True)
class _Pending:
    model: Pipeline
    job: Record
    candidates: Sequence[Record]
    top_k: int | None
    respond: Callable[[Ranking], Any]
    answer: asyncio.Future[Any]


class MatchBatcher:
    def __init__(self, n_reasons: int, max_rows: int):
        self.n_reasons = n_reasons
        self.max_rows = max_rows
        self._pending: list[_Pending] = []

    async def rank(
        self,
        model: Pipeline,
        job: Record,
        candidates: Sequence[Record],
        top_k: int | None,
        respond: Callable[[Ranking], T],
    ) -> T:
        """`respond` applied to this job's candidates ranked; raises ValueError when they cannot be scored.

        `respond` (e.g. building the response body) runs in the batch, so a batch's
        answers are ready at the same moment and leave together.
        """
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._run)
        answer: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Pending(model, job, candidates, top_k, respond, answer))
        return await answer

    def _run(self) -> None:
        pending, self._pending = self._pending, []
        for batch in _batches(pending, self.max_rows):
            rankings = self._rank(batch)
            for item, ranking in zip(batch, rankings, strict=True):
                if item.answer.cancelled():  # the client went away
                    continue
                try:
                    if isinstance(ranking, Exception):
                        raise ranking
                    item.answer.set_result(item.respond(ranking))
                except Exception as exc:  # this request's failure, reported by its own route
                    item.answer.set_exception(exc)

    def _rank(self, batch: list[_Pending]) -> list[Ranking | Exception]:
        """Rankings (or errors) in batch order; after an unexpected error, each request alone,
        so that a request that trips a bug fails by itself and not its batch."""
        try:
            columns = match_columns_from_jobs([(p.job, p.candidates) for p in batch])
            sizes = [len(p.candidates) for p in batch]
            return list(rank_many(batch[0].model, columns, sizes, [p.top_k for p in batch], self.n_reasons))
        except Exception as exc:  # handed to the waiting request, which reports it
            if len(batch) == 1:
                return [exc]
            return [ranking for item in batch for ranking in self._rank([item])]


def _batches(pending: list[_Pending], max_rows: int) -> list[list[_Pending]]:
    """Consecutive groups of one model and at most `max_rows` candidates (a larger request goes alone)."""
    batches: list[list[_Pending]] = []
    rows = 0
    for item in pending:
        size = len(item.candidates)
        if batches and batches[-1][0].model is item.model and rows + size <= max_rows:
            batches[-1].append(item)
            rows += size
        else:
            batches.append([item])
            rows = size
    return batches
