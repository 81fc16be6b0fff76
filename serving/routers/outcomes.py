"""Report what became of the candidates of answered requests: the outcomes log (`gigmatch.monitoring.outcome_log`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, status
from fastapi.exceptions import RequestValidationError

from gigmatch.monitoring.outcome_log import outcome_record
from serving.dependencies import ApiKey, Serving, ServingDep
from serving.fast_json import FastJSONRoute
from serving.schemas import Outcome, OutcomesAccepted, OutcomesRequest

# FastJSONRoute validates the body from its bytes: in strict mode, ISO-8601 strings are datetimes only in JSON.
router = APIRouter(prefix="/v1", tags=["outcomes"], dependencies=[ApiKey], route_class=FastJSONRoute)
_MAX_PROBLEMS = 20  # named in one 422, as for any invalid body
# Outcomes handled between two turns of the event loop, so that the largest batch does not hold the
# /v1/match requests in flight (measured: 45 ms for 10,000 outcomes, at most 10 ms between two turns;
# validating the body, 30 ms more, is one call).
_CHUNK = 1000


@router.post(
    "/outcomes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OutcomesAccepted,
    responses={
        401: {"description": "Missing or wrong API key"},
        413: {"description": "Body too large"},
        422: {"description": "Invalid outcomes (nothing written): each problem named by its place in the batch"},
    },
)
async def report_outcomes(batch: OutcomesRequest, serving: ServingDep) -> OutcomesAccepted:
    """Record outcomes of /v1/match answers, named by their `request_id`; 202 once buffered for the outcomes log.

    A batch holds 1 to 10,000 outcomes, at most one per (request_id, freelancer_id). The first
    outcome of a pair is the one kept: a pair already recorded is counted in `duplicates` and
    not written again, so a batch can be sent again safely. A freelancer who was not a candidate
    of a request this server answered is refused; a request it does not remember (answered before
    a restart, or by another worker) is taken as is. The whole batch is checked before anything
    is written: a 422 writes nothing. `dropped` counts outcomes the server could not buffer (its
    log is full): they are not recorded, and sending them again is safe.
    """
    await _refuse_strangers(batch.outcomes, serving)
    received_at = datetime.now(UTC)
    answers, log = serving.answers, serving.outcome_log
    accepted = duplicates = dropped = 0
    for start in range(0, len(batch.outcomes), _CHUNK):
        if start:
            await asyncio.sleep(0)  # let requests in flight run
        # async on purpose: no await between an outcome's check and its record, so two batches on the
        # event loop never record one pair twice (serving.answers has no lock).
        for item in batch.outcomes[start : start + _CHUNK]:
            if answers.is_recorded(item.request_id, item.freelancer_id):
                duplicates += 1
                continue
            record = outcome_record(
                request_id=item.request_id,
                freelancer_id=item.freelancer_id,
                outcome=item.outcome,
                occurred_at=item.occurred_at,
                received_at=received_at,
            )
            if log.append(record):  # a line the buffer refused is not remembered: sending it again works
                answers.record(item.request_id, item.freelancer_id)
                accepted += 1
            else:
                dropped += 1
    serving.metrics.outcomes.labels(result="accepted").inc(accepted)
    serving.metrics.outcomes.labels(result="duplicate").inc(duplicates)
    return OutcomesAccepted(accepted=accepted, duplicates=duplicates, dropped=dropped)


async def _refuse_strangers(outcomes: list[Outcome], serving: Serving) -> None:
    """422, in the shape of any invalid body, naming each freelancer who was not a candidate of a known request."""
    problems = []
    for index, item in enumerate(outcomes):
        if index and not index % _CHUNK:
            await asyncio.sleep(0)
        if serving.answers.is_candidate(item.request_id, item.freelancer_id) is False:
            problems.append(
                {
                    "loc": ("body", "outcomes", index, "freelancer_id"),
                    "msg": f"freelancer {item.freelancer_id} was not a candidate of request {item.request_id}",
                    "type": "value_error",
                }
            )
            if len(problems) == _MAX_PROBLEMS:
                break
    if problems:
        raise RequestValidationError(problems)
