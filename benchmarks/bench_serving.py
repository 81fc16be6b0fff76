"""Serving benchmark: our API against `mlflow models serve` on the same model, under the same load,
and the cost of a shadow challenger to our server's answers.

Both servers run one worker on loopback and serve the exported bundle's model.
The same requests (400 jobs of the latest postings, 50 real candidates each) go to
ours as /v1/match bodies and to MLflow's /invocations as `dataframe_split` bodies.
wrk (Debian: `apt-get install wrk`) cycles through them on 16 open connections for
--duration seconds against each server in turn and reports throughput, p50/p99
latency and errors. The server runs on one core and wrk on the others (`--no-pin`
lets them share every core). The in-process floor is the time to rank one request's
rows without any server, with its texts new and with them cached.

The shadow part runs our server three times under the same load: with no challenger,
with one scoring 10% of the requests (GIGMATCH_SHADOW_SHARE=0.1) and 100% of them
(serving.shadow: the challenger ranks in a background thread of the same process, after
the answers have left). It prints the champion's throughput, p50/p99 and errors, their
ratio against no shadow, and, from the server's /metrics, the requests the shadow ranked
(gigmatch_shadow_scored_total) and dropped (gigmatch_shadow_dropped_total: its bounded
queue, GIGMATCH_SHADOW_QUEUE_SIZE, was full) during the measured window, the share of the
answered requests they make, and how many were still queued when the load stopped (ranked
after the window, so not in its throughput). The challenger is a copy of the exported
bundle (the same model, re-labelled version "<version>-copy"): its cost per request is
the champion's own ranking without reasons (the shadow computes none; for a LightGBM
champion its SHAP reasons are most of a request's ranking time, so a copy is a light
challenger). `--challenger DIR` measures a real one instead, e.g. a bundle written by
`gigmatch export --alias challenger --out challenger` once the registry has a challenger.

    make export && python benchmarks/bench_serving.py [--bundle bundle] [--duration 60] [--no-pin]
        [--only compare|shadow] [--challenger DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = 50
CONNECTIONS = 16
REQUESTS = 400
SHADOW_SHARES = (None, 0.1, 1.0)  # no challenger, then one scoring 10% and 100% of the requests
OURS = (
    ["uvicorn", "--factory", "serving.main:create_app", "--port", "{port}", "--workers", "1",
     "--log-level", "warning", "--no-access-log"]
)  # fmt: skip


def _free_port() -> int:
    sys.path.insert(0, str(ROOT))
    from devtools.ports import free_port  # the one home of it

    return free_port()


def _payloads(bundle: Path, data_dir: Path | None = None) -> tuple[list[bytes], list[bytes], Any, list[Any]]:
    """Our requests, MLflow's requests (the same rows), the model, and the match columns for the floor.

    REQUESTS distinct requests, one per job of the latest postings (the period the model
    never saw), each with 50 real candidates: the job's applicants, topped up with
    applicants of the jobs posted just before it. So freelancers recur across requests
    as they do on a marketplace (they apply to several jobs), and no two requests match.
    """
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    import pandas as pd
    from conftest import match_columns_of, request_for  # the same builders the API tests use

    from gigmatch.data.snapshot import read_tables
    from gigmatch.features.match_frame import match_frame_from_table
    from gigmatch.model.bundle import load_bundle
    from gigmatch.params import load_params

    frames = read_tables(data_dir or load_params(ROOT / "params.yaml").data.dir)
    job_ids = frames["jobs"].sort_values(["posted_at", "job_id"])["job_id"].to_numpy()[-(REQUESTS + 5) :]
    ours, theirs, columns = [], [], []
    recent: dict[int, dict] = {}  # applicants of the latest jobs, newest last
    for job_id in job_ids:
        job, applicants = request_for(int(job_id), frames)
        seen = {c["freelancer_id"] for c in applicants}
        top_up = [c for i, c in reversed(recent.items()) if i not in seen]
        candidates = (applicants + top_up)[:CANDIDATES]
        recent.update((c["freelancer_id"], c) for c in applicants)
        while len(recent) > 4 * CANDIDATES:
            del recent[next(iter(recent))]
        if len(candidates) < CANDIDATES:  # the first jobs have too few predecessors to borrow from
            continue
        ours.append(json.dumps({"job": job, "candidates": candidates}).encode())
        frame = match_frame_from_table(pd.DataFrame([{**job, **candidate} for candidate in candidates]))
        split = json.loads(frame.to_json(orient="split", index=False))
        theirs.append(json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"]}}).encode())
        columns.append(match_columns_of([(job, candidates)]))
    return ours, theirs, load_bundle(bundle), columns


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see its log in the work directory")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} never answered 200")


def _cores(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """The server's core and the load generator's, apart: in production no wrk runs beside the server,
    and on 2 shared cores the server's slowest answers were the ones that waited for wrk."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def _on(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that keeps a child (and every thread and process it starts) on `cpus`."""
    return None if cpus is None else lambda: os.sched_setaffinity(0, cpus)


