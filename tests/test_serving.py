"""The API's contract: every endpoint, bad input, bad bundles, keys, limits, logs and hot reload."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

from devtools.ports import free_port
from gigmatch.data.snapshot import read_tables
from gigmatch.features.match_frame import match_frame_from_table
from gigmatch.model.bundle import load_bundle
from gigmatch.monitoring.prediction_log import spread_records
from serving.main import create_app
from serving.schemas import MatchResponse
from serving.settings import ServingSettings
from tests.conftest import rank_alone, request_for


@pytest.fixture(scope="module")
def frames(training_snapshot: Path) -> dict[str, pd.DataFrame]:
    return read_tables(training_snapshot)


@pytest.fixture(scope="module")
def payload(frames: dict[str, pd.DataFrame]) -> dict:
    job_id = int(frames["jobs"]["job_id"].iloc[-3])
    job, candidates = request_for(job_id, frames)
    return {"job": job, "candidates": candidates}


ADMIN_KEY = "admin-s3cret"
CLIENT_KEY = "s3cret"
AS_ADMIN = {"X-Admin-Key": ADMIN_KEY}


def _client(tmp_path: Path, bundle: Path, **settings: object) -> TestClient:
    config = ServingSettings(
        bundle_path=bundle,
        log_dir=tmp_path / "logs",
        outcome_log_dir=tmp_path / "outcomes",
        **settings,  # type: ignore[arg-type]
    )
    return TestClient(create_app(config))


@pytest.fixture
def client(tmp_path: Path, bundle_dir: Path) -> Iterator[TestClient]:
    with _client(tmp_path, bundle_dir) as test_client:
        yield test_client


def test_health_ready_and_model(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "detail": None, "model_version": None}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["model_version"] == "7"
    lineage = client.get("/v1/model").json()
    assert lineage["model_name"] == "gigmatch-ranker" and lineage["version"] == "7"
    assert {"run_id", "data_md5", "git_commit", "test_metrics"} <= set(lineage)


def test_match_ranks_with_scores_and_reasons(client: TestClient, payload: dict, bundle_dir: Path) -> None:
    response = client.post("/v1/match", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    MatchResponse.model_validate(body)  # the documented response model holds
    assert re.fullmatch("[0-9a-f]{32}", body["request_id"])
    assert body["job_id"] == payload["job"]["job_id"] and body["model_version"] == "7"
    ranked = body["candidates"]
    assert [c["rank"] for c in ranked] == list(range(1, len(payload["candidates"]) + 1))
    scores = [c["match_score"] for c in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert {c["freelancer_id"] for c in ranked} == {c["freelancer_id"] for c in payload["candidates"]}
    for candidate in ranked:
        assert len(candidate["reasons"]) == 3
        effects = [abs(r["effect"]) for r in candidate["reasons"]]
        assert effects == sorted(effects, reverse=True) and all(r["label"] for r in candidate["reasons"])
    # The API ranks exactly as the model does on the same rows, built as batch scoring builds them.
    table = pd.DataFrame([{**payload["job"], **candidate} for candidate in payload["candidates"]])
    direct = rank_alone(load_bundle(bundle_dir).model, match_frame_from_table(table), n_reasons=0)
    assert [c["freelancer_id"] for c in ranked] == [c["freelancer_id"] for c in direct.ranked()]


def test_top_k_cuts_the_list(client: TestClient, payload: dict) -> None:
    body = client.post("/v1/match", json={**payload, "top_k": 3}).json()
    assert [c["rank"] for c in body["candidates"]] == [1, 2, 3]


def test_whole_numbers_are_fine_for_float_fields(client: TestClient, payload: dict) -> None:
    job = {**payload["job"], "budget_usd": 60, "client_utc_offset": -5}
    assert client.post("/v1/match", json={**payload, "job": job}).status_code == 200


def _with_candidate(payload: dict, **changes: object) -> dict:
    return {**payload, "candidates": [{**payload["candidates"][0], **changes}, *payload["candidates"][1:]]}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda p: {**p, "surprise": 1}, "surprise: Extra inputs are not permitted"),
        (lambda p: _with_candidate(p, skills=["time_travel"]), "candidates.0.skills.0"),
        (
            lambda p: _with_candidate(p, skills=["python", "python"]),
            "candidates.0.skills: Value error, lists a skill twice",
        ),
        (lambda p: _with_candidate(p, rating=7.5), "candidates.0.rating"),
        (lambda p: _with_candidate(p, hourly_rate_usd=-5.0), "candidates.0.hourly_rate_usd"),
        (lambda p: _with_candidate(p, profile_text="   "), "candidates.0.profile_text"),
        (lambda p: _with_candidate(p, jobs_completed="3"), "candidates.0.jobs_completed"),
        (lambda p: {**p, "candidates": []}, "candidates: List should have at least 1 item"),
        (lambda p: {**p, "candidates": p["candidates"][:1] * 2}, "freelancer_id twice"),
        (
            lambda p: {**p, "job": {k: v for k, v in p["job"].items() if k != "category"}},
            "job.category: Field required",
        ),
        (lambda p: {**p, "job": {**p["job"], "budget_usd": "a lot"}}, "job.budget_usd"),
        (lambda p: {**p, "top_k": 0}, "top_k"),
    ],
)
def test_invalid_requests_get_422_naming_the_problem(client: TestClient, payload: dict, change, where: str) -> None:
    response = client.post("/v1/match", json=change(payload))
    assert response.status_code == 422, response.text
    assert where in response.json()["message"]


def test_malformed_json_and_wrong_content_type_get_422(client: TestClient, payload: dict) -> None:
    malformed = client.post("/v1/match", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and malformed.json()["message"].startswith("body: Invalid JSON")
    assert (
        client.post("/v1/match", content=json.dumps(payload), headers={"content-type": "text/plain"}).status_code == 422
    )


def test_candidate_limit_and_body_limit(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    with _client(tmp_path, bundle_dir, max_candidates=3, max_body_bytes=20_000) as small:
        response = small.post("/v1/match", json={**payload, "candidates": payload["candidates"][:4]})
        assert response.status_code == 422 and "at most 3 candidates" in response.text
        huge = {**payload, "job": {**payload["job"], "description": "x" * 30_000}}
        assert small.post("/v1/match", json=huge).status_code == 413


def test_api_key(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    with _client(tmp_path, bundle_dir, api_key=CLIENT_KEY) as keyed:
        assert keyed.post("/v1/match", json=payload).status_code == 401
        assert keyed.post("/v1/match", json=payload, headers={"X-API-Key": "wrong"}).status_code == 401
        assert keyed.post("/v1/match", json=payload, headers={"X-API-Key": CLIENT_KEY}).status_code == 200
        assert keyed.get("/v1/model").status_code == 401
        assert keyed.get("/health").status_code == 200 and keyed.get("/ready").status_code == 200


def test_admin_routes_are_off_without_an_admin_key(tmp_path: Path, bundle_dir: Path) -> None:
    with _client(tmp_path, bundle_dir, api_key=CLIENT_KEY) as live:
        for headers in ({}, {"X-Admin-Key": "anything"}, {"X-API-Key": CLIENT_KEY}):
            refused = live.post("/v1/admin/reload", headers=headers)
            assert refused.status_code == 403, refused.text
            assert "set GIGMATCH_ADMIN_KEY on the server and send it in X-Admin-Key" in refused.json()["detail"]


def test_admin_routes_take_the_admin_key_and_only_it(tmp_path: Path, bundle_dir: Path) -> None:
    with _client(tmp_path, bundle_dir, api_key=CLIENT_KEY, admin_key=ADMIN_KEY) as live:
        for headers in (
            {},
            {"X-Admin-Key": "wrong"},
            {"X-Admin-Key": CLIENT_KEY},  # the client key opens no admin route, in either header
            {"X-API-Key": CLIENT_KEY},
            {"X-API-Key": ADMIN_KEY},
        ):
            refused = live.post("/v1/admin/reload", headers=headers)
            assert refused.status_code == 401 and "X-Admin-Key" in refused.json()["detail"], headers
        reloaded = live.post("/v1/admin/reload", headers=AS_ADMIN)  # the admin key alone is enough
        assert reloaded.status_code == 200 and reloaded.json()["model_version"] == "7"
        assert live.get("/v1/model", headers=AS_ADMIN).status_code == 401  # and it is no client key
    with pytest.raises(ValueError, match="must differ from GIGMATCH_API_KEY"):
        ServingSettings(api_key=CLIENT_KEY, admin_key=CLIENT_KEY)


@pytest.mark.parametrize("damage", ["missing", "corrupt model", "no lineage", "foreign type"])
def test_bad_bundle_keeps_the_process_up_and_not_ready(
    tmp_path: Path, bundle_dir: Path, payload: dict, damage: str
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    if damage == "missing":
        shutil.rmtree(bundle)
    elif damage == "corrupt model":
        (bundle / "model" / "model.skops").write_bytes(b"\x00garbage")
    elif damage == "no lineage":
        (bundle / "lineage.json").unlink()
    else:
        import skops.io as sio

        sio.dump({"payload": __import__("collections").Counter()}, bundle / "model" / "model.skops")
    with _client(tmp_path, bundle) as broken:
        assert broken.get("/health").status_code == 200
        ready = broken.get("/ready")
        assert ready.status_code == 503 and ready.json()["detail"]
        assert broken.post("/v1/match", json=payload).status_code == 503


def test_reload_swaps_and_a_bad_bundle_is_refused(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    with _client(tmp_path, bundle, admin_key=ADMIN_KEY) as live:
        lineage = json.loads((bundle / "lineage.json").read_text())
        (bundle / "lineage.json").write_text(json.dumps({**lineage, "version": "8"}))
        assert live.post("/v1/admin/reload", headers=AS_ADMIN).json()["model_version"] == "8"
        assert live.post("/v1/match", json=payload).json()["model_version"] == "8"
        (bundle / "model" / "model.skops").write_bytes(b"broken")
        refused = live.post("/v1/admin/reload", headers=AS_ADMIN)
        assert refused.status_code == 409 and "still serving version 8" in refused.text
        assert live.post("/v1/match", json=payload).json()["model_version"] == "8"
        assert live.get("/ready").json()["model_version"] == "8"


def test_prediction_log_and_metrics(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    with _client(tmp_path, bundle_dir) as live:
        request_ids = [live.post("/v1/match", json=payload).json()["request_id"] for _ in range(3)]
        metrics = live.get("/metrics").text
    assert 'gigmatch_requests_total{route="/v1/match",status="200"} 3.0' in metrics
    assert 'gigmatch_model_info{model_name="gigmatch-ranker",version="7"} 1.0' in metrics
    records = [json.loads(line) for f in (tmp_path / "logs").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert len(records) == 3
    # Each answer's request_id is its log line's: outcomes reported with it join the line.
    assert [r["request_id"] for r in records] == request_ids and len(set(request_ids)) == 3
    rows = spread_records(records)  # one row per candidate
    assert len(rows["freelancer_id"]) == 3 * len(payload["candidates"])
    assert {"match_score", "model_version", "skill_coverage", "region", "logged_at"} <= set(rows)
    assert rows["freelancer_id"][0] == payload["candidates"][0]["freelancer_id"]
    assert isinstance(rows["skill_coverage"][0], float) and rows["job_id"][0] == payload["job"]["job_id"]


def test_unwritable_log_never_fails_a_request(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory should be")
    config = ServingSettings(bundle_path=bundle_dir, log_dir=blocker / "logs")
    with TestClient(create_app(config)) as live:
        assert live.post("/v1/match", json=payload).status_code == 200
        dropped = "gigmatch_prediction_log_dropped_total 1.0"
        deadline = time.monotonic() + 5
        while dropped not in live.get("/metrics").text and time.monotonic() < deadline:
            time.sleep(0.05)  # the writer tries every GIGMATCH_LOG_FLUSH_SECONDS
        assert dropped in live.get("/metrics").text


def test_hot_swap_under_load_loses_no_request(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    """A real uvicorn on loopback: requests from 6 threads while the bundle is swapped 6 times."""
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    port = free_port()
    config = ServingSettings(bundle_path=bundle, log_dir=tmp_path / "logs", admin_key=ADMIN_KEY)
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            while not stop.is_set():
                response = http.post("/v1/match", json=payload)
                statuses.append(response.status_code)
                versions.add(response.json().get("model_version", "?"))

    workers = [threading.Thread(target=hammer) for _ in range(6)]
    for worker in workers:
        worker.start()
    lineage = json.loads((bundle / "lineage.json").read_text())
    with httpx.Client(base_url=base, timeout=30, headers=AS_ADMIN) as admin:
        for version in range(8, 14):
            (bundle / "lineage.json").write_text(json.dumps({**lineage, "version": str(version)}))
            assert admin.post("/v1/admin/reload").status_code == 200
            time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.join()
    server.should_exit = True
    thread.join(10)
    assert len(statuses) > 20 and set(statuses) == {200}
    assert versions <= {str(v) for v in range(7, 14)} and "13" in versions


@pytest.mark.slow
def test_sighup_reloads_and_a_bad_bundle_keeps_the_old_one(tmp_path: Path, bundle_dir: Path, payload: dict) -> None:
    """SIGHUP (no key: the OS authenticates a local signal) reloads a real uvicorn process, off its event loop."""
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIGMATCH_")},
        "GIGMATCH_BUNDLE_PATH": str(bundle),
        "GIGMATCH_LOG_DIR": str(tmp_path / "logs"),
        "GIGMATCH_OUTCOME_LOG_DIR": str(tmp_path / "outcomes"),
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "serving.main:create_app", "--port", str(port),
               "--log-level", "warning"]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"

    def version_becomes(expected: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=2).json().get("model_version") == expected:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    try:
        assert version_becomes("7", 90), "the server never became ready"
        lineage = json.loads((bundle / "lineage.json").read_text())
        (bundle / "lineage.json").write_text(json.dumps({**lineage, "version": "8"}))
        server.send_signal(signal.SIGHUP)
        assert version_becomes("8", 30)
        (bundle / "model" / "model.skops").write_bytes(b"broken")
        server.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        answer = httpx.post(f"{base}/v1/match", json=payload, timeout=10)
        assert answer.status_code == 200 and answer.json()["model_version"] == "8"
        assert server.poll() is None
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "bundle not loaded" in errors.decode()  # the refused bundle is logged, and the process stays up


def test_batch_scoring_ranks_like_the_api(tmp_path: Path, bundle_dir: Path, frames: dict, client: TestClient) -> None:
    from gigmatch.cli import main
    from gigmatch.features.match_frame import build_match_frame

    apps = frames["applications"]
    table = build_match_frame(apps, frames["jobs"], frames["freelancers"])
    for column in ("required_skills", "skills"):
        table[column] = table[column].str.split()  # as a client's file would hold them: lists
    table.to_parquet(tmp_path / "input.parquet")

    assert (
        main(["score", str(tmp_path / "input.parquet"), str(tmp_path / "out.parquet"), "--bundle", str(bundle_dir)])
        == 0
    )

    ranked = pd.read_parquet(tmp_path / "out.parquet")
    assert len(ranked) == len(apps) and set(ranked["model_version"]) == {"7"}
    sizes = ranked.groupby("job_id")["rank"].agg(["min", "max", "size"])
    assert (sizes["min"] == 1).all() and (sizes["max"] == sizes["size"]).all()
    job_id = int(frames["jobs"]["job_id"].iloc[-3])
    job, candidates = request_for(job_id, frames)
    api = client.post("/v1/match", json={"job": job, "candidates": candidates}).json()["candidates"]
    batch = ranked[ranked["job_id"] == job_id].sort_values("rank")
    assert batch["freelancer_id"].tolist() == [c["freelancer_id"] for c in api]
    assert batch["match_score"].to_numpy() == pytest.approx([c["match_score"] for c in api])


def test_batch_scoring_refuses_bad_input(tmp_path: Path, bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gigmatch.cli import ExitCode, main

    pd.DataFrame({"job_id": [1]}).to_parquet(tmp_path / "thin.parquet")
    out = tmp_path / "out.parquet"
    assert (
        main(["score", str(tmp_path / "thin.parquet"), str(out), "--bundle", str(bundle_dir)])
        == ExitCode.CONTRACT_BROKEN
    )
    assert "input lacks the match columns" in capsys.readouterr().err and not out.exists()
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    assert (
        main(["score", str(tmp_path / "junk.parquet"), str(out), "--bundle", str(bundle_dir)])
        == ExitCode.CONTRACT_BROKEN
    )
    assert (
        main(["score", str(tmp_path / "thin.parquet"), str(out), "--bundle", str(tmp_path / "none")]) == ExitCode.ERROR
    )


def test_the_libraries_are_frozen_and_a_reload_frees_the_old_model(tmp_path: Path, bundle_dir: Path) -> None:
    """Start-up freezes the libraries, not the model (full collections skip them: no p99 pauses, and a
    reload needs no collection); nothing keeps a replaced model alive, nor its feature lookups."""
    import gc
    import weakref

    from gigmatch.features.lookups import lookups_for
    from gigmatch.model.pipeline import features_of

    switch_interval = sys.getswitchinterval()
    with _client(tmp_path, bundle_dir, admin_key=ADMIN_KEY) as live:
        assert gc.get_freeze_count() > 100_000
        store = live.app.state.serving.store  # type: ignore[attr-defined]
        first = store.current
        tracked = {id(o) for o in gc.get_objects()}  # the collector's generations: what is not frozen
        assert id(first.model) in tracked and id(lookups_for(features_of(first.model))) in tracked
        old_model, old_lookups = weakref.ref(first.model), weakref.ref(lookups_for(features_of(first.model)))
        del first, tracked
        assert live.post("/v1/admin/reload", headers=AS_ADMIN).status_code == 200
        gc.collect()  # the lookups hold reference cycles: the collector frees them, as it would on its own
        assert old_model() is None and old_lookups() is None
        assert sys.getswitchinterval() == switch_interval  # shortened only while a bundle loads
    assert gc.get_freeze_count() == 0  # the app's shutdown unfreezes


def test_concurrent_requests_are_ranked_together_and_answered_as_alone(
    tmp_path: Path, bundle_dir: Path, frames: dict[str, pd.DataFrame], batch_sizes: list[int]
) -> None:
    """Requests in flight at once share one pass through the model; each gets what it gets alone."""
    import asyncio

    job_ids = frames["jobs"]["job_id"].iloc[[-3, -4, -5, -6, -7, -8]]
    bodies = [dict(zip(("job", "candidates"), request_for(int(j), frames), strict=True)) for j in job_ids]
    bodies.append({**bodies[0], "top_k": 2})  # the same job twice in one batch
    app = create_app(ServingSettings(bundle_path=bundle_dir, log_dir=tmp_path / "logs"))

    async def ask() -> tuple[list[dict], list[dict]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gigmatch") as http:
                together = await asyncio.gather(*(http.post("/v1/match", json=body) for body in bodies))
                alone = [await http.post("/v1/match", json=body) for body in bodies]
        return [r.json() for r in together], [r.json() for r in alone]

    together, alone = asyncio.run(ask())
    request_ids = {answer.pop("request_id") for answer in together + alone}
    assert len(request_ids) == 2 * len(bodies)  # each answer its own
    assert together == alone and len(together[-1]["candidates"]) == 2
    assert batch_sizes[0] == len(bodies) and batch_sizes[1:] == [1] * len(bodies)


def test_log_writer_writes_every_line_in_order_and_counts_what_it_drops(tmp_path: Path) -> None:
    import numpy as np

    from gigmatch.monitoring.prediction_log import log_file_name
    from serving.log_writer import LogWriter

    dropped: list[int] = []
    log = LogWriter(tmp_path / "logs", log_file_name, capacity=3000, on_drop=dropped.append)
    for n in range(2500):  # more lines than one vectored write takes (1024)
        assert log.append({"n": n, "match_score": np.array([0.25, n / 7])})
    assert not log.append({"n": -1, "not_json": object()})  # will not serialise: dropped, counted
    log.flush()
    [written] = (tmp_path / "logs").glob("*.jsonl")
    assert written.name == log_file_name(datetime.now(UTC))  # the day's file, named by the format's function
    lines = [json.loads(line) for line in written.read_text().splitlines()]
    assert [line["n"] for line in lines] == list(range(2500))
    assert lines[7]["match_score"] == [0.25, 1.0]
    assert dropped == [1]
    full = LogWriter(tmp_path / "full", log_file_name, capacity=2, on_drop=dropped.append)
    assert [full.append({"n": n}) for n in range(5)] == [True, True, False, False, False]
    assert dropped == [1, 1, 1, 1]
