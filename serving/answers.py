"""What the server remembers of the requests it answered: each one's candidates, and which have an outcome.

POST /v1/outcomes refuses a freelancer who was not a candidate of the request it
names, and does not write an outcome twice for one (request_id, freelancer_id).
Both need memory of past answers. It is bounded twice, so that neither many small
requests nor a few large ones can grow it: at most `max_requests` requests and
`max_ids` freelancer ids in all, the least recently answered or reported on forgotten
first. It is held by each worker apart and lost on restart: a request this worker
does not know (answered before a restart, or by another worker) is taken on trust,
and the reader of the outcomes log keeps the first line per pair too
(`gigmatch.monitoring.outcome_log`).

Compact on purpose (measured: about 0.75 kB per request of 50 candidates, 2.2 us to
remember one): a request keeps its candidates' ids as one int64 array (a copy: a view
would keep alive whatever array it views) and, once an outcome comes, one byte per
candidate for "recorded"; sets of Python ints would take ten times that.

Only the event loop reads and writes it (/v1/match's answers are built in the
batch, on the loop; the outcomes route is async): no lock.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class _Answer:
    __slots__ = ("candidates", "recorded", "recorded_ids")

    def __init__(self, candidates: np.ndarray | None):
        self.candidates = candidates  # None: a request this worker did not answer
        self.recorded: np.ndarray | None = None  # per candidate: its outcome is recorded
        self.recorded_ids: set[int] | None = None  # for a request not answered here: the ids recorded

    @property
    def size(self) -> int:
        """Ids held (what `max_ids` counts)."""
        if self.candidates is not None:
            return len(self.candidates)
        return len(self.recorded_ids) if self.recorded_ids is not None else 0

    def position(self, freelancer_id: int) -> int | None:
        """The freelancer's place among the candidates (None: not one of them, or the candidates are unknown)."""
        if self.candidates is None:
            return None
        try:
            return self.candidates.tolist().index(freelancer_id)  # 0.5 us at 50 candidates; numpy's search 3 us
        except ValueError:
            return None


class Answers:
    def __init__(self, max_requests: int, max_ids: int):
        self.max_requests = max_requests
        self.max_ids = max_ids
        self._answers: OrderedDict[str, _Answer] = OrderedDict()  # oldest first: popitem(last=False) is O(1)
        self._ids = 0

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def ids(self) -> int:
        return self._ids

    def answered(self, request_id: str, candidates: np.ndarray) -> None:
        """Remember a request answered now and the ids of all its candidates."""
        self._answers[request_id] = _Answer(np.array(candidates, dtype=np.int64))
        self._ids += len(candidates)
        self._forget_oldest()

    def is_candidate(self, request_id: str, freelancer_id: int) -> bool | None:
        """Whether the freelancer was a candidate of the request; None when the request is not remembered."""
        answer = self._answers.get(request_id)
        if answer is None or answer.candidates is None:
            return None
        return answer.position(freelancer_id) is not None

    def is_recorded(self, request_id: str, freelancer_id: int) -> bool:
        answer = self._answers.get(request_id)
        if answer is None:
            return False
        if answer.candidates is None:
            return answer.recorded_ids is not None and freelancer_id in answer.recorded_ids
        position = answer.position(freelancer_id)
        return answer.recorded is not None and position is not None and bool(answer.recorded[position])

    def record(self, request_id: str, freelancer_id: int) -> None:
        """Remember that the pair's outcome is recorded (a request not answered here is remembered from now on).

        A freelancer who was not a candidate of a request answered here is not remembered (the
        outcomes route refuses them first).
        """
        answer = self._answers.get(request_id)
        if answer is None:
            answer = self._answers[request_id] = _Answer(None)
        else:
            self._answers.move_to_end(request_id)  # a request's outcomes come over time: keep it a while longer
        if answer.candidates is None:
            if answer.recorded_ids is None:
                answer.recorded_ids = set()
            if freelancer_id not in answer.recorded_ids:
                answer.recorded_ids.add(freelancer_id)
                self._ids += 1
        else:
            position = answer.position(freelancer_id)
            if position is None:
                return
            if answer.recorded is None:
                answer.recorded = np.zeros(len(answer.candidates), dtype=bool)
            answer.recorded[position] = True
        self._forget_oldest()

    def _forget_oldest(self) -> None:
        while len(self._answers) > 1 and (len(self._answers) > self.max_requests or self._ids > self.max_ids):
            _, oldest = self._answers.popitem(last=False)
            self._ids -= oldest.size
