"""Scale-out benchmark: the stages the Dask engine runs, at 1M, 3M and 10M applications, with each engine.

Stages measured today (README, "Scaling out"): the data contract (`gigmatch data validate`
on a snapshot), training (`gigmatch train` on the snapshot: the contract, splits, features,
the candidates of params.yaml, evaluation, MLflow and the gate, with a tracking store and
Prefect's ephemeral server of the benchmark's own) and batch scoring (`gigmatch score` on
match rows). The input is the simulator's marketplace at 1M applications, as a snapshot and
as match rows (a folder of Parquet files of 250,000 rows each); larger sizes repeat it
with the job ids moved (the jobs, applications and truth of copy k; the same freelancers),
row group by row group, so no process ever holds more than one copy to write it. Each
(stage, size, engine) runs its command in a fresh process; its peak memory is that
of the whole process tree (the command and, with Dask, its local cluster's workers),
sampled every 0.2 s, with the peaks of the command's own process (main) and of its largest
child (a worker; in-process, Prefect's ephemeral server). Printed: wall time, rows per
second, peak RSS, the Dask engine's time against the in-process engine's at the same size,
and each engine's scaling factor against linear from the smallest size (3x the rows in 3x the time is 1.00).

    make export && python benchmarks/bench_scale.py [--bundle bundle] [--sizes 1000000 3000000 10000000]
        [--engines in_process dask] [--stages validate train score] [--timeout 2700]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE_APPLICATIONS = 1_000_000
JOBS_PER_APPLICATION = 1 / 24.1  # mean applicants per job with the default params (bench_data.py)
FREELANCERS_PER_JOB = 4.0
FILE_ROWS = 250_000
JOB_ID_STRIDE = 10**8  # job ids of the k-th copy are moved by k times this: never a simulated job's


def write_base(folder: Path, snapshot: Path) -> int:
    """The 1M-application marketplace: its snapshot, and its match rows in files of FILE_ROWS; the number of rows."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from gigmatch.data.contract import APPLICATIONS, FREELANCER_HISTORY, FREELANCERS, JOBS, SIMULATOR_TRUTH, table_file
    from gigmatch.data.simulator import generate_marketplace
    from gigmatch.data.snapshot import write_table
    from gigmatch.features.match_frame import build_match_frame
    from gigmatch.params import load_params, override

    n_jobs = round(BASE_APPLICATIONS * JOBS_PER_APPLICATION)
    simulate = override(
        load_params(ROOT / "params.yaml").simulate, n_jobs=n_jobs, n_freelancers=round(n_jobs * FREELANCERS_PER_JOB)
    )
    market = generate_marketplace(simulate)
    snapshot.mkdir(parents=True)
    tables = {FREELANCERS: market.freelancers, JOBS: market.jobs, APPLICATIONS: market.applications,
              FREELANCER_HISTORY: market.freelancer_history, SIMULATOR_TRUTH: market.simulator_truth}  # fmt: skip
    for table, frame in tables.items():
        write_table(frame, table, snapshot / table_file(table))
    rows = build_match_frame(market.applications, market.jobs, market.freelancers)
    rows = rows.iloc[np.random.default_rng(5).permutation(len(rows))].reset_index(drop=True)  # jobs across files
    folder.mkdir(parents=True)
    for i, start in enumerate(range(0, len(rows), FILE_ROWS)):
        rows.iloc[start : start + FILE_ROWS].to_parquet(folder / f"rows-0-{i:03d}.parquet", index=False)
    return len(rows)


def sized_input(base: Path, base_rows: int, size: int, workdir: Path) -> tuple[Path, int]:
    """A folder of about `size` rows: copies of the base files, the job ids of copy k moved by k * JOB_ID_STRIDE."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    copies = max(1, round(size / base_rows))
    folder = workdir / f"input-{copies}x"
    if folder.exists():
        return folder, copies * base_rows
    folder.mkdir()
    for copy in range(copies):
        for path in sorted(base.glob("*.parquet")):
            table = pq.read_table(path)
            moved = pc.add(table["job_id"], copy * JOB_ID_STRIDE)
            table = table.set_column(table.schema.get_field_index("job_id"), "job_id", moved)
            pq.write_table(table, folder / path.name.replace("rows-0-", f"rows-{copy}-"))
    return folder, copies * base_rows


def sized_snapshot(base: Path, size: int, workdir: Path) -> tuple[Path, int]:
    """A snapshot of about `size` applications: the base's jobs, applications and truth repeated, the job ids of
    copy k moved by k * JOB_ID_STRIDE, written row group by row group; the same freelancers and history."""
    import shutil

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base_rows = pq.ParquetFile(base / "applications.parquet").metadata.num_rows
    copies = max(1, round(size / base_rows))
    folder = workdir / f"snapshot-{copies}x"
    if copies == 1 or folder.exists():
        return (base if copies == 1 else folder), copies * base_rows
    folder.mkdir()
    for name in ("freelancers.parquet", "freelancer_history.parquet"):
        shutil.copy(base / name, folder / name)
    for name in ("jobs.parquet", "applications.parquet", "simulator_truth.parquet"):
        source = pq.ParquetFile(base / name)
        with pq.ParquetWriter(folder / name, source.schema_arrow, compression="zstd") as writer:
            for copy in range(copies):
                for group in range(source.num_row_groups):
                    table = source.read_row_group(group)
                    moved = pc.add(table["job_id"], copy * JOB_ID_STRIDE)
                    at = table.schema.get_field_index("job_id")
                    writer.write_table(table.set_column(at, table.schema.field(at), moved))  # its field: not null
    return folder, copies * base_rows


def params_for(engine: str, workdir: Path, snapshot: Path | str = "", rows: int = 0) -> Path:
    """params.yaml with the engine, and for training the snapshot and a reports folder of the run's own."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["engine"]["kind"] = engine
    if snapshot:
        raw["data"]["dir"] = str(snapshot)
        raw["train"]["reports_dir"] = str(workdir / f"reports-{engine}-{rows}")
    path = workdir / f"params-{engine}-{rows}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def training_environment(workdir: Path, run: str) -> dict[str, str]:
    """A tracking store and artifact folder of the run's own (no earlier champion to measure), and Prefect's
    ephemeral server (PREFECT_API_URL unset)."""
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    return {**environment, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / f'mlflow-{run}.db'}",
            "GIGMATCH_ARTIFACT_ROOT": str(workdir / f"mlruns-{run}")}  # fmt: skip


