"""Scale-out benchmark: the whole pipeline at 1M, 3M and 10M applications, with each engine, in one table.

The stages, each a `gigmatch` command in a fresh process, in the order `make run` runs them:
generate (`gigmatch data generate`: the simulator's marketplace at the size, in one
process on either engine), validate (`gigmatch data validate`), train (`gigmatch train`:
its rows split into the flow's features, train and evaluate, and the rest, MLflow and
Prefect, read back from the Prefect task runs' times), export (`gigmatch export`),
batch-score (`gigmatch score` on a folder of match rows) and gate (`gigmatch drift`: the
reference built from the champion's training rows, a 2,000-row batch as the current
frame). Training, the export and the gate have a tracking store, Prefect home, reference
cache and reports of each (size, engine)'s own: nothing is cached between runs. The
match rows to score are copies of the 1M marketplace's (files of 250,000 rows; the job
ids of copy k moved by k * 10^8), so that no process builds a 10M match frame to write
them. Peak memory is that of the whole process tree (the command and, with Dask, its
local cluster's workers), sampled every 0.2 s, with the peaks of the command's own
process (main) and of its largest child (a worker; in-process, Prefect's ephemeral
server); a training sub-stage's peaks are those sampled while its tasks ran. A command
whose tree grows past --memory-limit-gib is stopped (this machine would start killing
processes) and counts as failed, as does one past --timeout. Printed: wall time, rows
per second, the peaks, the Dask engine's time against the in-process engine's at the
same size, each engine's scaling factor against linear from the smallest size (3x the
rows in 3x the time is 1.00), the pipeline's total per (size, engine), and the
in-process engine's ceiling (the largest size at which every stage completed).

    python benchmarks/bench_scale.py [--sizes 1000000 3000000 10000000] [--engines in_process dask]
        [--stages generate validate train score gate] [--timeout 2700] [--memory-limit-gib 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE_APPLICATIONS = 1_000_000
JOBS_PER_APPLICATION = 1 / 24.1  # mean applicants per job with the default params (bench_data.py)
FREELANCERS_PER_JOB = 4.0
FILE_ROWS = 250_000
JOB_ID_STRIDE = 10**8  # job ids of the k-th copy are moved by k times this: never a simulated job's


def write_match_rows(folder: Path) -> int:
    """The 1M-application marketplace's match rows, in files of FILE_ROWS, its jobs spread over them; their number."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from gigmatch.data.simulator import generate_marketplace
    from gigmatch.features.match_frame import build_match_frame
    from gigmatch.params import load_params, override

    jobs, freelancers = simulated_sizes(BASE_APPLICATIONS)
    market = generate_marketplace(
        override(load_params(ROOT / "params.yaml").simulate, n_jobs=jobs, n_freelancers=freelancers)
    )
    rows = build_match_frame(market.applications, market.jobs, market.freelancers)
    rows = rows.iloc[np.random.default_rng(5).permutation(len(rows))].reset_index(drop=True)  # jobs across files
    folder.mkdir(parents=True)
    for i, start in enumerate(range(0, len(rows), FILE_ROWS)):
        rows.iloc[start : start + FILE_ROWS].to_parquet(folder / f"rows-0-{i:03d}.parquet", index=False)
    return len(rows)


def simulated_sizes(applications: int) -> tuple[int, int]:
    """(jobs, freelancers) of a marketplace of about this many applications, in the default params' proportions."""
    jobs = round(applications * JOBS_PER_APPLICATION)
    return jobs, round(jobs * FREELANCERS_PER_JOB)


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


def params_for(engine: str, run_dir: Path, snapshot: Path) -> Path:
    """params.yaml with the engine, the snapshot, and the run's own reports."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["engine"]["kind"] = engine
    raw["data"]["dir"] = str(snapshot)
    raw["train"]["reports_dir"] = str(run_dir / "reports")
    raw["drift"]["report_dir"] = str(run_dir / "drift")
    path = run_dir / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_environment(run_dir: Path) -> dict[str, str]:
    """A tracking store, artifact folder, Prefect home (its ephemeral server: PREFECT_API_URL unset) and
    reference cache of the run's own: no earlier champion to measure, nothing cached."""
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    return {**environment, "MLFLOW_TRACKING_URI": f"sqlite:///{run_dir / 'mlflow.db'}",
            "GIGMATCH_ARTIFACT_ROOT": str(run_dir / "mlruns"), "PREFECT_HOME": str(run_dir / "prefect"),
            "GIGMATCH_REFERENCE_CACHE_DIR": str(run_dir / "reference-cache")}  # fmt: skip