def _wrk(
    url: str,
    bodies: list[bytes],
    duration: int,
    workdir: Path,
    cpus: set[int] | None,
    connections: int = CONNECTIONS,
    warm_up: bool = True,
    before_measuring: Callable[[], object] | None = None,
) -> dict[str, float]:
    bodies_file = workdir / f"bodies-{abs(hash(url))}.jsonl"
    bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
    script = workdir / "post.lua"
    # Each wrk thread formats every request once, then cycles through them from its own offset
    # (formatting a 26 kB request on every call tripled the load generator's user CPU).
    script.write_text(
        f"""
local requests = {{}}
local counter = 0
function init(args)
  for body in io.lines("{bodies_file}") do
    requests[#requests + 1] = wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, body)
  end
  counter = math.random(#requests)
end
function request()
  counter = counter % #requests + 1
  return requests[counter]
end
"""
    )
    if warm_up:  # imports, caches, allocator, then measure
        subprocess.run(["wrk", "-t2", f"-c{connections}", "-d5s", "-s", str(script), url],
                       capture_output=True, check=True, preexec_fn=_on(cpus))  # fmt: skip
    if before_measuring is not None:
        before_measuring()
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True, preexec_fn=_on(cpus),
    ).stdout  # fmt: skip
    figures = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "max_ms": _ms(re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["errors"] = float(
        (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    )
    return figures


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _floor(bundle: object, columns: list[object]) -> dict[str, float]:
    """Median in-process time to rank one request's 50 rows: first sight of its texts, and again."""
    from conftest import rank_alone

    model = bundle.model  # type: ignore[attr-defined]

    def median_ms(fresh: bool) -> float:
        times = []
        for request in columns:
            # A fresh copy's transformer has no lookups yet: no text or skill list seen before.
            scorer = copy.deepcopy(model) if fresh else model
            start = time.perf_counter()
            rank_alone(scorer, request).ranked()  # type: ignore[attr-defined]
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2] * 1000

    cold = median_ms(fresh=True)
    median_ms(fresh=False)  # a first pass sees every text once
    warm = median_ms(fresh=False)  # every text seen in the pass before
    return {"cold_ms": cold, "warm_ms": warm, **_reasons_cost(model, columns)}


def _reasons_cost(model: Any, columns: list[Any]) -> dict[str, float]:
    """For a LightGBM model: its request reasons (path attributions) against exact SHAP, in time and in agreement."""
    import numpy as np

    from gigmatch.features.match_frame import match_columns
    from gigmatch.model.explain import contributions, reason_contributions
    from gigmatch.model.pipeline import estimator_of, features_of

    estimator = estimator_of(model)
    if type(estimator).__module__.split(".")[0] != "lightgbm":
        return {}
    matrices = []
    for request in columns:
        rows = match_columns(request)
        rows["job_id"] = np.zeros(len(rows["job_id"]), dtype=np.int64)
        matrices.append(features_of(model).transform(rows))
    figures: dict[str, float] = {}
    effects: dict[str, list[Any]] = {}
    for name, explain in (("path", reason_contributions), ("shap", contributions)):
        explain(estimator, matrices[0])  # the path table is built at the first call
        start = time.perf_counter()
        effects[name] = [explain(estimator, matrix) for matrix in matrices]
        figures[f"{name}_ms"] = (time.perf_counter() - start) / len(matrices) * 1000
    path, shap = np.concatenate(effects["path"]), np.concatenate(effects["shap"])
    path_top = np.argsort(-np.abs(path), axis=1, kind="stable")[:, :3]
    shap_top = np.argsort(-np.abs(shap), axis=1, kind="stable")[:, :3]
    figures["same_top_reason"] = float((path_top[:, 0] == shap_top[:, 0]).mean())
    shared = [len(set(a) & set(b)) / 3 for a, b in zip(path_top, shap_top, strict=True)]
    figures["top3_overlap"] = float(np.mean(shared))
    top_shap = np.take_along_axis(shap, shap_top, axis=1)
    figures["same_sign"] = float((np.sign(top_shap) == np.sign(np.take_along_axis(path, shap_top, axis=1))).mean())
    return figures


@contextlib.contextmanager
def _server(command: list[str], env: dict[str, str], ready: str, workdir: Path, cpus: set[int] | None) -> Iterator[str]:
    """Start a server on a free port, wait until `ready` answers 200, yield its base URL; stop it, whatever happens."""
    port = _free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    # Output to a file, never an unread pipe: a server that logs each request
    # (MLflow's does) would block once the pipe's buffer is full.
    with open(workdir / f"server-{port}.log", "wb") as server_log:
        # A session of its own: stopping its process group stops the workers a server starts (MLflow's do).
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT, preexec_fn=_on(cpus),
            start_new_session=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(base + ready, process)
            yield base
        except Exception:  # the work directory goes with the run: show the end of the server's log now
            tail = (workdir / f"server-{port}.log").read_text(errors="replace").splitlines()[-20:]
            print(f"{argv[0]} on port {port}, last lines of its log:", *tail, sep="\n", file=sys.stderr)
            raise
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL to whatever of it is left after 30 s or once its leader exits."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _check(url: str, body: bytes) -> None:
    """One request answered 200 before the load starts: a server that cannot answer is not measured."""
    httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30).raise_for_status()


