"""What a partition of whole jobs is joined to, and the order its rows take: shared by training and the drift gate."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gigmatch.data.contract import FREELANCER_HISTORY, FREELANCERS, JOBS
from gigmatch.features.match_frame import build_match_frame
from gigmatch.scale.tables import by_row_number

KEYS = ["job_id", "freelancer_id"]


@dataclass(frozen=True)
class Parents:
    """What a partition's applications are joined to: sent to each worker once, as one key."""

    jobs: pd.DataFrame
    freelancers: pd.DataFrame
    history: pd.DataFrame | None

    @classmethod
    def of(cls, frames: dict[str, pd.DataFrame]) -> Parents:
        return cls(frames[JOBS], frames[FREELANCERS], frames.get(FREELANCER_HISTORY))

    def match_frame(self, applications: pd.DataFrame) -> pd.DataFrame:
        return build_match_frame(applications, self.jobs, self.freelancers, self.history)


def in_table_order(applications: pd.DataFrame) -> pd.DataFrame:
    """A partition's applications in (job, freelancer) order, ties in table order: `split_snapshot`'s order."""
    return by_row_number(applications).sort_values(KEYS, kind="stable").reset_index(drop=True)
