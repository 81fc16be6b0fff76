"""The exit codes every command shares (the CLI, the drift gate's verdict, verify)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # the data does not match its pin, the gate found drift, the fingerprint differs
    CONTRACT_BROKEN = 2  # missing or mistyped columns, bad values, unreadable files
    ERROR = 3  # anything else: bad params.yaml, no bundle, a crash
    USAGE = 64  # the command line itself is wrong (click's own 2 would collide with CONTRACT_BROKEN)
