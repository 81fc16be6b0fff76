"""The gigmatch API: `create_app()` wires settings, the model store, middleware and routers.

Start it with `gigmatch serve`, or `uvicorn --factory serving.main:create_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from gigmatch.model.bundle import Bundle, BundleError
from gigmatch.monitoring.outcome_log import outcome_file_name
from gigmatch.monitoring.prediction_log import log_file_name
from gigmatch.settings import read_settings
from serving.answers import Answers
from serving.batching import MatchBatcher
from serving.dependencies import Serving
from serving.log_writer import FileName, LogWriter
from serving.model_store import ModelStore, freeze_long_lived_objects
from serving.prometheus import ServerMetrics
from serving.routers import admin, health, match, model, outcomes
from serving.settings import ServingSettings
from serving.shadow import ShadowScorer

logger = logging.getLogger("gigmatch.serving")
# A request allocates and frees a few thousand objects; at Python's default (700) that
# set off a young-generation collection per request and a full one every ~170
# requests, each scanning the text caches. Cycles are rare here, so collect seldom.
_GC_THRESHOLDS = (50_000, 20, 20)


def _log_writer(
    settings: ServingSettings,
    name: str,
    directory: Path,
    file_name: FileName,
    capacity: int,
    dropped: Counter,
) -> LogWriter:
    """One of the server's JSON-lines logs (predictions, outcomes, the shadow's): up to `capacity` lines
    buffered, flushed every GIGMATCH_LOG_FLUSH_SECONDS, those dropped (buffer full, disk error) counted on `dropped`."""
    return LogWriter(
        directory,
        file_name,
        capacity,
        on_drop=dropped.inc,
        flush_seconds=settings.log_flush_seconds,
        name=name,
    )


def _shadow(settings: ServingSettings, metrics: ServerMetrics) -> ShadowScorer | None:
    if settings.challenger_bundle_path is None:
        return None
    # Its lines have the prediction log's format, in a directory of their own (serving.shadow); a line
    # its writer drops is a request the shadow did not rank, so it counts as one.
    log = _log_writer(
        settings, "shadow-log", settings.shadow_log_dir, log_file_name, settings.log_queue_size, metrics.shadow_dropped
    )
    return ShadowScorer(
        ModelStore(settings.challenger_bundle_path),
        log,
        settings.shadow_share,
        settings.shadow_queue_size,
        on_drop=metrics.shadow_dropped.inc,
        on_scored=metrics.shadow_scored.inc,
        flush_seconds=settings.log_flush_seconds,
    )


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    settings = settings or read_settings(ServingSettings)  # a bad GIGMATCH_* value is named
    metrics = ServerMetrics()
    app = FastAPI(
        title="gigmatch",
        summary="Rank the freelancers who applied to a job post.",
        version="1",
        lifespan=_lifespan,
    )
    app.state.serving = Serving(
        settings=settings,
        store=ModelStore(settings.bundle_path),
        metrics=metrics,
        prediction_log=_log_writer(
            settings, "prediction-log", settings.log_dir, log_file_name, settings.log_queue_size, metrics.log_dropped
        ),
        outcome_log=_log_writer(
            settings,
            "outcome-log",
            settings.outcome_log_dir,
            outcome_file_name,
            settings.outcome_log_queue_size,
            metrics.outcome_log_dropped,
        ),
        answers=Answers(settings.remembered_requests, settings.remembered_ids),
        batcher=MatchBatcher(settings.reasons, settings.batch_max_rows, settings.batch_max_wait_ms / 1000),
        shadow=_shadow(settings, metrics),
    )
    for router in (health.router, model.router, match.router, outcomes.router, admin.router):
        app.include_router(router)
    app.add_api_route("/metrics", _metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(RequestValidationError, _readable_validation_error)  # type: ignore[arg-type]
    app.add_middleware(Measure)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    serving: Serving = app.state.serving
    thresholds = gc.get_threshold()
    gc.set_threshold(*_GC_THRESHOLDS)
    # One BLAS/OpenMP thread: a request's arrays are small, and OpenBLAS's idle workers
    # spin on a second core (measured: a whole core busy under load, taken from the
    # clients and the network stack). Run more workers to use more cores.
    blas_limits = threadpool_limits(limits=1)
    freeze_long_lived_objects()  # before the model: only the libraries are frozen (serving.model_store)
    _load(serving)
    _load_challenger(serving)
    serving.prediction_log.start()
    serving.outcome_log.start()
    if serving.shadow is not None:
        serving.shadow.start()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals off the main thread
        # Off the loop, as the admin route's: a load on the loop would hold every request in flight.
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, _reload_on_signal, serving))
    store = serving.store
    logger.info("serving %s", store.current.version if store.current else f"no model ({store.error})")
    yield
    if serving.shadow is not None:
        serving.shadow.stop()
    serving.prediction_log.stop()
    serving.outcome_log.stop()
    blas_limits.restore_original_limits()
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def _load(serving: Serving) -> Bundle | None:
    """Load (or reload) the bundle; a failure leaves the process up and the old model, if any, in place."""
    try:
        bundle = serving.store.load()
    except BundleError as exc:
        logger.error("bundle not loaded: %s", exc)
        return None
    serving.metrics.serving(bundle.model_name, bundle.version)
    return bundle


def _load_challenger(serving: Serving) -> Bundle | None:
    """The shadow's bundle; a failure only turns the shadow off (the champion is served either way)."""
    if serving.shadow is None:
        return None
    try:
        bundle = serving.shadow.store.load()
    except BundleError as exc:
        logger.error("challenger bundle not loaded, no shadow scoring: %s", exc)
        return None
    serving.metrics.shadowing(bundle.model_name, bundle.version)
    return bundle


def _reload_on_signal(serving: Serving) -> None:
    """SIGHUP's reload, in an executor thread (SIGHUP is a local signal: the OS has authenticated its sender)."""
    _load_challenger(serving)
    bundle = _load(serving)
    if bundle is not None:
        logger.info("reloaded on SIGHUP: serving %s version %s", bundle.model_name, bundle.version)


async def _readable_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable line per problem, plus pydantic's structured errors."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part != "body")
        problems.append(f"{where or 'body'}: {error['msg']}")
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"message": "; ".join(problems[:20]), "detail": jsonable_errors(exc)},
    )


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


async def _metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(request.app.state.serving.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class Measure:
    """Count requests and time them per route (pure ASGI: measured in-process, 0.08 ms per request against
    0.35 ms for the same work in Starlette's BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def recording_send(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics: ServerMetrics = scope["app"].state.serving.metrics
            metrics.latency.labels(route=route).observe(time.perf_counter() - start)
            metrics.requests.labels(route=route, status=str(status_code)).inc()


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLargeError:
            await _too_large(send, self.max_bytes)


class _BodyTooLargeError(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"message": "request body larger than {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status.HTTP_413_CONTENT_TOO_LARGE,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
