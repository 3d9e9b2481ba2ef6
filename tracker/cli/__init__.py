"""Command line: the typer app, the command table, and the one place errors become exit codes.

One module per command group (:mod:`~tracker.cli.sync`, :mod:`~tracker.cli.plans`,
:mod:`~tracker.cli.check`, :mod:`~tracker.cli.reports`, :mod:`~tracker.cli.admin`); a command
parses its arguments, calls one use case (:mod:`tracker.usecases`) and prints.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from typing import TextIO

import typer

from tracker.cli import admin, check, plans, reports, sync
from tracker.cli.options import ConfigOpt, state
from tracker.errors import InterruptedRun, TrackerError, classify

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help texts name config tables like [email]; they are text, not rich markup.
    rich_markup_mode=None,
    help="tracker: follow kernel fixes from the mailing list to every stable branch.",
)
app.add_typer(admin.db_app, name="db")

EXIT_INTERNAL = 70


@app.callback()
def _main(config: ConfigOpt = None) -> None:
    state["config"] = config


# In this order in --help.
app.command()(admin.init)
app.command()(sync.sync)
app.command()(sync.reparse)
app.command()(plans.plan)
app.command()(plans.status)
app.command()(plans.why)
app.command()(admin.demo)
reports.register(app)
check.register(app)


def _fail(message: str, code: int) -> None:
    # One line, never wrapped: cron mails and scripts grep these.
    one_line = " ".join(message.split())
    print(f"tracker: {one_line}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every failure into one line and an exit code."""
    from typer.exceptions import TyperException  # usage errors (typer's own click) derive from it

    warnings.showwarning = _warn_line

    try:
        # Not standalone: typer would turn Ctrl-C into a silent exit 130 and never let the
        # handlers below run.
        code = app(args=argv, standalone_mode=False)
    except TrackerError as exc:
        _fail(f"error: {exc}", exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except typer.Abort:
        _interrupted()
    except TyperException as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print(f"tracker: {exc}", file=sys.stderr)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except Exception as exc:
        known = classify(exc)
        if known is not None:
            _fail(f"error: {known}", known.exit_code)
        if os.environ.get("TRACKER_DEBUG"):
            traceback.print_exc()
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (TRACKER_DEBUG=1 shows a traceback)",
            EXIT_INTERNAL,
        )
    else:
        # typer hands back Ctrl-C as exit code 130 (and --help or typer.Exit as theirs).
        if code == InterruptedRun.exit_code:
            _interrupted()
        if isinstance(code, int) and code:
            sys.exit(code)


def _warn_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # Advisories from the library (ConfigWarning) are one line, like errors; others too.
    print(f"tracker: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _interrupted() -> None:
    _fail("interrupted", InterruptedRun.exit_code)
