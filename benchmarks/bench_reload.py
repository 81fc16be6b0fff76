"""Hot reload under load: the slowest answers with and without bundle reloads, from one run of one server.

One real uvicorn worker on loopback serves the bundle (as bench_serving.py starts it,
with the same 400 distinct requests of 50 real candidates). wrk drives /v1/match on
--connections open connections for --duration seconds without reloads, then for
--duration seconds more while --reloads reloads are spread evenly over the phase
(POST /v1/admin/reload with the admin key, or SIGHUP with --sighup). It prints, for
each phase, requests, errors (non-2xx answers and socket errors), p50, p99 and the
slowest answer, each reload's status and time, and the ratio of the two p99s against
the target (at most 2x, and no request lost). The server runs on one core and wrk on
the others (`--no-pin` lets them share); the server is stopped by its PID at the end.

    python benchmarks/bench_reload.py --bundle bundle [--data data] [--reloads 20] [--duration 40]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from bench_serving import CANDIDATES, ROOT, _cores, _free_port, _on, _payloads, _wait, _wrk

TARGET_RATIO = 2.0


def _reload_spread(
    base: str, admin_key: str, pid: int | None, count: int, duration: float, results: list[tuple[int, float]]
) -> None:
    """`count` reloads at even intervals over `duration` seconds from now: (status, seconds) each (SIGHUP: 0, 0)."""
    start = time.monotonic()
    with httpx.Client(base_url=base, timeout=60, headers={"X-Admin-Key": admin_key}) as http:
        for n in range(count):
            time.sleep(max(0.0, start + (n + 0.5) * duration / count - time.monotonic()))
            sent = time.monotonic()
            if pid is not None:
                os.kill(pid, signal.SIGHUP)
                results.append((0, 0.0))
                continue
            try:
                status = http.post("/v1/admin/reload").status_code
            except httpx.TransportError:
                status = -1
            results.append((status, time.monotonic() - sent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=ROOT / "bundle")
    parser.add_argument("--data", type=Path, default=None, help="snapshot to build requests from (params' data.dir)")
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--duration", type=int, default=40, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sighup", action="store_true", help="reload with SIGHUP instead of the admin route")
    parser.add_argument("--no-pin", action="store_true", help="let the server and wrk share every core")
    args = parser.parse_args()
    if not 1 <= args.reloads <= 1000 or not 5 <= args.duration <= 600:
        sys.exit("--reloads must be 1 to 1000 and --duration 5 to 600 seconds")
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    server_cpus, load_cpus = _cores(not args.no_pin)
    bodies = _payloads(args.bundle, args.data)[0]
    admin_key = secrets.token_hex(16)
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIGMATCH_")},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "GIGMATCH_BUNDLE_PATH": str(args.bundle.resolve()),
            "GIGMATCH_LOG_DIR": str(workdir / "logs" / "predictions"),
            "GIGMATCH_OUTCOME_LOG_DIR": str(workdir / "logs" / "outcomes"),
            "GIGMATCH_ADMIN_KEY": admin_key,
        }
        argv = ["uvicorn", "--factory", "serving.main:create_app", "--port", str(port), "--workers", "1",
                "--log-level", "warning", "--no-access-log"]  # fmt: skip
        with open(workdir / "server.log", "wb") as server_log:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT, preexec_fn=_on(server_cpus)
            )
            try:
                _wait(f"{base}/ready", process)
                check = httpx.post(f"{base}/v1/match", content=bodies[0],
                                   headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
                check.raise_for_status()
                url = f"{base}/v1/match"
                without = _wrk(url, bodies, args.duration, workdir, load_cpus, args.connections)  # after a warm-up
                reloads: list[tuple[int, float]] = []
                spread = threading.Thread(
                    target=_reload_spread,
                    args=(base, admin_key, process.pid if args.sighup else None, args.reloads, args.duration, reloads),
                )
                spread.start()
                during = _wrk(url, bodies, args.duration, workdir, load_cpus, args.connections, warm_up=False)
                spread.join(120)
                alive = process.poll() is None
            finally:
                process.terminate()  # by its PID
                process.wait(30)
        log_tail = (workdir / "server.log").read_text(errors="replace").strip().splitlines()[-5:]

    print(
        f"{len(bodies)} distinct requests of {CANDIDATES} candidates, {args.connections} connections,"
        f" two phases of {args.duration} s, one worker"
    )
    if server_cpus is None:
        print("cores: the server and wrk share every core")
    else:
        print(f"cores: the server on CPU {sorted(server_cpus)}, wrk on CPU {sorted(load_cpus or [])}")
    how = "SIGHUP" if args.sighup else "POST /v1/admin/reload"
    print(f"{'phase':<36} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, fig in (("no reloads", without), (f"{args.reloads} reloads ({how})", during)):
        print(
            f"{name:<36} {int(fig['requests']):>9} {int(fig['errors']):>7} {fig['rps']:>8.1f}"
            f" {fig['p50_ms']:>8.2f} {fig['p99_ms']:>8.2f} {fig['max_ms']:>8.1f}"
        )
    statuses = [status for status, _ in reloads]
    if args.sighup:
        print(f"reloads: {len(reloads)} SIGHUPs sent")
        failed = 0
    else:
        times = [seconds for _, seconds in reloads]
        failed = sum(status != 200 for status in statuses)
        print(
            f"reloads: {len(reloads)} sent, {len(reloads) - failed} answered 200 (statuses {sorted(set(statuses))});"
            f" each took {min(times):.2f}-{max(times):.2f} s, median {statistics.median(times):.2f} s"
        )
    ratio = during["p99_ms"] / without["p99_ms"]
    lost = int(during["errors"] + without["errors"])
    verdict = "met" if ratio <= TARGET_RATIO and lost == 0 and failed == 0 and alive else "NOT met"
    print(
        f"p99 with reloads / without: {ratio:.2f}x (target <= {TARGET_RATIO:g}x); requests lost: {lost};"
        f" reloads failed: {failed}; server alive at the end: {alive}: target {verdict}"
    )
    if not alive or failed:
        print("server log (last lines):", *log_tail, sep="\n  ")


if __name__ == "__main__":
    main()
