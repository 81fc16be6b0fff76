"""Bring your own data: a client's tables, under their own names, in; the contract's snapshot out, or named errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gigmatch.cli import ExitCode, main
from gigmatch.data.client_import import contract_markdown, import_snapshot
from gigmatch.data.contract import CONTRACTS, REQUIRED_TABLES, SIMULATOR_TRUTH
from gigmatch.data.snapshot import read_tables
from gigmatch.params import ImportParams, ParamsError, load_params
from gigmatch.training.evaluation import EvaluationSet, ModelFigures, ReferenceFigures, baseline_scores
from gigmatch.training.reports import metrics_document, ndcg_curve_frame

ROOT = Path(__file__).resolve().parents[1]
# How this imaginary client names things: client column -> contract column.
MAPPING = {
    "jobs": {"posting_id": "job_id", "post_text": "description", "skills_needed": "required_skills"},
    "freelancers": {"talent_id": "freelancer_id", "rate": "hourly_rate_usd"},
    "applications": {"posting_id": "job_id", "talent_id": "freelancer_id", "stage": "outcome"},
}


def write_client_tables(snapshot: Path, out: Path) -> None:
    """A snapshot as a client exports it: their column names, CSV with skills as text, local and naive times."""
    frames = read_tables(snapshot)
    jobs = frames["jobs"].rename(columns={v: k for k, v in MAPPING["jobs"].items()})
    jobs["skills_needed"] = [";".join(s) for s in jobs["skills_needed"]]
    jobs["posted_at"] = jobs["posted_at"].dt.tz_convert("America/New_York").astype(str)  # with an offset
    jobs["internal_note"] = "not ours"
    freelancers = frames["freelancers"].rename(columns={v: k for k, v in MAPPING["freelancers"].items()})
    freelancers["skills"] = [" ; ".join(s) for s in freelancers["skills"]]
    freelancers["signup_date"] = freelancers["signup_date"].dt.tz_localize(None).astype(str)  # naive, in UTC
    applications = frames["applications"].rename(columns={v: k for k, v in MAPPING["applications"].items()})
    out.mkdir(parents=True, exist_ok=True)
    jobs.to_csv(out / "jobs.csv", index=False)
    freelancers.to_csv(out / "freelancers.csv", index=False)
    applications.to_parquet(out / "applications.parquet", index=False)  # Parquet and CSV mix


def test_a_client_history_is_imported_and_read_as_of_each_application(
    client_dir: Path, small_snapshot_master: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The optional freelancer_history table (CSV, the client's names, naive times) comes in and is used;
    without it, validation warns that profile statistics leak."""
    history = read_tables(small_snapshot_master)["freelancer_history"]
    history = history.rename(columns={"freelancer_id": "talent_id", "valid_from": "changed_at"})
    history["changed_at"] = history["changed_at"].dt.tz_localize(None).astype(str)
    history.to_csv(client_dir / "freelancer_history.csv", index=False)
    mapping = {**MAPPING, "freelancer_history": {"talent_id": "freelancer_id", "changed_at": "valid_from"}}
    import_snapshot(client_dir, tmp_path / "with", import_params(columns=mapping))
    imported = read_tables(tmp_path / "with")
    pd.testing.assert_frame_equal(
        imported["freelancer_history"], read_tables(small_snapshot_master)["freelancer_history"]
    )
    assert main(["data", "validate", str(tmp_path / "with")]) == 0
    assert "no freelancer_history table" not in " ".join(capsys.readouterr().err.split())
    (client_dir / "freelancer_history.csv").unlink()
    import_snapshot(client_dir, tmp_path / "without", import_params())
    assert main(["data", "validate", str(tmp_path / "without")]) == 0
    warned = " ".join(capsys.readouterr().err.split())
    assert "no freelancer_history table" in warned and "optimistic" in warned


def import_params(**changes: object) -> ImportParams:
    raw = {"timezone": "UTC", "list_separator": ";", "columns": MAPPING} | changes
    return ImportParams.model_validate(raw)


