"""The training splits and their feature matrices on Dask: the match frame built part by part on the workers.

In-process, `split_snapshot` joins every application to its job and freelancer (the
descriptions, profile texts and skill lists on every row) and `fit_feature_matrices`
fits `MatchFeatures` on the training rows: the whole match frame sits in one process,
which is what outgrows it (training 1M applications peaked at 2.8 GB). Here the
applications stay in the partitions of whole jobs the contract's check left on the
cluster, and each worker joins only its own:

1. the fit: each partition's training applications reduced to their jobs' and
   freelancers' first rows (`fitting_rows`), gathered, reduced once more, joined in this
   process and fitted on: what fitting on every training row learns, exactly;
2. the features: the fitted transformer sent to each worker once, each partition joined
   again and featurised there (its within-job features whole: a job sits in one
   partition and one split). What comes back, a split at a time, is the outcomes and
   truth of every split, the test rows' match frame (the baselines, the slices, the
   fingerprint and the champion's measure read it), and the other rows' keys;
3. the matrices: assembled a split at a time on one worker (the one already holding most
   of their parts) and left there, a Future of `FeatureMatrices` that the candidates' task runs are given.
   The flow's process never holds them: at 10M applications, gathering them there and
   scattering them back for the candidates put 2.4 GB of matrices (and their pickled copy)
   in the flow and another copy on each worker a candidate ran on (training peaked at
   19.1 GB). Dask runs a task beside the data it reads, so the candidates train where the
   matrices are.

The same splits and matrices as in-process, row for row and bit for bit (tested): the
partitions hold whole jobs in job order and each is put in (job, freelancer) order, as
`split_snapshot` sorts the table. The joins run twice (a partition's match frame is never
kept): a worker holds one partition's texts at a time, not its share of the whole frame, and
what the joins freed is handed back to the system before the candidates train.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import getitem
from typing import TypeVar

import dask
import numpy as np
import pandas as pd
from distributed import Client, Future, default_client, wait

from gigmatch.data.contract import JOBS
from gigmatch.features.transformer import MatchFeatures, fitting_rows
from gigmatch.params import SplitParams
from gigmatch.scale.cluster import one_key, release_freed_memory
from gigmatch.scale.joins import KEYS, Parents, in_table_order
from gigmatch.scale.tables import ROW
from gigmatch.scale.validation import JobPartitions
from gigmatch.training.evaluation import EvaluationSet
from gigmatch.training.fitting import FeatureMatrices
from gigmatch.training.splits import SPLITS, JobSplit, SplitSets, split_jobs_by_time

T = TypeVar("T")


@dataclass(frozen=True)
class _SplitOutcomes:
    """One partition's rows of one split, as the flow's process reads them: no features."""

    relevance: np.ndarray
    truth: np.ndarray | None
    frame: pd.DataFrame  # the test split's match frame rows; the keys only for the others

    def __bool__(self) -> bool:
        return len(self.relevance) > 0


@dataclass(frozen=True)
class _SplitRows:
    """One partition's rows of one split: the features stay on the cluster, the outcomes go to the flow."""

    features: np.ndarray
    outcomes: _SplitOutcomes