def _counters(base: str) -> dict[str, float]:
    """From our server's /metrics: /v1/match requests answered 200, and the shadow's ranked and dropped requests."""
    from prometheus_client.parser import text_string_to_metric_families

    counters = {"answered": 0.0, "scored": 0.0, "dropped": 0.0, "challenger": 0.0}
    text = httpx.get(base + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gigmatch_requests_total" and sample.labels == {"route": "/v1/match", "status": "200"}:
                counters["answered"] += sample.value
            elif sample.name == "gigmatch_shadow_scored_total":
                counters["scored"] += sample.value
            elif sample.name == "gigmatch_shadow_dropped_total":
                counters["dropped"] += sample.value
            elif sample.name == "gigmatch_challenger_info":
                counters["challenger"] += sample.value
    return counters


def _settled(base: str, timeout: float = 60) -> dict[str, float]:
    """The counters once the requests still in flight are answered and the shadow's queue has drained:
    answered, ranked and dropped all unchanged for a second."""
    deadline = time.monotonic() + timeout
    counters = _counters(base)
    steady_since = time.monotonic()
    while time.monotonic() - steady_since < 1.0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was still answering or shadowing {timeout:.0f} s after the load stopped")
        time.sleep(0.25)
        latest = _counters(base)
        if latest != counters:
            steady_since = time.monotonic()
        counters = latest
    return counters


def _challenger(given: Path | None, bundle: Path, workdir: Path) -> tuple[Path, str]:
    """The shadow's bundle and what it is: `given`, else a copy of the champion's bundle re-labelled."""
    if given is not None:
        lineage = json.loads((given / "lineage.json").read_text())
        return given.resolve(), f"{lineage['model_name']} version {lineage['version']} from {given}"
    copied = workdir / "challenger"
    shutil.copytree(bundle, copied)
    lineage = json.loads((copied / "lineage.json").read_text())
    lineage["version"] = f"{lineage['version']}-copy"
    (copied / "lineage.json").write_text(json.dumps(lineage))
    return copied, f"a copy of {bundle} ({lineage['model_name']} version {lineage['version']}: the champion's model)"


def _shadow_cost(
    bundle: Path,
    challenger: Path,
    bodies: list[bytes],
    duration: int,
    env: dict[str, str],
    workdir: Path,
    server_cpus: set[int] | None,
    load_cpus: set[int] | None,
) -> dict[str, dict[str, float]]:
    """Our server under the same load with no shadow, then with the challenger scoring each share of the requests."""
    # The shadow's settings are the runs' own, never the caller's environment's.
    env = {
        k: v for k, v in env.items() if k != "GIGMATCH_CHALLENGER_BUNDLE_PATH" and not k.startswith("GIGMATCH_SHADOW_")
    }
    results = {}
    for share in SHADOW_SHARES:
        label = "no shadow" if share is None else f"shadow {share:.0%}"
        tag = "none" if share is None else f"{share:g}"
        extra = {"GIGMATCH_BUNDLE_PATH": str(bundle.resolve()), "GIGMATCH_LOG_DIR": str(workdir / f"logs-{tag}")}
        if share is not None:
            extra |= {
                "GIGMATCH_CHALLENGER_BUNDLE_PATH": str(challenger),
                "GIGMATCH_SHADOW_SHARE": str(share),
                "GIGMATCH_SHADOW_LOG_DIR": str(workdir / f"shadow-{tag}"),
            }
        results[label] = _shadow_run({**env, **extra}, bodies, duration, workdir, server_cpus, load_cpus)
    return results


def _shadow_run(
    env: dict[str, str],
    bodies: list[bytes],
    duration: int,
    workdir: Path,
    server_cpus: set[int] | None,
    load_cpus: set[int] | None,
) -> dict[str, float]:
    """One run of our server (a challenger when `env` names one): wrk's figures and the shadow's counters."""
    with _server(OURS, env, "/ready", workdir, server_cpus) as base:
        _check(base + "/v1/match", bodies[0])
        if "GIGMATCH_CHALLENGER_BUNDLE_PATH" in env and not _counters(base)["challenger"]:
            raise RuntimeError("the challenger did not load (the server's log follows)")
        before: dict[str, float] = {}
        # The warm-up's shadow work drained first: the window counts only its own requests.
        figures = _wrk(base + "/v1/match", bodies, duration, workdir, load_cpus,
                       before_measuring=lambda: before.update(_settled(base)))  # fmt: skip
        at_end = _counters(base)
        after = _settled(base)
    for name in ("answered", "scored", "dropped"):
        figures[name] = after[name] - before[name]
    figures["queued_at_end"] = after["scored"] + after["dropped"] - at_end["scored"] - at_end["dropped"]
    return figures


def _compare(
    args: argparse.Namespace,
    ours_bodies: list[bytes],
    theirs_bodies: list[bytes],
    env: dict[str, str],
    workdir: Path,
    server_cpus: set[int] | None,
    load_cpus: set[int] | None,
) -> dict[str, dict[str, float]]:
    """Our server against MLflow's on the same rows."""
    servers = {
        "gigmatch /v1/match": (
            OURS,
            {"GIGMATCH_BUNDLE_PATH": str(args.bundle.resolve()), "GIGMATCH_LOG_DIR": str(workdir / "logs")},
            "/ready", "/v1/match", ours_bodies,
        ),
        "mlflow models serve /invocations": (
            ["mlflow", "models", "serve", "-m", str((args.bundle / "model").resolve()), "--env-manager", "local",
             "-p", "{port}", "-w", "1"],
            {}, "/ping", "/invocations", theirs_bodies,
        ),
    }  # fmt: skip
    results = {}
    for name, (command, extra_env, ready, route, bodies) in servers.items():
        with _server(command, {**env, **extra_env}, ready, workdir, server_cpus) as base:
            _check(base + route, bodies[0])
            results[name] = _wrk(base + route, bodies, args.duration, workdir, load_cpus)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=ROOT / "bundle")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load per server run (after a 5 s warm-up)")
    parser.add_argument("--no-pin", action="store_true", help="let the servers and wrk share every core")
    parser.add_argument(
        "--only", choices=("compare", "shadow"), help="run one part: ours against MLflow, or the shadow's cost"
    )
    parser.add_argument("--challenger", type=Path, help="the shadow's bundle (default: a copy of --bundle)")
    args = parser.parse_args()
    parts = ("compare", "shadow") if args.only is None else (args.only,)
    server_cpus, load_cpus = _cores(not args.no_pin)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    ours_bodies, theirs_bodies, bundle, columns = _payloads(args.bundle)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MLFLOW_DISABLE_TELEMETRY": "true"}
    results, shadow = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "compare" in parts:
            floor = _floor(bundle, columns)
            results = _compare(args, ours_bodies, theirs_bodies, env, workdir, server_cpus, load_cpus)
        if "shadow" in parts:
            challenger, about = _challenger(args.challenger, args.bundle, workdir)
            shadow = _shadow_cost(
                args.bundle, challenger, ours_bodies, args.duration, env, workdir, server_cpus, load_cpus
            )

    print(
        f"{len(ours_bodies)} distinct requests of {CANDIDATES} candidates, {CONNECTIONS} connections,"
        f" {args.duration} s each, one worker each"
    )
    if server_cpus is None:
        print("cores: the servers and wrk share every core")
    else:
        print(f"cores: each server on CPU {sorted(server_cpus)}, wrk on CPU {sorted(load_cpus or [])}")
    if results:
        _print_compare(results, floor)
    if shadow:
        _print_shadow(shadow, about)


