"""Text lines for what ``check``, ``plan`` and ``status`` print about simulations: a check
report (header, added prerequisites, one line per step, a manual step's hunks) and the one-line
summary of a stored simulation. Pure formatting: strings in, strings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracker.usecases.check import CheckReport, CheckStep
    from tracker.usecases.simulation_view import SimulationSummary


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
    (9 beside the simulation), waited 2.2 s), prerequisites bounded``."""

    def sec(key: str) -> str:
        value = stats.get(key)
        return f"{value:.1f} s" if isinstance(value, int | float) else "?"

    return (
        f"time: {sec('elapsed_seconds')} (simulation {sec('simulate_seconds')}, search "
        f"{sec('search_seconds')}: {stats.get('blame_calls', 0)} blame calls "
        f"({stats.get('blame_background', 0)} beside the simulation), waited "
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
