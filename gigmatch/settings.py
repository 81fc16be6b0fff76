"""Runtime settings from environment variables (pydantic-settings), read with errors that name the variable.

Parameters that change a model live in params.yaml; where things run and are
stored (servers, the prediction log, schedules) are settings, so the same code
runs on a laptop and against a team's servers, and changing one reruns nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from gigmatch.errors import ExitCode, GigmatchError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
# Where serving writes the prediction log and monitoring reads it (GIGMATCH_LOG_DIR for both).
DEFAULT_PREDICTION_LOG_DIR = Path("logs/predictions")
# Where serving writes the outcomes clients report (GIGMATCH_OUTCOME_LOG_DIR). A directory of its own:
# the drift gate reads every *.jsonl in the prediction log's.
DEFAULT_OUTCOME_LOG_DIR = Path("logs/outcomes")
# Where serving writes the shadow challenger's rankings (GIGMATCH_SHADOW_LOG_DIR): never served, so
# apart from the prediction log, which the drift gate reads as served traffic.
DEFAULT_SHADOW_LOG_DIR = Path("logs/shadow")


class SettingsError(GigmatchError, ValueError):
    """An environment variable holds a value its setting refuses."""

    exit_code = ExitCode.ERROR


def read_settings(settings_type: type[SettingsT]) -> SettingsT:
    """`settings_type()` from the environment; SettingsError names each variable that is wrong and why."""
    try:
        return settings_type()
    except ValidationError as exc:
        prefix = str(settings_type.model_config.get("env_prefix", ""))
        problems = "; ".join(
            f"{(prefix + '.'.join(str(p) for p in error['loc'])).upper()}: {error['msg']}" for error in exc.errors()
        )
        raise SettingsError(f"invalid {settings_type.__name__} in the environment: {problems}") from exc
