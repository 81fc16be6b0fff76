"""Marketplace replay, the HTTP part: send a plan (`gigmatch.monitoring.replay`) to a running server.

Requests leave on a fixed schedule (request i at i / rate seconds, open loop, at most
`_MAX_IN_FLIGHT` at once: a slow server makes the replay lag rather than pile up), until
the plan is sent or `duration` has passed. Each answer's outcomes (the outcome model's)
become due `outcome_delay` seconds after it arrived; every `_OUTCOME_TICK` the due ones
go to /v1/outcomes in one batch (at most the API's 10,000 outcomes each). Once sending
has stopped, the answers in flight are awaited and the outcomes still due are posted at
their time, then the replay ends: at most `duration + outcome_delay` plus two timeouts.

Only loopback targets unless told otherwise: a replay is load, and pointed at a shared
server by mistake it would fill that server's logs with simulated traffic. The host is
judged by its name as written (127.0.0.0/8, ::1, localhost), never resolved.

Stdlib HTTP (urllib) on threads: no dependency the product does not already have, and
at the rates a replay needs (hundreds per second at most) a new loopback connection per
request costs little.
"""

from __future__ import annotations

import heapq
import http.client
import ipaddress
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from gigmatch.errors import ExitCode, GigmatchError
from gigmatch.files import atomic_write_text
from gigmatch.monitoring.replay import NdcgFigure, PlannedRequest, ReplayPlan, ServedRequest, ndcg_by, serve

_MAX_IN_FLIGHT = 32
_OUTCOME_TICK = 0.25  # seconds between two looks at the due outcomes
_MAX_OUTCOMES_PER_BATCH = 10_000  # the API's limit (serving.schemas.MAX_OUTCOMES_PER_REQUEST)
_READY_TIMEOUT = 5.0
_NDCG_K = 10


class RemoteTargetError(GigmatchError):
    """The target is not a loopback address and --allow-remote was not given (or the URL is not one)."""

    exit_code = ExitCode.USAGE


class ReplayError(GigmatchError):
    """The server cannot be reached, is not ready, or refuses the API key."""

    exit_code = ExitCode.ERROR


@dataclass(frozen=True)
class Pacing:
    rate: float  # requests per second
    duration: float  # seconds during which requests may leave
    outcome_delay: float  # seconds from an answer to its outcomes being posted
    timeout: float  # per HTTP call
    progress_every: float = 1.0


@dataclass(frozen=True)
class ReplayProgress:
    """A snapshot of the replay: counts so far and live NDCG@10 per model version."""

    elapsed: float
    planned: int
    sent: int
    answered: int
    failed: int
    outcomes_posted: int
    outcomes_accepted: int
    outcomes_duplicate: int
    outcomes_dropped: int
    outcome_batches: int
    outcome_batches_failed: int
    ndcg: dict[str, NdcgFigure]


@dataclass
class RequestRecord:
    """What became of one planned request: its answer, its outcomes and how they were taken."""

    sent_at: datetime | None = None  # when it left (UTC): the job's posting time in the marketplace's records
    status: int | None = None  # HTTP status; None: no answer (connection error, timeout)
    error: str | None = None
    latency_ms: float | None = None
    served: ServedRequest | None = None
    outcomes_status: int | None = None


@dataclass(frozen=True)
class ReplayResult:
    progress: ReplayProgress
    stop_reason: str
    records: dict[int, RequestRecord]  # by plan index, for the requests sent
    errors: dict[str, tuple[int, str]]  # "HTTP 422", "no answer", ... -> (count, first message)
    served: list[ServedRequest]  # answered, their outcomes taken by the server
    fatal: str | None  # why the replay stopped early: the server refused the API key

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.progress.failed and not self.progress.outcome_batches_failed

    def latency_ms(self) -> dict[str, float] | None:
        """p50 and p99 latency of the answered requests."""
        latencies = [r.latency_ms for r in self.records.values() if r.latency_ms is not None and r.status == 200]
        if not latencies:
            return None
        p50, p99 = np.percentile(latencies, [50, 99])
        return {"p50": round(float(p50), 1), "p99": round(float(p99), 1)}


