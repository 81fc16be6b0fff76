"""Runtime settings of the pipelines, from environment variables (`gigmatch.settings`).

Where runs, models and monitoring state are stored and which servers to talk
to: the same code runs on a laptop (local SQLite store, ephemeral Prefect) and
against a team's servers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gigmatch.settings import DEFAULT_OUTCOME_LOG_DIR, DEFAULT_PREDICTION_LOG_DIR, DEFAULT_SHADOW_LOG_DIR, read_settings


class TrackingSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # MLFLOW_TRACKING_URI: a team's server (http://...) or the embedded SQLite store.
    mlflow_tracking_uri: str = "sqlite:///mlflow.db"
    # MLFLOW_REGISTRY_URI: defaults to the tracking URI.
    mlflow_registry_uri: str | None = None
    # GIGMATCH_ARTIFACT_ROOT: where a new experiment on a local store keeps its artifacts.
    gigmatch_artifact_root: Path = Path("mlruns")


class MonitoringSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GIGMATCH_", extra="ignore", frozen=True)

    log_dir: Path = DEFAULT_PREDICTION_LOG_DIR  # GIGMATCH_LOG_DIR: the prediction log serving writes
    outcome_log_dir: Path = DEFAULT_OUTCOME_LOG_DIR  # GIGMATCH_OUTCOME_LOG_DIR: the outcomes clients report
    shadow_log_dir: Path = DEFAULT_SHADOW_LOG_DIR  # GIGMATCH_SHADOW_LOG_DIR: the shadow challenger's rankings
    monitor_cron: Annotated[str, Field(pattern=r"^\S+( \S+){4}$")] = "0 3 * * *"  # GIGMATCH_MONITOR_CRON: five fields
    # GIGMATCH_REFERENCE_CACHE_DIR: the champion's training rows, scored once per model and data version.
    reference_cache_dir: Path = Path("reports/monitoring")
    # GIGMATCH_LOG_MIRROR_DIR: where the logs shipped to GIGMATCH_LOG_STORE are mirrored to be gated.
    log_mirror_dir: Path = Path("logs/shipped")
    # GIGMATCH_MARKET_DIR: the marketplace's exports of its jobs and freelancers (`gigmatch.data.feedback`):
    # with it, a retraining on drift trains on the snapshot plus the matured outcomes, as a new data version.
    market_dir: Path | None = None


@lru_cache
def get_tracking_settings() -> TrackingSettings:
    return read_settings(TrackingSettings)


@lru_cache
def get_monitoring_settings() -> MonitoringSettings:
    return read_settings(MonitoringSettings)


class TeamSettings(BaseSettings):
    """Where the lifecycle runs when it runs against a team's servers (`.env.team` sets these)."""

    model_config = SettingsConfigDict(env_prefix="GIGMATCH_", extra="ignore", frozen=True)

    # GIGMATCH_WORK_POOL: train and monitor as Prefect deployments run by this pool's workers
    # (unset: the flows run in the calling process).
    work_pool: str | None = None
    # GIGMATCH_DEPLOYMENT_TIMEOUT: seconds a deployment's flow run may take before the caller gives up.
    deployment_timeout: Annotated[float, Field(gt=0)] = 7200.0
    # GIGMATCH_WORKER_SILENCE: seconds without a heartbeat from any worker of the pool before a
    # waiting caller declares the run lost (a worker beats every 10 s in the stack, 30 s by default).
    worker_silence: Annotated[float, Field(gt=0)] = 90.0
    # GIGMATCH_LOG_STORE: s3://bucket[/prefix] where serving's logs are shipped and monitoring reads them.
    log_store: Annotated[str | None, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")] = None
    # GIGMATCH_DVC_REMOTE: the DVC remote `gigmatch data pull` and `make push` use (unset: the default one).
    dvc_remote: str | None = None


class RolloutSettings(BaseSettings):
    """Where a rollout puts the bundle and which servers it reloads (`pipelines.rollout`)."""

    model_config = SettingsConfigDict(env_prefix="GIGMATCH_", extra="ignore", frozen=True)

    # GIGMATCH_SERVING_URLS: the running servers, comma-separated (http://127.0.0.1:8000,...); empty: none.
    serving_urls_csv: str = Field("", validation_alias="GIGMATCH_SERVING_URLS")
    rollout_bundle_path: Path = Path("bundle")  # GIGMATCH_ROLLOUT_BUNDLE_PATH: the servers' GIGMATCH_BUNDLE_PATH
    # GIGMATCH_ROLLOUT_CHALLENGER_PATH: the servers' GIGMATCH_CHALLENGER_BUNDLE_PATH; unset: no shadow rollout.
    rollout_challenger_path: Path | None = None
    admin_key: SecretStr | None = None  # GIGMATCH_ADMIN_KEY: the servers' reload route needs it
    api_key: SecretStr | None = None  # GIGMATCH_API_KEY: to read /v1/model back

    @property
    def serving_urls(self) -> tuple[str, ...]:
        return tuple(url.strip() for url in self.serving_urls_csv.split(",") if url.strip())


@lru_cache
def get_rollout_settings() -> RolloutSettings:
    return read_settings(RolloutSettings)


@lru_cache
def get_team_settings() -> TeamSettings:
    return read_settings(TeamSettings)
