"""Serving settings, from GIGMATCH_* environment variables (`gigmatch.settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gigmatch.settings import DEFAULT_PREDICTION_LOG_DIR


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GIGMATCH_", extra="ignore", frozen=True)

    bundle_path: Path = Path("bundle")  # GIGMATCH_BUNDLE_PATH: written by `gigmatch export`
    api_key: SecretStr | None = None  # GIGMATCH_API_KEY: when set, /v1/* need the X-API-Key header
    log_dir: Path = DEFAULT_PREDICTION_LOG_DIR  # GIGMATCH_LOG_DIR: the prediction log
    max_candidates: Annotated[int, Field(ge=1, le=10_000)] = 1000
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8_000_000  # larger bodies get 413
    reasons: Annotated[int, Field(ge=0, le=10)] = 3  # top reasons per candidate
    batch_max_rows: Annotated[int, Field(ge=1)] = 20_000  # candidates ranked in one pass, across requests
    batch_max_wait_ms: Annotated[float, Field(ge=0, le=1000)] = 10.0  # latest ranking, after a batch opens
    log_queue_size: Annotated[int, Field(ge=1)] = 10_000  # prediction-log lines (requests) buffered before dropping
    log_flush_seconds: Annotated[float, Field(gt=0, le=60)] = 0.05  # how often the buffered lines are written
