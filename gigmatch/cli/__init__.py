"""`gigmatch`: the one command-line front door to the lifecycle.

Exit codes, the same for every command (`gigmatch.errors.ExitCode`):
  0  success
  1  a check failed (the data does not match its pin; the drift gate found drift; verify found a difference)
  2  the data contract is broken (missing or mistyped columns, bad values, unreadable files)
  3  any other error (bad params.yaml, a crash)
  64 the command line itself is wrong (unknown option, bad argument)

Each command imports the stage code it runs when it runs (the orchestration stack
takes seconds to import, the data commands need none of it), so what a command
imports is what it depends on: `dvc.yaml` lists exactly that for every stage.
"""

from __future__ import annotations

import sys

import typer

# Typer vendors its own click; its exceptions live here.
from typer._click import exceptions as click_errors

from gigmatch.cli import data, model, monitor, project, replay, repro, stack  # noqa: F401  (each registers its commands)
from gigmatch.cli.app import app, console
from gigmatch.errors import ExitCode, GigmatchError

__all__ = ["ExitCode", "app", "entrypoint", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and map failures to the documented exit codes."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except click_errors.UsageError as exc:
        exc.show(file=sys.stderr)
        return ExitCode.USAGE
    except typer.Abort:
        console.print("aborted")
        return ExitCode.ERROR
    except GigmatchError as exc:  # the domain's errors name their own exit code
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except click_errors.ClickException as exc:
        exc.show(file=sys.stderr)
        return ExitCode.ERROR
    except Exception as exc:
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    return code if isinstance(code, int) else ExitCode.OK


def entrypoint() -> None:
    sys.exit(main())
