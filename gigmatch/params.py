"""Typed view of `params.yaml`, the one source of truth for pipeline parameters.

DVC reads the same file (stage `params:` keys), so a parameter changed here
invalidates exactly the stages that use it. Each stage has its own section;
every key is required and unknown keys are refused, so the file is the only
place a value is set and a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gigmatch.errors import ExitCode, GigmatchError

DEFAULT_PARAMS_PATH = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SectionT = TypeVar("SectionT", bound=_Section)


class UtilityWeights(_Section):
    """Weights of the simulator's latent match utility (see `gigmatch.data.simulator.outcomes`)."""

    coverage: float
    related_coverage: float
    over_budget: float
    under_budget: float
    missing_experience_year: float
    excess_experience_year: float
    timezone_shortfall_hour: float
    rating: float
    success_rate: float
    track_record: float
    newcomer: float
    hidden_quality: float
    expert_coverage: float
    quality_coverage: float
    no_hire: float
    no_hire_spread: float
    shortlist_share: Annotated[float, Field(gt=0, lt=1)]
    five_star_base: float
    five_star_quality: float


class SimulateParams(_Section):
    seed: int
    n_jobs: Annotated[int, Field(ge=10)]
    n_freelancers: Annotated[int, Field(ge=100)]
    min_applicants: Annotated[int, Field(ge=1)]
    max_applicants: Annotated[int, Field(ge=1)]
    related_applicant_share: Annotated[float, Field(ge=0, le=1)]
    history_start: dt.date
    history_months: Annotated[int, Field(ge=1, le=120)]
    new_freelancer_share: Annotated[float, Field(ge=0, le=1)]
    newcomer_patience_days: Annotated[float, Field(gt=0)]
    demand_trend_scale: Annotated[float, Field(ge=0)]
    budget_inflation_per_year: Annotated[float, Field(ge=-0.5, le=1.0)]
    utility: UtilityWeights

    @model_validator(mode="after")
    def _applicant_bounds(self) -> SimulateParams:
        if self.min_applicants > self.max_applicants:
            raise ValueError("min_applicants must not exceed max_applicants")
        if self.max_applicants > self.n_freelancers:
            raise ValueError("max_applicants must not exceed n_freelancers")
        return self


class ImportColumns(_Section):
    """Per table, the client's column name -> the contract's (`gigmatch data schema` lists the contract's)."""

    jobs: dict[str, str]
    freelancers: dict[str, str]
    applications: dict[str, str]
    freelancer_history: dict[str, str] = {}  # optional table: profile statistics over time

    @model_validator(mode="after")
    def _one_source_per_column(self) -> ImportColumns:
        for table in ("jobs", "freelancers", "applications", "freelancer_history"):
            targets = list(getattr(self, table).values())
            doubled = sorted({t for t in targets if targets.count(t) > 1})
            if doubled:
                raise ValueError(f"{table}: several client columns map to {', '.join(doubled)}")
        return self


class ImportParams(_Section):
    """`gigmatch data import`: how a client's tables are read into the snapshot."""

    timezone: str | None  # zone of timestamps that carry none; None refuses them
    list_separator: Annotated[str, Field(min_length=1)]  # between skills when a list arrives as text
    columns: ImportColumns

    @model_validator(mode="after")
    def _known_timezone(self) -> ImportParams:
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"unknown timezone {self.timezone!r} (an IANA name such as UTC or Europe/Berlin)"
                ) from exc
        return self


class DataParams(_Section):
    dir: Path
    import_: ImportParams = Field(alias="import")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ValidateParams(_Section):
    report: Path


class SplitParams(_Section):
    valid_fraction: Annotated[float, Field(gt=0, lt=0.5)]
    test_fraction: Annotated[float, Field(gt=0, lt=0.5)]


class ModelSpec(_Section):
    """One model to train (`train.models.<name>`): an estimator kind and its hyperparameters."""

    kind: Literal["logistic", "gbm_classifier", "lambdarank"]
    params: dict[str, Any]


class TrainParams(_Section):
    seed: int
    threads: Annotated[int, Field(ge=1, le=64)]  # fixed, so results repeat bit for bit
    parallel_fits: Annotated[int, Field(ge=1, le=16)]  # models fitted at once by the task runner
    text_max_features: Annotated[int, Field(ge=100)]
    models: Annotated[dict[str, ModelSpec], Field(min_length=1)]
    reports_dir: Path


class EvaluateParams(_Section):
    baseline_seed: int
    qualified_min_coverage: Annotated[float, Field(gt=0, le=1)]
    fairness_top_k: Annotated[int, Field(ge=1)]
    fairness_min_qualified: Annotated[int, Field(ge=1)]


class RegisterParams(_Section):
    experiment: Annotated[str, Field(min_length=1)]
    model_name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class OnlineEvidenceParams(_Section):
    """What a challenger must show on live traffic (as the shadow, `serving.shadow`) before it replaces the champion."""

    required: bool  # true: an offline pass makes a challenger; the monitoring flow promotes it on evidence
    min_matured_requests: Annotated[int, Field(ge=1)]  # requests both ranked, with matured outcomes
    min_ndcg_margin: float  # the challenger's live NDCG@10 minus the champion's, on those requests


