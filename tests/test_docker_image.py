"""The serving image built and run for real, on a private Docker engine and without an image registry.

A dockerd of the test's own (its data, state and socket under a temporary directory) builds
serving/Dockerfile from a debootstrapped Debian base (cached across runs) and wheels downloaded on the
host, with an exported bundle in the build context; the container runs on the host network at a free
loopback port, the image's own HEALTHCHECK must report it healthy, /v1/match must answer as the bundle
ranks in process, and the server must run as uid 10001. Then the container and the engine are stopped
by PID and no process of theirs may be left. An engine that cannot start fails the test, loudly.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from devtools.docker_image import (
    BaseTarball,
    Engine,
    EngineError,
    apt_mirror,
    build_base,
    build_context,
    download_wheels,
    manylinux_platforms,
    mounts_under,
    processes_of,
    start_engine,
    tail,
)
from devtools.ports import free_port
from gigmatch.data.snapshot import read_tables
from gigmatch.model.bundle import load_bundle
from tests.conftest import match_columns_of, rank_alone, request_for

IMAGE = "gigmatch-api:under-test"
CONTAINER = "gigmatch-api-under-test"
API_KEY = "docker-test-client-key"
IMAGE_UID = "10001"
HEALTHY_WITHIN_S = 240  # the machine is shared: a cold Python start in the container can be slow


def _start(root: Path) -> Engine:
    try:
        return start_engine(root)
    except EngineError as exc:
        reason = str(exc)
    shutil.rmtree(root, ignore_errors=True)
    pytest.fail(
        "THE DOCKER ENGINE CANNOT START ON THIS MACHINE: the serving image was neither built nor run, "
        f"so nothing about it is known.\n{reason}",
        pytrace=False,
    )


def _inspect(engine: Engine, what: str) -> Any:
    return json.loads(engine.docker("inspect", "--format", "{{json .}}", what).stdout)


def _run_command(engine: Engine, port: int) -> list[str]:
    """`docker run` of the image on the host network at `port` on loopback, with the image's own start and
    health commands: only their port (and the bind address) changed, and the health check every second."""
    config = _inspect(engine, IMAGE)["Config"]
    command = list(config["Cmd"])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    health = config["Healthcheck"]["Test"]
    assert health[0] == "CMD" and "127.0.0.1:8000/" in " ".join(health), health
    health_cmd = shlex.join(part.replace("127.0.0.1:8000/", f"127.0.0.1:{port}/") for part in health[1:])
    return [
        "run", "--detach", "--name", CONTAINER, "--network", "host", "--env", f"GIGMATCH_API_KEY={API_KEY}",
        "--health-cmd", health_cmd, "--health-interval", "1s", IMAGE, *command,
    ]  # fmt: skip


def _wait_healthy(engine: Engine) -> float:
    started = time.monotonic()
    while time.monotonic() - started < HEALTHY_WITHIN_S:
        state = _inspect(engine, CONTAINER)["State"]
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            return time.monotonic() - started
        if state["Status"] != "running" or health == "unhealthy":
            break
        time.sleep(0.5)
    logs = engine.docker("logs", "--tail", "40", CONTAINER, check=False)
    checks = [entry.get("Output", "") for entry in (state.get("Health") or {}).get("Log", [])][-3:]
    pytest.fail(
        f"the container never became healthy (status {state['Status']}, health {health}, "
        f"after {time.monotonic() - started:.0f} s)\nhealth checks: {checks}\nlogs:\n{logs.stdout}{logs.stderr}"
    )


def _uid_of(pid: int) -> str:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Uid:"))
    return ",".join(sorted(set(line.split()[1:])))


@pytest.mark.docker
@pytest.mark.slow
def test_the_serving_image_builds_from_a_local_base_runs_healthy_and_matches_as_uid_10001(
    tmp_path: Path, bundle_dir: Path, training_snapshot: Path, record_property: pytest.RecordProperty
) -> None:
    figures: dict[str, float] = {}
    root = Path(tempfile.mkdtemp(prefix="gm-docker-"))  # short: the engine's unix sockets live under it
    engine = _start(root)
    figures["engine_start_s"] = engine.seconds_to_start
    record_property("builder", engine.builder)
    stopped = False
    try:
        base: BaseTarball = build_base()
        figures["base_warm_s" if base.cached else "base_cold_s"] = base.seconds
        started = time.monotonic()
        engine.import_base(base)
        figures["base_import_s"] = time.monotonic() - started

        context = build_context(tmp_path / "context", bundle_dir)
        started = time.monotonic()
        wheels = download_wheels(context / "wheels")
        figures["wheels_download_s"] = time.monotonic() - started
        figures["wheels_mb"] = sum(w.stat().st_size for w in wheels) / 1e6

        started = time.monotonic()
        engine.build_image(context, IMAGE, base.tag)  # DockerImageError with the build's output if it fails
        figures["image_build_s"] = time.monotonic() - started
        figures["image_mb"] = _inspect(engine, IMAGE)["Size"] / 1e6
        assert _inspect(engine, IMAGE)["Config"]["User"].split(":")[0] == IMAGE_UID

        port = free_port()
        engine.docker(*_run_command(engine, port))
        figures["healthy_s"] = _wait_healthy(engine)
        engine.processes()  # remember the container's processes: they must be gone at the end

        base_url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base_url}/ready", timeout=5).status_code == 200
        frames: dict[str, pd.DataFrame] = read_tables(training_snapshot)
        job, candidates = request_for(int(frames["jobs"]["job_id"].iloc[0]), frames)
        payload = {"job": job, "candidates": candidates}
        refused = httpx.post(f"{base_url}/v1/match", json=payload, timeout=30)
        assert refused.status_code == 401, "GIGMATCH_API_KEY reached the container"
        answer = httpx.post(f"{base_url}/v1/match", json=payload, headers={"X-API-Key": API_KEY}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["job_id"], body["model_version"]) == (job["job_id"], "7")
        ranking: Any = rank_alone(load_bundle(bundle_dir).model, match_columns_of([(job, candidates)]))
        expected = ranking.freelancer_ids[ranking.order].tolist()
        assert [c["freelancer_id"] for c in body["candidates"]] == expected
        assert [c["match_score"] for c in body["candidates"]] == pytest.approx(
            ranking.scores[ranking.order].tolist(), rel=1e-6
        )

        # The server and any command run in the container are uid 10001, not root.
        assert engine.docker("exec", CONTAINER, "id", "-u").stdout.strip() == IMAGE_UID
        server_pid = int(_inspect(engine, CONTAINER)["State"]["Pid"])
        assert _uid_of(server_pid) == IMAGE_UID, Path(f"/proc/{server_pid}/cmdline").read_text()

        engine.docker("stop", "--time", "20", CONTAINER, timeout=60)
        engine.docker("rm", CONTAINER)
        engine.processes()
        seen = set(engine.seen)
        assert {engine.pid, server_pid} <= {p.pid for p in seen}, "the engine's processes are all tracked"
        killed = engine.stop()
        stopped = True
        assert engine.process.returncode == 0, f"dockerd exited with {engine.process.returncode}:\n{tail(engine.log)}"
        assert not killed, f"left running after dockerd stopped, then killed: {killed}"
        assert not [p for p in seen if p.alive()], "a process of the engine or the container is still running"
        assert not processes_of(root)
        assert not mounts_under(root), mounts_under(root)
    finally:
        if not stopped:
            engine.docker("rm", "--force", CONTAINER, check=False)
            engine.stop()
        for name, value in figures.items():
            record_property(name, round(value, 1))
        print(
            f"docker image figures ({engine.builder} builder): " + ", ".join(f"{k}={v:.1f}" for k, v in figures.items())
        )
        shutil.rmtree(root, ignore_errors=True)


def test_an_engine_that_cannot_start_fails_loudly_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "dockerd"
    fake.write_text("#!/bin/sh\necho 'failed to start daemon: the reason, in the log' >&2\nexit 1\n")
    fake.chmod(0o755)
    root = Path(tempfile.mkdtemp(prefix="gm-docker-"))
    try:
        with pytest.raises(EngineError, match=r"exited with 1 at start:\n.*the reason, in the log"):
            start_engine(root, dockerd=str(fake), docker_cli=shutil.which("true") or "true")
        assert not processes_of(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    with pytest.raises(EngineError, match="not found on PATH"):
        start_engine(tmp_path / "engine", dockerd="no-such-dockerd")


def test_wheels_are_for_every_manylinux_the_base_runs() -> None:
    tags = manylinux_platforms((2, 36))
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags and tags[-1] == "manylinux2014_x86_64"
    assert "manylinux_2_37_x86_64" not in tags


def test_the_base_uses_the_debian_mirror_apt_uses(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    assert apt_mirror([tmp_path]) == "http://mirror.invalid/debian"
    (tmp_path / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("# none\ndeb [arch=amd64] http://mirror.invalid/debian bookworm main\n")
    assert apt_mirror([tmp_path / "sources.list"]) == "http://mirror.invalid/debian"
    assert apt_mirror([tmp_path / "missing.list"]) is None
