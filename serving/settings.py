"""Serving settings, from GIGMATCH_* environment variables (`gigmatch.settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gigmatch.settings import DEFAULT_OUTCOME_LOG_DIR, DEFAULT_PREDICTION_LOG_DIR, DEFAULT_SHADOW_LOG_DIR


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GIGMATCH_", extra="ignore", frozen=True)

    bundle_path: Path = Path("bundle")  # GIGMATCH_BUNDLE_PATH: written by `gigmatch export`
    api_key: SecretStr | None = None  # GIGMATCH_API_KEY: when set, /v1/* (but admin) need the X-API-Key header
    admin_key: SecretStr | None = None  # GIGMATCH_ADMIN_KEY: /v1/admin/* need it in X-Admin-Key; unset, they are off
    log_dir: Path = DEFAULT_PREDICTION_LOG_DIR  # GIGMATCH_LOG_DIR: the prediction log
    outcome_log_dir: Path = DEFAULT_OUTCOME_LOG_DIR  # GIGMATCH_OUTCOME_LOG_DIR: the outcomes clients report
    max_candidates: Annotated[int, Field(ge=1, le=10_000)] = 1000
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8_000_000  # larger bodies get 413
    reasons: Annotated[int, Field(ge=0, le=10)] = 3  # top reasons per candidate
    batch_max_rows: Annotated[int, Field(ge=1)] = 20_000  # candidates ranked in one pass, across requests
    batch_max_wait_ms: Annotated[float, Field(ge=0, le=1000)] = 10.0  # latest ranking, after a batch opens
    log_queue_size: Annotated[int, Field(ge=1)] = 10_000  # prediction-log lines (requests) buffered before dropping
    outcome_log_queue_size: Annotated[int, Field(ge=1)] = 100_000  # outcome lines buffered before dropping
    log_flush_seconds: Annotated[float, Field(gt=0, le=60)] = 0.05  # how often the buffered lines are written (both)
    # Answered requests whose candidates (and recorded outcomes) /v1/outcomes checks against, the least
    # recently used forgotten first once either bound is reached (serving.answers): about 0.75 kB per
    # request of 50 candidates, at most ~150 MB at the defaults whatever the requests' sizes.
    remembered_requests: Annotated[int, Field(ge=1)] = 200_000
    remembered_ids: Annotated[int, Field(ge=1)] = 10_000_000  # candidate ids in all, across those requests
    # GIGMATCH_CHALLENGER_BUNDLE_PATH: a second bundle (`gigmatch export --alias challenger`) that scores
    # GIGMATCH_SHADOW_SHARE of the requests after they are answered, into GIGMATCH_SHADOW_LOG_DIR (serving.shadow).
    challenger_bundle_path: Path | None = None
    shadow_share: Annotated[float, Field(ge=0, le=1)] = 1.0
    shadow_log_dir: Path = DEFAULT_SHADOW_LOG_DIR
    shadow_queue_size: Annotated[int, Field(ge=1)] = 2_000  # requests waiting for the challenger before dropping

    @field_validator("admin_key")
    @classmethod
    def _not_the_client_key(cls, admin_key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        api_key = info.data.get("api_key")
        if admin_key is not None and api_key is not None and admin_key.get_secret_value() == api_key.get_secret_value():
            raise ValueError("must differ from GIGMATCH_API_KEY (a client key never opens the admin routes)")
        return admin_key