def check_target(url: str, allow_remote: bool) -> str:
    """The server's base URL (no trailing slash); refuses a non-loopback host unless `allow_remote`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteTargetError(f"--url {url!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:8000")
    if not allow_remote and not is_loopback(parts.hostname):
        raise RemoteTargetError(
            f"refusing to replay against {url}: {parts.hostname} is not a loopback address "
            "(127.0.0.0/8, ::1, localhost); pass --allow-remote to drive another host"
        )
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: not resolved, so not trusted
        return False


def check_server(url: str, api_key: str | None, timeout: float = _READY_TIMEOUT) -> str:
    """The model version a ready server serves, once it takes the key; ReplayError naming the URL otherwise.

    Asked before the plan is drawn or anything is sent: /ready says the server is up with
    a model, /v1/model (behind the API key, as /v1/match is) that the key is the right one.
    """
    headers = {"X-API-Key": api_key} if api_key else {}
    wait = min(timeout, _READY_TIMEOUT)
    status, _, message = _call(f"{url}/ready", None, {}, wait)
    if status is None:
        raise ReplayError(f"cannot reach the server at {url}: {message}")
    if status != 200:
        raise ReplayError(f"the server at {url} is not ready (HTTP {status}): {message}")
    status, body, message = _call(f"{url}/v1/model", None, headers, wait)
    if status in (401, 403):
        raise ReplayError(_refused(url, status, message))
    if status != 200 or not isinstance(body, dict) or "version" not in body:
        raise ReplayError(f"the server at {url} does not say which model it serves (HTTP {status}): {message}")
    return str(body["version"])


def run_replay(
    plan: ReplayPlan,
    url: str,
    api_key: str | None,
    pacing: Pacing,
    on_progress: Callable[[ReplayProgress], None] = lambda _progress: None,
) -> ReplayResult:
    """Send the plan to the server at `url`, post the outcomes, stop by itself (early if the key is refused)."""
    return _Replay(plan, url, api_key, pacing).run(on_progress)


def record_lines(plan: ReplayPlan, result: ReplayResult) -> Iterator[str]:
    """One JSON line per request sent, in plan order: what was asked, what was served, what was reported."""
    for planned in plan.requests:
        record = result.records.get(planned.index)
        if record is None:
            continue
        served = record.served
        yield json.dumps(
            {
                "index": planned.index,
                "day": planned.day,
                "phase": planned.phase,
                "job_id": planned.job_id,
                "candidates": list(planned.candidate_ids),
                "status": record.status,
                "error": record.error,
                "latency_ms": record.latency_ms,
                "request_id": served.request_id if served else None,
                "model_version": served.model_version if served else None,
                "served": list(served.served) if served else None,
                "outcomes": list(served.reported) if served else None,
                "true_outcomes": list(served.true) if served else None,
                "outcomes_status": record.outcomes_status,
            }
        )


def write_record(path: Path, plan: ReplayPlan, result: ReplayResult) -> None:
    atomic_write_text(path, "".join(f"{line}\n" for line in record_lines(plan, result)))


class _Replay:
    """The state one replay shares between its sender, its workers, the outcome poster and the progress line."""

    def __init__(self, plan: ReplayPlan, url: str, api_key: str | None, pacing: Pacing):
        self.plan, self.url, self.pacing = plan, url, pacing
        self.headers = {"content-type": "application/json"} | ({"X-API-Key": api_key} if api_key else {})
        self.lock = threading.Lock()
        self.records: dict[int, RequestRecord] = {}
        self.errors: dict[str, tuple[int, str]] = {}
        self.due: list[tuple[float, int]] = []  # heap of (due time, plan index)
        self.counts = dict.fromkeys(
            ("sent", "answered", "failed", "posted", "accepted", "duplicate", "dropped", "batches", "batches_failed"),
            0,
        )
        self.fatal: str | None = None
        self.sending_done = threading.Event()
        self.finished = threading.Event()
        self.hurry = False  # interrupted: post what is pending now
        self.started = time.monotonic()

    def run(self, on_progress: Callable[[ReplayProgress], None]) -> ReplayResult:
        poster = threading.Thread(target=self._post_outcomes_loop, name="replay-outcomes", daemon=True)
        ticker = threading.Thread(target=self._progress_loop, args=(on_progress,), name="replay-progress", daemon=True)
        poster.start()
        ticker.start()
        try:
            reason = self._send_all()
        except KeyboardInterrupt:
            reason, self.hurry = "interrupted", True
        self.sending_done.set()
        try:
            poster.join()
        except KeyboardInterrupt:
            self.hurry = True
            poster.join()
        self.finished.set()
        ticker.join()
        return self._result(reason)

    def _send_all(self) -> str:
        slots = threading.BoundedSemaphore(_MAX_IN_FLIGHT)
        with ThreadPoolExecutor(_MAX_IN_FLIGHT, thread_name_prefix="replay-send") as workers:
            for planned in self.plan.requests:
                wait = self.started + planned.index / self.pacing.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                left = self.started + self.pacing.duration - time.monotonic()
                if self.fatal is not None:
                    return "the server refused the API key"
                if left <= 0 or not slots.acquire(timeout=left):
                    return f"--duration reached ({self.pacing.duration:g} s)"
                with self.lock:
                    self.counts["sent"] += 1
                workers.submit(self._send, planned, slots, datetime.now(UTC))  # stamped in plan order
        return f"every planned request sent ({len(self.plan.requests)})"

    def _send(self, planned: PlannedRequest, slots: threading.BoundedSemaphore, sent_at: datetime) -> None:
        began = time.monotonic()
        record, message = RequestRecord(sent_at=sent_at), ""
        try:
            body = json.dumps(planned.payload).encode()
            record.status, answer, message = _call(f"{self.url}/v1/match", body, self.headers, self.pacing.timeout)
            record.latency_ms = round((time.monotonic() - began) * 1000, 3)
            if record.status == 200:
                record.served = _served(planned, answer, self.plan.spec.position_bias)
        except (KeyError, TypeError, ValueError) as exc:
            message = f"unexpected answer: {type(exc).__name__}: {exc}"
        except Exception as exc:  # a worker's exception would vanish in its future: count it with the failures
            message = f"replay error: {type(exc).__name__}: {exc}"
        finally:
            self._answered(planned.index, record, message)
            slots.release()

    def _answered(self, index: int, record: RequestRecord, message: str) -> None:
        with self.lock:
            self.records[index] = record
            if record.served is not None:
                self.counts["answered"] += 1
                heapq.heappush(self.due, (time.monotonic() + self.pacing.outcome_delay, index))
                return
            self.counts["failed"] += 1
            record.error = message
            self._count_error(record.status, message)

    def _count_error(self, status: int | None, message: str) -> None:
        """Under the lock: one more error of its kind, its first message kept; a refused key stops the replay."""
        kind = "no answer" if status is None else f"HTTP {status}"
        count, first = self.errors.get(kind, (0, message))
        self.errors[kind] = (count + 1, first)
        if status in (401, 403) and self.fatal is None:
            self.fatal = _refused(self.url, status, message)

    def _post_outcomes_loop(self) -> None:
        while True:
            with self.lock:
                if self.sending_done.is_set() and not self.due:
                    return  # sending stops once every request sent is answered or failed: all posted
                now = time.monotonic()
                ready: list[int] = []
                while self.due and (self.hurry or self.due[0][0] <= now):
                    ready.append(heapq.heappop(self.due)[1])
            if self.fatal is not None:
                ready = []  # the key is refused: posting would only fail again
            for batch in _batches(ready, self.records):
                self._post(batch)
            time.sleep(_OUTCOME_TICK)

    def _post(self, batch: list[int]) -> None:
        outcomes: list[dict[str, object]] = []
        for index in batch:
            served = self.records[index].served
            assert served is not None
            outcomes.extend(
                {"request_id": served.request_id, "freelancer_id": fid, "outcome": code}
                for fid, code in zip(served.served, served.reported, strict=True)
            )
        body = json.dumps({"outcomes": outcomes}).encode()
        status, answer, message = _call(f"{self.url}/v1/outcomes", body, self.headers, self.pacing.timeout)
        with self.lock:
            self.counts["batches"] += 1
            self.counts["posted"] += len(outcomes)
            for index in batch:
                self.records[index].outcomes_status = status
            if status == 202 and isinstance(answer, dict):
                for name in ("accepted", "duplicate", "dropped"):
                    self.counts[name] += int(answer.get("duplicates" if name == "duplicate" else name, 0))
            else:
                self.counts["batches_failed"] += 1
                self._count_error(status, f"/v1/outcomes: {message}")

    def _progress_loop(self, on_progress: Callable[[ReplayProgress], None]) -> None:
        while not self.finished.wait(self.pacing.progress_every):
            on_progress(self.snapshot())

    def snapshot(self) -> ReplayProgress:
        with self.lock:
            counts = dict(self.counts)
            served = self._reported()
        return ReplayProgress(
            elapsed=time.monotonic() - self.started,
            planned=len(self.plan.requests),
            sent=counts["sent"],
            answered=counts["answered"],
            failed=counts["failed"],
            outcomes_posted=counts["posted"],
            outcomes_accepted=counts["accepted"],
            outcomes_duplicate=counts["duplicate"],
            outcomes_dropped=counts["dropped"],
            outcome_batches=counts["batches"],
            outcome_batches_failed=counts["batches_failed"],
            ndcg=ndcg_by(served, lambda s: s.model_version, _NDCG_K),
        )

    def _reported(self) -> list[ServedRequest]:
        """Under the lock: the answered requests whose outcomes the server took, in plan order."""
        return [r.served for _, r in sorted(self.records.items()) if r.served is not None and r.outcomes_status == 202]

    def _result(self, reason: str) -> ReplayResult:
        with self.lock:
            served = self._reported()
        return ReplayResult(self.snapshot(), reason, dict(self.records), dict(self.errors), served, self.fatal)


def _refused(url: str, status: int, message: str) -> str:
    return f"the server at {url} refused the API key (HTTP {status}: {message}); set GIGMATCH_API_KEY to its client key"


def _served(planned: PlannedRequest, answer: object, eta: float) -> ServedRequest:
    """The answer's order (by rank) with the marketplace's outcomes; KeyError/TypeError/ValueError if malformed."""
    if not isinstance(answer, dict):
        raise TypeError("the body is not a JSON object")
    order = [int(c["freelancer_id"]) for c in sorted(answer["candidates"], key=lambda c: int(c["rank"]))]
    return serve(planned, str(answer["request_id"]), str(answer["model_version"]), order, eta)


def _batches(ready: list[int], records: dict[int, RequestRecord]) -> Iterator[list[int]]:
    """Whole requests, in the order they became due, at most the API's outcomes per batch."""
    batch: list[int] = []
    size = 0
    for index in ready:
        served = records[index].served
        assert served is not None
        if batch and size + len(served.served) > _MAX_OUTCOMES_PER_BATCH:
            yield batch
            batch, size = [], 0
        batch.append(index)
        size += len(served.served)
    if batch:
        yield batch


def _call(url: str, body: bytes | None, headers: dict[str, str], timeout: float) -> tuple[int | None, object, str]:
    """(status, parsed JSON body or None, readable message); status None when no answer came."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, _json(answer.read()), ""
    except urllib.error.HTTPError as exc:
        content = _json(exc.read())
        detail = (content.get("message") or content.get("detail")) if isinstance(content, dict) else None
        return exc.code, content, str(detail or exc.reason)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return None, None, f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return None
