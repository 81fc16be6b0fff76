"""The exit codes every command shares, and the errors that carry them.

A failure the user can act on is a `GigmatchError` subclass that names its exit
code; the CLI prints its message in one line and exits with that code, without
having to know every module that may raise one.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # the data does not match its pin, the gate found drift, the fingerprint differs
    CONTRACT_BROKEN = 2  # missing or mistyped columns, bad values, unreadable files
    ERROR = 3  # anything else: bad params.yaml, no bundle, a crash
    USAGE = 64  # the command line itself is wrong (click's own 2 would collide with CONTRACT_BROKEN)


class GigmatchError(Exception):
    """A failure with a readable message and the exit code the CLI answers it with."""

    exit_code: ClassVar[ExitCode] = ExitCode.ERROR
