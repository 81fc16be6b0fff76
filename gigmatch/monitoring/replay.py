"""Marketplace replay, the pure part: what is sent (the plan) and what the marketplace answers (the outcome model).

The plan. Jobs and their applicants come from the simulator (`simulate_batch`), from
the same part of the history as the training split, so the stationary period is the
distribution the champion was trained on. A replay is a sequence of phases: scenario
`none` first, then, from simulated day `drift_from_day`, the named drift scenario at
its magnitude. Days are counted in jobs (`jobs_per_day` requests make a day). Each
phase draws its own marketplace (its seed derived from the replay's) and posts its
jobs in the order they were posted in it, earliest first. Jobs are renumbered
`base + 1, base + 2, ...` in plan order, `base` drawn from the seed, so the phases, and
replays with different seeds, never send the same job id (the monitoring joins and
within-job features group by it). One request is one job with all its applicants,
in the simulator's order, and no `top_k`: every candidate comes back ranked.

The outcome model (position bias). The client looks at the ranking the API served,
top down, and examines the candidate at served rank r (1-based) with probability

    P(examined | r) = (1 / r) ** eta            (eta = `position_bias`, default 1)

so rank 1 is always examined, rank 2 half the time, rank 10 one time in ten at eta 1;
eta 0 examines everyone (no bias), a larger eta looks at fewer. An examined candidate
gets its true simulated outcome (0 rejected, 1 shortlisted, 2 hired, 3 hired and rated
five stars: what the simulated client would have decided); an unexamined one is
reported as rejected (0). So a ranking that puts the true hires on top gets more of
them reported, as a real marketplace rewards a better ranking with more hires.

Examination is decided by a uniform u[i, r] per (request i, served rank r), drawn up
front from the seed: candidate at rank r is examined when u[i, r] < P(examined | r).
The draws belong to the rank, not the candidate, so the same seed against the same
model gives the same requests and the same reported outcomes, and two models are
judged on the same dice.

Live NDCG@k is computed here from what was reported, against the order served
(`gigmatch.training.ranking_metrics`, the figure monitoring computes from the logs),
and also against the true outcomes (every candidate examined), which only a
simulator knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gigmatch.data.contract import REJECTED
from gigmatch.features.match_frame import (
    FLOAT_COLUMNS,
    FREELANCER_COLUMNS,
    INT_COLUMNS,
    JOB_COLUMNS,
    SKILL_LIST_COLUMNS,
)
from gigmatch.monitoring.scenarios import SCENARIOS, MarketBatch, simulate_market_batch
from gigmatch.params import SimulateParams
from gigmatch.training.ranking_metrics import ndcg_per_group

STATIONARY = "none"
_PLAN_TAG = 0x2E91A7  # keeps the replay's streams apart from every other use of the same seed
_JOB_ID_STREAM, _EXAMINATION_STREAM, _FIRST_PHASE_STREAM = 0, 1, 2  # one random stream per purpose
_JOB_ID_STEP = 10**6  # job ids base + 1 .. base + n: room for a million requests per replay
_JOB_ID_BASES = 10**9  # bases drawn among this many: ids stay below 2**53 (exact in any JSON reader)
# Freelancer ids: each phase's marketplace numbers its own pool 1..n; the replay renumbers them
# base + phase * step + id, so two phases' freelancers (and the snapshot's) are never one person.
_FREELANCER_ID_STREAM = 1000  # far above the phases' streams (_FIRST_PHASE_STREAM + phase number)
_FREELANCER_ID_STEP = 10**7


@dataclass(frozen=True)
class ReplaySpec:
    """What a replay sends: its seed, its size, and the drift it plays from which day."""

    seed: int
    requests: int
    jobs_per_day: int = 40
    scenario: str = STATIONARY
    magnitude: float | None = None  # None: the scenario's default magnitude
    drift_from_day: int = 0
    position_bias: float = 1.0  # eta

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown drift scenario {self.scenario!r}; known: {', '.join(SCENARIOS)}")
        if self.requests < 1 or self.jobs_per_day < 1 or self.drift_from_day < 0:
            raise ValueError("requests and jobs_per_day must be positive, drift_from_day not negative")
        if not np.isfinite(self.position_bias) or self.position_bias < 0:
            raise ValueError(f"position_bias (eta) must be a finite number >= 0, not {self.position_bias}")

    @property
    def drifted_magnitude(self) -> float:
        return SCENARIOS[self.scenario].default_magnitude if self.magnitude is None else float(self.magnitude)


@dataclass(frozen=True)
class Phase:
    scenario: str
    magnitude: float
    first: int  # index of its first request in the plan
    count: int


@dataclass(frozen=True)
class PlannedRequest:
    """One /v1/match request of the plan, with what the marketplace knows and the API does not."""

    index: int
    day: int
    phase: str
    job_id: int
    payload: dict[str, object]  # the MatchRequest body, plain JSON values
    candidate_ids: tuple[int, ...]  # in request order
    true_outcome: dict[int, int]  # freelancer id -> simulated outcome code
    examination: np.ndarray  # u[rank - 1] for rank 1..n: examined when below (1/rank)**eta


@dataclass(frozen=True)
class MarketRecords:
    """What the marketplace knows of the plan's jobs and freelancers beyond the request bodies (plan ids)."""

    jobs: pd.DataFrame  # job_id, client_id, client_region
    freelancers: pd.DataFrame  # freelancer_id, signup_date
    truth: pd.DataFrame  # job_id, freelancer_id, true_match_probability


