"""CLI for ``tracker check BRANCH [--plan | SHA... | --series MSGID] [--json]``.

cli.py calls :func:`register`; errors raised by :mod:`tracker.check` reach its one error handler
(one line on stderr, the exit code of the error class). The text helpers at the bottom are what
``plan`` and ``status`` print for a stored simulation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tracker import service
from tracker.config import Config, load_config
from tracker.simulations import SimulationSummary

if TYPE_CHECKING:
    from tracker.check import CheckReport, CheckStep

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
    config: ConfigOpt = None,
) -> None:
    """Would the plan (or these commits, or a posted series) apply to the branch head?"""
    chosen = sum((plan, bool(shas), series is not None))
    if chosen != 1:
        raise typer.BadParameter("give exactly one of --plan, SHA... or --series MSGID")
    # Imported here: the simulator (pygit2) and mail parsers cost every other command ~0.3 s.
    from tracker import check

    cfg = _config(ctx, config)
    store = service.open_store(cfg)
    if plan:
        report = check.check_plan(cfg, store, branch)
    elif series is not None:
        report = check.check_series(cfg, store, branch, series)
    else:
        report = check.check_commits(cfg, store, branch, shas or [])
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report_lines(report):
            typer.echo(line)


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
    lines.extend(step_line(s) for s in report.steps)
    return lines


def step_line(step: CheckStep) -> str:
    """``position. id verdict subject | files: ... | needs sha12: evidence``, one line."""
    ident = step.sha[:12] if step.sha else f"<{step.message_id}>"
    parts = [f"{step.position:>3}. {ident} {step.verdict:<15} {step.subject}"]
    if step.files:
        parts.append("files: " + ", ".join(step.files))
    for p in step.prerequisites:
        parts.append(f"needs {p.sha[:12]}: " + ("; ".join(p.evidence) or p.subject))
    if step.result.verdict.value == "conflict" and not step.prerequisites and step.search:
        parts.append(f"no prerequisite: {step.search}")
    if step.result.blocked_by:
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
    if sim.stale:
        text += " (stale: run 'tracker check BRANCH --plan')"
    return text
