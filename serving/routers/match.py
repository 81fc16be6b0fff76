"""Rank a job's candidates."""

from __future__ import annotations

import uuid
from operator import attrgetter

import orjson
from fastapi import APIRouter, HTTPException, Response, status
from fastapi.routing import APIRoute

from gigmatch.features.match_frame import FREELANCER_COLUMNS, JOB_COLUMNS
from gigmatch.model.bundle import Bundle
from gigmatch.model.ranking import Ranking
from gigmatch.monitoring.prediction_log import CANDIDATE_CONTEXT, JOB_CONTEXT, log_record
from serving.dependencies import AnsweringDep
from serving.fast_json import FastJSONRoute
from serving.schemas import MatchRequest, MatchResponse
from serving.shadow import ShadowRequest

# A job's and a candidate's fields in the match frame's column order, read in one call.
_JOB_VALUES = attrgetter(*JOB_COLUMNS)
_CANDIDATE_VALUES = attrgetter(*FREELANCER_COLUMNS)
_JOB_CONTEXT = attrgetter(*JOB_CONTEXT)
_CANDIDATE_CONTEXT = [attrgetter(name) for name in CANDIDATE_CONTEXT]
_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"description": "Missing or wrong API key"},
    413: {"description": "Body too large"},
    503: {"description": "No model loaded"},
}


def match_router(route_class: type[APIRoute] = FastJSONRoute) -> APIRouter:
    """The /v1/match route (its API key check is in AnsweringDep).

    FastJSONRoute validates the body from bytes in one pass; any other route class (FastAPI's
    own APIRoute: tests/test_fast_json.py) answers the same statuses and messages, slower.
    """
    router = APIRouter(prefix="/v1", tags=["match"], route_class=route_class)
    router.add_api_route("/match", match, methods=["POST"], response_model=MatchResponse, responses=_RESPONSES)
    return router


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
    request_id = uuid.uuid4().hex  # the answer's, its prediction-log line's, and what its outcomes name

    def respond(ranking: Ranking) -> bytes:
        # The request's log context, read once: the champion's line and the shadow's carry the same values.
        job_context, candidate_context = _context(request)
        record = _log_record(request_id, request.job.job_id, job_context, candidate_context, ranking, bundle)
        serving.prediction_log.append(record)
        serving.answers.answered(request_id, ranking.freelancer_ids)
        if serving.shadow is not None and serving.shadow.wants(request_id):  # ranked after this answer leaves
            shadow = ShadowRequest(request_id, request.job.job_id, job, candidates, job_context, candidate_context)
            serving.shadow.submit(shadow)
        # Plain data serialised once by orjson (46 -> 14 us against pydantic's dump): constructing
        # ~200 validated response objects per request cost more than ranking. The response_model above documents this
        # shape, and the contract tests validate answers against it.
        answer = {
            "request_id": request_id,
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


def _context(request: MatchRequest) -> tuple[tuple[object, ...], list[list[object]]]:
    """The request's values of `JOB_CONTEXT` and, per context column, its candidates' values of `CANDIDATE_CONTEXT`."""
    return _JOB_CONTEXT(request.job), [list(map(value, request.candidates)) for value in _CANDIDATE_CONTEXT]


def _log_record(
    request_id: str,
    job_id: int,
    job_context: tuple[object, ...],
    candidate_context: list[list[object]],
    ranking: Ranking,
    bundle: Bundle,
) -> dict[str, object]:
    """The request's prediction-log line (`gigmatch.monitoring.prediction_log`), candidates in request order."""
    return log_record(
        request_id=request_id,
        model_name=bundle.model_name,
        model_version=bundle.version,
        job_id=job_id,
        job_context=job_context,
        freelancer_ids=ranking.freelancer_ids,
        candidate_context=candidate_context,
        scores=ranking.scores,
        features=ranking.features,
    )


router = match_router()