@dataclass(frozen=True)
class ReplayPlan:
    spec: ReplaySpec
    phases: tuple[Phase, ...]
    requests: tuple[PlannedRequest, ...]
    market: MarketRecords


@dataclass(frozen=True)
class ServedRequest:
    """A request the API answered and what the marketplace reports for it (codes in served order)."""

    index: int
    day: int
    phase: str
    request_id: str
    model_version: str
    served: tuple[int, ...]  # freelancer ids, rank 1 first
    reported: tuple[int, ...]
    true: tuple[int, ...]


@dataclass(frozen=True)
class NdcgFigure:
    value: float | None  # None: no request had a relevant candidate
    requests: int  # requests counted
    graded: int  # of them, with at least one relevant candidate (the ones NDCG is defined on)


def replay_phases(spec: ReplaySpec) -> tuple[Phase, ...]:
    """The stationary period, then the drift from `drift_from_day` (day d holds requests d*jobs_per_day...)."""
    if spec.scenario == STATIONARY:
        return (Phase(STATIONARY, 0.0, 0, spec.requests),)
    stationary = min(spec.requests, spec.drift_from_day * spec.jobs_per_day)
    phases = [Phase(STATIONARY, 0.0, 0, stationary)] if stationary else []
    if spec.requests > stationary:
        phases.append(Phase(spec.scenario, spec.drifted_magnitude, stationary, spec.requests - stationary))
    return tuple(phases)


def plan_replay(params: SimulateParams, spec: ReplaySpec, window: float) -> ReplayPlan:
    """The requests of a replay, deterministic from the spec and the simulator's params.

    `window`: the earliest share of the history the jobs come from (the training split's share).
    """
    phases = replay_phases(spec)
    job_id_base = _JOB_ID_STEP * (1 + int(_stream(spec.seed, _JOB_ID_STREAM).integers(_JOB_ID_BASES - 1)))
    freelancer_base = _JOB_ID_STEP * (1 + int(_stream(spec.seed, _FREELANCER_ID_STREAM).integers(_JOB_ID_BASES - 1)))
    dice = _stream(spec.seed, _EXAMINATION_STREAM)  # drawn in plan order: u[i, rank] up front
    planned: list[PlannedRequest] = []
    markets: list[MarketRecords] = []
    for number, phase in enumerate(phases):
        phase_seed = int(_sequence(spec.seed, _FIRST_PHASE_STREAM + number).generate_state(1)[0])
        batch = _phase_jobs(params, phase, window, phase_seed)
        first_ids = np.sort(batch.table["job_id"].unique())
        job_ids = dict(zip(first_ids, job_id_base + phase.first + np.arange(len(first_ids)) + 1, strict=True))
        freelancer_offset = freelancer_base + number * _FREELANCER_ID_STEP
        table = batch.table.assign(freelancer_id=batch.table["freelancer_id"] + freelancer_offset)
        for offset, (_, rows) in enumerate(table.groupby("job_id", sort=True)):
            index = phase.first + offset
            job_id = job_id_base + index + 1
            ids = tuple(int(i) for i in rows["freelancer_id"])
            true = dict(zip(ids, (int(o) for o in rows["outcome"]), strict=True))
            day = index // spec.jobs_per_day
            payload, examination = _payload(rows, job_id), dice.random(len(ids))
            planned.append(PlannedRequest(index, day, phase.scenario, job_id, payload, ids, true, examination))
        markets.append(_renumbered(batch, job_ids, freelancer_offset))
    return ReplayPlan(spec, phases, tuple(planned), _concat_markets(markets))


def examination_probability(rank: np.ndarray, eta: float) -> np.ndarray:
    """P(examined | served rank r) = (1/r)**eta, ranks 1-based."""
    return np.power(1.0 / np.asarray(rank, dtype=float), eta)


def reported_outcomes(planned: PlannedRequest, served: Sequence[int], eta: float) -> tuple[int, ...]:
    """The outcome codes the client reports, in served order: the true one if examined, else rejected."""
    if sorted(served) != sorted(planned.candidate_ids):
        raise ValueError(f"the answer for job {planned.job_id} does not rank exactly the request's candidates")
    rank = np.arange(1, len(served) + 1)
    examined = planned.examination[: len(served)] < examination_probability(rank, eta)
    true = np.array([planned.true_outcome[f] for f in served], dtype=np.int64)
    return tuple(int(code) for code in np.where(examined, true, REJECTED))


