"""How freelancers' track records grow as the marketplace runs.

A hire becomes a completed job some weeks later (the client's decision window,
then the job's length); on completion the freelancer's jobs completed go up by
one, the client's review (five stars when the outcome says so, else a lower
score that grows with hidden quality) enters the mean rating, and whether the
client would hire again enters the success rate. So a newcomer who gets hired
stops being a newcomer, as on a real marketplace.

`Careers` keeps every completion and answers "what did this freelancer's
profile show at that moment", strictly before it, at whole-second resolution:
the rule the feature pipeline applies to `freelancer_history`
(`gigmatch.features.match_frame`), so the outcome a client decided on and the
features a model sees come from the same profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gigmatch.data.simulator.freelancers import FreelancerPool
from gigmatch.data.simulator.sampling import Timeline
from gigmatch.data.taxonomy import DURATIONS

SECONDS_PER_DAY = 86400
# Hires of a job are decided within this many days of its posting (applications
# arrive within 14): no completion can reach an application of the same week.
DECISION_DAYS = 21.0
# Days a job takes once started, by its duration label (uniform between the bounds).
_JOB_DAYS = {
    "under_1_month": (7, 30),
    "1_to_3_months": (30, 90),
    "3_to_6_months": (90, 180),
    "over_6_months": (180, 300),
}
_KEY_SPAN = np.int64(2**34)  # seconds: more than five centuries of history per freelancer key


def to_seconds(days: np.ndarray) -> np.ndarray:
    """Day offsets as whole seconds, rounded as `Timeline.timestamps` rounds them."""
    return np.round(np.asarray(days, dtype=np.float64) * SECONDS_PER_DAY).astype(np.int64)


@dataclass(frozen=True)
class ProfileStats:
    """Per row, what a profile showed: jobs completed, rating and success rate (NaN without a record)."""

    jobs_completed: np.ndarray
    rating: np.ndarray
    success_rate: np.ndarray


@dataclass(frozen=True)
class Reviews:
    """The review each hire gets once the job is done, drawn with the outcomes."""

    job_days: np.ndarray  # per application: days the job would take if hired
    stars: np.ndarray  # per application: the rating short of five stars
    rehire: np.ndarray  # per application: the client would hire again (unless rated five stars: always)

    @classmethod
    def draw(cls, rng: np.random.Generator, duration: np.ndarray, hidden_quality: np.ndarray) -> Reviews:
        n = len(duration)
        bounds = np.array([_JOB_DAYS[d] for d in DURATIONS], dtype=np.float64)[duration]
        job_days = bounds[:, 0] + rng.random(n) * (bounds[:, 1] - bounds[:, 0])
        stars = np.clip(4.2 + 0.35 * hidden_quality + rng.normal(0.0, 0.45, n), 1.0, 4.9)
        rehire = rng.random(n) < 1.0 / (1.0 + np.exp(-(1.2 + hidden_quality)))
        return cls(job_days, stars, rehire)


class Careers:
    """Every freelancer's record: the state at the history start, plus completions as they are recorded."""

    def __init__(self, jobs_completed: np.ndarray, rating: np.ndarray, success_rate: np.ndarray):
        self.initial = ProfileStats(
            jobs_completed.astype(np.int64),
            np.where(jobs_completed > 0, rating, np.nan),
            np.where(jobs_completed > 0, success_rate, np.nan),
        )
        self._freelancer: list[np.ndarray] = []
        self._second: list[np.ndarray] = []
        self._stars: list[np.ndarray] = []
        self._rehired: list[np.ndarray] = []
        self._index: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def record(
        self, freelancer: np.ndarray, completed_second: np.ndarray, stars: np.ndarray, rehired: np.ndarray
    ) -> None:
        """Completions of hired jobs: who, when (seconds from the history start), the review."""
        self._freelancer.append(freelancer.astype(np.int64))
        self._second.append(completed_second.astype(np.int64))
        self._stars.append(stars.astype(np.float64))
        self._rehired.append(rehired.astype(np.float64))
        self._index = None

    def as_of(self, freelancer: np.ndarray, second: np.ndarray) -> ProfileStats:
        """Each profile as it showed at `second`: completions strictly before it count, later ones do not."""
        keys, stars, rehired = self._sorted()
        query = freelancer.astype(np.int64) * _KEY_SPAN + second.astype(np.int64)
        first = np.searchsorted(keys, freelancer.astype(np.int64) * _KEY_SPAN, side="left")
        upto = np.searchsorted(keys, query, side="left")  # completions of this freelancer before `second`
        done = upto - first
        star_sum = stars[upto] - stars[first]
        rehire_sum = rehired[upto] - rehired[first]
        return _combined(self.initial, freelancer, done, star_sum, rehire_sum)

    def history(self, until_second: int) -> pd.DataFrame:
        """Each freelancer's record after every completion up to `until_second`, one row per change.

        Columns: freelancer index, second (from the history start), jobs completed, rating, success rate.
        Two completions in one second keep the state after both.
        """
        keys, _, _ = self._sorted()
        freelancer = keys // _KEY_SPAN
        second = keys % _KEY_SPAN
        keep = second <= until_second
        # The state just after each completion: as of one second later.
        stats = self.as_of(freelancer[keep], second[keep] + 1)
        frame = pd.DataFrame(
            {
                "freelancer": freelancer[keep],
                "second": second[keep],
                "jobs_completed": stats.jobs_completed,
                "rating": stats.rating,
                "success_rate": stats.success_rate,
            }
        )
        return frame.drop_duplicates(["freelancer", "second"], keep="last").reset_index(drop=True)

    def _sorted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Completions keyed by (freelancer, second), sorted, with running sums (a leading 0) of reviews."""
        if self._index is None:
            freelancer = np.concatenate([np.empty(0, np.int64), *self._freelancer])
            keys = freelancer * _KEY_SPAN + np.concatenate([np.empty(0, np.int64), *self._second])
            order = np.argsort(keys, kind="stable")
            stars = np.concatenate([np.empty(0), *self._stars])[order]
            rehired = np.concatenate([np.empty(0), *self._rehired])[order]
            self._index = (
                keys[order],
                np.r_[0.0, np.cumsum(stars)],
                np.r_[0.0, np.cumsum(rehired)],
            )
        return self._index


def _combined(
    initial: ProfileStats, freelancer: np.ndarray, done: np.ndarray, star_sum: np.ndarray, rehire_sum: np.ndarray
) -> ProfileStats:
    """The history-start record plus the completions since, as means over every completed job (rounded as stored)."""
    n0 = initial.jobs_completed[freelancer]
    total = n0 + done
    prior = n0 > 0
    rating_sum = np.where(prior, initial.rating[freelancer] * n0, 0.0) + star_sum
    success_sum = np.where(prior, initial.success_rate[freelancer] * n0, 0.0) + rehire_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        rating = np.where(total > 0, np.round(rating_sum / total, 2), np.nan)
        success = np.where(total > 0, np.round(success_sum / total, 3), np.nan)
    return ProfileStats(total.astype(np.int64), rating, success)


def profile_history(pool: FreelancerPool, careers: Careers, timeline: Timeline, until_second: int) -> pd.DataFrame:
    """`freelancer_history`: each profile when the window opens (or at sign-up), then after every completion."""
    opened = np.maximum(to_seconds(pool.signup_day), 0)
    initial = careers.initial
    start = pd.DataFrame(
        {
            "freelancer": np.arange(len(opened)),
            "second": opened,
            "jobs_completed": initial.jobs_completed,
            "rating": initial.rating,
            "success_rate": initial.success_rate,
        }
    )
    changes = pd.concat([start, careers.history(until_second)], ignore_index=True)
    changes = changes.sort_values(["freelancer", "second"], kind="stable")
    changes = changes.drop_duplicates(["freelancer", "second"], keep="last").reset_index(drop=True)
    ids = pool.table["freelancer_id"].to_numpy()
    return pd.DataFrame(
        {
            "freelancer_id": ids[changes["freelancer"].to_numpy()],
            "valid_from": timeline.timestamps(changes["second"].to_numpy() / SECONDS_PER_DAY),
            "jobs_completed": changes["jobs_completed"].to_numpy(np.int64),
            "rating": changes["rating"].to_numpy(float),
            "success_rate": changes["success_rate"].to_numpy(float),
        }
    )


def current_profiles(pool: FreelancerPool, careers: Careers, at_second: int) -> pd.DataFrame:
    """The freelancers table with each profile's statistics as of the snapshot (completions up to it count)."""
    everyone = np.arange(len(pool.table))
    record = careers.as_of(everyone, np.full(len(everyone), at_second + 1))
    return pool.table.assign(
        jobs_completed=record.jobs_completed, rating=record.rating, success_rate=record.success_rate
    )
