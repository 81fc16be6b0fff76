"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from serving.dependencies import ServingDep
from serving.schemas import Status

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Status)
async def health() -> Status:
    """Liveness: 200 while the process runs, model or not."""
    return Status(status="ok")


@router.get("/ready", response_model=Status, responses={503: {"model": Status}})
async def ready(serving: ServingDep, response: Response) -> Status:
    """Readiness: 200 once a model is loaded, 503 (with the reason) until then."""
    bundle = serving.store.current
    if bundle is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Status(status="not ready", detail=serving.store.error)
    return Status(status="ready", model_version=bundle.version)
