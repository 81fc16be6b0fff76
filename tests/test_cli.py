"""The CLI's contract: help everywhere, documented exit codes for bad usage and bad params."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigmatch.cli import ExitCode, app, main


def _commands(group=None, prefix=()):
    import typer.main

    command = group or typer.main.get_command(app)
    for name, sub in getattr(command, "commands", {}).items():
        yield (*prefix, name)
        yield from _commands(sub, (*prefix, name))


def test_every_command_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(_commands())
    assert ("data", "generate") in paths and ("data", "validate") in paths and ("data", "pull") in paths
    for path in paths:
        assert main([*path, "--help"]) == ExitCode.OK
        out = capsys.readouterr().out
        assert "Usage:" in out and len(out.split()) > 20, f"{path} has no real help"


@pytest.mark.parametrize(
    "argv",
    [["data", "--bogus"], ["data", "generate", "--jobs", "3"], ["nonsense"], ["data", "validate", "a", "b"]],
)
def test_usage_errors_exit_64(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == ExitCode.USAGE
    assert "Error" in capsys.readouterr().err


def test_bad_params_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("simulate:\n  seed: 1\n  n_jobz: 10\n")
    assert main(["data", "generate", "--params", str(bad), "--out", str(tmp_path / "data")]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "n_jobz" in err and "Extra inputs are not permitted" in err
    assert not (tmp_path / "data").exists()


def test_missing_params_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "validate", "--params", str(tmp_path / "nope.yaml")]) == ExitCode.ERROR
    assert "params file not found" in capsys.readouterr().err
