"""Request and response models of the API (pydantic v2, strict).

Allowed values and ranges come from the taxonomy and the data contract
(`gigmatch.data.contract`), so the API accepts exactly what training data may hold.
Unknown fields are refused; so are duplicate candidates and blank text.
An outcome's fields follow the outcomes log's format (`gigmatch.monitoring.outcome_log`).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gigmatch.data.contract import (
    AVAILABILITY_RANGE,
    BUDGET_RANGE_USD,
    MAX_ID,
    MAX_REQUIRED_SKILLS,
    MAX_SKILLS_PER_PROFILE,
    OUTCOMES,
    OVERLAP_RANGE,
    RATE_RANGE_USD,
    RATING_RANGE,
    UTC_OFFSET_RANGE,
    YEARS_RANGE,
)
from gigmatch.data.taxonomy import BUDGET_TYPES, CATEGORY_SLUGS, DURATIONS, EXPERIENCE_LEVELS, REGION_SLUGS, SKILL_SLUGS
from gigmatch.monitoring.outcome_log import REQUEST_ID_PATTERN

Category = Literal[CATEGORY_SLUGS]  # type: ignore[valid-type]
Skill = Literal[SKILL_SLUGS]  # type: ignore[valid-type]
Region = Literal[REGION_SLUGS]  # type: ignore[valid-type]
BudgetType = Literal[BUDGET_TYPES]  # type: ignore[valid-type]
Duration = Literal[DURATIONS]  # type: ignore[valid-type]
ExperienceLevel = Literal[EXPERIENCE_LEVELS]  # type: ignore[valid-type]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
UtcOffset = Annotated[float, Field(ge=UTC_OFFSET_RANGE[0], le=UTC_OFFSET_RANGE[1])]


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("lists a skill twice")
    return values


Distinct = AfterValidator(_distinct)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False, protected_namespaces=())


class Job(_Strict):
    job_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    category: Category
    required_skills: Annotated[list[Skill], Field(min_length=1, max_length=MAX_REQUIRED_SKILLS), Distinct]
    budget_type: BudgetType
    budget_usd: Annotated[float, Field(ge=BUDGET_RANGE_USD[0], le=BUDGET_RANGE_USD[1])]
    duration: Duration
    experience_level: ExperienceLevel
    description: Text
    timezone_overlap_hours: Annotated[int, Field(ge=OVERLAP_RANGE[0], le=OVERLAP_RANGE[1])]
    client_utc_offset: UtcOffset


class Candidate(_Strict):
    freelancer_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    region: Region
    utc_offset: UtcOffset
    years_experience: Annotated[float, Field(ge=YEARS_RANGE[0], le=YEARS_RANGE[1])]
    hourly_rate_usd: Annotated[float, Field(ge=RATE_RANGE_USD[0], le=RATE_RANGE_USD[1])]
    skills: Annotated[list[Skill], Field(min_length=1, max_length=MAX_SKILLS_PER_PROFILE), Distinct]
    rating: Annotated[float, Field(ge=RATING_RANGE[0], le=RATING_RANGE[1])] | None = None
    jobs_completed: Annotated[int, Field(ge=0, le=100_000)]
    success_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    weekly_availability_hours: Annotated[int, Field(ge=AVAILABILITY_RANGE[0], le=AVAILABILITY_RANGE[1])]
    profile_text: Text


_EXAMPLE_JOB: dict[str, Any] = {
    "job_id": 4242,
    "category": "llm_apps",
    "required_skills": ["rag_pipelines", "python", "vector_databases"],
    "budget_type": "hourly",
    "budget_usd": 60.0,
    "duration": "1_to_3_months",
    "experience_level": "expert",
    "description": "We are looking for an expert LLM Application Engineer to build a RAG assistant over our docs.",
    "timezone_overlap_hours": 4,
    "client_utc_offset": -5.0,
}
_EXAMPLE_CANDIDATES: list[Any] = [
    {
        "freelancer_id": 17,
        "region": "eastern_europe",
        "utc_offset": 2.0,
        "years_experience": 7.5,
        "hourly_rate_usd": 55.0,
        "skills": ["python", "rag_pipelines", "embeddings", "fastapi"],
        "rating": 4.9,
        "jobs_completed": 31,
        "success_rate": 0.95,
        "weekly_availability_hours": 30,
        "profile_text": "LLM Application Engineer with 7 years of experience. Core stack: Python, RAG Pipelines.",
    },
    {
        "freelancer_id": 98,
        "region": "latin_america",
        "utc_offset": -5.0,
        "years_experience": 2.0,
        "hourly_rate_usd": 28.0,
        "skills": ["python", "prompt_engineering", "openai_api"],
        "rating": None,
        "jobs_completed": 0,
        "success_rate": None,
        "weekly_availability_hours": 40,
        "profile_text": "Freelance LLM Application Engineer. I work mostly with Python and Prompt Engineering.",
    },
]


_FREELANCER_ID = attrgetter("freelancer_id")


class MatchRequest(_Strict):
    """A job and the freelancers who applied to it."""

    model_config = _Strict.model_config | ConfigDict(
        json_schema_extra={"examples": [{"job": _EXAMPLE_JOB, "candidates": _EXAMPLE_CANDIDATES, "top_k": 10}]},
    )

    job: Job
    candidates: Annotated[list[Candidate], Field(min_length=1, max_length=10_000)]
    top_k: Annotated[int, Field(ge=1, le=10_000)] | None = None

    @model_validator(mode="after")
    def _distinct_candidates(self) -> MatchRequest:
        ids = list(map(_FREELANCER_ID, self.candidates))
        if len(set(ids)) != len(ids):
            raise ValueError("candidates lists a freelancer_id twice")
        return self


class Reason(_Strict):
    feature: str
    label: str
    value: float
    effect: float = Field(description="Contribution to the score: positive pushed it up, negative down.")


class RankedCandidate(_Strict):
    freelancer_id: int
    rank: int
    match_score: float
    reasons: list[Reason]


class MatchResponse(_Strict):
    request_id: str = Field(description="This answer's id (32 hex digits): report its outcomes with it.")
    job_id: int
    model_name: str
    model_version: str
    candidates: list[RankedCandidate]


MAX_OUTCOMES_PER_REQUEST = 10_000
RequestId = Annotated[str, StringConstraints(pattern=REQUEST_ID_PATTERN)]
FreelancerId = Annotated[int, Field(ge=1, le=MAX_ID)]
_OUTCOME_NAMES = "0 rejected, 1 shortlisted, 2 hired, 3 hired and rated five stars"


def _known_outcome(code: int) -> int:
    if code not in OUTCOMES:
        raise ValueError(f"{code} is not an outcome code ({_OUTCOME_NAMES})")
    return code


# A strict int checked against the codes (a Literal of ints would take true and 1.0, even in strict mode).
OutcomeCode = Annotated[
    int, Field(description=_OUTCOME_NAMES, json_schema_extra={"enum": list(OUTCOMES)}), AfterValidator(_known_outcome)
]


class Outcome(_Strict):
    """What became of one candidate of one answer."""

    request_id: RequestId = Field(description="The `request_id` of the /v1/match answer.")
    freelancer_id: FreelancerId
    outcome: OutcomeCode
    occurred_at: AwareDatetime | None = Field(None, description="When it happened (ISO-8601 with a zone), if known.")


class OutcomesRequest(_Strict):
    """A batch of outcomes, at most one per (request_id, freelancer_id)."""

    model_config = _Strict.model_config | ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "outcomes": [
                        {"request_id": "5f0c6b8e2a9d4e7f8b1c3d5e7f9a1b2c", "freelancer_id": 17, "outcome": 2},
                        {
                            "request_id": "5f0c6b8e2a9d4e7f8b1c3d5e7f9a1b2c",
                            "freelancer_id": 98,
                            "outcome": 0,
                            "occurred_at": "2026-11-20T14:05:00+01:00",
                        },
                    ]
                }
            ]
        },
    )

    outcomes: Annotated[list[Outcome], Field(min_length=1, max_length=MAX_OUTCOMES_PER_REQUEST)]

    @field_validator("outcomes")
    @classmethod
    def _one_per_pair(cls, outcomes: list[Outcome]) -> list[Outcome]:
        first: dict[tuple[str, int], int] = {}
        for index, item in enumerate(outcomes):
            seen = first.setdefault((item.request_id, item.freelancer_id), index)
            if seen != index:
                raise ValueError(f"outcomes.{index} repeats the request_id and freelancer_id of outcomes.{seen}")
        return outcomes


class OutcomesAccepted(_Strict):
    accepted: int = Field(description="Outcomes taken for the outcomes log.")
    duplicates: int = Field(description="Outcomes of pairs already recorded: not written again.")
    dropped: int = Field(
        description="Outcomes the server could not buffer (its log is full): not recorded, safe to send again."
    )


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, protected_namespaces=())

    model_name: str
    version: str
    run_id: str
    data_md5: str
    git_commit: str
    test_metrics: dict[str, float]


class Status(BaseModel):
    status: str
    detail: str | None = None
    model_version: str | None = None
