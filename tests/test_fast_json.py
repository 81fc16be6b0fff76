"""FastJSONRoute against FastAPI's plain route: the same status and the same answer for every body.

The fast route validates a body from its bytes in one pass through pydantic-core;
the plain one parses it with the standard library and validates the objects. A
few hundred bodies (valid requests, and invalid ones of every kind: fields
missing, mistyped, out of range, unknown, repeated; broken JSON; other content
types) go to two apps that differ only in the match route's class.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from gigmatch.data.snapshot import read_tables
from serving.fast_json import FastJSONRoute
from serving.main import create_app
from serving.routers.match import match_router
from serving.settings import ServingSettings
from tests.conftest import request_for

JSON = {"content-type": "application/json"}
Body = tuple[str, bytes, dict[str, str]]  # a name for the failure message, the bytes, the headers


def _app(tmp_path: Path, bundle: Path, route_class: type[APIRoute]) -> FastAPI:
    logs = tmp_path / route_class.__name__
    app = create_app(
        ServingSettings(bundle_path=bundle, log_dir=logs, outcome_log_dir=logs / "outcomes", max_candidates=60)
    )
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != "/v1/match"]
    app.include_router(match_router(route_class))
    return app


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path) -> Iterator[tuple[TestClient, TestClient]]:
    tmp = tmp_path_factory.mktemp("fast-json")
    with TestClient(_app(tmp, bundle_dir, FastJSONRoute)) as fast, TestClient(_app(tmp, bundle_dir, APIRoute)) as plain:
        yield fast, plain


def _encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


def _bodies(requests: list[dict[str, Any]]) -> list[Body]:
    rng = random.Random(13)
    bodies: list[Body] = []
    for i, payload in enumerate(requests):
        top_k = rng.choice([None, 1, 5, 10_000])
        bodies.append((f"valid {i}", _encode({**payload, **({"top_k": top_k} if top_k else {})}), JSON))

    base = requests[0]
    job_fields, candidate_fields = list(base["job"]), list(base["candidates"][0])
    wrong_values = [None, "x", 5, -1e9, 1e12, 2**70, True, 3.5, [], {}, [["a"]], ""]

    def variant(name: str, change: Any) -> None:
        payload = copy.deepcopy(base)
        change(payload)
        bodies.append((name, _encode(payload), JSON))

    for field in job_fields:
        variant(f"job without {field}", lambda p, f=field: p["job"].pop(f))
        for value in rng.sample(wrong_values, 8):
            variant(f"job.{field}={value!r}", lambda p, f=field, v=value: p["job"].__setitem__(f, v))
    for field in candidate_fields:
        variant(f"candidate without {field}", lambda p, f=field: p["candidates"][0].pop(f))
        for value in rng.sample(wrong_values, 8):
            variant(f"candidate.{field}={value!r}", lambda p, f=field, v=value: p["candidates"][1].__setitem__(f, v))
    for name, change in {
        "extra top-level field": lambda p: p.__setitem__("extra", 1),
        "extra job field": lambda p: p["job"].__setitem__("colour", "blue"),
        "extra candidate field": lambda p: p["candidates"][0].__setitem__("age", 30),
        "unknown category": lambda p: p["job"].__setitem__("category", "astronomy"),
        "unknown skill": lambda p: p["job"]["required_skills"].append("time_travel"),
        "a skill twice": lambda p: p["candidates"][0]["skills"].append(p["candidates"][0]["skills"][0]),
        "unknown region": lambda p: p["candidates"][0].__setitem__("region", "mars"),
        "a candidate twice": lambda p: p["candidates"].append(p["candidates"][0]),
        "no candidates": lambda p: p.__setitem__("candidates", []),
        "candidates not a list": lambda p: p.__setitem__("candidates", {"0": p["candidates"][0]}),
        "too many candidates": lambda p: p.__setitem__("candidates", [
            {**p["candidates"][0], "freelancer_id": 10_000 + i} for i in range(61)
        ]),
        "top_k 0": lambda p: p.__setitem__("top_k", 0),
        "top_k as text": lambda p: p.__setitem__("top_k", "3"),
        "blank description": lambda p: p["job"].__setitem__("description", "   "),
        "long description": lambda p: p["job"].__setitem__("description", "word " * 1200),
        "rate as text": lambda p: p["candidates"][0].__setitem__("hourly_rate_usd", "55"),
        "jobs completed as a whole float": lambda p: p["candidates"][0].__setitem__("jobs_completed", 3.0),
        "budget as an integer": lambda p: p["job"].__setitem__("budget_usd", 60),
        "zero rate": lambda p: p["candidates"][0].__setitem__("hourly_rate_usd", 0.0),
        "empty skills": lambda p: p["job"].__setitem__("required_skills", []),
        "job is null": lambda p: p.__setitem__("job", None),
    }.items():  # fmt: skip
        variant(name, change)

    valid = _encode(base)
    for name, raw in {
        "truncated JSON": valid[: len(valid) // 2],
        "trailing garbage": valid + b" }",
        "NaN literal": re.sub(rb'"budget_usd": [0-9.]+', b'"budget_usd": NaN', valid, count=1),
        "Infinity literal": re.sub(rb'"budget_usd": [0-9.]+', b'"budget_usd": -Infinity', valid, count=1),
        "a list": b"[1, 2, 3]",
        "a string": b'"match me"',
        "a number": b"42",
        "null": b"null",
        "whitespace": b"   \n",
        "not UTF-8": b'{"job": "\xff\xfe"}',
        "byte order mark": b"\xef\xbb\xbf" + valid,
        "single quotes": valid.replace(b'"', b"'"),
        "duplicate key": valid[:-1] + b', "top_k": 2, "top_k": 3}',
        "deeply nested": b"[" * 5000 + b"]" * 5000,
    }.items():
        bodies.append((name, raw, JSON))
    bodies.append(("empty body", b"", JSON))
    for content_type in ("text/plain", "application/json; charset=utf-8", "application/problem+json",
                         "application/x-www-form-urlencoded", "application/jsonx", "APPLICATION/JSON"):  # fmt: skip
        bodies.append((f"content type {content_type}", valid, {"content-type": content_type}))
    bodies.append(("no content type", valid, {}))
    return bodies


@pytest.fixture(scope="module")
def bodies(training_snapshot: Path) -> list[Body]:
    frames: dict[str, pd.DataFrame] = read_tables(training_snapshot)
    requests = []
    for job_id in frames["jobs"]["job_id"].iloc[-40:]:
        job, candidates = request_for(int(job_id), frames)
        requests.append({"job": job, "candidates": candidates[:60]})
    return _bodies(requests)


def _answer(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, object]:
    """The status and the answer, less its request_id (each answer has its own)."""
    response = client.post("/v1/match", content=body, headers=headers)
    try:
        answer = response.json()
    except ValueError:
        return response.status_code, response.text
    if response.status_code == 200:
        assert re.fullmatch("[0-9a-f]{32}", answer.pop("request_id"))
    return response.status_code, answer


def test_the_fast_route_answers_as_fastapis_own(clients: tuple[TestClient, TestClient], bodies: list[Body]) -> None:
    fast, plain = clients
    assert len(bodies) > 250
    statuses = []
    for name, body, headers in bodies:
        answer = _answer(fast, body, headers)
        assert answer == _answer(plain, body, headers), name
        statuses.append(answer[0])
        if name in ("NaN literal", "Infinity literal"):  # parsed by both, refused by the model: not finite
            assert answer[0] == 422 and "job.budget_usd" in str(answer[1]), answer
    # Both kinds are exercised: answers, and refusals of many kinds.
    assert statuses.count(200) >= 40 and statuses.count(422) >= 150, sorted(set(statuses))