def run_measured(command: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall time and the peak RSS of the command's whole process tree (sampled), or raise on failure."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0, 0, 0]  # the whole tree, the command's own process, its largest child (a worker, Prefect's server)
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                own = root.memory_info().rss
                children = [p.memory_info().rss for p in root.children(recursive=True) if p.is_running()]
                peak[0] = max(peak[0], own + sum(children))
                peak[1], peak[2] = max(peak[1], own), max([peak[2], *children])
            except psutil.Error:
                pass
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    finally:
        done.set()
        sampler.join()
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{output.decode()[-2000:]}")
    return {"seconds": elapsed, "peak_mb": peak[0] / 2**20, "main_mb": peak[1] / 2**20, "child_mb": peak[2] / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=ROOT / "bundle")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", choices=("in_process", "dask"), default=["in_process", "dask"])
    parser.add_argument("--stages", nargs="+", choices=tuple(STAGE_NAMES), default=list(STAGE_NAMES))
    parser.add_argument("--timeout", type=float, default=2700, help="seconds per run before it counts as failed")
    args = parser.parse_args()
    gigmatch = str(Path(sys.executable).with_name("gigmatch"))
    results: dict[tuple[str, int, str], dict[str, float] | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        base_rows = write_base(workdir / "base", workdir / "base-snapshot")
        took = time.perf_counter() - start
        print(f"input: the 1M-application marketplace ({base_rows:,} match rows), written in {took:.0f} s")
        for size in args.sizes:
            copies = max(1, round(size / base_rows))
            rows = copies * base_rows
            folder = sized_input(workdir / "base", base_rows, size, workdir)[0] if "score" in args.stages else ""
            needs_snapshot = {"validate", "train"} & set(args.stages)
            snapshot = sized_snapshot(workdir / "base-snapshot", size, workdir)[0] if needs_snapshot else ""
            for engine in args.engines:
                params = ["--params", str(params_for(engine, workdir))]
                out = workdir / f"out-{engine}-{rows}"
                commands = {
                    "validate": [gigmatch, "data", "validate", str(snapshot), *params],
                    "train": [gigmatch, "train", "--params", str(params_for(engine, workdir, snapshot, rows))],
                    "score": [gigmatch, "score", str(folder), str(out), "--bundle", str(args.bundle), *params],
                }
                for stage in args.stages:
                    env = training_environment(workdir, f"{engine}-{rows}") if stage == "train" else None
                    try:
                        measured = run_measured(commands[stage], args.timeout, env)
                        results[(stage, rows, engine)] = {**measured, "rows": rows}
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        results[(stage, rows, engine)] = str(exc).splitlines()[-1][:100]
                subprocess.run(["rm", "-rf", str(out)], check=False)
    report(results)


STAGE_NAMES = {"validate": "data contract", "train": "training", "score": "batch scoring"}


def report(results: dict[tuple[str, int, str], dict[str, float] | str]) -> None:
    print(f"{'stage':<14} {'rows':>11} {'engine':<11} {'wall s':>8} {'rows/s':>10} {'peak MB':>8} {'main MB':>8}"
          f" {'child MB':>9} {'vs in-process':>14} {'vs linear':>10}")  # fmt: skip
    smallest: dict[tuple[str, str], dict[str, float]] = {}
    order = list(STAGE_NAMES)
    for (stage, rows, engine), fig in sorted(results.items(), key=lambda item: (order.index(item[0][0]), item[0][1:])):
        name = STAGE_NAMES[stage]
        if isinstance(fig, str):
            print(f"{name:<14} {rows:>11,} {engine:<11} failed: {fig}")
            continue
        local = results.get((stage, rows, "in_process"))
        versus = f"{fig['seconds'] / local['seconds']:.2f}x" if isinstance(local, dict) and engine == "dask" else ""
        base = smallest.setdefault((stage, engine), fig)
        linear = (fig["seconds"] / base["seconds"]) / (rows / base["rows"])
        print(
            f"{name:<14} {rows:>11,} {engine:<11} {fig['seconds']:>8.1f} {rows / fig['seconds']:>10,.0f}"
            f" {fig['peak_mb']:>8.0f} {fig['main_mb']:>8.0f} {fig['child_mb']:>9.0f} {versus:>14} {linear:>10.2f}"
        )
    print("targets (the whole pipeline, issue 18): 10M on Dask < 45 min, peak < 16 GiB; 1M on Dask <= 1.5x in-process")


if __name__ == "__main__":
    main()
