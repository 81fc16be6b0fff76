"""The prediction log: every answered request, appended as JSON lines for monitoring.

One line per request, its per-candidate columns as lists (see
`serving.routers.match._log_record`); `explode_log` turns lines into one row per
candidate. A request serialises its line and appends it to a bounded buffer; one
background thread wakes every `flush_seconds` and writes what is buffered to a
daily file in one call. When the buffer is full or the disk fails, lines are
dropped and counted: logging never fails or slows a request.

The thread does no Python work beyond joining bytes: a writer thread that
serialises competes with the event loop for the GIL, and when it holds it the
loop waits (that cost about a quarter of each request's time here).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic_core import PydanticSerializationError, to_json

Row = dict[str, object]


def explode_log(records: list[Row]) -> list[Row]:
    """Per-request records to one row per candidate: list values are spread, scalars repeated."""
    rows: list[Row] = []
    for record in records:
        lists = {k: v for k, v in record.items() if isinstance(v, list)}
        scalars = {k: v for k, v in record.items() if not isinstance(v, list)}
        count = len(next(iter(lists.values()), []))
        rows.extend({**scalars, **{k: v[i] for k, v in lists.items()}} for i in range(count))
    return rows


class PredictionLog:
    def __init__(
        self,
        directory: Path,
        capacity: int,
        on_drop: Callable[[int], None] = lambda _n: None,
        flush_seconds: float = 0.2,
    ):
        self.directory = Path(directory)
        self._capacity = capacity
        self._lines: deque[bytes] = deque()  # append and popleft are atomic: no lock on the request path
        self._on_drop = on_drop
        self._flush_seconds = flush_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is buffered and stop the writer."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self.flush()

    def append(self, record: Row) -> None:
        """Buffer one request's line; drop it (counted) when the buffer is full or it will not serialise."""
        if len(self._lines) >= self._capacity:
            self._on_drop(1)
            return
        try:
            self._lines.append(to_json(record) + b"\n")  # pydantic's serialiser: several times faster than json
        except (PydanticSerializationError, ValueError):
            self._on_drop(1)

    def flush(self) -> None:
        """Write every buffered line to today's file in one call; on a disk error, count them as dropped."""
        count = len(self._lines)
        if not count:
            return
        chunk = b"".join(self._lines.popleft() for _ in range(count))
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.directory / f"predictions-{datetime.now(UTC):%Y%m%d}.jsonl", "ab") as handle:
                handle.write(chunk)
        except OSError:  # a full disk or a missing mount: count, never raise
            self._on_drop(count)

    def _run(self) -> None:
        while not self._stopping.wait(self._flush_seconds):
            self.flush()
        self.flush()
