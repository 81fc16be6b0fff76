"""Which prediction-log lines the monitor has already gated: a cursor of byte offsets.

The serving process appends JSON lines to one file per day. The monitor reads what
was appended since its last run (whole lines only: the writer may be mid-line),
gates it, and only then moves the cursor, so a crash or a failed gate means the
same lines are read again next time, never lost. The cursor is a small JSON file
written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gigmatch.files import write_json
from gigmatch.monitoring.prediction_log import LOG_GLOB


@dataclass(frozen=True)
class NewLines:
    """Whole lines appended since the cursor, and the offsets to save once they are gated."""

    lines: list[str]
    files: list[str]
    offsets: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)


def read_cursor(path: Path) -> dict[str, int]:
    """Offsets per log file name; an absent cursor means nothing is gated yet."""
    if not path.exists():
        return {}
    try:
        offsets = json.loads(path.read_text(encoding="utf-8"))["offsets"]
        return {str(name): int(offset) for name, offset in offsets.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a monitor cursor ({exc}); delete it to gate every log line again") from exc


def new_lines(log_dir: Path, cursor: dict[str, int]) -> NewLines:
    """Lines appended to the prediction log since `cursor`, oldest file first."""
    lines: list[str] = []
    files: list[str] = []
    offsets = dict(cursor)
    for path in sorted(Path(log_dir).glob(LOG_GLOB)):
        start = cursor.get(path.name, 0)
        if path.stat().st_size < start:  # rewritten or truncated since: read it afresh
            start = 0
        with open(path, "rb") as handle:
            handle.seek(start)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next run
        if complete:
            lines.extend(line for line in complete.decode("utf-8").splitlines() if line.strip())
            files.append(path.name)
        offsets[path.name] = start + len(complete)
    return NewLines(lines, files, offsets)


def save_cursor(path: Path, offsets: dict[str, int]) -> None:
    write_json(path, {"offsets": dict(sorted(offsets.items()))})