@dataclass
class Measured:
    seconds: float
    peak_mb: float
    main_mb: float
    child_mb: float
    samples: list[tuple[float, float, float, float]] = field(repr=False)  # (epoch s, tree, main, largest child) MB
    rows: int | None = None  # the rows it processed, when not the snapshot's applications (the match rows scored)

    def window(self, spans: list[tuple[float, float]], inside: bool = True) -> Measured:
        """The peaks sampled while any of `spans` (epoch seconds) ran (or, `inside` False, while none did), and
        the length of their union."""
        kept = [s for s in self.samples if any(start <= s[0] <= end for start, end in spans) == inside]
        peaks = [max((s[k] for s in kept), default=0.0) for k in (1, 2, 3)]
        return Measured(union_seconds(spans), *peaks, samples=[])


def union_seconds(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


class MemoryLimitError(RuntimeError):
    pass


def run_measured(command: list[str], timeout: float, limit_mb: float, env: dict[str, str] | None = None,
                 ok: tuple[int, ...] = (0,)) -> Measured:  # fmt: skip
    """Wall time and the peak RSS of the command's whole process tree (sampled), or raise on failure: an exit
    code not in `ok`, the timeout, or the tree past `limit_mb` (then stopped, every process of it by its PID)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    samples: list[tuple[float, float, float, float]] = []
    over = threading.Event()
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                sizes = [p.memory_info().rss / 2**20 for p in tree if p.is_running()]
                samples.append((time.time(), sum(sizes), sizes[0], max(sizes[1:], default=0.0)))
                if sum(sizes) > limit_mb:
                    over.set()
                    for p in reversed(tree):
                        p.kill()
            except psutil.Error:
                pass
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in [*psutil.Process(process.pid).children(recursive=True), process]:
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                p.kill()
        process.communicate()
        raise
    finally:
        done.set()
        sampler.join()
    elapsed = time.perf_counter() - start
    if over.is_set():
        raise MemoryLimitError(f"stopped: its processes grew past {limit_mb / 1024:.0f} GiB")
    if process.returncode not in ok:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{output.decode()[-2000:]}")
    peaks = [max((s[k] for s in samples), default=0.0) for k in (1, 2, 3)]
    return Measured(elapsed, *peaks, samples=samples)


# The training flow's tasks (pipelines/training.py) by the pipeline stage they belong to; the rest is tracking.
TRAINING_STAGES = {
    "features": ("load-snapshot", "split-by-time", "fit-features", "split-and-fit-features-on-dask"),
    "train": ("train-model",),
    "evaluate": ("evaluate-baselines", "select-model", "report-on-test", "fingerprint-model", "measure-champion",
                 "gate-champion"),
}  # fmt: skip
_TASK_RUNS = """
import json
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    runs = client.read_task_runs(limit=200)
spans = [[r.name, r.start_time.timestamp(), r.end_time.timestamp()] for r in runs if r.start_time and r.end_time]
print(json.dumps(spans))
"""


def training_task_spans(env: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    """Each training stage's task runs (epoch seconds), read back from the run's Prefect database."""
    found = subprocess.run([sys.executable, "-c", _TASK_RUNS], env=env, capture_output=True, text=True, check=True)
    runs = json.loads(found.stdout.strip().splitlines()[-1])
    return {
        stage: [(start, end) for name, start, end in runs if any(name.startswith(f"{task}-") for task in tasks)]
        for stage, tasks in TRAINING_STAGES.items()
    }


def training_rows(measured: Measured, env: dict[str, str]) -> dict[str, Measured]:
    """The training command's features, train and evaluate, and the rest (its start-up, Prefect's ephemeral
    server, MLflow's logging and registry, the reports)."""
    spans = training_task_spans(env)
    missing = [stage for stage, found in spans.items() if not found]
    if missing:  # TRAINING_STAGES names the flow's tasks by hand: say so when they no longer match
        raise RuntimeError(f"no task run of the training flow matches TRAINING_STAGES' {', '.join(missing)}")
    rows = {f"  {stage}": measured.window(found) for stage, found in spans.items()}
    busy = [span for found in spans.values() for span in found]
    rest = measured.window(busy, inside=False)
    rows["  tracking"] = replace(rest, seconds=measured.seconds - rest.seconds)
    return rows


Results = dict[tuple[str, int, str], "Measured | str"]


def run_pipeline(size: int, engine: str, snapshot: Path, match_rows: tuple[Path, int], workdir: Path,
                 args: argparse.Namespace, results: Results) -> None:  # fmt: skip
    """The stages after generation, at this size on this engine; a stage whose input failed is not run."""
    gigmatch = str(Path(sys.executable).with_name("gigmatch"))
    run_dir = workdir / f"{engine}-{size}"
    run_dir.mkdir()
    params = ["--params", str(params_for(engine, run_dir, snapshot))]
    env = run_environment(run_dir)
    bundle = run_dir / "bundle"
    rows_folder, scored_rows = match_rows
    commands = {
        "validate": [[gigmatch, "data", "validate", str(snapshot), *params]],
        "train": [[gigmatch, "train", *params]],
        "export": [[gigmatch, "export", "--out", str(bundle), *params]],
        "score": [[gigmatch, "score", str(rows_folder), str(run_dir / "ranked"), "--bundle", str(bundle), *params]],
        "gate": [[gigmatch, "data", "batch", "--out", str(run_dir / "batch.parquet"), *params],
                 [gigmatch, "drift", "--current", str(run_dir / "batch.parquet"), "--bundle", str(bundle), *params]],
    }  # fmt: skip
    needs = {"export": "train", "score": "export", "gate": "export"}
    stages = [stage for stage in commands if stage in args.stages or (stage == "export" and "train" in args.stages)]
    for stage in stages:
        if stage in needs and not isinstance(results.get((needs[stage], size, engine)), Measured):
            results[(stage, size, engine)] = f"not run: {needs[stage]} did not complete"
            continue
        try:
            *before, command = commands[stage]
            for step in before:
                subprocess.run(step, cwd=ROOT, env=env, check=True, capture_output=True)
            ok = (0, 1) if stage == "gate" else (0,)  # the gate's verdict is its result: 1 is drift found
            measured = run_measured(command, args.timeout, args.memory_limit_gib * 1024, env, ok)
            results[(stage, size, engine)] = replace(measured, rows=scored_rows) if stage == "score" else measured
            if stage == "train":
                for name, row in training_rows(measured, env).items():
                    results[(name, size, engine)] = row
        except (RuntimeError, subprocess.SubprocessError) as exc:
            results[(stage, size, engine)] = str(exc).splitlines()[-1][:100]
    subprocess.run(["rm", "-rf", str(run_dir / "ranked"), str(run_dir / "mlruns")], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", choices=("in_process", "dask"), default=["in_process", "dask"])
    parser.add_argument("--stages", nargs="+", choices=PIPELINE, default=list(PIPELINE))
    parser.add_argument("--timeout", type=float, default=2700, help="seconds per command before it counts as failed")
    parser.add_argument("--memory-limit-gib", type=float, default=20, help="a command's tree past this is stopped")
    args = parser.parse_args()
    if {"score", "gate"} & set(args.stages) and "train" not in args.stages:
        parser.error("score and gate serve the model training exports: include train")
    gigmatch = str(Path(sys.executable).with_name("gigmatch"))
    results: Results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        base_rows = 0
        if "score" in args.stages:
            start = time.perf_counter()
            base_rows = write_match_rows(workdir / "base")
            took = time.perf_counter() - start
            print(f"match rows to score: the 1M-application marketplace's ({base_rows:,}), written in {took:.0f} s")
        for size in args.sizes:
            snapshot = workdir / f"snapshot-{size}"
            jobs, freelancers = simulated_sizes(size)
            generate = [gigmatch, "data", "generate", "--out", str(snapshot), "--jobs", str(jobs),
                        "--freelancers", str(freelancers)]  # fmt: skip
            try:
                measured = run_measured(generate, args.timeout, args.memory_limit_gib * 1024)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                results[("generate", size, "either")] = str(exc).splitlines()[-1][:100]
                continue
            rows = pq.ParquetFile(snapshot / "applications.parquet").metadata.num_rows
            if "generate" in args.stages:
                results[("generate", rows, "either")] = measured
            match_rows = sized_input(workdir / "base", base_rows, rows, workdir) if base_rows else (workdir, 0)
            for engine in args.engines:
                run_pipeline(rows, engine, snapshot, match_rows, workdir, args, results)
            subprocess.run(["rm", "-rf", str(snapshot)], check=False)
    report(results, args.engines)


PIPELINE = ("generate", "validate", "train", "score", "gate")
STAGE_NAMES = {"generate": "generate", "validate": "data contract", "train": "training", "  features": "  features",
               "  train": "  train", "  evaluate": "  evaluate", "  tracking": "  the rest", "export": "export",
               "score": "batch scoring", "gate": "drift gate"}  # fmt: skip


def report(results: Results, engines: list[str]) -> None:
    print(f"{'stage':<14} {'rows':>11} {'engine':<11} {'wall s':>8} {'rows/s':>10} {'peak MB':>8} {'main MB':>8}"
          f" {'child MB':>9} {'vs in-process':>14} {'vs linear':>10}")  # fmt: skip
    smallest: dict[tuple[str, str], tuple[int, Measured]] = {}
    order = list(STAGE_NAMES)
    for (stage, rows, engine), fig in sorted(results.items(), key=lambda item: (order.index(item[0][0]), item[0][1:])):
        name = STAGE_NAMES[stage]
        if isinstance(fig, str):
            print(f"{name:<14} {rows:>11,} {engine:<11} failed: {fig}")
            continue
        local = results.get((stage, rows, "in_process"))
        versus = f"{fig.seconds / local.seconds:.2f}x" if isinstance(local, Measured) and engine == "dask" else ""
        rows = fig.rows or rows
        base_rows, base = smallest.setdefault((stage, engine), (rows, fig))
        linear = (fig.seconds / base.seconds) / (rows / base_rows) if base.seconds else float("nan")
        print(
            f"{name:<14} {rows:>11,} {engine:<11} {fig.seconds:>8.1f} {rows / max(fig.seconds, 1e-9):>10,.0f}"
            f" {fig.peak_mb:>8.0f} {fig.main_mb:>8.0f} {fig.child_mb:>9.0f} {versus:>14} {linear:>10.2f}"
        )
    sizes = sorted({rows for _, rows, _ in results})
    commands = ("generate", "validate", "train", "export", "score", "gate")
    for engine in engines:
        for rows in sizes:
            figures = [results.get((stage, rows, e)) for stage in commands for e in (engine, "either")]
            done = [f for f in figures if isinstance(f, Measured)]
            failed = [f for f in figures if isinstance(f, str)]
            total = sum(f.seconds for f in done)
            peak = max((f.peak_mb for f in done), default=0.0)
            if not done and not failed:
                continue
            state = f"{len(failed)} stage(s) failed" if failed else "every stage run completed"
            print(f"pipeline {rows:>11,} {engine:<11} {total / 60:6.1f} min, peak {peak / 1024:.1f} GiB: {state}")
    ours = ("in_process", "either")
    local = {rows: [f for (_, r, e), f in results.items() if r == rows and e in ours] for rows in sizes}
    complete = [rows for rows, found in local.items() if found and not any(isinstance(f, str) for f in found)]
    if "in_process" in engines:
        if not complete:
            print("in-process ceiling: below every size run")
        elif max(complete) == max(sizes):
            print(f"in-process ceiling: not reached (every stage run completed up to {max(sizes):,} applications)")
        else:
            print(f"in-process ceiling: {max(complete):,} applications (the largest size where every stage completed)")
    print("targets (issue 18): 10M on Dask < 45 min, peak < 16 GiB; 1M on Dask <= 1.5x in-process")


if __name__ == "__main__":
    main()
