"""Marketplace replay: the plan and the outcome model are deterministic from the seed, the position bias
rewards a better ranking, and `gigmatch replay` drives a real uvicorn on loopback, stops by itself, has its
outcomes taken, and refuses what it should (a remote target, a server it cannot reach, a refused key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from devtools.ports import free_port
from gigmatch.cli import main
from gigmatch.cli.replay import render_summary
from gigmatch.data.contract import HIRED, REJECTED
from gigmatch.errors import ExitCode
from gigmatch.monitoring.outcome_log import read_outcome_log
from gigmatch.monitoring.replay import (
    PlannedRequest,
    ReplayPlan,
    ReplaySpec,
    examination_probability,
    ndcg_by,
    plan_replay,
    replay_phases,
    reported_outcomes,
    serve,
)
from gigmatch.monitoring.replay_driver import Pacing, check_target, is_loopback, run_replay
from gigmatch.params import Params
from serving.schemas import MatchRequest

ROOT = Path(__file__).resolve().parents[1]
GIGMATCH = str(Path(sys.executable).with_name("gigmatch"))
API_KEY = "replay-client-key"
# The fields of a record line that the seed and the model decide (not the request ids, not the timings).
DETERMINED = ("index", "day", "phase", "job_id", "candidates", "status", "model_version", "served", "outcomes")


def _plan(params: Params, seed: int, requests: int = 20, **spec: Any) -> ReplayPlan:
    window = 1.0 - params.split.valid_fraction - params.split.test_fraction
    return plan_replay(params.simulate, ReplaySpec(seed, requests, **spec), window)


# --- the plan and the outcome model (no server) ---


def test_the_same_seed_gives_the_same_plan_and_outcomes_another_seed_others(params: Params) -> None:
    first, again, other = _plan(params, 5), _plan(params, 5), _plan(params, 6)
    assert len(first.requests) == len(other.requests) == 20
    for a, b in zip(first.requests, again.requests, strict=True):
        assert _drawn(a) == _drawn(b)
        np.testing.assert_array_equal(a.examination, b.examination)
        order = sorted(a.candidate_ids, reverse=True)  # any served order: the same reports for it
        assert reported_outcomes(a, order, 1.0) == reported_outcomes(b, order, 1.0)
    assert [r.payload for r in first.requests] != [r.payload for r in other.requests]
    assert not np.array_equal(first.requests[0].examination[:5], other.requests[0].examination[:5])
    assert {r.job_id for r in first.requests}.isdisjoint(r.job_id for r in other.requests)
    for planned in first.requests:  # every payload is a request the API accepts
        MatchRequest.model_validate(planned.payload)


def _drawn(planned: PlannedRequest) -> tuple[object, ...]:
    return planned.job_id, planned.payload, planned.candidate_ids, planned.true_outcome


def test_the_drift_starts_on_its_day_with_jobs_of_its_own(params: Params) -> None:
    plan = _plan(params, 3, requests=12, jobs_per_day=4, scenario="concept", drift_from_day=2)
    assert [(p.scenario, p.first, p.count) for p in plan.phases] == [("none", 0, 8), ("concept", 8, 4)]
    assert [r.day for r in plan.requests] == [0] * 4 + [1] * 4 + [2] * 4
    assert [r.phase for r in plan.requests] == ["none"] * 8 + ["concept"] * 4
    ids = [r.job_id for r in plan.requests]
    assert ids == sorted(set(ids)) and ids[-1] - ids[0] == 11  # posted in order, numbered in plan order
    stationary = ReplaySpec(1, 10, jobs_per_day=2, drift_from_day=3)  # scenario none: one phase whatever the day
    assert [(p.scenario, p.count) for p in replay_phases(stationary)] == [("none", 10)]
    drifted = ReplaySpec(1, 10, scenario="budget_inflation", drift_from_day=0)
    assert [(p.scenario, p.magnitude, p.count) for p in replay_phases(drifted)] == [("budget_inflation", 0.5, 10)]
    with pytest.raises(ValueError, match="unknown drift scenario"):
        ReplaySpec(1, 10, scenario="tsunami")


@pytest.fixture(scope="module")
def larger_plan(params: Params) -> ReplayPlan:
    return _plan(params, 11, requests=300)


def test_the_position_bias_model(larger_plan: ReplayPlan) -> None:
    rank = np.arange(1, 41)
    for eta in (0.0, 0.5, 1.0, 2.0):
        assert examination_probability(rank, eta)[0] == 1.0  # rank 1 is always examined
    np.testing.assert_allclose(examination_probability(np.array([1, 2, 10]), 1.0), [1.0, 0.5, 0.1])
    np.testing.assert_array_equal(examination_probability(rank, 0.0), np.ones(40))  # eta 0: no bias

    top, deep_kept, deep_total = [], 0, 0
    for planned in larger_plan.requests:
        order = list(planned.candidate_ids)
        reported = np.array(reported_outcomes(planned, order, 1.0))
        true = np.array([planned.true_outcome[f] for f in order])
        assert set(np.flatnonzero(reported)) <= set(np.flatnonzero(true))  # only true outcomes, or rejected
        assert reported_outcomes(planned, order, 0.0) == tuple(true)  # eta 0: every true outcome reported
        top.append(reported[0] == true[0])
        deep = true[19:] > REJECTED  # the ones at rank 20 and below with something to report
        deep_kept += int((reported[19:][deep] == true[19:][deep]).sum())
        deep_total += int(deep.sum())
    assert all(top)
    assert deep_total > 100 and deep_kept / deep_total < 0.1  # (1/r) at r >= 20: 0.05 at most, 0.035 or so on average


def test_a_better_ranking_surfaces_more_of_the_true_hires(larger_plan: ReplayPlan) -> None:
    plan = larger_plan

    def hires(best_first: bool) -> int:
        found = 0
        for planned in plan.requests:
            order = sorted(planned.candidate_ids, key=lambda f: planned.true_outcome[f], reverse=best_first)
            found += sum(code >= HIRED for code in reported_outcomes(planned, order, 1.0))
        return found

    assert hires(best_first=True) > 3 * hires(best_first=False)
    served = [serve(p, f"{p.index:032x}", "7", sorted(p.candidate_ids), 1.0) for p in plan.requests]
    [figure] = ndcg_by(served, lambda s: s.model_version).values()
    assert figure.requests == 300 and 0 < figure.graded <= 300 and figure.value is not None
    [true] = ndcg_by(served, lambda s: s.model_version, truth=True).values()
    assert true.graded >= figure.graded  # every candidate examined: at least as many requests have a relevant one


# --- the target ---


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LocalHost"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "10.0.0.1", "192.0.2.1", "example.com", "127.0.0.1.nip.io", "::ffff:127.0.0.1"]
)
def test_other_hosts_are_not(host: str) -> None:
    assert not is_loopback(host)


def test_a_remote_target_is_refused_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    # 192.0.2.0/24 is reserved for documentation: nothing answers there, so a request would hang for its timeout.
    began = time.monotonic()
    assert main(["replay", "--url", "http://192.0.2.1:8000", "--timeout", "30"]) == ExitCode.USAGE
    assert time.monotonic() - began < 2
    error = capsys.readouterr().err
    assert "http://192.0.2.1:8000" in error and "not a loopback address" in error and "--allow-remote" in error
    assert check_target("http://192.0.2.1:8000/", allow_remote=True) == "http://192.0.2.1:8000"
    assert main(["replay", "--url", "not-a-url"]) == ExitCode.USAGE


def test_an_unreachable_server_fails_naming_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    began = time.monotonic()
    assert main(["replay", "--url", url]) == ExitCode.ERROR
    assert time.monotonic() - began < 15
    assert f"cannot reach the server at {url}" in capsys.readouterr().err


# --- against a real server ---


class Server:
    """`gigmatch serve` on a free loopback port, its logs in `tmp`, stopped by its PID."""

    def __init__(self, bundle: Path, tmp: Path, **settings: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outcome_dir = tmp / f"outcomes-{self.port}"
        env = os.environ | settings
        env |= {"GIGMATCH_API_KEY": API_KEY, "GIGMATCH_OUTCOME_LOG_DIR": str(self.outcome_dir)}
        env |= {"GIGMATCH_LOG_DIR": str(tmp / f"logs-{self.port}")}
        args = [GIGMATCH, "serve", "--bundle", str(bundle), "--port", str(self.port)]
        self.process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self) -> Server:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=5):
                    return self
            except (urllib.error.URLError, OSError):
                assert self.process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(bundle_dir, tmp_path_factory.mktemp("replay-server"))
    try:
        yield running.wait_ready()
    finally:
        running.stop()


def _replay(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`gigmatch replay` in a process of its own, as a person runs it."""
    argv = [GIGMATCH, "replay", "--url", url, "--params", str(ROOT / "params.yaml"), *args]
    env = os.environ | {"GIGMATCH_API_KEY": API_KEY}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.xdist_group("replay-server")  # the server started once, for the three