class PromoteParams(_Section):
    min_improvement: Annotated[float, Field(ge=0)]
    min_fairness_ratio: Annotated[float, Field(ge=0, le=1)]
    online: OnlineEvidenceParams


DriftMethod = Literal["wasserstein", "jensenshannon", "psi"]


class ColumnRule(_Section):
    """How one column's drift is measured (Evidently's method names) and from what value it counts as drift."""

    method: DriftMethod
    threshold: Annotated[float, Field(gt=0)]


RuleName = Literal[
    "dataset_drift", "score_drift", "missing_values", "reliance_drift", "expected_ranking_quality", "ranking_quality"
]


class DriftParams(_Section):
    """The drift gate (`gigmatch drift`): rules, thresholds and where reports go.

    Thresholds are distances between the reference and the current batch, calibrated
    on batches of 2,000 rows (about 80 jobs): smaller batches are noisier and raise
    more false alarms, larger ones fewer.
    """

    report_dir: Path
    numeric: ColumnRule
    categorical: ColumnRule
    columns: dict[str, ColumnRule]  # per-column overrides of the two defaults
    drift_share: Annotated[float, Field(gt=0, le=1)]
    score: ColumnRule
    max_missing_increase: Annotated[float, Field(gt=0, le=1)]
    ndcg_k: Annotated[int, Field(ge=1)]
    max_ndcg_drop: Annotated[float, Field(gt=0, le=1)]
    outcome_maturity_hours: Annotated[float, Field(ge=0)]  # an answer's outcomes count once it is this old
    live_baseline_requests: Annotated[int, Field(ge=1)]  # a version's first matured requests: its live baseline
    live_window_requests: Annotated[int, Field(ge=1)]  # its latest matured requests, judged against the baseline
    max_live_ndcg_drop: Annotated[float, Field(gt=0, le=1)]
    max_reliance_drifted: Annotated[float, Field(gt=0, le=1)]  # share of the model's reliance on drifted columns
    max_expected_ndcg_drop: Annotated[float, Field(gt=0, le=1)]  # expected NDCG@k (no outcomes) below the reference's
    expected_ndcg_draws: Annotated[int, Field(ge=1, le=1000)]  # outcome draws per row for the expected NDCG
    blocking: list[RuleName]  # rules whose failure blocks (exit 1); the others only warn
    html_reference_rows: Annotated[int, Field(ge=1000)]
    min_current_rows: Annotated[int, Field(ge=1)]  # the batch size the thresholds were calibrated for


class BatchParams(_Section):
    """The pinned "current" batch the drift stage gates (`gigmatch data batch`, seeded: every clone draws the same)."""

    path: Path
    scenario: str
    seed: int
    rows: Annotated[int, Field(ge=1)]


class EngineParams(_Section):
    """Where the stages that grow with the data run (`gigmatch.scale`): in this process, or on Dask."""

    kind: Literal["in_process", "dask"]
    partition_rows: Annotated[int, Field(ge=1000)]  # applications per partition (whole jobs each)
    workers: Annotated[int, Field(ge=1)] | None  # a local cluster's worker processes; None: one per core
    worker_memory_gib: Annotated[float, Field(gt=0)] | None  # a local cluster's limit per worker; None: Dask's share

    @property
    def worker_memory_bytes(self) -> int | None:
        return None if self.worker_memory_gib is None else int(self.worker_memory_gib * 2**30)


class Params(_Section):
    data: DataParams
    simulate: SimulateParams
    validate_: ValidateParams = Field(alias="validate")
    split: SplitParams
    train: TrainParams
    evaluate: EvaluateParams
    register_: RegisterParams = Field(alias="register")
    promote: PromoteParams
    batch: BatchParams
    drift: DriftParams
    # Optional, so a project's params.yaml from before the Dask engine still loads: in-process.
    engine: EngineParams = EngineParams(kind="in_process", partition_rows=250_000, workers=None, worker_memory_gib=None)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def override(section: SectionT, **changes: object) -> SectionT:
    """A copy of a section with some values changed, validated like the file."""
    return type(section).model_validate({**section.model_dump(), **changes})


class ParamsError(GigmatchError, ValueError):
    """`params.yaml` is missing, unreadable or does not match the typed sections."""

    exit_code = ExitCode.ERROR


def load_params(path: Path = DEFAULT_PARAMS_PATH) -> Params:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as exc:
        raise ParamsError(f"params file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"params file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"params file {path} must hold a mapping of sections")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ParamsError(f"params file {path} is invalid: {problems}") from exc


def load_engine(path: Path = DEFAULT_PARAMS_PATH) -> EngineParams:
    """The engine params.yaml names; outside a checkout (no params.yaml at the default path), in-process:
    scoring or checking given files needs no pipeline parameters."""
    if Path(path) == DEFAULT_PARAMS_PATH and not Path(path).exists():
        return Params.model_fields["engine"].default
    return load_params(path).engine
