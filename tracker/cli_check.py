"""CLI for ``tracker check BRANCH [--plan | SHA... | --series MSGID] [--json]``.

cli.py calls :func:`register`; errors raised by :mod:`tracker.check` reach its one error handler
(one line on stderr, the exit code of the error class). The text helpers at the bottom are what
``plan`` and ``status`` print for a stored simulation.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from tracker import service
from tracker.config import Config, load_config
from tracker.progress import LineProgress
from tracker.simulations import SimulationSummary

if TYPE_CHECKING:
    from tracker.check import CheckProgress, CheckReport, CheckStep

# Test hook: "R:K" makes the progress callback announce itself on stderr and sleep after step K
# of round R, so a test can kill a run at a known point (tests/test_check_plan.py).
PAUSE_ENV = "TRACKER_CHECK_PAUSE_AT"

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (else $TRACKER_CONFIG, ./tracker.toml, XDG)."),
]


def _config(ctx: typer.Context, local: Path | None) -> Config:
    # cli.py's top-level callback takes --config too; honour it when the command has none.
    root = ctx.find_root().params.get("config")
    return load_config(local or (root if isinstance(root, Path | str) else None))


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
    # Imported here: the simulator (pygit2) and mail parsers cost every other command ~0.3 s.
    from tracker import check

    cfg = _config(ctx, config)
    store = service.open_store(cfg)
    limits = check.search_limits(
        cfg, prerequisites=prerequisites, step_budget=step_budget, run_budget=run_budget
    )
    shown = _Progress(sys.stderr, show=not quiet and sys.stderr.isatty())
    progress = shown if shown.active else None
    try:
        if plan:
            report = check.check_plan(cfg, store, branch, limits=limits, progress=progress)
        elif series is not None:
            report = check.check_series(cfg, store, branch, series)
        else:
            report = check.check_commits(
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


# -- text ------------------------------------------------------------------------------------


def report_lines(report: CheckReport) -> list[str]:
    """A header, one line per added prerequisite, then one line per step."""
    counts = ", ".join(f"{n} {v}" for v, n in report.counts().items() if n)
    what = report.mode if report.message_id is None else f"series <{report.message_id}>"
    rounds = f", {report.rounds} round(s)" if report.mode == "plan" else ""
    lines = [
        f"{report.branch} at {report.head[:12]} ({what}{rounds}): "
        f"{len(report.steps)} step(s), {counts or 'nothing to simulate'}"
    ]
    if not report.converged:
        lines.append("  not converged: prerequisites were still being found; run check again")
    for a in report.added:
        lines.append(
            f"  added prerequisite {a.prerequisite[:12]} before {a.fix[:12]}: {a.evidence}"
        )
    if report.stats:
        lines.append("  " + stats_line(report.stats))
    for st in report.steps:
        lines.append(step_line(st))
        if st.result.verdict.value == "manual":
            lines.extend(hunk_lines(st))
    return lines


def stats_line(stats: Mapping[str, object]) -> str:
    """Where the time went: ``time: 12.3 s (simulation 8.1 s, search 3.9 s: 14 blame calls
    2.2 s), prerequisites bounded``."""

    def sec(key: str) -> str:
        value = stats.get(key)
        return f"{value:.1f} s" if isinstance(value, int | float) else "?"

    return (
        f"time: {sec('elapsed_seconds')} (simulation {sec('simulate_seconds')}, search "
        f"{sec('search_seconds')}: {stats.get('blame_calls', 0)} blame calls "
        f"{sec('blame_seconds')}), prerequisites {stats.get('mode', '?')}"
    )


def hunk_lines(step: CheckStep) -> list[str]:
    """A manual step's conflicting hunks: where, what the patch expects, what the branch has."""
    out: list[str] = []
    for h in step.result.hunks:
        out.append(f"       {h.text()}")
        for label, text, more in (
            ("patch expects", h.expects, h.expects_more),
            ("branch has   ", h.has, h.has_more),
        ):
            if not text and h.ours is None and label.startswith("branch"):
                out.append(f"         {label}: (no such file)")
            for line in text:
                out.append(f"         {label}| {line}")
            if more:
                out.append(f"         {label}| ... {more} more line(s)")
    return out


def step_line(step: CheckStep) -> str:
    """``position. id verdict subject | files: ... | needs sha12: evidence``, one line."""
    ident = step.sha[:12] if step.sha else f"<{step.message_id}>"
    parts = [f"{step.position:>3}. {ident} {step.verdict:<15} {step.subject}"]
    if step.files:
        parts.append("files: " + ", ".join(step.files))
    for p in step.prerequisites:
        parts.append(f"needs {p.sha[:12]}: " + ("; ".join(p.evidence) or p.subject))
    failed = step.result.verdict.value in ("conflict", "manual")
    if failed and not step.prerequisites and step.search:
        parts.append(f"no prerequisite: {step.search}")
    if step.blocked:
        parts.append("blocked by " + ", ".join(f"step {p} ({b[:12]})" for p, b in step.blocked))
    elif step.result.blocked_by:
        parts.append("blocked by " + ", ".join(b[:12] for b in step.result.blocked_by))
    return " | ".join(parts)


def simulation_text(sim: SimulationSummary | None) -> str | None:
    """One line for a plan/status row: ``simulation: conflict in a.c; needs 1234abcd5678``."""
    if sim is None:
        return None
    text = f"simulation: {sim.verdict}"
    if sim.files:
        text += " in " + ", ".join(sim.files)
    if sim.prerequisites:
        text += "; needs " + ", ".join(p[:12] for p in sim.prerequisites)
    if sim.blocked_by:
        text += "; blocked by " + ", ".join(
            f"step {p} ({sha[:12]})" if p is not None else sha[:12] for p, sha in sim.blocked_by
        )
    if sim.stale:
        text += " (stale: run 'tracker check BRANCH --plan')"
    return text
