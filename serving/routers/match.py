"""Rank a job's candidates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic_core import to_json

from gigmatch.features import FEATURE_NAMES
from gigmatch.ranking import Ranking
from serving.dependencies import ApiKey, BundleDep, ServingDep
from serving.fast_json import FastJSONRoute
from serving.schemas import MatchRequest, MatchResponse

router = APIRouter(prefix="/v1", tags=["match"], dependencies=[ApiKey], route_class=FastJSONRoute)


@router.post(
    "/match",
    response_model=MatchResponse,
    responses={
        401: {"description": "Missing or wrong API key"},
        413: {"description": "Body too large"},
        503: {"description": "No model loaded"},
    },
)
async def match(request: MatchRequest, bundle: BundleDep, serving: ServingDep) -> Response:
    """Rank the candidates who applied to a job, best first, each with its score and top reasons."""
    # async on purpose: the work is CPU-bound and short, and a threadpool hand-off would cost more than it frees;
    # the requests that arrive together are ranked together (serving.batching).
    settings = serving.settings
    if len(request.candidates) > settings.max_candidates:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"at most {settings.max_candidates} candidates per request, got {len(request.candidates)}",
        )
    records = request.model_dump(include={"job", "candidates"})

    def respond(ranking: Ranking) -> bytes:
        serving.prediction_log.append(_log_record(request, ranking, bundle.model_name, bundle.version))
        # Plain data serialised once: constructing ~200 validated response objects per
        # request cost more than ranking. The response_model above documents this
        # shape, and the contract tests validate answers against it.
        answer = {
            "job_id": request.job.job_id,
            "model_name": bundle.model_name,
            "model_version": bundle.version,
            "candidates": ranking.ranked(),
        }
        return to_json(answer)

    try:
        body = await serving.batcher.rank(bundle.model, records["job"], records["candidates"], request.top_k, respond)
    except ValueError as exc:  # the domain's word for "these inputs cannot be scored"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cannot rank these candidates: {exc}") from exc
    serving.metrics.candidates.observe(len(request.candidates))
    return Response(body, media_type="application/json")


def _log_record(request: MatchRequest, ranking: Ranking, model_name: str, version: str) -> dict[str, object]:
    """One record per request, columns as lists (one entry per candidate, in request order).

    Cheap to serialise on the request path's heels; monitoring explodes it into rows.
    """
    job = request.job
    features = ranking.features.T.tolist()
    return {
        "logged_at": datetime.now(UTC).isoformat(),
        "request_id": uuid.uuid4().hex,
        "model_name": model_name,
        "model_version": version,
        "job_id": job.job_id,
        "category": job.category,
        "experience_level": job.experience_level,
        "budget_type": job.budget_type,
        "freelancer_id": [c.freelancer_id for c in request.candidates],
        "region": [c.region for c in request.candidates],
        "hourly_rate_usd": [c.hourly_rate_usd for c in request.candidates],
        "match_score": ranking.scores.tolist(),
        **dict(zip(FEATURE_NAMES, features, strict=True)),
    }
