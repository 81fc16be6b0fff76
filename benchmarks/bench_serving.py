"""Serving benchmark: our API against `mlflow models serve` on the same model, under the same load.

Both servers run one worker on loopback and serve the exported bundle's model.
The same requests (400 jobs of the latest postings, 50 real candidates each) go to
ours as /v1/match bodies and to MLflow's /invocations as `dataframe_split` bodies.
wrk (Debian: `apt-get install wrk`) cycles through them on 16 open connections for
--duration seconds against each server in turn and reports throughput, p50/p99
latency and errors. The server runs on one core and wrk on the others (`--no-pin`
lets them share every core). The in-process floor is the time to rank one request's
rows without any server, with its texts new and with them cached.

    make export && python benchmarks/bench_serving.py [--bundle bundle] [--duration 60] [--no-pin]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = 50
CONNECTIONS = 16
REQUESTS = 400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    return {"cold_ms": cold, "warm_ms": warm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=ROOT / "bundle")
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--no-pin", action="store_true", help="let the servers and wrk share every core")
    args = parser.parse_args()
    server_cpus, load_cpus = _cores(not args.no_pin)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    ours_bodies, theirs_bodies, bundle, columns = _payloads(args.bundle)
    floor = _floor(bundle, columns)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MLFLOW_DISABLE_TELEMETRY": "true"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        servers = {
            "gigmatch /v1/match": (
                ["uvicorn", "--factory", "serving.main:create_app", "--port", "{port}", "--workers", "1",
                 "--log-level", "warning", "--no-access-log"],
                {"GIGMATCH_BUNDLE_PATH": str(args.bundle.resolve()), "GIGMATCH_LOG_DIR": str(workdir / "logs")},
                "/ready", "/v1/match", ours_bodies,
            ),
            "mlflow models serve /invocations": (
                ["mlflow", "models", "serve", "-m", str((args.bundle / "model").resolve()), "--env-manager", "local",
                 "-p", "{port}", "-w", "1"],
                {}, "/ping", "/invocations", theirs_bodies,
            ),
        }  # fmt: skip
        for name, (command, extra_env, ready, route, bodies) in servers.items():
            port = _free_port()
            argv = [part.replace("{port}", str(port)) for part in command]
            # Output to a file, never an unread pipe: a server that logs each request
            # (MLflow's does) would block once the pipe's buffer is full.
            server_log = open(workdir / f"server-{port}.log", "wb")  # noqa: SIM115 - closed below
            process = subprocess.Popen(
                argv, cwd=ROOT, env={**env, **extra_env}, stdout=server_log, stderr=subprocess.STDOUT,
                preexec_fn=_on(server_cpus),
            )  # fmt: skip
            try:
                _wait(f"http://127.0.0.1:{port}{ready}", process)
                check = httpx.post(f"http://127.0.0.1:{port}{route}", content=bodies[0],
                                   headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
                check.raise_for_status()
                results[name] = _wrk(f"http://127.0.0.1:{port}{route}", bodies, args.duration, workdir, load_cpus)
            finally:
                process.terminate()
                process.wait(30)
                server_log.close()

    print(
        f"{len(ours_bodies)} distinct requests of {CANDIDATES} candidates, {CONNECTIONS} connections,"
        f" {args.duration} s each, one worker each"
    )
    if server_cpus is None:
        print("cores: the servers and wrk share every core")
    else:
        print(f"cores: each server on CPU {sorted(server_cpus)}, wrk on CPU {sorted(load_cpus or [])}")
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


if __name__ == "__main__":
    main()
