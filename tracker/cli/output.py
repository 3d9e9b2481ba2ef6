"""Writing to the terminal: the console, plain text and JSON, and the plan's text."""

from __future__ import annotations

import json

from rich.console import Console

from tracker.cli.text import simulation_text
from tracker.decide import ACTIONABLE, Plan
from tracker.usecases.simulation_view import SimulationSummary

out = Console(highlight=False, soft_wrap=True)


def write(text: str) -> None:
    out.file.write(text)
    out.file.flush()


def print_json(data: object) -> None:
    write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def print_plan(p: Plan, sims: dict[str, SimulationSummary] | None = None) -> None:
    # One write of plain text: an old branch has ten thousand decisions, and a rich print per
    # line took longer than deciding them.
    todo = sum(1 for s in p.steps if s.status in ACTIONABLE)
    lines = [f"{p.branch} (base {p.base}): {todo} to backport, {len(p.steps)} fixes considered"]
    for st in p.steps:
        pos = f"{st.position:>2}." if st.position else "   "
        key = st.sha[:12] if len(st.sha) == 40 else st.sha
        lines.append(f"  {pos} {key} {st.status:<16} [{st.topic}] {st.subject}")
        reason = st.reason
        if st.order_reason and st.order_reason != "mainline order":
            reason += f" (placed {st.order_reason})"
        lines.append(f"{'':19}{reason}")
        sim = simulation_text((sims or {}).get(st.sha))
        if sim:
            lines.append(f"{'':19}{sim}")
    lines.append("")
    write("\n".join(lines) + "\n")
