"""params.yaml is the one source of truth, loaded into typed sections that refuse surprises."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gigmatch.params import ParamsError, load_params, override

ROOT = Path(__file__).resolve().parents[1]


def test_project_params_load() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.simulate.n_jobs == 5000 and params.data.dir == Path("data")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: raw["simulate"].pop("seed"), "simulate.seed: Field required"),
        (lambda raw: raw["simulate"]["utility"].update(coverag=1.0), "simulate.utility.coverag: Extra inputs"),
        (lambda raw: raw["simulate"].update(n_jobs=-5), "simulate.n_jobs"),
        (lambda raw: raw["simulate"].update(min_applicants=50), "min_applicants must not exceed max_applicants"),
        (lambda raw: raw.update(trainn={}), "trainn: Extra inputs"),
    ],
)
def test_invalid_params_are_refused_by_name(tmp_path: Path, edit, message: str) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=message):
        load_params(path)


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("simulate: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_override_validates() -> None:
    simulate = load_params(ROOT / "params.yaml").simulate
    assert override(simulate, n_jobs=50).n_jobs == 50
    with pytest.raises(ValueError, match="n_jobs"):
        override(simulate, n_jobs=1)


def test_a_bad_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from gigmatch.settings import SettingsError, read_settings
    from pipelines.settings import MonitoringSettings

    monkeypatch.setenv("GIGMATCH_MONITOR_CRON", "every night")
    with pytest.raises(SettingsError, match="GIGMATCH_MONITOR_CRON: String should match pattern"):
        read_settings(MonitoringSettings)
    monkeypatch.setenv("GIGMATCH_MONITOR_CRON", "30 2 * * 1")
    assert read_settings(MonitoringSettings).monitor_cron == "30 2 * * 1"
    monkeypatch.setenv("GIGMATCH_MAX_CANDIDATES", "many")  # the API's settings go through the same reader
    from serving.main import create_app

    with pytest.raises(SettingsError, match="GIGMATCH_MAX_CANDIDATES"):
        create_app()


def test_deployment_settings_are_not_stage_params() -> None:
    """Where things run and are stored changes no result, so it reruns nothing: not in params.yaml."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert not {"monitor_cron", "prediction_log_dir", "reference_cache_dir"} & set(raw["drift"])
