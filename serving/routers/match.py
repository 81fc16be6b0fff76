"""Rank a job's candidates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, status

from gigmatch.features import FEATURE_NAMES
from gigmatch.matching import match_columns_from_records
from gigmatch.ranking import Ranking, rank_candidates
from serving.dependencies import ApiKey, BundleDep, MetricsDep, PredictionLogDep, SettingsDep
from serving.schemas import MatchRequest, MatchResponse, RankedCandidate, Reason

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
def match(
    request: MatchRequest, bundle: BundleDep, settings: SettingsDep, metrics: MetricsDep, log: PredictionLogDep
) -> MatchResponse:
    """Rank the candidates who applied to a job, best first, each with its score and top reasons."""
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
    log.append(_log_rows(request, ranking, bundle.model_name, bundle.version))
    return MatchResponse(
        job_id=request.job.job_id,
        model_name=bundle.model_name,
        model_version=bundle.version,
        candidates=[
            RankedCandidate(
                freelancer_id=c.freelancer_id,
                rank=c.rank,
                match_score=c.match_score,
                reasons=[Reason(feature=r.feature, label=r.label, value=r.value, effect=r.effect) for r in c.reasons],
            )
            for c in ranking.candidates
        ],
    )


def _log_rows(request: MatchRequest, ranking: Ranking, model_name: str, version: str) -> list[dict[str, object]]:
    """One row per candidate: what monitoring compares with the training data."""
    logged_at = datetime.now(UTC).isoformat()
    request_id = uuid.uuid4().hex
    job = request.job
    rows = []
    for i, candidate in enumerate(request.candidates):
        row: dict[str, object] = {
            "logged_at": logged_at,
            "request_id": request_id,
            "model_name": model_name,
            "model_version": version,
            "job_id": job.job_id,
            "freelancer_id": candidate.freelancer_id,
            "category": job.category,
            "experience_level": job.experience_level,
            "budget_type": job.budget_type,
            "region": candidate.region,
            "hourly_rate_usd": candidate.hourly_rate_usd,
            "match_score": float(ranking.scores[i]),
        }
        row.update(zip(FEATURE_NAMES, ranking.features[i].tolist(), strict=True))
        rows.append(row)
    return rows
