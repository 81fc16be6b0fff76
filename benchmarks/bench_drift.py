"""Drift gate benchmark: false alarms on time and on shuffles, detection power, and time and memory at scale.

Reference: the champion's training rows (the pinned snapshot in data/, split as
training splits it, scored by the bundle in bundle/: run `make run` first).
Every family of batches below goes through our gate and through Evidently's
defaults (DataDriftPreset() with no options: dataset drift when half the columns
drift), in one run, one table:

1. Same distribution: 100 `none` batches of 2,000 rows (target: at most 5% blocked).
2. Forward in time: the months after the training window (the pinned data's
   valid and test months, whole, as production traffic arrives), each with and
   without its outcomes, and 50 batches of 2,000 rows (whole jobs) drawn from
   them, with and without outcomes (target: no blocking verdict on a month whose
   live NDCG@10 is within `drift.max_ndcg_drop` of the champion's test figure).
3. Each scenario at its default magnitude and at half of it, 20 batches each,
   with outcomes (target: at least 95% flagged at the default magnitude).
   "blocked" is a blocking rule failing (exit 1); "flagged" is blocked or warned.
4. Scale: `gigmatch drift` end to end in a fresh process on 1,000,000 reference
   rows against 100,000 current rows, both monitoring frames in Parquet (as a
   cached reference and a prediction log give them): wall time (target < 60 s)
   and peak memory, the child process's maximum resident set size (getrusage).

Evidently's preset takes seconds a batch whatever the reference size; to keep the
run short it gets a fixed 20,000-row sample of the reference (our gate uses every
row). Batch seeds start at --seed-base, away from the seeds the thresholds in
params.yaml were calibrated on (100000-100099).

    python benchmarks/bench_drift.py                    # everything (~55 minutes on 2 cores)
    python benchmarks/bench_drift.py --skip-evidently   # our gate only (~25 minutes)
    python benchmarks/bench_drift.py --seed-base 300000 # another set of batches
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DO_NOT_TRACK", "1")

from gigmatch.files import write_parquet  # noqa: E402
from gigmatch.model.bundle import load_bundle  # noqa: E402
from gigmatch.model.pipeline import estimator_of  # noqa: E402
from gigmatch.monitoring.frame import (  # noqa: E402
    MONITORED_CATEGORICAL,
    MONITORED_NUMERIC,
    OUTCOME,
    SCORE,
    frame_from_match_table,
    later_months,
    training_frame,
)
from gigmatch.monitoring.quality import ReferenceQuality, model_reliance  # noqa: E402
from gigmatch.monitoring.rules import Verdict, evaluate_drift  # noqa: E402
from gigmatch.monitoring.scenarios import SCENARIOS, simulate_batch  # noqa: E402
from gigmatch.params import Params, load_params  # noqa: E402

POWER_BATCHES, NULL_BATCHES, FORWARD_BATCHES, BATCH_ROWS = 20, 100, 50, 2000
EVIDENTLY_REFERENCE_ROWS = 20_000
SCALE_REFERENCE_ROWS, SCALE_CURRENT_ROWS = 1_000_000, 100_000


class EvidentlyDefaults:
    """DataDriftPreset() with no options on the same columns; drift when its share of drifted columns is reached."""

    def __init__(self, reference: pd.DataFrame):
        from evidently import DataDefinition, Dataset

        self.columns = [*MONITORED_NUMERIC, SCORE, *MONITORED_CATEGORICAL]
        self.definition = DataDefinition(
            numerical_columns=[*MONITORED_NUMERIC, SCORE], categorical_columns=list(MONITORED_CATEGORICAL)
        )
        sample = reference.sample(min(EVIDENTLY_REFERENCE_ROWS, len(reference)), random_state=0)
        self.reference = Dataset.from_pandas(sample[self.columns], data_definition=self.definition)

    def flags(self, current: pd.DataFrame) -> bool:
        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset

        snapshot = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(current[self.columns], data_definition=self.definition),
            reference_data=self.reference,
        )
        drifted = next(m for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
        return bool(drifted["value"]["share"] >= DataDriftPreset().drift_share)


@dataclass
class Tally:
    """One family of batches: how often each verdict came out, and the live NDCG@10 drop."""

    family: str
    batches: int = 0
    blocked: int = 0
    flagged: int = 0
    evidently: int = 0
    ndcg_drops: list[float] = field(default_factory=list)
    rules: dict[str, int] = field(default_factory=dict)

    def add(self, verdict: Verdict, evidently_flags: bool | None) -> None:
        self.batches += 1
        self.blocked += verdict.drift_detected
        self.flagged += bool(verdict.tripped_rules)
        self.evidently += bool(evidently_flags)
        quality = next((r for r in verdict.rules if r.rule == "ranking_quality"), None)
        if quality is not None and quality.value is not None:
            self.ndcg_drops.append(float(quality.value))
        for rule in verdict.tripped_rules:
            self.rules[rule] = self.rules.get(rule, 0) + 1

    def row(self, target: str, with_evidently: bool) -> dict[str, object]:
        n = max(self.batches, 1)
        return {
            "batches": self.family,
            "n": self.batches,
            "blocked": self.blocked / n,
            "flagged": self.flagged / n,
            "evidently": self.evidently / n if with_evidently else float("nan"),
            "ndcg_drop": float(np.mean(self.ndcg_drops)) if self.ndcg_drops else float("nan"),
            "target": target,
            "rules tripped": ", ".join(f"{k} {v}" for k, v in sorted(self.rules.items())) or "-",
        }


class Gate:
    """Our gate on one batch, against the fixed reference, reliance measured once."""

    def __init__(self, params: Params, reference: pd.DataFrame, evidently: EvidentlyDefaults | None):
        self.bundle = load_bundle(ROOT / "bundle")
        self.params, self.reference, self.evidently = params, reference, evidently
        self.champion_ndcg = float(self.bundle.lineage["test_metrics"]["ndcg_at_10"])
        self.reliance = model_reliance(estimator_of(self.bundle.model), reference)
        drift = params.drift
        self.reference_quality = ReferenceQuality.of(reference, drift.ndcg_k, drift.expected_ndcg_draws)
        self.last_evidently: bool | None = None

    def judge(self, current: pd.DataFrame, tally: Tally, evidently_flags: bool | None = None) -> Verdict:
        """Our verdict, and Evidently's flag (given: the same features judged already, without outcomes)."""
        verdict = evaluate_drift(
            self.reference,
            current,
            self.params.drift,
            self.champion_ndcg,
            self.bundle.version,
            self.reliance,
            reference_quality=self.reference_quality,
        )
        if evidently_flags is None and self.evidently is not None:
            evidently_flags = self.evidently.flags(current)
        tally.add(verdict, evidently_flags)
        self.last_evidently = evidently_flags
        return verdict


