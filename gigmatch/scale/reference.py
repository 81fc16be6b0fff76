"""The drift gate's default reference on Dask: the champion's training rows scored partition by partition.

In-process, `gigmatch.monitoring.frame.training_frame` joins every application to its
job and freelancer (texts and skill lists included) before keeping the training jobs'
rows, so the whole match frame of the snapshot sits in one process. Here each worker
joins and scores only its partition's training rows, with the jobs, freelancers and
profile history sent to it once and the model too; what comes back is the monitoring
frame (features, score, context, outcome: numbers and a few labels). The same frame as
in-process, row for row and bit for bit (tested): partitions hold whole jobs in job order,
and each is put in (job, freelancer) order as the in-process split sorts the table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dask
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from gigmatch.data.contract import JOBS
from gigmatch.monitoring.frame import OUTCOME, ReferenceBuilder, frame_from_match_table
from gigmatch.params import EngineParams, SplitParams
from gigmatch.scale.cluster import engine_session, one_key
from gigmatch.scale.joins import Parents, in_table_order
from gigmatch.scale.validation import validate_snapshot_on_dask
from gigmatch.training.splits import split_jobs_by_time


def training_frame_on_dask(data_dir: Path, split: SplitParams, model: Pipeline, partition_rows: int) -> pd.DataFrame:
    """`training_frame`'s frame, built on the current Dask client's cluster (the snapshot checked there first)."""
    snapshot = validate_snapshot_on_dask(data_dir, partition_rows, with_truth=False)
    frames = snapshot.frames
    train_jobs = split_jobs_by_time(frames[JOBS], split.valid_fraction, split.test_fraction).train
    context, scorer = one_key((Parents.of(frames), np.sort(train_jobs))), one_key(model)
    tasks = [dask.delayed(_scored_part)(p, context, scorer, str(data_dir)) for p in snapshot.partitions.applications]
    parts = [part for part in dask.compute(*tasks) if part is not None]
    if not parts:
        raise ValueError(f"{data_dir}: no applications to the training split's jobs")
    return pd.concat(parts, ignore_index=True)


def reference_on_engine(engine: EngineParams, report: Callable[[str], object]) -> ReferenceBuilder:
    """The builder `champion_reference` calls on a cache miss: it opens the engine's cluster (`report`ing
    which) and builds the frame there; a cached reference needs no cluster, and starts none."""

    def build(data_dir: Path, split: SplitParams, model: Pipeline) -> pd.DataFrame:
        with engine_session(engine) as description:
            report(f"engine: {description}")
            return training_frame_on_dask(data_dir, split, model, engine.partition_rows)

    return build


def _scored_part(
    part: pd.DataFrame, context: tuple[Parents, np.ndarray], model: Pipeline, source: str
) -> pd.DataFrame | None:
    """A partition's applications to training jobs, joined and scored as `training_frame` does (None: none)."""
    parents, train_jobs = context
    applications = in_table_order(part)
    applications = applications[np.isin(applications["job_id"].to_numpy(), train_jobs)]
    if applications.empty:
        return None
    applications = applications.reset_index(drop=True)
    table = parents.match_frame(applications).assign(**{OUTCOME: applications["outcome"].to_numpy(dtype=np.int64)})
    return frame_from_match_table(table, model, source)
