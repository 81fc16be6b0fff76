"""What routes depend on, as Annotated aliases so signatures read like types.

All async although none awaits: FastAPI runs a plain `def` dependency in its
thread pool, and those hand-offs cost more per request than scoring 50 candidates.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from gigmatch.bundle import Bundle
from serving.metrics import ServerMetrics
from serving.model_store import ModelStore
from serving.prediction_log import PredictionLog
from serving.settings import ServingSettings


async def get_settings(request: Request) -> ServingSettings:
    return request.app.state.settings


async def get_store(request: Request) -> ModelStore:
    return request.app.state.store


async def get_metrics(request: Request) -> ServerMetrics:
    return request.app.state.metrics


async def get_prediction_log(request: Request) -> PredictionLog:
    return request.app.state.prediction_log


SettingsDep = Annotated[ServingSettings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
MetricsDep = Annotated[ServerMetrics, Depends(get_metrics)]
PredictionLogDep = Annotated[PredictionLog, Depends(get_prediction_log)]


async def require_api_key(settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """When GIGMATCH_API_KEY is set, the X-API-Key header must match it (compared in constant time)."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header")


async def get_bundle(store: StoreDep) -> Bundle:
    """The bundle to answer with; 503 while none is loaded."""
    bundle = store.current
    if bundle is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"no model loaded: {store.error}")
    return bundle


BundleDep = Annotated[Bundle, Depends(get_bundle)]
ApiKey = Depends(require_api_key)