def _whole_job_batches(frame: pd.DataFrame, count: int, rows: int, seed: int) -> list[pd.DataFrame]:
    """`count` batches of about `rows` rows, whole jobs drawn at random from `frame`."""
    rng = np.random.default_rng(seed)
    sizes = frame.groupby("job_id").size()
    batches = []
    for _ in range(count):
        order = rng.permutation(len(sizes))
        covered = np.cumsum(sizes.to_numpy()[order])
        keep = sizes.index.to_numpy()[order[: int(np.searchsorted(covered, rows)) + 1]]
        batches.append(frame[frame["job_id"].isin(keep)].reset_index(drop=True))
    return batches


def detection_table(
    params: Params, reference: pd.DataFrame, seed_base: int, with_evidently: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    gate = Gate(params, reference, EvidentlyDefaults(reference) if with_evidently else None)
    window = 1.0 - params.split.valid_fraction - params.split.test_fraction
    margin = params.drift.max_ndcg_drop
    rows: list[dict[str, object]] = []
    months: list[dict[str, object]] = []

    same = Tally("none (same distribution)")
    for i in range(NULL_BATCHES):
        table = simulate_batch(params.simulate, "none", None, BATCH_ROWS, seed_base + i, window=window)
        gate.judge(frame_from_match_table(table, gate.bundle.model), same)
    rows.append(same.row("<= 5% blocked", with_evidently))
    print("  same distribution: done", file=sys.stderr, flush=True)

    later = later_months(params.data.dir, params.split, gate.bundle.model)
    whole, whole_blind = Tally("forward months, with outcomes"), Tally("forward months, no outcomes")
    for month, frame in later.items():
        seen = gate.judge(frame, whole)
        blind = gate.judge(frame.drop(columns=[OUTCOME]), whole_blind, gate.last_evidently)
        drop = next(r.value for r in seen.rules if r.rule == "ranking_quality")
        months.append(
            {
                "month": month,
                "rows": len(frame),
                "live_ndcg_drop": drop,
                "within_margin": drop is not None and drop <= margin,
                "verdict": seen.status,
                "verdict_no_outcomes": blind.status,
                "tripped": ", ".join(seen.tripped_rules) or "-",
            }
        )
    rows.append(whole.row("no block within the NDCG margin", with_evidently))
    rows.append(whole_blind.row("no block", with_evidently))
    pooled = pd.concat(list(later.values()), ignore_index=True)
    forward, forward_blind = Tally("forward batches, with outcomes"), Tally("forward batches, no outcomes")
    for batch in _whole_job_batches(pooled, FORWARD_BATCHES, BATCH_ROWS, seed_base):
        gate.judge(batch, forward)
        gate.judge(batch.drop(columns=[OUTCOME]), forward_blind, gate.last_evidently)
    rows.append(forward.row("<= 5% blocked", with_evidently))
    rows.append(forward_blind.row("<= 5% blocked", with_evidently))
    print("  forward in time: done", file=sys.stderr, flush=True)

    for scenario, spec in SCENARIOS.items():
        if scenario == "none":
            continue
        for share, target in ((1.0, ">= 95% flagged"), (0.5, "-")):
            magnitude = spec.default_magnitude * share
            tally = Tally(f"{scenario} at {magnitude:g}")
            for i in range(POWER_BATCHES):
                table = simulate_batch(params.simulate, scenario, magnitude, BATCH_ROWS, seed_base + i, window=window)
                gate.judge(frame_from_match_table(table, gate.bundle.model), tally)
            rows.append(tally.row(target, with_evidently))
        print(f"  {scenario}: done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows), pd.DataFrame(months)


def scale_run(params: Params, reference: pd.DataFrame, workdir: Path) -> dict[str, float]:
    """`gigmatch drift` in a fresh process on 1M reference rows vs 100k current rows (monitoring frames)."""
    big_reference = _tile_jobs(reference, SCALE_REFERENCE_ROWS)
    bundle = load_bundle(ROOT / "bundle")
    window = 1.0 - params.split.valid_fraction - params.split.test_fraction
    batches = [
        frame_from_match_table(
            simulate_batch(params.simulate, "none", None, 20_000, 900 + i, window=window), bundle.model
        )
        for i in range(2)
    ]
    # Each batch numbers its jobs from 1: keep them apart, or two jobs would rank as one query.
    span = max(int(batch["job_id"].max()) for batch in batches) + 1
    batches = [batch.assign(job_id=batch["job_id"] + i * span) for i, batch in enumerate(batches)]
    current = _tile_jobs(pd.concat(batches, ignore_index=True), SCALE_CURRENT_ROWS)
    write_parquet(big_reference, workdir / "reference.parquet")
    write_parquet(current, workdir / "current.parquet")
    command = [
        str(ROOT / ".venv" / "bin" / "gigmatch"),
        "drift",
        "--reference",
        str(workdir / "reference.parquet"),
        "--current",
        str(workdir / "current.parquet"),
        "--bundle",
        str(ROOT / "bundle"),
        "--report-dir",
        str(workdir / "reports"),
        "--params",
        str(ROOT / "params.yaml"),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise RuntimeError(f"gigmatch drift failed ({result.returncode}): {result.stderr[-2000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB, largest child so far
    return {"seconds": seconds, "peak_mib": peak_kib / 1024, "exit_code": result.returncode}


def _tile_jobs(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """Repeat whole jobs (with new job ids) until `rows` rows."""
    copies = -(-rows // len(frame))
    span = int(frame["job_id"].max()) + 1
    tiled = pd.concat([frame.assign(job_id=frame["job_id"] + k * span) for k in range(copies)], ignore_index=True)
    return tiled.iloc[:rows].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed-base", type=int, default=200_000)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    os.chdir(ROOT)
    params = load_params(ROOT / "params.yaml")
    bundle = load_bundle(ROOT / "bundle")
    print(
        f"reference: training rows of {params.data.dir} scored by bundle/ (version {bundle.version})", file=sys.stderr
    )
    reference = training_frame(params.data.dir, params.split, bundle.model)
    table, months = detection_table(params, reference, args.seed_base, not args.skip_evidently)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 90)
    print(
        f"\nThe months after the training window, whole (champion test NDCG@10 "
        f"{bundle.lineage['test_metrics']['ndcg_at_10']}, margin {params.drift.max_ndcg_drop}):"
    )
    print(months.to_string(index=False))
    percent = "{:.0%}".format
    print(
        f"\nBatches of {BATCH_ROWS:,} rows (months: whole); reference {len(reference):,} rows; seeds from "
        f"{args.seed_base}; blocked = exit 1, flagged = blocked or warned, evidently = DataDriftPreset() defaults"
    )
    print(
        table.to_string(
            index=False,
            formatters={"blocked": percent, "flagged": percent, "evidently": percent, "ndcg_drop": "{:+.3f}".format},
        )
    )
    if not args.skip_scale:
        with tempfile.TemporaryDirectory() as tmp:
            scale = scale_run(params, reference, Path(tmp))
        print(
            f"\nScale: gigmatch drift, {SCALE_REFERENCE_ROWS:,} reference vs {SCALE_CURRENT_ROWS:,} current rows: "
            f"{scale['seconds']:.1f} s (target < 60 s), peak RSS {scale['peak_mib']:.0f} MiB "
            f"(ru_maxrss of the child process), exit {scale['exit_code']:.0f}"
        )


if __name__ == "__main__":
    main()
