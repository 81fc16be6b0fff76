"""The prediction log: every answered request, appended as JSON lines for monitoring.

One line per request, its per-candidate columns as lists (see
`serving.routers.match._log_record`); `explode_log` turns lines into one row per
candidate. Requests hand records to a bounded queue and return; one background
thread writes them to a daily file. When the queue is full or the disk fails, rows are
dropped and counted: logging never fails or slows a request.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic_core import to_json

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
    def __init__(self, directory: Path, capacity: int, on_drop: Callable[[int], None] = lambda _n: None):
        self.directory = Path(directory)
        self._queue: queue.Queue[list[Row] | None] = queue.Queue(maxsize=capacity)
        self._on_drop = on_drop
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def append(self, record: Row) -> None:
        try:
            self._queue.put_nowait([record])
        except queue.Full:
            self._on_drop(1)

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            pending = [batch]
            while not self._queue.empty():  # write whatever else is waiting in one go
                more = self._queue.get_nowait()
                if more is None:
                    self._write(pending)
                    return
                pending.append(more)
            self._write(pending)

    def _write(self, batches: list[list[Row]]) -> None:
        rows = [row for batch in batches for row in batch]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"predictions-{datetime.now(UTC):%Y%m%d}.jsonl"
            with open(path, "ab") as handle:  # pydantic's serialiser: several times faster than json.dumps here
                handle.write(b"".join(to_json(row) + b"\n" for row in rows))
        except (OSError, ValueError):  # a full disk, or a value that will not serialise: count, never raise
            self._on_drop(len(rows))
            time.sleep(0.1)  # a failing disk should not turn this thread into a busy loop
