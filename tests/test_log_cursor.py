"""The monitor's cursor over the prediction log: each line gated once, none lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gigmatch.monitoring.log_cursor import new_lines, read_cursor, save_cursor


def _append(path: Path, *records: dict[str, object], partial: str = "") -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in records) + partial)


def test_reads_only_what_was_appended_since_the_cursor(tmp_path: Path) -> None:
    logs, cursor_file = tmp_path / "logs", tmp_path / "cursor.json"
    logs.mkdir()
    _append(logs / "predictions-20261120.jsonl", {"n": 1}, {"n": 2})
    first = new_lines(logs, read_cursor(cursor_file))
    assert [json.loads(line)["n"] for line in first.lines] == [1, 2]
    save_cursor(cursor_file, first.offsets)

    _append(logs / "predictions-20261120.jsonl", {"n": 3})
    _append(logs / "predictions-20261121.jsonl", {"n": 4})
    second = new_lines(logs, read_cursor(cursor_file))
    assert [json.loads(line)["n"] for line in second.lines] == [3, 4]
    assert second.files == ["predictions-20261120.jsonl", "predictions-20261121.jsonl"]
    save_cursor(cursor_file, second.offsets)
    assert len(new_lines(logs, read_cursor(cursor_file))) == 0


def test_a_line_being_written_waits_for_the_next_run(tmp_path: Path) -> None:
    log = tmp_path / "predictions-20261122.jsonl"
    _append(log, {"n": 1}, partial='{"n": ')
    batch = new_lines(tmp_path, {})
    assert [json.loads(line)["n"] for line in batch.lines] == [1]
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("2}\n")
    assert [json.loads(line)["n"] for line in new_lines(tmp_path, batch.offsets).lines] == [2]


def test_without_saving_the_cursor_the_same_lines_come_back(tmp_path: Path) -> None:
    """A failed gate does not move the cursor: nothing is skipped."""
    _append(tmp_path / "predictions-20261122.jsonl", {"n": 1})
    cursor = read_cursor(tmp_path / "cursor.json")
    assert new_lines(tmp_path, cursor).lines == new_lines(tmp_path, cursor).lines != []


def test_a_truncated_log_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "predictions-20261122.jsonl"
    _append(log, {"n": 1}, {"n": 2}, {"n": 3})
    offsets = new_lines(tmp_path, {}).offsets
    log.write_text(json.dumps({"n": 9}) + "\n")
    assert [json.loads(line)["n"] for line in new_lines(tmp_path, offsets).lines] == [9]


def test_a_damaged_cursor_is_named(tmp_path: Path) -> None:
    cursor = tmp_path / "cursor.json"
    cursor.write_text("{not json")
    with pytest.raises(ValueError, match=r"cursor\.json: not a monitor cursor"):
        read_cursor(cursor)
