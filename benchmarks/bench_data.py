"""Data stage benchmark: generation and validation at 100k and 1M applications.

Each size runs in a fresh subprocess so its peak memory is its own. Prints wall
time, rows per second and peak RSS per phase, then the scaling factor from 100k
to 1M against the linear baseline (10x the work should take 10x the time).

    python benchmarks/bench_data.py            # both sizes
    python benchmarks/bench_data.py --sizes 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Mean applicants per job is about 24.1 with the default params; freelancers scale with jobs.
JOBS_PER_APPLICATION = 1 / 24.1
FREELANCERS_PER_JOB = 4.0


def measure(n_applications: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from gigmatch.data.contract import APPLICATIONS, FREELANCERS, JOBS, SIMULATOR_TRUTH
    from gigmatch.data.simulator import generate_marketplace
    from gigmatch.data.snapshot import read_tables, write_snapshot
    from gigmatch.params import load_params, override

    n_jobs = round(n_applications * JOBS_PER_APPLICATION)
    simulate = override(
        load_params(ROOT / "params.yaml").simulate, n_jobs=n_jobs, n_freelancers=round(n_jobs * FREELANCERS_PER_JOB)
    )
    figures: dict[str, float] = {}

    start = time.perf_counter()
    market = generate_marketplace(simulate)
    figures["generate_s"] = time.perf_counter() - start
    frames = {
        FREELANCERS: market.freelancers,
        JOBS: market.jobs,
        APPLICATIONS: market.applications,
        SIMULATOR_TRUTH: market.simulator_truth,
    }
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_snapshot(frames, Path(tmp) / "data")  # includes a validating read-back
        figures["write_and_validate_s"] = time.perf_counter() - start
        start = time.perf_counter()
        validated = read_tables(Path(tmp) / "data")
        figures["validate_s"] = time.perf_counter() - start
        figures["size_mb"] = sum(p.stat().st_size for p in (Path(tmp) / "data").iterdir()) / 1e6
    figures["applications"] = len(validated[APPLICATIONS])
    figures["rows_total"] = sum(len(f) for f in validated.values())
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return

    results = {}
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size)], capture_output=True, text=True, check=True
        )
        results[size] = json.loads(out.stdout.strip().splitlines()[-1])

    print(f"{'applications':>12} {'phase':<18} {'seconds':>8} {'app rows/s':>12} {'all rows/s':>12} {'peak MB':>8}")
    for fig in results.values():
        for phase in ("generate", "write_and_validate", "validate"):
            seconds = fig[f"{phase}_s"]
            print(
                f"{int(fig['applications']):>12,} {phase:<18} {seconds:>8.2f} {fig['applications'] / seconds:>12,.0f}"
                f" {fig['rows_total'] / seconds:>12,.0f} {fig['peak_rss_mb']:>8.0f}"
            )
        print(f"{'':>12} snapshot on disk: {fig['size_mb']:.1f} MB")
    if len(results) == 2:
        small, large = (results[s] for s in sorted(results))
        work = large["applications"] / small["applications"]
        for phase in ("generate", "validate"):
            ratio = large[f"{phase}_s"] / small[f"{phase}_s"]
            print(
                f"scaling {phase}: {ratio:.1f}x time for {work:.1f}x rows"
                f" (linear baseline {work:.1f}x; {ratio / work:.2f} of it)"
            )


if __name__ == "__main__":
    main()