def _print_compare(results: dict[str, dict[str, float]], floor: dict[str, float]) -> None:
    print(f"{'server':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}")
    for name, fig in results.items():
        print(
            f"{name:<34} {fig['rps']:>8.1f} {fig['p50_ms']:>8.2f} {fig['p99_ms']:>8.2f}"
            f" {int(fig['requests']):>9} {int(fig['errors']):>7}"
        )
    ours, theirs = results["gigmatch /v1/match"], results["mlflow models serve /invocations"]
    print(f"throughput ratio (ours / mlflow): {ours['rps'] / theirs['rps']:.2f}x (target >= 3x)")
    print(
        f"our p99 at {CONNECTIONS} connections: {ours['p99_ms']:.1f} ms (target < 25 ms); errors: {int(ours['errors'])}"
    )
    print(
        f"in-process floor, rank {CANDIDATES} rows with reasons (median over the requests):"
        f" {floor['cold_ms']:.2f} ms with no text seen before, {floor['warm_ms']:.2f} ms with the texts cached"
    )
    if "path_ms" in floor:
        print(
            f"reasons of a LightGBM model, per request: path attributions {floor['path_ms']:.2f} ms, exact SHAP"
            f" {floor['shap_ms']:.2f} ms ({floor['shap_ms'] / floor['path_ms']:.1f}x); against SHAP: the same top"
            f" reason for {floor['same_top_reason']:.1%} of candidates, {floor['top3_overlap']:.1%} of the top 3"
            f" shared, the same sign on SHAP's top 3 for {floor['same_sign']:.2%}"
        )


