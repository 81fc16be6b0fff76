"""The data a training run saw, as MLflow records datasets: each split of the snapshot, by its DVC hash.

MLflow's "Datasets" panel shows a run's inputs: a name, a digest, a source and a profile.
The snapshot is versioned by DVC, so its digest is the DVC hash of the data folder (the
`data_md5` tag), and its source is where DVC keeps that version: the folder's place on the
DVC remote (`files/md5/<2>/<rest>`, DVC 3's layout) when the data is the pinned version,
else the folder it was read from, which no remote holds. `gigmatch data pull` fetches
the pinned version from there. Each split is one dataset of its own context (training,
validation, test), profiled by its applications and jobs: the splits are cut from the one
snapshot by posting time, so they share its digest and source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gigmatch.repro.lineage import Lineage
from gigmatch.training.splits import SplitSets

CONTEXTS = {"train": "training", "valid": "validation", "test": "test"}  # MLflow's context names


@dataclass(frozen=True)
class SplitDataset:
    name: str
    digest: str  # the snapshot's DVC hash
    uri: str  # where that version of the snapshot is kept
    context: str
    profile: dict[str, object]


def snapshot_uri(data_dir: Path, lineage: Lineage, remote: str | None) -> str:
    """The pinned snapshot's place on the DVC remote at URL `remote`; else (data not pinned, or no remote)
    the folder it was read from."""
    md5 = lineage.data_md5
    if lineage.data_pinned and remote:
        return f"{remote.rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"
    return str(data_dir.resolve())


def split_datasets(sets: SplitSets, lineage: Lineage, uri: str, split: str) -> list[SplitDataset]:
    """One dataset per split; `split`: how the splits were cut (`promotion.split_tag`)."""
    return [
        SplitDataset(
            f"snapshot-{name}",
            lineage.data_md5,
            uri,
            CONTEXTS[name],
            {"applications": len(rows.relevance), "jobs": sets.job_counts[name], "split": split},
        )
        for name, rows in sets.by_name().items()
    ]
