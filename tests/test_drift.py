"""The drift gate through its front door: exit codes from real inputs, the two reports, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gigmatch.cli import ExitCode, main
from gigmatch.data.validation import ContractError
from gigmatch.features.names import FEATURE_NAMES
from gigmatch.files import write_parquet
from gigmatch.model.bundle import load_bundle
from gigmatch.monitoring.frame import (
    FRAME_COLUMNS,
    MONITORED_CATEGORICAL,
    MONITORED_NUMERIC,
    SCORE,
    champion_reference,
    frame_from_match_table,
    read_frame,
)
from gigmatch.monitoring.rules import column_statistic
from gigmatch.monitoring.scenarios import simulate_batch
from gigmatch.params import Params

ROOT = Path(__file__).resolve().parents[1]


def _batch(params: Params, tmp_path: Path, scenario: str, seed: int = 11) -> Path:
    path = tmp_path / f"{scenario}.parquet"
    write_parquet(simulate_batch(params.simulate, scenario, None, 2000, seed), path)
    return path


def _gate(current: Path, reference: Path, bundle: Path, report_dir: Path, *extra: str) -> int:
    argv = ["drift", "--current", str(current), "--reference", str(reference), "--bundle", str(bundle)]
    return main([*argv, "--report-dir", str(report_dir), *extra])


def _write_prediction_log(frame: pd.DataFrame, table: pd.DataFrame, directory: Path) -> None:
    """One JSON line per job, in the shape serving.routers.match._log_record writes."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for job_id, rows in frame.groupby("job_id", sort=True):
        job = table[table["job_id"] == job_id].iloc[0]
        record = {
            "logged_at": "2026-11-22T10:00:00+00:00",
            "request_id": f"r{job_id}",
            "model_name": "gigmatch-ranker",
            "model_version": "7",
            "job_id": int(job_id),
            "category": job["category"],
            "experience_level": job["experience_level"],
            "budget_type": job["budget_type"],
            "freelancer_id": list(range(len(rows))),
            "region": rows["region"].tolist(),
            "hourly_rate_usd": rows["hourly_rate_usd"].tolist(),
            "match_score": rows["match_score"].tolist(),
            **{name: rows[name].tolist() for name in FEATURE_NAMES},
        }
        lines.append(json.dumps(record, separators=(",", ":")))
    (directory / "predictions-20261122.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.slow  # Evidently's import and report: ~15 s
def test_no_drift_from_the_prediction_log_exits_0_with_both_reports(
    params: Params, tmp_path: Path, drift_reference: Path, bundle_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = simulate_batch(params.simulate, "none", None, 2000, seed=11)
    frame = frame_from_match_table(table, load_bundle(bundle_dir).model)
    _write_prediction_log(frame, table, tmp_path / "logs")
    reports = tmp_path / "reports"

    assert _gate(tmp_path / "logs", drift_reference, bundle_dir, reports) == ExitCode.OK

    verdict = json.loads((reports / "drift_verdict.json").read_text())
    assert verdict["verdict"] == "no_drift" and verdict["exit_code"] == 0 and verdict["failed_rules"] == []
    assert verdict["rows"]["current"] == len(frame)
    assert {"dataset_drift", "score_drift", "missing_values"} <= {r["rule"] for r in verdict["rules"]}
    assert "no outcomes in the current batch: ranking quality not checked" in verdict["notes"]
    column = verdict["columns"]["hourly_rate_usd"]
    assert column["method"] == "wasserstein" and column["threshold"] == params.drift.numeric.threshold
    html = (reports / "drift_report.html").read_text()
    assert html.lstrip().startswith("<") and "<html" in html and html.rstrip().endswith("</html>")
    assert all(name in html for name in ("skill_coverage", "hourly_rate_usd", "category", "region"))
    assert "no drift" in capsys.readouterr().err


@pytest.mark.slow  # Evidently's report: ~10 s
def test_a_batch_that_hurts_exits_1_and_one_that_only_moves_warns(
    params: Params, tmp_path: Path, drift_reference: Path, bundle_dir: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "drift_verdict.json").write_text('{"verdict": "no_drift"}')

    assert _gate(_batch(params, tmp_path, "missing_values"), drift_reference, bundle_dir, reports) == 1

    verdict = json.loads((reports / "drift_verdict.json").read_text())
    assert verdict["verdict"] == "drift" and verdict["exit_code"] == 1
    assert "missing_values" in verdict["failed_rules"] and "missing_values" in verdict["blocking_rules"]
    assert "ranking_quality" in {r["rule"] for r in verdict["rules"]}  # the batch carries outcomes
    assert "</html>" in (reports / "drift_report.html").read_text()

    # Cheaper rates move the rate columns, but the model still ranks well: a warning, and exit 0.
    assert _gate(_batch(params, tmp_path, "rate_undercut"), drift_reference, bundle_dir, reports) == 0
    verdict = json.loads((reports / "drift_verdict.json").read_text())
    assert verdict["verdict"] == "warning" and verdict["exit_code"] == 0 and verdict["failed_rules"] == []
    assert "dataset_drift" in verdict["warnings"] and "hourly_rate_usd" in verdict["drifted_columns"]
    assert verdict["columns"]["hourly_rate_usd"]["statistic"] > params.drift.numeric.threshold
    assert {r["rule"]: r["blocks"] for r in verdict["rules"]}["dataset_drift"] is False


def _drop_column(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["hourly_rate_usd"])


def _mistype_column(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(budget_usd=["lots"] * len(table))


@pytest.mark.parametrize(("breakage", "named"), [(_drop_column, "hourly_rate_usd"), (_mistype_column, "budget_usd")])
def test_broken_contract_exits_2_and_leaves_reports_alone(
    params: Params, tmp_path: Path, drift_reference: Path, bundle_dir: Path, capsys, breakage, named: str
) -> None:
    table = breakage(simulate_batch(params.simulate, "none", None, 300, seed=3))
    current = tmp_path / "current.parquet"
    table.to_parquet(current)
    reports = _existing_reports(tmp_path)

    assert _gate(current, drift_reference, bundle_dir, reports) == ExitCode.CONTRACT_BROKEN

    assert named in capsys.readouterr().err
    assert (reports / "drift_verdict.json").read_text() == "old verdict"
    assert (reports / "drift_report.html").read_text() == "old page"


def test_unreadable_input_exits_2(tmp_path: Path, drift_reference: Path, bundle_dir: Path, capsys) -> None:
    current = tmp_path / "current.parquet"
    current.write_bytes(b"PAR1 this is not parquet")
    log = tmp_path / "predictions-20261122.jsonl"
    log.write_text('{"job_id": 1, "match_score": [0.1, 0.2]}\n{not json\n')
    reports = _existing_reports(tmp_path)

    assert _gate(current, drift_reference, bundle_dir, reports) == ExitCode.CONTRACT_BROKEN
    assert "readable_parquet" in capsys.readouterr().err
    assert _gate(log, drift_reference, bundle_dir, reports) == ExitCode.CONTRACT_BROKEN
    assert "line 2" in capsys.readouterr().err
    assert _gate(tmp_path / "nowhere", drift_reference, bundle_dir, reports) == ExitCode.CONTRACT_BROKEN
    assert (reports / "drift_verdict.json").read_text() == "old verdict"


def test_missing_bundle_or_broken_params_exit_3(
    params: Params, tmp_path: Path, drift_reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = _batch(params, tmp_path, "none")
    reports = _existing_reports(tmp_path)
    assert _gate(current, drift_reference, tmp_path / "no-bundle", reports) == ExitCode.ERROR
    assert "no-bundle" in capsys.readouterr().err

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["drift"]["columns"]["no_such_column"] = {"method": "wasserstein", "threshold": 0.1}
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    argv = ["drift", "--current", str(current), "--reference", str(drift_reference), "--params", str(bad)]
    assert main([*argv, "--report-dir", str(reports)]) == ExitCode.ERROR
    assert (reports / "drift_verdict.json").read_text() == "old verdict"


def _existing_reports(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "drift_verdict.json").write_text("old verdict")
    (reports / "drift_report.html").write_text("old page")
    return reports


def test_prediction_log_reads_back_as_the_scored_frame(params: Params, tmp_path: Path, bundle_dir: Path) -> None:
    table = simulate_batch(params.simulate, "none", None, 400, seed=5)
    frame = frame_from_match_table(table, load_bundle(bundle_dir).model)
    _write_prediction_log(frame, table, tmp_path / "logs")

    def no_model():  # a log carries its features and scores: nothing to score
        raise AssertionError("the prediction log must not need the model")

    from_log = read_frame(tmp_path / "logs", no_model)
    columns = list(FRAME_COLUMNS)
    pd.testing.assert_frame_equal(from_log[columns], frame[columns], check_dtype=False)


def test_log_with_a_mistyped_feature_names_it(tmp_path: Path) -> None:
    record = {
        "job_id": 1,
        "category": "writing",
        "budget_type": "fixed",
        "region": ["africa"],
        "hourly_rate_usd": [9.0],
    }
    record |= {name: [0.5] for name in FEATURE_NAMES} | {"match_score": [0.1], "rating": ["five"]}
    path = tmp_path / "predictions-20261122.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ContractError, match=r"rating: check 'dtype'"):
        read_frame(path, lambda: None)  # type: ignore[arg-type,return-value]


def test_champion_reference_is_built_once_then_read_from_the_cache(
    params: Params, training_snapshot: Path, bundle_dir: Path, tmp_path: Path
) -> None:
    calls = []

    def model():
        calls.append(1)
        return load_bundle(bundle_dir).model

    first, cache = champion_reference(training_snapshot, params.split, model, "ranker-v7", tmp_path)
    second, again = champion_reference(training_snapshot, params.split, model, "ranker-v7", tmp_path)
    assert cache == again and cache.exists() and "ranker-v7" in cache.name and len(calls) == 1
    pd.testing.assert_frame_equal(first, second)
    assert first["outcome"].notna().all() and np.isin(first["outcome"], [0, 1, 2, 3]).all()


def test_data_batch_writes_a_deterministic_match_table(tmp_path: Path) -> None:
    out = [tmp_path / f"batch-{i}.parquet" for i in range(2)]
    for path in out:
        assert (
            main(
                ["data", "batch", "--scenario", "budget_inflation", "--rows", "500", "--seed", "4", "--out", str(path)]
            )
            == 0
        )
    first, second = (pd.read_parquet(p) for p in out)
    pd.testing.assert_frame_equal(first, second)
    assert len(first) >= 500 and "outcome" in first.columns
    assert main(["data", "batch", "--scenario", "nope", "--out", str(tmp_path / "x.parquet")]) == ExitCode.USAGE


@pytest.mark.slow  # Evidently's import and a report of 100 metrics: ~10 s
def test_the_drift_statistics_are_evidentlys_column_by_column(
    params: Params, drift_reference: Path, bundle_dir: Path
) -> None:
    """The gate computes its statistics itself (one pass, no report library in the domain) and says they
    are Evidently's: every monitored column, every method, against Evidently's ValueDrift on the same rows."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    reference = pd.read_parquet(drift_reference)
    table = simulate_batch(params.simulate, "budget_inflation", None, 2000, seed=3)
    current = frame_from_match_table(table, load_bundle(bundle_dir).model)
    current.loc[::7, "rating"] = np.nan  # missing values are left out by both
    numeric, categorical = [*MONITORED_NUMERIC, SCORE], list(MONITORED_CATEGORICAL)
    checks = [(c, m, True) for c in numeric for m in ("wasserstein", "jensenshannon", "psi")]
    checks += [(c, m, False) for c in categorical for m in ("jensenshannon", "psi")]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([ValueDrift(column=c, method=m) for c, m, _ in checks]).run(
        current_data=Dataset.from_pandas(current[numeric + categorical], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[numeric + categorical], data_definition=definition),
    )
    theirs = {(m["config"]["column"], m["config"]["method"]): m["value"] for m in snapshot.dict()["metrics"]}
    assert len(theirs) == len(checks) == 3 * len(numeric) + 2 * len(categorical)
    for column, method, is_numeric in checks:
        ours = column_statistic(method, reference[column], current[column], is_numeric)
        assert ours == pytest.approx(theirs[(column, method)], rel=1e-9, abs=1e-12), (column, method)