def _print_shadow(shadow: dict[str, dict[str, float]], about: str) -> None:
    print(f"shadow cost, our server /v1/match; challenger: {about}")
    print(
        f"{'run':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}"
        f" {'rps/none':>9} {'p99/none':>9} {'answered':>9} {'shadowed':>9} {'dropped':>8} {'share':>6} {'queued':>7}"
    )
    none = shadow["no shadow"]
    for name, fig in shadow.items():
        in_share = fig["scored"] + fig["dropped"]
        share = in_share / fig["answered"] if fig["answered"] else 0.0
        print(
            f"{name:<12} {fig['rps']:>8.1f} {fig['p50_ms']:>8.2f} {fig['p99_ms']:>8.2f}"
            f" {int(fig['requests']):>9} {int(fig['errors']):>7}"
            f" {fig['rps'] / none['rps']:>9.3f} {fig['p99_ms'] / none['p99_ms']:>9.3f}"
            f" {int(fig['answered']):>9} {int(fig['scored']):>9} {int(fig['dropped']):>8} {share:>6.1%}"
            f" {int(fig['queued_at_end']):>7}"
        )
    print(
        "shadowed, dropped: gigmatch_shadow_scored_total, gigmatch_shadow_dropped_total over the window (dropped: not"
        " ranked, the bounded queue was full); share: their sum over the answered; queued: waiting as the load stopped"
    )


if __name__ == "__main__":
    main()
