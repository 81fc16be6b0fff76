"""Training benchmark: the flow's wall time at 100k and 1M applications, and its orchestration tax.

For each size a snapshot is generated in a temporary directory, then timed twice,
each in a fresh process:
  orchestrated  `gigmatch train`: Prefect (a cold ephemeral server) + MLflow (a new
                SQLite store): models tracked, logged, registered and gated;
  bare          the same domain functions called directly, models
                in the same number of threads, no Prefect and no MLflow.
The tax is orchestrated / bare. The scaling factor compares 1M with 100k against
the linear baseline (10x the rows).

With --stack, the orchestration tax against the running servers as well: a cold team
stack (`gigmatch stack up`, ports 100 above the defaults, in a scratch directory under
/tmp, stopped at the end whatever happens) and, per size, a scratch git checkout of
this working tree holding the snapshot (data/, gitignored) and a committed params.yaml
that points at it, under a model name of its own (no champion from another size to
score). Timed first, in that checkout:
  stack         `gigmatch train` with the team environment: it declares the deployment
                gigmatch-train-on-worker/team from the checkout, the stack's process
                worker runs it, runs, models and the registry go to the MLflow server
                (PostgreSQL backend, S3 artifacts); timed from the command's start to
                its exit (the stack's start-up is reported apart);
then orchestrated and bare as above, on the same data and params, beside the idle stack.
The stack tax is stack / bare (target: at most 1.3x at 1M). Where the stack's seconds go
(the worker's pick-up, the flow run, its slowest tasks) is read back from the Prefect server.
Peak MB is the local legs' (the worker's flow run is not this process's child).

    python benchmarks/bench_training.py                 # 100k and 1M
    python benchmarks/bench_training.py --sizes 100000  # one size
    python benchmarks/bench_training.py --stack --sizes 1000000  # and against the team stack
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _team_stack
import yaml

ROOT = Path(__file__).resolve().parents[1]
JOBS_PER_APPLICATION = 1 / 24.1
FREELANCERS_PER_JOB = 4.0
LEG_TIMEOUT_S = 1800.0  # per timed command: bare training at 1M takes minutes on two cores
SLOWEST_TASKS = 4  # of the stack's training flow, in the report


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


def _timed(command: list[str], env: dict[str, str], cwd: Path = ROOT, log: Path | None = None) -> float:
    """Wall seconds of `command`; its output goes to `log` (shown when it fails), or nowhere."""
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        try:
            subprocess.run(command, cwd=cwd, env=env, check=True, stdout=out, stderr=out, timeout=LEG_TIMEOUT_S)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            if log is not None:
                print(log.read_text()[-6000:], file=sys.stderr)
            raise
    return time.perf_counter() - start


def prepare(n_applications: int | None, workdir: Path, model_name: str | None = None) -> tuple[Path, int]:
    """A snapshot of the size under workdir/data and a params.yaml reading it; its path and the row count."""
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
    if model_name is not None:  # the stack's registry outlives a size: a champion of another size would be scored
        raw["register"]["model_name"] = model_name
    params_path = workdir / "params.yaml"
    params_path.write_text(yaml.safe_dump(raw))
    return params_path, rows


def measure(n_applications: int | None, workdir: Path, stack: _team_stack.TeamStack | None = None) -> dict[str, float]:
    label = "default" if n_applications is None else str(n_applications)
    params_path, rows = prepare(n_applications, workdir, None if stack is None else f"gigmatch-bench-{label}")
    figures: dict[str, float] = {"applications": rows}
    gigmatch = str(Path(sys.executable).with_name("gigmatch"))
    if stack is not None:  # first, on the clean checkout: the deployment runs params.yaml as committed there
        _team_stack.commit(workdir, f"bench: {label} applications")
        env = stack.client_env(deployment_timeout=LEG_TIMEOUT_S)
        log = stack.dir / f"train-{label}.log"
        figures["stack_s"] = _timed([gigmatch, "train"], env, cwd=workdir, log=log)
        figures |= stack.training_phases()
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
    figures["orchestrated_s"] = _timed([gigmatch, "train", "--params", str(params_path)], env)
    figures["bare_s"] = _timed([sys.executable, __file__, "--bare", str(params_path)], env)
    return figures


@contextlib.contextmanager
def _workdir(size: int | None, stack: _team_stack.TeamStack | None) -> Iterator[Path]:
    """A temporary directory; with the stack, a scratch checkout of the working tree (removed after the size)."""
    if stack is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
        return
    checkout = _team_stack.clone(stack.dir / f"clone-{size or 'default'}")
    try:
        yield checkout
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


Figures = dict[str, float]
Column = tuple[str, int, Callable[[Figures], str]]
LOCAL_COLUMNS: list[Column] = [
    ("orchestrated s", 15, lambda fig: f"{fig['orchestrated_s']:.1f}"),
    ("bare s", 8, lambda fig: f"{fig['bare_s']:.1f}"),
    ("tax", 6, lambda fig: f"{fig['orchestrated_s'] / fig['bare_s']:.2f}x"),
]
STACK_COLUMNS: list[Column] = [
    ("local s", 8, lambda fig: f"{fig['orchestrated_s']:.1f}"),
    ("stack s", 8, lambda fig: f"{fig['stack_s']:.1f}"),
    ("bare s", 8, lambda fig: f"{fig['bare_s']:.1f}"),
    ("local tax", 10, lambda fig: f"{fig['orchestrated_s'] / fig['bare_s']:.2f}x"),
    ("stack tax", 10, lambda fig: f"{fig['stack_s'] / fig['bare_s']:.2f}x"),
]
PEAK_COLUMN: Column = ("peak MB", 8, lambda fig: f"{fig['peak_rss_mb']:.0f}")


def report(results: list[tuple[str, Figures]], stack: _team_stack.TeamStack | None) -> None:
    columns = [*(LOCAL_COLUMNS if stack is None else STACK_COLUMNS), PEAK_COLUMN]
    print(f"{'size':>10} {'applications':>12} " + " ".join(f"{header:>{width}}" for header, width, _ in columns))
    for label, fig in results:
        cells = " ".join(f"{cell(fig):>{width}}" for _, width, cell in columns)
        print(f"{label:>10} {int(fig['applications']):>12,} {cells}")
    sized = [fig for label, fig in results if label != "default"]
    if len(sized) == 2:
        small, large = sized
        work = large["applications"] / small["applications"]
        for kind in ("orchestrated", "bare") if stack is None else ("orchestrated", "stack", "bare"):
            ratio = large[f"{kind}_s"] / small[f"{kind}_s"]
            print(f"scaling {kind}: {ratio:.1f}x time for {work:.1f}x rows (linear baseline {work:.1f}x)")
    targets = "targets: default size end to end < 90 s; 1M applications < 600 s"
    if stack is not None:
        print(f"stack up, cold: {stack.up_s:.1f} s (not timed in the legs)")
        for label, fig in results:
            print(f"stack at {label}: {_where_it_went(fig)}")
        targets += "; stack tax at 1M <= 1.3x"
    print(targets)


def _where_it_went(fig: dict[str, float]) -> str:
    """The stack leg's seconds: around the flow run (client, deploy, wait), before it (queued), in it."""
    around = fig["stack_s"] - fig["queued_s"] - fig["flow_run_s"]
    runs = ((key[5:-2].rsplit("-", 1)[0], seconds) for key, seconds in fig.items() if key.startswith("task "))
    tasks = sorted(runs, key=lambda run: -run[1])  # a task's runs under its name: train-model once per model
    slowest = ", ".join(f"{name} {seconds:.1f}" for name, seconds in tasks[:SLOWEST_TASKS])
    return (
        f"client around the run {around:.1f} s, queued {fig['queued_s']:.1f} s, flow run {fig['flow_run_s']:.1f} s"
        f" (training flow {fig['training_flow_s']:.1f} s; slowest tasks, s: {slowest})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--stack", action="store_true", help="time `gigmatch train` against a team stack as well")
    parser.add_argument("--keep-stack-dir", action="store_true", help="keep the stack's logs and data (stopped)")
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare(args.bare)
        return

    results = []
    with _team_stack.running(args.keep_stack_dir) if args.stack else contextlib.nullcontext() as stack:
        for size in [None, *args.sizes]:  # None: the default params.yaml size
            with _workdir(size, stack) as workdir:
                figures = measure(size, workdir, stack)
            figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            results.append(("default" if size is None else f"{size:,}", figures))
            print(json.dumps({"size": results[-1][0], **figures}), file=sys.stderr, flush=True)
        report(results, stack)


if __name__ == "__main__":
    main()
