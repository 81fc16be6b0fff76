"""Training benchmark: the flow's wall time at 100k and 1M applications, and its orchestration tax.

For each size a snapshot is generated in a temporary directory, then timed twice,
each in a fresh process:
  orchestrated  `gigmatch train`: Prefect (a cold ephemeral server) + MLflow (a new
                SQLite store): models tracked, logged, registered and gated;
  bare          the same domain functions called directly, models
                in the same number of threads, no Prefect and no MLflow.
The tax is orchestrated / bare. The scaling factor compares 1M with 100k against
the linear baseline (10x the rows).

    python benchmarks/bench_training.py                 # 100k and 1M
    python benchmarks/bench_training.py --sizes 100000  # one size
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
JOBS_PER_APPLICATION = 1 / 24.1
FREELANCERS_PER_JOB = 4.0


def bare(params_path: Path) -> None:
    """The flow's work without the orchestrator or the tracker: the same domain functions, called directly."""
    sys.path.insert(0, str(ROOT))
    from threadpoolctl import threadpool_limits

    from gigmatch.data.snapshot import read_tables
    from gigmatch.params import load_params
    from gigmatch.training.evaluation import evaluate_references
    from gigmatch.training.fitting import fit_feature_matrices, select_model, train_model
    from gigmatch.training.reports import build_report
    from gigmatch.training.splits import split_snapshot

    params = load_params(params_path)
    with threadpool_limits(limits=params.train.threads), ThreadPoolExecutor(params.train.parallel_fits) as pool:
        sets = split_snapshot(read_tables(params.data.dir), params.split)
        features = fit_feature_matrices(sets, params.train.text_max_features)
        fits = [
            pool.submit(train_model, name, spec, features, sets, params.train.seed, params.train.threads)
            for name, spec in params.train.models.items()
        ]
        references = evaluate_references(sets.test, params.evaluate.baseline_seed)
        trained = [fit.result() for fit in fits]
        build_report(select_model(trained), trained, references, sets.test, params.evaluate)


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(n_applications: int | None, workdir: Path) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from gigmatch.data.simulator import generate_snapshot
    from gigmatch.data.snapshot import read_tables
    from gigmatch.params import load_params, override

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    simulate = load_params(ROOT / "params.yaml").simulate
    if n_applications is not None:
        n_jobs = round(n_applications * JOBS_PER_APPLICATION)
        simulate = override(simulate, n_jobs=n_jobs, n_freelancers=round(n_jobs * FREELANCERS_PER_JOB))
    generate_snapshot(simulate, workdir / "data")
    rows = len(read_tables(workdir / "data")["applications"])
    raw["data"]["dir"] = str(workdir / "data")
    raw["train"]["reports_dir"] = str(workdir / "reports")
    params_path = workdir / "params.yaml"
    params_path.write_text(yaml.safe_dump(raw))
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "GIGMATCH_ARTIFACT_ROOT": str(workdir / "mlruns"),
        "PREFECT_HOME": str(workdir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    gigmatch = str(Path(sys.executable).with_name("gigmatch"))
    orchestrated = _timed([gigmatch, "train", "--params", str(params_path)], env)
    plain = _timed([sys.executable, __file__, "--bare", str(params_path)], env)
    return {"applications": rows, "orchestrated_s": orchestrated, "bare_s": plain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare(args.bare)
        return

    results = []
    for size in [None, *args.sizes]:  # None: the default params.yaml size
        with tempfile.TemporaryDirectory() as tmp:
            figures = measure(size, Path(tmp))
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        results.append(("default" if size is None else f"{size:,}", figures))
        print(json.dumps({"size": results[-1][0], **figures}), file=sys.stderr, flush=True)

    print(f"{'size':>10} {'applications':>12} {'orchestrated s':>15} {'bare s':>8} {'tax':>6} {'peak MB':>8}")
    for label, fig in results:
        tax = fig["orchestrated_s"] / fig["bare_s"]
        print(
            f"{label:>10} {int(fig['applications']):>12,} {fig['orchestrated_s']:>15.1f} {fig['bare_s']:>8.1f}"
            f" {tax:>5.2f}x {fig['peak_rss_mb']:>8.0f}"
        )
    sized = [fig for label, fig in results if label != "default"]
    if len(sized) == 2:
        small, large = sized
        work = large["applications"] / small["applications"]
        for kind in ("orchestrated", "bare"):
            ratio = large[f"{kind}_s"] / small[f"{kind}_s"]
            print(f"scaling {kind}: {ratio:.1f}x time for {work:.1f}x rows (linear baseline {work:.1f}x)")
    print("targets: default size end to end < 90 s; 1M applications < 600 s")


if __name__ == "__main__":
    main()
