"""The shadow challenger: a second model scores a share of the requests after their answers have left,
and its rankings go to a log of their own, never to a client.

The request path only appends the request's values to a bounded queue (a deque append, no copy of
the arrays); one background thread drains it every `flush_seconds` and ranks what it took in one
pass (`rank_many`, without reasons: nobody reads them). A full queue drops (counted): the champion's
answers never wait for the challenger. Which requests: those whose id falls under `share` (the id is
uniform random hex, so the share holds, and the same request is always in or out).

Its lines have the prediction log's format (the challenger's name and version, the same request id),
in GIGMATCH_SHADOW_LOG_DIR, apart from the prediction log: the drift gate reads every line there as
served traffic, and a shadow line was never served. The monitoring flow joins outcomes to both.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gigmatch.features.match_frame import match_columns_from_values
from gigmatch.model.bundle import Bundle
from gigmatch.model.ranking import rank_many
from gigmatch.monitoring.prediction_log import log_record
from serving.log_writer import LogWriter
from serving.model_store import ModelStore

Values = tuple[object, ...]
_HEX_SPAN = 16**8


@dataclass(frozen=True)
class ShadowRequest:
    request_id: str
    job_id: int
    job: Values
    candidates: Sequence[Values]
    job_context: Values
    candidate_context: list[list[object]]


class ShadowScorer:
    def __init__(
        self,
        store: ModelStore,
        log: LogWriter,
        share: float,
        capacity: int,
        on_drop: Callable[[int], None] = lambda _n: None,
        on_scored: Callable[[int], None] = lambda _n: None,
        flush_seconds: float = 0.05,
    ):
        self.store = store
        self.log = log
        self.share = share
        self._threshold = int(share * _HEX_SPAN)
        self._capacity = capacity
        self._queue: deque[ShadowRequest] = deque()
        self._on_drop, self._on_scored = on_drop, on_scored
        self._flush_seconds = flush_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)

    def wants(self, request_id: str) -> bool:
        """Is this request in the shadow's share (and is a challenger loaded)?"""
        return self.store.current is not None and int(request_id[:8], 16) < self._threshold

    def submit(self, request: ShadowRequest) -> None:
        if len(self._queue) >= self._capacity:
            self._on_drop(1)
            return
        self._queue.append(request)

    def start(self) -> None:
        self.log.start()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.log.stop()

    def score_pending(self) -> int:
        """Rank every queued request with the challenger and log them; the number logged."""
        count = len(self._queue)
        bundle = self.store.current
        if not count or bundle is None:
            return 0
        taken = [self._queue.popleft() for _ in range(count)]
        try:
            logged = self._score(bundle, taken)
        except Exception:  # a challenger that cannot score these: dropped, counted, the server unaffected
            self._on_drop(count)
            return 0
        self._on_scored(logged)
        return logged

    def _score(self, bundle: Bundle, taken: list[ShadowRequest]) -> int:
        columns = match_columns_from_values([(r.job, r.candidates) for r in taken])
        sizes = [len(r.candidates) for r in taken]
        rankings = rank_many(bundle.model, columns, sizes, [None] * len(taken), n_reasons=0)
        logged = 0
        for request, ranking in zip(taken, rankings, strict=True):
            if isinstance(ranking, Exception):
                self._on_drop(1)
                continue
            record = log_record(
                request_id=request.request_id,
                model_name=bundle.model_name,
                model_version=bundle.version,
                job_id=request.job_id,
                job_context=request.job_context,
                freelancer_ids=ranking.freelancer_ids,
                candidate_context=request.candidate_context,
                scores=np.asarray(ranking.scores),
                features=ranking.features,
            )
            logged += self.log.append(record)
        return logged

    def _run(self) -> None:
        while not self._stopping.wait(self._flush_seconds):
            self.score_pending()
        self.score_pending()
