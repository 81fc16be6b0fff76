"""Which model answers, and where it came from."""

from __future__ import annotations

from fastapi import APIRouter

from serving.dependencies import ApiKey, BundleDep
from serving.schemas import ModelInfo

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[ApiKey])


@router.get("/model", response_model=ModelInfo, responses={503: {"description": "No model loaded"}})
async def model_info(bundle: BundleDep) -> ModelInfo:
    """The served model's lineage: registered name, version, run id, data md5, git commit, test metrics."""
    return ModelInfo.model_validate(bundle.lineage)
