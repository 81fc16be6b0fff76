"""Rank a job's candidates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic_core import to_json

from gigmatch.features import FEATURE_NAMES
from gigmatch.matching import match_columns_from_records
from gigmatch.ranking import Ranking, rank_candidates
from serving.dependencies import ApiKey, BundleDep, MetricsDep, PredictionLogDep, SettingsDep
from serving.schemas import MatchRequest, MatchResponse

router = APIRouter(prefix="/v1", tags=["match"], dependencies=[ApiKey])


@router.post(
    "/match",
    response_model=MatchResponse,
    responses={
        401: {"description": "Missing or wrong API key"},
        413: {"description": "Body too large"},
        503: {"description": "No model loaded"},
    },
)
async def match(
    request: MatchRequest, bundle: BundleDep, settings: SettingsDep, metrics: MetricsDep, log: PredictionLogDep
) -> Response:
    """Rank the candidates who applied to a job, best first, each with its score and top reasons."""
    # async on purpose: the work is CPU-bound and short, and a threadpool hand-off would cost more than it frees.
    if len(request.candidates) > settings.max_candidates:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"at most {settings.max_candidates} candidates per request, got {len(request.candidates)}",
        )
    columns = match_columns_from_records(request.job.model_dump(), [c.model_dump() for c in request.candidates])
    try:
        ranking = rank_candidates(bundle.model, columns, request.top_k, settings.reasons)
    except ValueError as exc:  # the domain's word for "these inputs cannot be scored"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cannot rank these candidates: {exc}") from exc
    metrics.candidates.observe(len(request.candidates))
    log.append(_log_record(request, ranking, bundle.model_name, bundle.version))
    # Built as plain data and serialised once: constructing ~200 validated response
    # objects per request cost more than ranking. The response_model above documents
    # this shape, and the contract tests validate answers against it.
    answer = {
        "job_id": request.job.job_id,
        "model_name": bundle.model_name,
        "model_version": bundle.version,
        "candidates": [
            {
                "freelancer_id": c.freelancer_id,
                "rank": c.rank,
                "match_score": c.match_score,
                "reasons": [
                    {"feature": r.feature, "label": r.label, "value": r.value, "effect": r.effect} for r in c.reasons
                ],
            }
            for c in ranking.candidates
        ],
    }
    return Response(to_json(answer), media_type="application/json")


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