def splits_on_dask(
    frames: dict[str, pd.DataFrame], partitions: JobPartitions, split: SplitParams, text_max_features: int
) -> tuple[SplitSets, Future[FeatureMatrices]]:
    """`split_snapshot` and `fit_feature_matrices` of a snapshot checked on the current Dask client's cluster
    (`validate_snapshot_on_dask`): `frames`, its jobs, freelancers and profile history as read in this process;
    `partitions`, its applications and truth as the check left them on the cluster. The matrices are a Future:
    they stay on the worker that assembled them (`.result()` fetches them)."""
    jobs_split = split_jobs_by_time(frames[JOBS], split.valid_fraction, split.test_fraction)
    parents = Parents.of(frames)
    context = one_key((parents, jobs_split))
    first_rows = dask.compute(*[dask.delayed(_training_fitting_rows)(p, context) for p in partitions.applications])
    fitting = fitting_rows(pd.concat(first_rows, ignore_index=True))
    transformer = MatchFeatures(text_max_features=text_max_features).fit(parents.match_frame(fitting))
    fitted = one_key(transformer)
    client = default_client()
    featured = client.compute([dask.delayed(_featurised)(part, t, context, fitted) for part, t in partitions.pairs()])
    evaluation, matrix_parts = {}, {}
    for name in SPLITS:  # gathered a split at a time: this process holds one split's parts beside the whole
        rows = [client.submit(getitem, f, name) for f in featured]
        found = [o for o in client.gather([client.submit(getattr, r, "outcomes") for r in rows]) if o]
        if not found:
            raise ValueError(f"the {name} split has no applications")
        evaluation[name] = _evaluation_set(found)
        matrix_parts[name] = [client.submit(getattr, r, "features") for r in rows]
    del featured, rows  # the partitions' outcomes and frames: the flow has them now
    matrices = _assembled(client, transformer, matrix_parts)
    release_freed_memory(client)
    return SplitSets(**evaluation, job_counts=jobs_split.sizes()), matrices


def _assembled(
    client: Client, transformer: MatchFeatures, parts: dict[str, list[Future[np.ndarray]]]
) -> Future[FeatureMatrices]:
    """The matrices from their partitions' parts (taken out of `parts`), a split at a time, each split's parts
    released once its matrix is whole: the worker assembling them holds one split's parts beside the matrices,
    not every split's (at 10M applications, every part beside every matrix took that worker to 6.9 GB)."""
    matrices = {}
    for name in SPLITS:
        matrices[name] = _finished(client.submit(np.concatenate, parts.pop(name)))  # its parts' last reference
    return _finished(client.submit(FeatureMatrices, transformer, matrices))


def _finished(future: Future[T]) -> Future[T]:
    """`future` once its task has run; a worker's error raised here."""
    wait(future)
    if future.status == "error":
        future.result()
    return future


def _training_fitting_rows(applications: pd.DataFrame, context: tuple[Parents, JobSplit]) -> pd.DataFrame:
    """A partition's training applications reduced to what the fit reads (`fitting_rows`), keys and times only."""
    ordered = in_table_order(applications)
    train = ordered[np.isin(ordered["job_id"].to_numpy(), context[1].train)]
    return fitting_rows(train)


def _featurised(
    applications: pd.DataFrame, truth: pd.DataFrame | None, context: tuple[Parents, JobSplit], fitted: MatchFeatures
) -> dict[str, _SplitRows]:
    """A partition's rows of each split: features, outcomes, truth, and the test rows' match frame (keys only for
    the others: training and validation read their features, outcomes and jobs)."""
    parents, jobs_split = context
    ordered = in_table_order(applications)
    match = parents.match_frame(ordered)
    features = fitted.transform(match)
    relevance = ordered["outcome"].to_numpy(dtype=np.int64)
    true_probability = None
    if truth is not None:
        keyed = truth.drop(columns=ROW).set_index(KEYS)["true_match_probability"]
        true_probability = keyed.reindex(pd.MultiIndex.from_frame(ordered[KEYS])).to_numpy()
    found = {}
    for name, mask in jobs_split.masks(ordered["job_id"].to_numpy()).items():
        rows = np.flatnonzero(mask)
        frame = match.iloc[rows].reset_index(drop=True)
        found[name] = _SplitRows(
            features[rows],
            _SplitOutcomes(
                relevance[rows],
                None if true_probability is None else true_probability[rows],
                frame if name == "test" else frame[KEYS],
            ),
        )
    return found


def _evaluation_set(parts: list[_SplitOutcomes]) -> EvaluationSet:
    truth = None if parts[0].truth is None else np.concatenate([p.truth for p in parts])
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    return EvaluationSet(frame, np.concatenate([p.relevance for p in parts]), truth)
