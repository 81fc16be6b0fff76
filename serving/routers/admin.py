"""Operations: reload the bundle without a restart."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from gigmatch.model.bundle import BundleError
from serving.dependencies import ApiKey, ServingDep
from serving.schemas import Status

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[ApiKey])


@router.post("/reload", response_model=Status, responses={409: {"description": "Bundle rejected; the old one stays"}})
def reload(serving: ServingDep) -> Status:
    """Load the bundle at GIGMATCH_BUNDLE_PATH again and swap it in atomically (also on SIGHUP)."""
    previous = serving.store.current
    try:
        bundle = serving.store.load()
    except BundleError as exc:
        still = f"; still serving version {previous.version}" if previous else ""
        raise HTTPException(status.HTTP_409_CONFLICT, f"bundle rejected: {exc}{still}") from exc
    serving.metrics.serving(bundle.model_name, bundle.version)
    return Status(status="reloaded", model_version=bundle.version)
