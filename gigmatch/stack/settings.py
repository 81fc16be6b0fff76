"""Where the stack keeps its data and which loopback ports it listens on (GIGMATCH_STACK_* variables)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gigmatch.settings import read_settings

Port = Annotated[int, Field(ge=1024, le=65535)]


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GIGMATCH_STACK_", extra="ignore", frozen=True)

    # GIGMATCH_STACK_DIR: every server's data, logs, PIDs and the generated credentials (gitignored).
    dir: Path = Path(".stack")
    # GIGMATCH_STACK_ENV_FILE: the URLs and credentials clients need (`source` it, or GIGMATCH_PROFILE=team).
    env_file: Path = Path(".env.team")
    postgres_port: Port = 15432
    s3_port: Port = 18333
    mlflow_port: Port = 15000
    prefect_port: Port = 14200
    worker_port: Port = 18080  # the worker's health server (`prefect worker start --with-healthcheck`)
    prometheus_port: Port = 19090
    # GIGMATCH_STACK_API_TARGET: the API Prometheus scrapes (`gigmatch serve` listens on 127.0.0.1:8000).
    api_target: str = "127.0.0.1:8000"
    work_pool: str = "gigmatch"  # GIGMATCH_STACK_WORK_POOL: the process work pool its worker polls
    # GIGMATCH_STACK_POSTGRES_BIN: PostgreSQL's bin directory (default: the newest /usr/lib/postgresql/*/bin).
    postgres_bin: Path | None = None
    startup_timeout: Annotated[float, Field(gt=0)] = 180.0  # seconds each server gets to report healthy
    stop_timeout: Annotated[float, Field(gt=0)] = 30.0  # seconds each server gets to exit before SIGKILL


@lru_cache
def get_stack_settings() -> StackSettings:
    return read_settings(StackSettings)
