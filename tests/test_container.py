"""The serving image without a Docker engine: lint it, and run its exact start command
from a clean virtual environment that holds only the serving dependencies."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from gigmatch.dataset import read_tables
from tests.conftest import request_for

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "serving" / "Dockerfile"
REQUIREMENTS = ROOT / "serving" / "requirements.txt"
NOT_FOR_SERVING = ("prefect", "mlflow", "dvc", "evidently")


def _instructions(keyword: str) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.upper().startswith(keyword + " ")]


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is needed (make install bootstraps it into .tools/)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("hadolint")), str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_pinned_non_root_and_health_checked() -> None:
    args = " ".join(_instructions("ARG"))
    assert re.search(r"python:3\.11\.\d+-slim", args), "base image pinned to a patch version"
    assert len(_instructions("FROM")) >= 2
    user = _instructions("USER")[-1]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) > 0
    assert "/health" in _instructions("HEALTHCHECK")[0]
    assert "requirements.txt" in " ".join(_instructions("COPY"))


def test_serving_requirements_are_exported_from_the_lock() -> None:
    result = subprocess.run(
        [_uv(), "export", "--frozen", "--no-dev", "--extra", "serving", "--no-hashes", "--no-emit-project",
         "--no-header", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout == REQUIREMENTS.read_text(), "run: make serving-requirements"
    pinned = {line.split("==")[0] for line in result.stdout.splitlines() if "==" in line}
    assert not pinned & set(NOT_FOR_SERVING)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_image_start_command_serves_a_bundle_from_a_clean_venv(
    tmp_path: Path, bundle_dir: Path, training_snapshot: Path, record_property: pytest.RecordProperty
) -> None:
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([_uv(), "pip", "install", "--quiet", "--python", str(python), "-r", str(REQUIREMENTS)], check=True)
    subprocess.run([_uv(), "pip", "install", "--quiet", "--python", str(python), "--no-deps", str(ROOT)], check=True)
    for package in NOT_FOR_SERVING:
        absent = subprocess.run([str(python), "-c", f"import {package}"], capture_output=True)
        assert absent.returncode != 0, f"{package} must not be in the serving environment"
    size_mb = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 1e6
    record_property("serving_venv_mb", round(size_mb))
    print(f"serving environment: {size_mb:.0f} MB")

    command = json.loads(_instructions("CMD")[-1])
    port = int(command[command.index("--port") + 1])
    assert _free(port), f"port {port} (the image's) is taken on this machine"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIGMATCH_")},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "GIGMATCH_BUNDLE_PATH": str(bundle_dir),
        "GIGMATCH_LOG_DIR": str(tmp_path / "logs"),
    }
    # The working directory has no source tree: the app is imported from the clean environment.
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail("the server never became ready")
        frames: dict[str, pd.DataFrame] = read_tables(training_snapshot)
        job, candidates = request_for(int(frames["jobs"]["job_id"].iloc[0]), frames)
        response = httpx.post(f"{base}/v1/match", json={"job": job, "candidates": candidates}, timeout=10)
        assert response.status_code == 200, response.text
        assert len(response.json()["candidates"]) == len(candidates)
        assert httpx.get(f"{base}/health").status_code == 200
    finally:
        server.terminate()
        server.wait(10)