def params_file(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["import"] = {"timezone": "UTC", "list_separator": ";", "columns": MAPPING} | changes
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def client_dir(small_snapshot_master: Path, tmp_path: Path) -> Path:
    out = tmp_path / "client"
    write_client_tables(small_snapshot_master, out)
    return out


def test_import_gives_back_the_same_tables_without_the_truth(
    client_dir: Path, small_snapshot_master: Path, tmp_path: Path
) -> None:
    result = import_snapshot(client_dir, tmp_path / "data", import_params())
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(f"{t}.parquet" for t in REQUIRED_TABLES)
    assert result.ignored["jobs"] == ("internal_note",) and result.ignored["applications"] == ()
    imported, original = read_tables(tmp_path / "data"), read_tables(small_snapshot_master)
    assert SIMULATOR_TRUTH not in imported
    for table in REQUIRED_TABLES:
        pd.testing.assert_frame_equal(imported[table], original[table])


def test_project_params_import_nothing_renamed() -> None:
    imports = load_params(ROOT / "params.yaml").data.import_
    assert imports.columns.jobs == imports.columns.freelancers == imports.columns.applications == {}


def _break(client_dir: Path) -> None:
    freelancers = pd.read_csv(client_dir / "freelancers.csv", dtype=str)
    freelancers.loc[3, "rate"] = "cheap"
    freelancers.loc[5, "skills"] = "python;basket_weaving"
    freelancers.to_csv(client_dir / "freelancers.csv", index=False)
    jobs = pd.read_csv(client_dir / "jobs.csv", dtype=str)
    jobs.loc[2, "posted_at"] = "last tuesday"
    jobs.to_csv(client_dir / "jobs.csv", index=False)


def test_bad_values_are_named_by_table_column_and_row(client_dir: Path, tmp_path: Path) -> None:
    _break(client_dir)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("the old snapshot")
    code = main(["data", "import", str(client_dir), "--out", str(tmp_path / "data"), "--no-pin",
                 "--params", str(params_file(tmp_path))])  # fmt: skip
    assert code == ExitCode.CONTRACT_BROKEN
    assert (tmp_path / "data" / "keep.txt").exists()  # nothing replaced


def test_conversion_errors_name_the_rows(client_dir: Path, tmp_path: Path) -> None:
    _break(client_dir)
    with pytest.raises(ValueError) as caught:
        import_snapshot(client_dir, tmp_path / "data", import_params())
    message = str(caught.value)
    assert "freelancers.hourly_rate_usd: check 'parse_number' failed for 1 row(s); e.g. row 3: 'cheap'" in message
    assert (
        "jobs.posted_at: check 'parse_timestamp (ISO 8601)' failed for 1 row(s); e.g. row 2: 'last tuesday'" in message
    )
    assert not (tmp_path / "data").exists()


def test_contract_checks_run_after_conversion(client_dir: Path, tmp_path: Path) -> None:
    freelancers = pd.read_csv(client_dir / "freelancers.csv", dtype=str)
    freelancers.loc[5, "skills"] = "python;basket_weaving"
    freelancers.to_csv(client_dir / "freelancers.csv", index=False)
    with pytest.raises(ValueError, match=r"freelancers.skills: check 'known_skills' failed for 1 row\(s\); e.g. row 5"):
        import_snapshot(client_dir, tmp_path / "data", import_params())


def test_naive_timestamps_are_refused_without_a_timezone(client_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"freelancers.signup_date: check 'timestamp_has_timezone"):
        import_snapshot(client_dir, tmp_path / "data", import_params(timezone=None))


def test_naive_timestamps_are_read_in_the_given_zone(client_dir: Path, tmp_path: Path) -> None:
    import_snapshot(client_dir, tmp_path / "utc", import_params())
    import_snapshot(client_dir, tmp_path / "tokyo", import_params(timezone="Asia/Tokyo"))
    utc = read_tables(tmp_path / "utc", REQUIRED_TABLES)["freelancers"]["signup_date"]
    tokyo = read_tables(tmp_path / "tokyo", REQUIRED_TABLES)["freelancers"]["signup_date"]
    assert ((utc - tokyo) == pd.Timedelta(hours=9)).all()


def test_missing_mapped_column_and_missing_table(client_dir: Path, tmp_path: Path) -> None:
    (client_dir / "applications.parquet").unlink()
    jobs = pd.read_csv(client_dir / "jobs.csv", dtype=str).drop(columns=["post_text"])
    jobs.to_csv(client_dir / "jobs.csv", index=False)
    with pytest.raises(ValueError) as caught:
        import_snapshot(client_dir, tmp_path / "data", import_params())
    message = str(caught.value)
    assert (
        "jobs.description: check 'column_present' failed; e.g. 'post_text' (data.import.columns) is not in the file"
        in message
    )
    assert "applications: check 'file_present' failed" in message


def test_unmapped_column_hints_at_the_mapping(client_dir: Path, tmp_path: Path) -> None:
    columns = MAPPING | {"freelancers": {"talent_id": "freelancer_id"}}
    with pytest.raises(ValueError, match=r"freelancers.hourly_rate_usd: .*data.import.columns.freelancers"):
        import_snapshot(client_dir, tmp_path / "data", import_params(columns=columns))


def test_mapping_to_an_unknown_column_is_a_params_error(client_dir: Path, tmp_path: Path) -> None:
    columns = MAPPING | {"jobs": {**MAPPING["jobs"], "budget": "budget_dollars"}}
    with pytest.raises(ParamsError, match=r"data.import.columns.jobs: 'budget' maps to 'budget_dollars'"):
        import_snapshot(client_dir, tmp_path / "data", import_params(columns=columns))
    path = params_file(tmp_path, columns=columns)
    assert main(["data", "import", str(client_dir), "--no-pin", "--params", str(path)]) == ExitCode.ERROR


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"columns": {"jobs": {"a": "job_id", "b": "job_id"}, "freelancers": {}, "applications": {}}}, "map to job_id"),
        ({"columns": {"jobs": {}, "freelancers": {}}}, "applications"),
    ],
)
def test_import_params_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        import_params(**changes)


