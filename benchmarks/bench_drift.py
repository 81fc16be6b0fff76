"""Drift gate benchmark: detection power, false alarms, and time and memory at scale.

Reference: the champion's training rows (the pinned snapshot in data/, split as
training splits it, scored by the bundle in bundle/: run `make run` first).

1. Power: for each scenario at its default magnitude, the share of 20 batches of
   2,000 rows that the gate flags (target >= 95%), and the share flagged by
   Evidently's defaults on the same batches: DataDriftPreset() with no options,
   dataset drift when its default drift share (0.5 of the columns) is reached.
2. False alarms: the share of 100 `none` batches flagged (target <= 5%), both.
3. Scale: `gigmatch drift` end to end in a fresh process on 1,000,000 reference
   rows against 100,000 current rows, both monitoring frames in Parquet (as a
   cached reference and a prediction log give them): wall time (target < 60 s)
   and peak memory, the child process's maximum resident set size (getrusage).

Evidently's preset takes ~5-8 s a batch whatever the reference size; to keep
the run short it gets a fixed 20,000-row sample of the reference (our gate uses
every row). The batch seeds start at --seed-base, away from the seeds the
thresholds in params.yaml were calibrated on (1000-1099 and 5000-5099).

    python benchmarks/bench_drift.py                    # everything (~20 minutes on 2 cores)
    python benchmarks/bench_drift.py --skip-evidently   # our gate only (~3 minutes)
    python benchmarks/bench_drift.py --seed-base 200000 # another set of batches
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DO_NOT_TRACK", "1")

from gigmatch.model.bundle import load_bundle  # noqa: E402
from gigmatch.monitoring.frame import (  # noqa: E402
    MONITORED_CATEGORICAL,
    MONITORED_NUMERIC,
    SCORE,
    frame_from_match_table,
    training_frame,
    write_frame,
)
from gigmatch.monitoring.rules import evaluate_drift  # noqa: E402
from gigmatch.monitoring.scenarios import SCENARIOS, simulate_batch  # noqa: E402
from gigmatch.params import Params, load_params  # noqa: E402

POWER_BATCHES, NULL_BATCHES, BATCH_ROWS = 20, 100, 2000
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


def detection_table(params: Params, reference: pd.DataFrame, seed_base: int, with_evidently: bool) -> pd.DataFrame:
    bundle = load_bundle(ROOT / "bundle")
    champion_ndcg = float(bundle.lineage["test_metrics"]["ndcg_at_10"])
    window = 1.0 - params.split.valid_fraction - params.split.test_fraction
    evidently = EvidentlyDefaults(reference) if with_evidently else None
    rows = []
    for scenario in SCENARIOS:
        n = NULL_BATCHES if scenario == "none" else POWER_BATCHES
        ours, theirs, rules = [], [], {}
        for i in range(n):
            table = simulate_batch(params.simulate, scenario, None, BATCH_ROWS, seed_base + i, window=window)
            current = frame_from_match_table(table, bundle.model)
            verdict = evaluate_drift(reference, current, params.drift, champion_ndcg, bundle.version)
            ours.append(verdict.drift_detected)
            for rule in verdict.failed_rules:
                rules[rule] = rules.get(rule, 0) + 1
            if evidently is not None:
                theirs.append(evidently.flags(current))
        rows.append(
            {
                "scenario": scenario,
                "magnitude": SCENARIOS[scenario].default_magnitude,
                "batches": n,
                "gate_flagged": float(np.mean(ours)),
                "evidently_flagged": float(np.mean(theirs)) if theirs else float("nan"),
                "target": "<= 5% (false alarms)" if scenario == "none" else ">= 95%",
                "gate_rules_failed": ", ".join(f"{k} {v}" for k, v in sorted(rules.items())) or "-",
            }
        )
        print(f"  {scenario}: done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


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
    current = _tile_jobs(pd.concat(batches, ignore_index=True), SCALE_CURRENT_ROWS)
    write_frame(big_reference, workdir / "reference.parquet")
    write_frame(current, workdir / "current.parquet")
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
    parser.add_argument("--seed-base", type=int, default=100_000)
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
    table = detection_table(params, reference, args.seed_base, not args.skip_evidently)
    pd.set_option("display.width", 200)
    print(
        f"\nDetection on batches of {BATCH_ROWS:,} rows; reference {len(reference):,} rows; seeds from {args.seed_base}"
    )
    print(
        table.to_string(index=False, formatters={"gate_flagged": "{:.0%}".format, "evidently_flagged": "{:.0%}".format})
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
