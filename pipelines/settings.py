"""Runtime settings of the pipelines, from environment variables (pydantic-settings).

Parameters that change a model live in params.yaml; where things are stored
and which servers to talk to live here, so the same code runs on a laptop
(local SQLite store, ephemeral Prefect) and against a team's servers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class TrackingSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # MLFLOW_TRACKING_URI: a team's server (http://...) or the embedded SQLite store.
    mlflow_tracking_uri: str = "sqlite:///mlflow.db"
    # MLFLOW_REGISTRY_URI: defaults to the tracking URI.
    mlflow_registry_uri: str | None = None
    # GIGMATCH_ARTIFACT_ROOT: where a new experiment on a local store keeps its artifacts.
    gigmatch_artifact_root: Path = Path("mlruns")


@lru_cache
def get_tracking_settings() -> TrackingSettings:
    return TrackingSettings()