def test_import_pins_with_dvc(client_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "--quiet"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--quiet"], cwd=repo, check=True, env=env)
    shutil.copy(params_file(tmp_path), repo / "params.yaml")
    monkeypatch.chdir(repo)
    assert main(["data", "import", str(client_dir)]) == ExitCode.OK
    pin = yaml.safe_load((repo / "data.dvc").read_text())
    assert pin["outs"][0]["path"] == "data" and pin["outs"][0]["nfiles"] == 3


def test_schema_lists_every_contract_column(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "schema"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out == contract_markdown()
    for table in REQUIRED_TABLES:
        assert f"**`{table}`**" in out
        for column in CONTRACTS[table].columns:
            assert f"| `{column}` |" in out


# ---------------------------------------------------------------- no simulator truth: no oracle, nothing else moves


def test_without_truth_there_is_no_oracle_and_the_plot_keeps_its_columns() -> None:
    frame = pd.DataFrame(
        {
            "job_id": [1, 1, 2, 2],
            "rating": [4.5, np.nan, 3.0, 5.0],
            "success_rate": [0.9, np.nan, 0.5, 1.0],
            "jobs_completed": [10, 0, 3, 8],
            "skills": [["python"], ["sql"], ["python"], ["sql"]],
            "required_skills": [["python"], ["python"], ["sql"], ["sql"]],
        }
    )
    scores = baseline_scores(EvaluationSet(frame, np.array([2, 0, 0, 1]), None), seed=0)
    assert "oracle" not in scores and {"random", "popularity", "skill_overlap"} <= set(scores)

    figures = {"ndcg_at_10": 0.5}
    model = ModelFigures("logistic", "logistic", figures, figures, [0.5] * 7)
    references = ReferenceFigures({"random": {"ndcg_at_10": 0.2}}, {"random": [0.2] * 7})
    metrics = metrics_document("logistic", [model], references, fairness_ratio=0.9)
    assert not any("oracle" in key for key in metrics["test"])  # type: ignore[attr-defined]
    curve = ndcg_curve_frame("logistic", [model], references)
    assert "oracle" in curve.columns and curve["oracle"].isna().all()
    assert curve.to_csv(index=False).splitlines()[1].endswith(",")  # an empty cell, which `dvc plots` skips


def test_readme_lists_the_contract() -> None:
    """The README's table of needed columns is the code's, word for word."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert contract_markdown().strip() in readme