def test_a_replay_drives_the_server_stops_by_itself_and_repeats_from_its_seed(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    short = ["--max-requests", "30", "--rate", "20", "--outcome-delay", "0.5", "--seed", "4", "--jobs-per-day", "10"]
    began = time.monotonic()
    first = _replay(server.url, *short, "--record", str(tmp_path / "first.jsonl"))  # the command, as people run it
    assert first.returncode == ExitCode.OK, first.stdout + first.stderr
    assert time.monotonic() - began < 30  # 1.5 s of requests, 0.5 s more for the last outcomes, the start-up
    monkeypatch.setenv("GIGMATCH_API_KEY", API_KEY)  # the same replay again, in this process
    assert main(["replay", "--url", server.url, *short, "--record", str(tmp_path / "again.jsonl")]) == ExitCode.OK
    assert "every planned request sent (30)" in capsys.readouterr().out
    records, again = _records(tmp_path / "first.jsonl"), _records(tmp_path / "again.jsonl")

    assert len(records) == 30
    assert all(r["status"] == 200 and r["outcomes_status"] == 202 and r["model_version"] == "7" for r in records)
    assert all(sorted(r["served"]) == sorted(r["candidates"]) for r in records)
    assert [{k: r[k] for k in DETERMINED} for r in records] == [{k: r[k] for k in DETERMINED} for r in again]
    assert {r["request_id"] for r in records}.isdisjoint(r["request_id"] for r in again)  # two sets of answers
    outcomes = sum(len(r["served"]) for r in records)
    assert "every planned request sent (30)" in first.stdout
    assert "30 answered, 0 failed" in first.stdout
    assert f"{outcomes:,} accepted, 0 duplicates, 0 dropped, 0 batches failed" in first.stdout
    assert "  version 7: " in first.stdout  # the summary: live NDCG@10 per model version
    assert "live NDCG@10 v7 " in first.stderr  # the progress line

    reported = {
        (r["request_id"], freelancer): outcome
        for r in records + again
        for freelancer, outcome in zip(r["served"], r["outcomes"], strict=True)
    }
    log = _outcome_log(server.outcome_dir, len(reported))
    assert {(row.request_id, row.freelancer_id): row.outcome for row in log.itertuples()} == reported


def _outcome_log(directory: Path, count: int) -> pd.DataFrame:
    """The server's outcome log once it holds `count` outcomes (it writes every 50 ms)."""
    deadline = time.monotonic() + 10
    while len(log := read_outcome_log(directory)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return log


@pytest.mark.slow
@pytest.mark.xdist_group("replay-server")
def test_a_refused_key_fails_before_anything_is_sent(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.url
    for key in (None, "not-the-key"):
        if key is None:
            monkeypatch.delenv("GIGMATCH_API_KEY", raising=False)
        else:
            monkeypatch.setenv("GIGMATCH_API_KEY", key)
        began = time.monotonic()
        assert main(["replay", "--url", url, "--max-requests", "2000", "--rate", "50"]) == ExitCode.ERROR
        assert time.monotonic() - began < 10  # checked first: no plan drawn, nothing sent
        error = capsys.readouterr().err
        assert f"the server at {url} refused the API key (HTTP 401" in error and "set GIGMATCH_API_KEY" in error
        assert "replaying" not in error


@pytest.mark.slow
@pytest.mark.xdist_group("replay-server")
def test_http_errors_are_counted_and_named(server: Server, params: Params) -> None:
    plan = _plan(params, 2, requests=6)
    job = plan.requests[1].payload["job"]
    assert isinstance(job, dict)
    broken = replace(plan.requests[1], payload=plan.requests[1].payload | {"job": job | {"budget_usd": -5.0}})
    plan = replace(plan, requests=(plan.requests[0], broken, *plan.requests[2:]))  # one request the API refuses
    result = run_replay(plan, server.url, API_KEY, Pacing(rate=40, duration=5, outcome_delay=0, timeout=10))
    assert (result.progress.answered, result.progress.failed, result.ok) == (5, 1, False)
    assert result.records[1].status == 422 and result.records[1].served is None
    count, message = result.errors["HTTP 422"]
    assert count == 1 and "job.budget_usd" in message
    assert f"  HTTP 422 x1: {message}" in render_summary(plan, result, None)
    assert result.progress.outcome_batches_failed == 0 and len(result.served) == 5  # the others reported as usual
