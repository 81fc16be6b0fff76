"""`gigmatch`: the one command-line front door to the lifecycle.

Exit codes, the same for every command:
  0  success
  1  a check failed (the data does not match its pin; the drift gate found drift)
  2  the data contract is broken (missing or mistyped columns, bad values, unreadable files)
  3  any other error (bad params.yaml, a crash)
  64 the command line itself is wrong (unknown option, bad argument)
"""

from __future__ import annotations

import sys

import typer

# Typer vendors its own click; its exceptions live here.
from typer._click import exceptions as click_errors

from gigmatch.bundle import BundleError
from gigmatch.cli import data, model, monitor, project  # noqa: F401  (each registers its commands)
from gigmatch.cli.common import app, console
from gigmatch.config import ParamsError
from gigmatch.exit_codes import ExitCode
from gigmatch.monitoring import ReferenceUnavailableError
from gigmatch.new_project import NewProjectError
from gigmatch.pinning import PinError
from gigmatch.promotion import GateError
from gigmatch.validation import ContractError

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
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONTRACT_BROKEN
    except PinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CHECK_FAILED
    except (BundleError, GateError, ReferenceUnavailableError, NewProjectError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    except click_errors.ClickException as exc:
        exc.show(file=sys.stderr)
        return ExitCode.ERROR
    except Exception as exc:
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    return code if isinstance(code, int) else ExitCode.OK


def entrypoint() -> None:
    sys.exit(main())
