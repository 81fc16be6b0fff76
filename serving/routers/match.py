"""Rank a job's candidates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from operator import attrgetter

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Response, status

from gigmatch.features import FEATURE_NAMES
from gigmatch.matching import FREELANCER_COLUMNS, JOB_COLUMNS
from gigmatch.ranking import Ranking
from serving.dependencies import AnsweringDep
from serving.fast_json import FastJSONRoute
from serving.schemas import MatchRequest, MatchResponse

# A job's and a candidate's fields in the match frame's column order, read in one call.
_JOB_VALUES = attrgetter(*JOB_COLUMNS)
_CANDIDATE_VALUES = attrgetter(*FREELANCER_COLUMNS)
_REGION, _HOURLY_RATE = attrgetter("region"), attrgetter("hourly_rate_usd")
router = APIRouter(prefix="/v1", tags=["match"], route_class=FastJSONRoute)  # the API key: AnsweringDep


@router.post(
    "/match",
    response_model=MatchResponse,
    responses={
        401: {"description": "Missing or wrong API key"},
        413: {"description": "Body too large"},
        503: {"description": "No model loaded"},
    },
)
async def match(request: MatchRequest, answering: AnsweringDep) -> Response:
    """Rank the candidates who applied to a job, best first, each with its score and top reasons."""
    # async on purpose: the work is CPU-bound and short, and a threadpool hand-off would cost more than it frees;
    # the requests that arrive together are ranked together (serving.batching).
    serving, bundle = answering.serving, answering.bundle
    settings = serving.settings
    if len(request.candidates) > settings.max_candidates:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"at most {settings.max_candidates} candidates per request, got {len(request.candidates)}",
        )
    job = _JOB_VALUES(request.job)
    candidates = list(map(_CANDIDATE_VALUES, request.candidates))

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
        return orjson.dumps(answer)

    try:
        body = await serving.batcher.rank(bundle.model, job, candidates, request.top_k, respond)
    except ValueError as exc:  # the domain's word for "these inputs cannot be scored"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cannot rank these candidates: {exc}") from exc
    serving.metrics.candidates.observe(len(request.candidates))
    return Response(body, media_type="application/json")


def _log_record(request: MatchRequest, ranking: Ranking, model_name: str, version: str) -> dict[str, object]:
    """One record per request, columns as lists (one entry per candidate, in request order).

    Arrays are left as numpy arrays: the log serialises them directly, without a
    Python float per value. Monitoring explodes the record into rows.
    """
    job = request.job
    features = np.ascontiguousarray(ranking.features.T)  # one contiguous row per feature
    return {
        "logged_at": datetime.now(UTC).isoformat(),
        "request_id": uuid.uuid4().hex,
        "model_name": model_name,
        "model_version": version,
        "job_id": job.job_id,
        "category": job.category,
        "budget_type": job.budget_type,  # its experience level is logged as the feature of that name (0, 1, 2)
        "freelancer_id": ranking.freelancer_ids,
        "region": list(map(_REGION, request.candidates)),
        "hourly_rate_usd": list(map(_HOURLY_RATE, request.candidates)),
        "match_score": ranking.scores,
        **dict(zip(FEATURE_NAMES, features, strict=True)),
    }
