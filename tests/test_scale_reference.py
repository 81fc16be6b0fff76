"""The drift gate's default reference on Dask: the in-process frame, bit for bit, and the same verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from devtools.ports import free_port
from gigmatch.cli import main
from gigmatch.data.validation import ContractError
from gigmatch.errors import ExitCode
from gigmatch.files import write_parquet
from gigmatch.model.bundle import load_bundle
from gigmatch.monitoring.frame import training_frame
from gigmatch.monitoring.scenarios import simulate_batch
from gigmatch.params import Params
from gigmatch.scale.reference import training_frame_on_dask
from tests.conftest import params_with_engine, recut_snapshot

PARTITION_ROWS = 1000


@pytest.fixture(scope="module")
def recut(training_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recut_snapshot(training_snapshot, tmp_path_factory.mktemp("recut") / "data")


def test_the_reference_on_dask_is_the_in_process_frame(
    local_dask_cluster: None, recut: Path, params: Params, bundle_dir: Path
) -> None:
    model = load_bundle(bundle_dir).model
    on_dask = training_frame_on_dask(recut, params.split, model, PARTITION_ROWS)
    in_process = training_frame(recut, params.split, model)
    assert len(in_process) > 5 * PARTITION_ROWS  # the training rows span several partitions
    scores = ["match_score"]
    pd.testing.assert_frame_equal(on_dask.drop(columns=scores), in_process.drop(columns=scores), check_exact=True)
    # The scores: a linear model's are a BLAS product, whose last bits depend on how many rows it multiplies
    # at once (a partition's, not the whole split's), so they agree to a few units in the last place.
    gap = (on_dask["match_score"] - in_process["match_score"]).abs().max()
    assert gap < 1e-15


def test_a_broken_snapshot_is_refused_before_anything_is_scored(
    local_dask_cluster: None, recut: Path, params: Params, bundle_dir: Path, tmp_path: Path
) -> None:
    broken = recut_snapshot(recut, tmp_path / "data")
    applications = pd.read_parquet(broken / "applications.parquet")
    applications.loc[3, "freelancer_id"] = 999_999
    applications.to_parquet(broken / "applications.parquet", index=False)
    with pytest.raises(ContractError, match=r"applications.freelancer_id: check 'foreign_key"):
        training_frame_on_dask(broken, params.split, load_bundle(bundle_dir).model, PARTITION_ROWS)


def test_the_gate_on_dask_gives_the_in_process_verdict(
    recut: Path,
    params: Params,
    bundle_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipelines.settings import get_monitoring_settings

    current = tmp_path / "batch.parquet"
    write_parquet(simulate_batch(params.simulate, "budget_inflation", None, 2000, 11), current)
    verdicts = {}
    for engine in ("in_process", "dask"):
        monkeypatch.setenv("GIGMATCH_REFERENCE_CACHE_DIR", str(tmp_path / f"cache-{engine}"))  # built, not cached
        get_monitoring_settings.cache_clear()
        params_path = params_with_engine(
            tmp_path / engine, recut, kind=engine, partition_rows=PARTITION_ROWS, workers=2
        )
        reports = tmp_path / f"reports-{engine}"
        argv = ["drift", "--current", str(current), "--bundle", str(bundle_dir), "--report-dir", str(reports)]
        code = main([*argv, "--params", str(params_path)])
        verdict = json.loads((reports / "drift_verdict.json").read_text())
        assert code == verdict["exit_code"]
        assert list((tmp_path / f"cache-{engine}").glob("reference-*.parquet"))  # the reference was built
        verdicts[engine] = {k: v for k, v in verdict.items() if k != "sources"}  # the cache paths differ
    assert verdicts["dask"] == verdicts["in_process"]
    assert verdicts["dask"]["verdict"] in ("drift", "warning")  # inflated budgets: the gate sees them either way
    # Cached, the reference needs no cluster: with a scheduler nobody runs, the gate still answers, unchanged.
    monkeypatch.setenv("GIGMATCH_DASK_ADDRESS", f"tcp://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GIGMATCH_DASK_CONNECT_TIMEOUT_SECONDS", "2")
    capsys.readouterr()
    assert main([*argv, "--params", str(params_path)]) == code
    assert "engine: dask" not in capsys.readouterr().out
    verdict = json.loads((reports / "drift_verdict.json").read_text())
    assert {k: v for k, v in verdict.items() if k != "sources"} == verdicts["dask"]
    for cached in (tmp_path / "cache-dask").glob("reference-*.parquet"):
        cached.unlink()
    assert main([*argv, "--params", str(params_path)]) == ExitCode.ERROR  # not cached: the cluster is needed
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    get_monitoring_settings.cache_clear()
