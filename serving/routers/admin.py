"""Operations: reload the bundle without a restart. Behind the admin key (`serving.dependencies.require_admin_key`)."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, HTTPException, status

from gigmatch.model.bundle import BundleError
from serving.dependencies import AdminKey, ServingDep
from serving.schemas import Status

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[AdminKey],
    responses={
        401: {"description": "Missing or wrong X-Admin-Key header"},
        403: {"description": "Admin routes disabled: GIGMATCH_ADMIN_KEY is not set on the server"},
    },
)


@router.post("/reload", response_model=Status, responses={409: {"description": "Bundle rejected; the old one stays"}})
def reload(serving: ServingDep) -> Status:
    """Load the bundle at GIGMATCH_BUNDLE_PATH again and swap it in atomically (also on SIGHUP).

    Needs the X-Admin-Key header (GIGMATCH_ADMIN_KEY), and only it: the client key opens no admin route.
    """
    # A plain def on purpose: FastAPI runs it in its thread pool, so reading and checking the bundle
    # never holds the event loop; requests in flight keep the bundle they started with.
    previous = serving.store.current
    if serving.shadow is not None:  # the challenger first: a rejected one only stops the shadow
        with contextlib.suppress(BundleError):
            bundle = serving.shadow.store.load()
            serving.metrics.shadowing(bundle.model_name, bundle.version)
    try:
        bundle = serving.store.load()
    except BundleError as exc:
        still = f"; still serving version {previous.version}" if previous else ""
        raise HTTPException(status.HTTP_409_CONFLICT, f"bundle rejected: {exc}{still}") from exc
    serving.metrics.serving(bundle.model_name, bundle.version)
    return Status(status="reloaded", model_version=bundle.version)
