"""The serving image without a Docker engine: lint it, check that it copies exactly the code serving
imports, and run its exact start command from a clean virtual environment that holds only the serving
dependencies and the copied code. A model bundle carries only the code that loads and scores it."""

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

from gigmatch.data.snapshot import read_tables
from gigmatch.model.pipeline import TRUSTED_MODEL_TYPES
from gigmatch.repro.code import closure_files, import_closure
from tests.conftest import request_for

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "serving" / "Dockerfile"
REQUIREMENTS = ROOT / "serving" / "requirements.txt"
NOT_FOR_SERVING = ("prefect", "mlflow", "dvc", "evidently")
NOT_SHIPPED = ("gigmatch/cli/", "gigmatch/training/", "gigmatch/repro/", "gigmatch/data/simulator/", "pipelines/")


def _instructions(keyword: str) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.upper().startswith(keyword + " ")]


def _runtime_code() -> list[tuple[list[str], str]]:
    """The runtime stage's COPY instructions of repository code: (sources, destination under WORKDIR)."""
    stages = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text()).split("\nFROM ")
    copies = []
    for line in stages[-1].splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            *sources, destination = [w for w in words[1:] if not w.startswith("--")]
            if sources != ["bundle"]:
                copies.append((sources, destination))
    return copies


def _shipped_files() -> set[str]:
    """The Python files the image holds, as repository paths (a directory copies its files)."""
    files = set()
    for sources, _ in _runtime_code():
        for source in sources:
            path = ROOT / source
            found = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
            files |= {p.relative_to(ROOT).as_posix() for p in found if p.suffix == ".py"}
    return files


def _assemble_app(target: Path) -> Path:
    """The image's /app without Docker: each COPY of code done by hand."""
    for sources, destination in _runtime_code():
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target / destination, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                (target / destination).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / destination / path.name)
    return target


def test_the_image_copies_exactly_what_serving_imports() -> None:
    serving_code = import_closure(["serving.main", *{t.rpartition(".")[0] for t in TRUSTED_MODEL_TYPES}])
    assert _shipped_files() == set(closure_files(serving_code))
    copied = " ".join(source for sources, _ in _runtime_code() for source in sources)
    assert not any(part.rstrip("/") in copied.split() or part in copied for part in NOT_SHIPPED), copied


def test_a_bundle_carries_only_the_code_that_scores_its_model(bundle_dir: Path) -> None:
    code = bundle_dir / "model" / "code"
    files = {p.relative_to(code).as_posix() for p in code.rglob("*.py")}
    assert "gigmatch/features/transformer.py" in files
    assert not [
        f for f in files if f.startswith(NOT_SHIPPED) or f.startswith(("gigmatch/model/", "gigmatch/monitoring/"))
    ]


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
    for package in NOT_FOR_SERVING:
        absent = subprocess.run([str(python), "-c", f"import {package}"], capture_output=True)
        assert absent.returncode != 0, f"{package} must not be in the serving environment"
    size_mb = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 1e6
    record_property("serving_venv_mb", round(size_mb))
    print(f"serving environment: {size_mb:.0f} MB")

    # The bundle's own code is enough to load and score its model: nothing of the repository on the path.
    score_alone = [str(python), str(ROOT / "tests" / "score_bundle_alone.py"), str(bundle_dir / "model")]
    scored = subprocess.run(score_alone, cwd=tmp_path, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert scored.returncode == 0, scored.stdout + scored.stderr
    result = json.loads(scored.stdout)
    assert result["rows"] == 3 and result["features_from"].startswith(str(bundle_dir / "model" / "code"))

    app = _assemble_app(tmp_path / "app")
    command = json.loads(_instructions("CMD")[-1])
    port = int(command[command.index("--port") + 1])
    assert _free(port), f"port {port} (the image's) is taken on this machine"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GIGMATCH_", "PYTHON"))},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(app),  # the image's ENV PYTHONPATH=/app
        "GIGMATCH_BUNDLE_PATH": str(bundle_dir),
        "GIGMATCH_LOG_DIR": str(tmp_path / "logs"),
    }
    # The working directory is the image's /app: only the copied code, on the clean environment.
    server = subprocess.Popen(command, cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
