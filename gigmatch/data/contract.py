"""The data contract: every table's columns, types and rules, in one place.

Each column is declared once (`Field`); the Parquet storage schema and the
pandera value checks are both built from those declarations. Rules that span
tables (foreign keys, timestamps in order) live in `gigmatch.data.validation`;
the API's request models take their bounds from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pda
import pyarrow as pa
import pyarrow.compute as pc

from gigmatch.data.taxonomy import (
    BUDGET_TYPES,
    CATEGORY_SLUGS,
    DURATIONS,
    EXPERIENCE_LEVELS,
    REGION_SLUGS,
    SKILL_SLUGS,
)

FREELANCERS = "freelancers"
JOBS = "jobs"
APPLICATIONS = "applications"
# Each freelancer's profile statistics over time: the features of an application read
# them as of the application (gigmatch.features.match_frame, "the as-of rule").
FREELANCER_HISTORY = "freelancer_history"
# Ground truth written by the simulator for oracle figures; no feature may read it.
SIMULATOR_TRUTH = "simulator_truth"
REQUIRED_TABLES = (FREELANCERS, JOBS, APPLICATIONS)
CLIENT_TABLES = (*REQUIRED_TABLES, FREELANCER_HISTORY)  # what a client's export may give
ALL_TABLES = (*CLIENT_TABLES, SIMULATOR_TRUTH)
# The profile statistics that change as work is done: `freelancer_history` holds them over time.
PROFILE_STATISTICS = ("jobs_completed", "rating", "success_rate")
# Outcome grades: the relevance the ranking metrics use. Hired or better counts as a hire.
REJECTED, SHORTLISTED, HIRED, HIRED_FIVE_STARS = 0, 1, 2, 3
OUTCOMES = (REJECTED, SHORTLISTED, HIRED, HIRED_FIVE_STARS)

SKILL_LIST = pa.list_(pa.string())
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


def table_file(table: str) -> str:
    return f"{table}.parquet"


def _list_lengths(min_len: int, max_len: int) -> pda.Check:
    def check(series: pd.Series) -> pd.Series:
        lengths = pc.list_value_length(series.array._pa_array).to_numpy(zero_copy_only=False)
        return pd.Series((lengths >= min_len) & (lengths <= max_len), index=series.index)

    return pda.Check(check, name=f"list_length_between({min_len}, {max_len})")


def _list_items_allowed(allowed: tuple[str, ...], what: str) -> pda.Check:
    allowed_set = pa.array(allowed)

    def check(series: pd.Series) -> pd.Series:
        lists = series.array._pa_array
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        unknown = pc.invert(pc.is_in(pc.list_flatten(lists), value_set=allowed_set))
        bad = np.zeros(len(series), dtype=bool)
        bad[parents[unknown.to_numpy(zero_copy_only=False)]] = True
        return pd.Series(~bad, index=series.index)

    return pda.Check(check, name=f"known_{what}")


def _list_items_distinct() -> pda.Check:
    def check(series: pd.Series) -> pd.Series:
        lists = series.array._pa_array
        flat = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        pairs = pd.DataFrame({"row": parents, "item": flat})
        bad = np.zeros(len(series), dtype=bool)
        bad[pairs.loc[pairs.duplicated(), "row"].to_numpy()] = True
        return pd.Series(~bad, index=series.index)

    return pda.Check(check, name="no_repeated_items")


def _non_blank() -> pda.Check:
    return pda.Check(lambda s: s.str.strip().str.len() > 0, name="non_blank_text")


@dataclass(frozen=True)
class Field:
    name: str
    arrow_type: pa.DataType
    checks: tuple[pda.Check, ...] = ()
    nullable: bool = False
    unique: bool = False


@dataclass(frozen=True)
class TableContract:
    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    frame_checks: tuple[pda.Check, ...] = field(default=())

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(f.name, f.arrow_type, nullable=f.nullable) for f in self.fields])

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def pandera_schema(self) -> pda.DataFrameSchema:
        columns = {
            f.name: pda.Column(pandas_dtype(f.arrow_type), list(f.checks), nullable=f.nullable, unique=f.unique)
            for f in self.fields
        }
        checks = [pda.Check(lambda df: len(df) > 0, name="table_not_empty", element_wise=False)]
        return pda.DataFrameSchema(
            columns,
            checks=checks + list(self.frame_checks),
            unique=list(self.key) if len(self.key) > 1 else None,
            strict=True,
            ordered=False,
        )


def pandas_dtype(arrow_type: pa.DataType) -> object:
    """The pandas dtype a validated frame holds for an arrow column type."""
    if arrow_type == SKILL_LIST:
        return pd.ArrowDtype(SKILL_LIST)
    if arrow_type == UTC_TIMESTAMP:
        return pd.DatetimeTZDtype("us", "UTC")
    if pa.types.is_string(arrow_type):
        return pd.StringDtype(na_value=np.nan)
    return arrow_type.to_pandas_dtype()


# Bounds shared by the data contract and the API's request models.
UTC_OFFSET_RANGE = (-12.0, 14.0)
YEARS_RANGE = (0.0, 60.0)
RATE_RANGE_USD = (1.0, 1000.0)  # hourly rates and budgets below a dollar are errors, not bargains
BUDGET_RANGE_USD = (1.0, 10_000_000.0)
MAX_ID = 2**63 - 1  # ids are int64
RATING_RANGE = (1.0, 5.0)
AVAILABILITY_RANGE = (1, 80)
OVERLAP_RANGE = (0, 12)

_ID = (pda.Check.ge(1),)
_OFFSET = (pda.Check.in_range(*UTC_OFFSET_RANGE),)
# Skills per profile: the simulator draws 3-12; client data may list fewer or more.
MAX_SKILLS_PER_PROFILE = 40
MAX_REQUIRED_SKILLS = 15

CONTRACTS: dict[str, TableContract] = {
    FREELANCERS: TableContract(
        FREELANCERS,
        (
            Field("freelancer_id", pa.int64(), _ID, unique=True),
            Field("region", pa.string(), (pda.Check.isin(REGION_SLUGS),)),
            Field("utc_offset", pa.float64(), _OFFSET),
            Field("years_experience", pa.float64(), (pda.Check.in_range(*YEARS_RANGE),)),
            Field("hourly_rate_usd", pa.float64(), (pda.Check.in_range(*RATE_RANGE_USD),)),
            Field(
                "skills",
                SKILL_LIST,
                (
                    _list_lengths(1, MAX_SKILLS_PER_PROFILE),
                    _list_items_allowed(SKILL_SLUGS, "skills"),
                    _list_items_distinct(),
                ),
            ),
            Field("rating", pa.float64(), (pda.Check.in_range(*RATING_RANGE),), nullable=True),
            Field("jobs_completed", pa.int64(), (pda.Check.ge(0),)),
            Field("success_rate", pa.float64(), (pda.Check.in_range(0.0, 1.0),), nullable=True),
            Field("weekly_availability_hours", pa.int64(), (pda.Check.in_range(*AVAILABILITY_RANGE),)),
            Field("profile_text", pa.string(), (_non_blank(),)),
            Field("signup_date", UTC_TIMESTAMP),
        ),
        key=("freelancer_id",),
    ),
    JOBS: TableContract(
        JOBS,
        (
            Field("job_id", pa.int64(), _ID, unique=True),
            Field("client_id", pa.int64(), _ID),
            Field("client_region", pa.string(), (pda.Check.isin(REGION_SLUGS),)),
            Field("client_utc_offset", pa.float64(), _OFFSET),
            Field("posted_at", UTC_TIMESTAMP),
            Field("category", pa.string(), (pda.Check.isin(CATEGORY_SLUGS),)),
            Field(
                "required_skills",
                SKILL_LIST,
                (
                    _list_lengths(1, MAX_REQUIRED_SKILLS),
                    _list_items_allowed(SKILL_SLUGS, "skills"),
                    _list_items_distinct(),
                ),
            ),
            Field("budget_type", pa.string(), (pda.Check.isin(BUDGET_TYPES),)),
            Field("budget_usd", pa.float64(), (pda.Check.in_range(*BUDGET_RANGE_USD),)),
            Field("duration", pa.string(), (pda.Check.isin(DURATIONS),)),
            Field("experience_level", pa.string(), (pda.Check.isin(EXPERIENCE_LEVELS),)),
            Field("description", pa.string(), (_non_blank(),)),
            Field("timezone_overlap_hours", pa.int64(), (pda.Check.in_range(*OVERLAP_RANGE),)),
        ),
        key=("job_id",),
    ),
    APPLICATIONS: TableContract(
        APPLICATIONS,
        (
            Field("job_id", pa.int64(), _ID),
            Field("freelancer_id", pa.int64(), _ID),
            Field("applied_at", UTC_TIMESTAMP),
            Field("outcome", pa.int8(), (pda.Check.isin(OUTCOMES),)),
        ),
        key=("job_id", "freelancer_id"),
    ),
    FREELANCER_HISTORY: TableContract(
        FREELANCER_HISTORY,
        (
            Field("freelancer_id", pa.int64(), _ID),
            Field("valid_from", UTC_TIMESTAMP),
            Field("jobs_completed", pa.int64(), (pda.Check.ge(0),)),
            Field("rating", pa.float64(), (pda.Check.in_range(*RATING_RANGE),), nullable=True),
            Field("success_rate", pa.float64(), (pda.Check.in_range(0.0, 1.0),), nullable=True),
        ),
        key=("freelancer_id", "valid_from"),
    ),
    SIMULATOR_TRUTH: TableContract(
        SIMULATOR_TRUTH,
        (
            Field("job_id", pa.int64(), _ID),
            Field("freelancer_id", pa.int64(), _ID),
            Field("true_match_probability", pa.float64(), (pda.Check.in_range(0.0, 1.0),)),
        ),
        key=("job_id", "freelancer_id"),
    ),
}

# Arrow types a file may store that widen losslessly to the contract's type.
Widening = Callable[[pa.DataType], bool]
WIDENS_TO: dict[pa.DataType, Widening] = {
    pa.int64(): lambda t: pa.types.is_integer(t),
    pa.int8(): lambda t: pa.types.is_integer(t),
    pa.float64(): lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    pa.string(): lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    SKILL_LIST: lambda t: (
        (pa.types.is_list(t) or pa.types.is_large_list(t))
        and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))
    ),
    UTC_TIMESTAMP: lambda t: pa.types.is_timestamp(t) and t.tz is not None,
}