def serve(
    planned: PlannedRequest, request_id: str, model_version: str, served: Sequence[int], eta: float
) -> ServedRequest:
    """An answered request with the marketplace's reported and true outcomes for the order served."""
    reported = reported_outcomes(planned, served, eta)
    true = tuple(planned.true_outcome[f] for f in served)
    return ServedRequest(
        planned.index, planned.day, planned.phase, request_id, model_version, tuple(served), reported, true
    )


def ndcg_by(
    served: Iterable[ServedRequest], key: Callable[[ServedRequest], str], k: int = 10, *, truth: bool = False
) -> dict[str, NdcgFigure]:
    """NDCG@k of the served orders, per `key` (e.g. the model version), on the reported (or the true) outcomes.

    Keys in the order they first appear (plan order: versions as they came into service, phases as played).
    """
    groups: dict[str, list[ServedRequest]] = {}
    for item in served:
        groups.setdefault(key(item), []).append(item)
    out: dict[str, NdcgFigure] = {}
    for name, items in groups.items():
        group = np.concatenate([np.full(len(s.served), s.index) for s in items])
        score = np.concatenate([-np.arange(len(s.served), dtype=float) for s in items])  # rank 1 scores highest
        relevance = np.concatenate([np.asarray(s.true if truth else s.reported, dtype=float) for s in items])
        _, ndcg = ndcg_per_group(group, score, relevance, k)
        value = round(float(ndcg.mean()), 6) if len(ndcg) else None
        out[name] = NdcgFigure(value, len(items), len(ndcg))
    return out


def _sequence(seed: int, stream: int) -> np.random.SeedSequence:
    return np.random.SeedSequence((_PLAN_TAG, seed, stream))


def _stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(_sequence(seed, stream))


def _phase_jobs(params: SimulateParams, phase: Phase, window: float, seed: int) -> MarketBatch:
    """The first `phase.count` jobs posted in the phase's marketplace, with all their applicants.

    simulate_batch keeps whole jobs until it has `n_rows` rows; no job has more than
    max_applicants, so asking that many rows per job wanted always yields enough jobs.
    """
    n_rows = phase.count * params.max_applicants
    batch = simulate_market_batch(params, phase.scenario, phase.magnitude, n_rows, seed, window=window)
    first = np.sort(batch.table["job_id"].unique())[: phase.count]
    if len(first) < phase.count:
        raise ValueError(f"the {phase.scenario} marketplace holds {len(first)} jobs, {phase.count} needed")
    table = batch.table[batch.table["job_id"].isin(first)]
    return MarketBatch(
        table,
        batch.jobs[batch.jobs["job_id"].isin(first)],
        batch.freelancers[batch.freelancers["freelancer_id"].isin(table["freelancer_id"])],
        batch.truth[batch.truth["job_id"].isin(first)],
    )


def _renumbered(batch: MarketBatch, job_ids: dict[int, int], people_offset: int) -> MarketRecords:
    """A phase's marketplace records under the ids the plan sends (its clients renumbered as its freelancers)."""
    freelancer_offset = people_offset
    return MarketRecords(
        batch.jobs.assign(job_id=batch.jobs["job_id"].map(job_ids), client_id=batch.jobs["client_id"] + people_offset),
        batch.freelancers.assign(freelancer_id=batch.freelancers["freelancer_id"] + freelancer_offset),
        batch.truth.assign(
            job_id=batch.truth["job_id"].map(job_ids), freelancer_id=batch.truth["freelancer_id"] + freelancer_offset
        ),
    )


def _concat_markets(markets: list[MarketRecords]) -> MarketRecords:
    return MarketRecords(
        *(
            pd.concat([getattr(m, part) for m in markets], ignore_index=True)
            for part in ("jobs", "freelancers", "truth")
        )
    )


def _payload(rows: pd.DataFrame, job_id: int) -> dict[str, object]:
    """One job's rows as the MatchRequest body a client sends (skill lists as lists, NaN as null)."""
    records = rows.to_dict("records")
    job = {name: _json_value(name, records[0][name]) for name in JOB_COLUMNS} | {"job_id": job_id}
    candidates = [{name: _json_value(name, record[name]) for name in FREELANCER_COLUMNS} for record in records]
    return {"job": job, "candidates": candidates}


def _json_value(column: str, value: object) -> object:
    if column in SKILL_LIST_COLUMNS:
        return str(value).split()
    if column in INT_COLUMNS:
        return int(value)  # type: ignore[call-overload]
    if column in FLOAT_COLUMNS:
        number = float(value)  # type: ignore[arg-type]
        return None if np.isnan(number) else number  # a missing rating or success rate is null in the API
    return value
