"""``tracker check BRANCH [--plan | SHA... | --series MSGID] [--json]``.

Errors raised by the check use cases reach the CLI's one error handler (one line on stderr, the
exit code of the error class); the lines printed are :mod:`tracker.cli.text`'s.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from tracker import usecases
from tracker.cli.options import ConfigOpt, config_in
from tracker.cli.text import report_lines
from tracker.progress import LineProgress

if TYPE_CHECKING:
    from tracker.usecases.check import CheckProgress

# Test hook: "R:K" makes the progress callback announce itself on stderr and sleep after step K
# of round R, so a test can kill a run at a known point (tests/test_check_plan.py).
PAUSE_ENV = "TRACKER_CHECK_PAUSE_AT"


def check_command(
    ctx: typer.Context,
    branch: Annotated[str, typer.Argument(help="Stable branch, e.g. linux-6.1.y.")],
    shas: Annotated[
        list[str] | None, typer.Argument(help="Commits to simulate, in this order.")
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan", help="Simulate the branch's plan; store verdicts and prerequisites."
        ),
    ] = False,
    series: Annotated[
        str | None,
        typer.Option("--series", help="Apply the posted series containing this Message-ID."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    prerequisites: Annotated[
        str | None,
        typer.Option(
            "--prerequisites",
            help="Prerequisite search: off, bounded or full (default: [check] config, bounded).",
        ),
    ] = None,
    step_budget: Annotated[
        float | None,
        typer.Option("--step-budget", help="Seconds of search per conflicting step (0: none)."),
    ] = None,
    run_budget: Annotated[
        float | None,
        typer.Option("--run-budget", help="Seconds of search for the whole run (0: none)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress on stderr (cron).")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Would the plan (or these commits, or a posted series) apply to the branch head?"""
    chosen = sum((plan, bool(shas), series is not None))
    if chosen != 1:
        raise typer.BadParameter("give exactly one of --plan, SHA... or --series MSGID")
    if prerequisites is not None and prerequisites not in ("off", "bounded", "full"):
        raise typer.BadParameter("--prerequisites must be off, bounded or full")
    # The check names load the simulator (pygit2) and mail parsers on first use: every other
    # command would pay ~0.3 s for them.
    cfg = config_in(ctx, config)
    store = usecases.open_store(cfg)
    limits = usecases.search_limits(
        cfg, prerequisites=prerequisites, step_budget=step_budget, run_budget=run_budget
    )
    shown = _Progress(sys.stderr, show=not quiet and sys.stderr.isatty())
    progress = shown if shown.active else None
    try:
        if plan:
            report = usecases.check_plan(cfg, store, branch, limits=limits, progress=progress)
        elif series is not None:
            report = usecases.check_series(cfg, store, branch, series)
        else:
            report = usecases.check_commits(
                cfg, store, branch, shas or [], limits=limits, progress=progress
            )
    finally:
        shown.done()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report_lines(report):
            typer.echo(line)


class _Progress:
    """``round 1  step 12/823  1a2b3c4d5e6f  3 not applied  [#...]  1%  0:42`` on stderr,
    through the display ``sync`` uses (:mod:`tracker.progress`)."""

    def __init__(self, stream: TextIO, *, show: bool) -> None:
        self.display = LineProgress(stream, show=show, unit="step ")
        self.stream = stream
        self.pause = _pause_at()
        self.active = show or self.pause is not None

    def __call__(self, p: CheckProgress) -> None:
        if self.pause == (p.round, p.step):
            self.stream.write(f"\ntracker: paused after round {p.round} step {p.step}\n")
            self.stream.flush()
            time.sleep(3600)
        extra = f"{p.sha[:12]}  {p.failed} not applied"
        self.display.update(f"round {p.round}", p.step, p.total, extra)

    def done(self) -> None:
        self.display.done()


def _pause_at() -> tuple[int, int] | None:
    raw = os.environ.get(PAUSE_ENV, "")
    left, _, right = raw.partition(":")
    if not (left.isdigit() and right.isdigit()):
        return None
    return int(left), int(right)


def register(app: typer.Typer) -> None:
    """Add ``check`` to ``app``."""
    app.command("check")(check_command)
