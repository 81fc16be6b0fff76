"""Partitions that hold whole jobs: a job's candidates are ranked, and its features compared, against each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the training flow imports the cuts; Dask's frames only when they are used
    import dask.dataframe as dd

JOB = "job_id"
_KEY = "partition_job_id"  # the index: a name of its own, so that `job_id` stays an unambiguous column


def by_job(frame: dd.DataFrame, partition_rows: int, divisions: list[int] | None = None) -> dd.DataFrame:
    """The rows indexed and partitioned by job id: every job in exactly one partition, jobs in order.

    The cuts are chosen from each job's row count (`job_cuts`), at job boundaries, so
    that a partition holds about `partition_rows` rows (at most one job more): `set_index`
    with these divisions then only moves rows, it samples nothing. (Its own quantile cuts
    could not be asked for more partitions than there are jobs.) Given `divisions` (another
    table's cuts), the rows go to the partitions that table's jobs are in; a row of a job
    outside them, to the first or last. The job id stays a column as well: the stages read
    it there, as they do in-process.
    """
    cuts = job_cuts(frame, partition_rows) if divisions is None else divisions
    return frame.assign(**{_KEY: frame[JOB]}).set_index(_KEY, divisions=cuts)


def job_cuts(frame: dd.DataFrame, partition_rows: int) -> list[int]:
    """The divisions `by_job` cuts a frame at, from each job's row count (one pass over the job id column)."""
    sizes = frame[JOB].value_counts().compute().sort_index()
    return job_divisions(sizes.index.to_numpy(), sizes.to_numpy(), partition_rows)


def job_divisions(jobs: np.ndarray, sizes: np.ndarray, partition_rows: int) -> list[int]:
    """Dask divisions over sorted job ids: the jobs whose first row falls in the same stretch of
    `partition_rows` rows (counting job after job) share a partition, so a partition starts at a job
    and holds at most `partition_rows` rows plus its last job's."""
    if len(jobs) == 0:
        raise ValueError("no rows to partition")
    before = np.cumsum(sizes) - sizes  # rows of the jobs before each one
    partition = before // partition_rows
    starts = np.flatnonzero(np.diff(partition, prepend=-1))
    return [*jobs[starts].tolist(), int(jobs[-1])]
