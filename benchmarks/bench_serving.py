"""Serving benchmark: our API against `mlflow models serve` on the same model, under the same load.

Both servers run one worker on loopback and serve the exported bundle's model.
The same 50 candidates of one job go to ours as a /v1/match request and to
MLflow's /invocations as a `dataframe_split`. wrk (Debian: `apt-get install wrk`)
holds 16 connections open for --duration seconds against each in turn and reports
throughput, p50/p99 latency and errors. The in-process floor is the time to score
the same 50 rows without any server.

    make export && python benchmarks/bench_serving.py [--bundle bundle] [--duration 60]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = 50
CONNECTIONS = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _payloads(bundle: Path) -> tuple[bytes, bytes, object, object]:
    """Our request, MLflow's request, and the model with its 50-row match frame for the floor."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import request_for  # the same builder the API tests use

    from gigmatch.bundle import load_bundle
    from gigmatch.config import load_params
    from gigmatch.dataset import read_tables
    from gigmatch.matching import match_columns_from_records, match_frame_from_records

    frames = read_tables(load_params(ROOT / "params.yaml").data.dir)
    per_job = frames["applications"].groupby("job_id").size()
    job_id = int(per_job[per_job >= 25].index[-1])
    job, candidates = request_for(job_id, frames)
    candidates = [dict(c, freelancer_id=i + 1) for i, c in enumerate((candidates * 3)[:CANDIDATES])]
    ours = json.dumps({"job": job, "candidates": candidates}).encode()
    frame = match_frame_from_records(job, candidates)
    records = json.loads(frame.to_json(orient="split", index=False))
    theirs = json.dumps({"dataframe_split": {"columns": records["columns"], "data": records["data"]}}).encode()
    return ours, theirs, load_bundle(bundle), (frame, match_columns_from_records(job, candidates))


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


def _wrk(url: str, body: bytes, duration: int, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body.decode()}]==]\n'
    )
    # Warm up (imports, caches, allocator), then measure.
    subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", "-d5s", "-s", str(script), url], capture_output=True, check=True)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    figures = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
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


def _floor(bundle: object, frames: object) -> dict[str, float]:
    from gigmatch.ranking import rank_candidates

    frame, columns = frames  # type: ignore[misc]
    model = bundle.model  # type: ignore[attr-defined]

    def median_ms(fn: object, n: int = 500) -> float:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return sorted(times)[n // 2] * 1000

    return {
        "predict_proba_frame_ms": median_ms(lambda: model.predict_proba(frame)),
        "rank_with_reasons_ms": median_ms(lambda: rank_candidates(model, columns, None, 3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=ROOT / "bundle")
    parser.add_argument("--duration", type=int, default=60)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    ours_body, theirs_body, bundle, frames = _payloads(args.bundle)
    floor = _floor(bundle, frames)
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
                "/ready", "/v1/match", ours_body,
            ),
            "mlflow models serve /invocations": (
                ["mlflow", "models", "serve", "-m", str((args.bundle / "model").resolve()), "--env-manager", "local",
                 "-p", "{port}", "-w", "1"],
                {}, "/ping", "/invocations", theirs_body,
            ),
        }  # fmt: skip
        for name, (command, extra_env, ready, route, body) in servers.items():
            port = _free_port()
            argv = [part.replace("{port}", str(port)) for part in command]
            # Output to a file, never an unread pipe: a server that logs each request
            # (MLflow's does) would block once the pipe's buffer is full.
            server_log = open(workdir / f"server-{port}.log", "wb")  # noqa: SIM115 - closed below
            process = subprocess.Popen(
                argv, cwd=ROOT, env={**env, **extra_env}, stdout=server_log, stderr=subprocess.STDOUT
            )
            try:
                _wait(f"http://127.0.0.1:{port}{ready}", process)
                check = httpx.post(f"http://127.0.0.1:{port}{route}", content=body,
                                   headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
                check.raise_for_status()
                results[name] = _wrk(f"http://127.0.0.1:{port}{route}", body, args.duration, workdir)
            finally:
                process.terminate()
                process.wait(30)
                server_log.close()

    print(f"{CANDIDATES} candidates per request, {CONNECTIONS} connections, {args.duration} s each, one worker each")
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
        f"in-process floor for the same {CANDIDATES} rows: predict_proba {floor['predict_proba_frame_ms']:.2f} ms,"
        f" rank with reasons {floor['rank_with_reasons_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
