"""Stored simulation results as ``plan``, ``status`` and their JSON show them.

Kept apart from :mod:`tracker.usecases.check` (which runs the simulator) so that reading a plan
does not import the simulator, pygit2 or the mail parsers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from tracker.decide import Plan
from tracker.report.queries import simulations as stored_simulation_data
from tracker.store.db import Store
from tracker.store.models import Branch
from tracker.usecases.plans import StatusReport


@dataclass(frozen=True)
class SimulationSummary:
    """What plan/status show of a stored StepResult: verdict, conflicting files, prerequisites.

    ``stale`` is True when the branch head or the step's place in the plan changed since the
    simulation ran (run ``tracker check BRANCH --plan`` again).
    """

    verdict: str
    files: tuple[str, ...]
    prerequisites: tuple[str, ...]
    detail: str
    stale: bool
    checked_at: str | None = None
    # earlier steps this one is blocked by: (position or None, sha)
    blocked_by: tuple[tuple[int | None, str], ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "files": list(self.files),
            "prerequisites": list(self.prerequisites),
            "detail": self.detail,
            "stale": self.stale,
            "checked_at": self.checked_at,
            "blocked_by": [{"position": p, "sha": sha} for p, sha in self.blocked_by],
        }


def summarize(
    data: Mapping[str, object],
    *,
    head: str | None = None,
    position: int | None = None,
) -> SimulationSummary:
    """Read a stored StepResult JSON object defensively (it may predate these extra keys)."""
    conflicts = data.get("conflicts")
    files = sorted(
        {str(c["path"]) for c in conflicts if isinstance(c, dict) and c.get("path")}
        if isinstance(conflicts, list)
        else set()
    )
    pre = data.get("prerequisites")
    commits: list[str] = []
    if isinstance(pre, dict) and pre.get("found") and isinstance(pre.get("commits"), list):
        commits = [str(c) for c in pre["commits"]]
    stale = (head is not None and data.get("head") != head) or (
        position is not None and data.get("position") != position
    )
    checked = data.get("checked_at")
    return SimulationSummary(
        blocked_by=_blocked(data),
        verdict=str(data.get("verdict", "unknown")),
        files=tuple(files),
        prerequisites=tuple(commits),
        detail=str(data.get("detail") or ""),
        stale=stale,
        checked_at=str(checked) if checked is not None else None,
    )


def _blocked(data: Mapping[str, object]) -> tuple[tuple[int | None, str], ...]:
    shas = data.get("blocked_by")
    if not isinstance(shas, list):
        return ()
    raw = data.get("blocked_positions")
    positions = list(raw) if isinstance(raw, list) else []
    out: list[tuple[int | None, str]] = []
    for i, sha in enumerate(shas):
        pos = positions[i] if i < len(positions) else None
        out.append((pos if isinstance(pos, int) else None, str(sha)))
    return tuple(out)


def plan_simulations(store: Store, plan: Plan) -> dict[str, SimulationSummary]:
    """Stored simulation per step of ``plan`` (steps never simulated are absent)."""
    with store.session() as s:
        stored = stored_simulation_data(s, plan.branch)
        head = s.scalar(select(Branch.head_sha).where(Branch.name == plan.branch))
    # Position, not the whole sequence, decides staleness: a --topic plan keeps the full plan's
    # positions but lists only some steps.
    return {
        st.sha: summarize(data, head=head, position=st.position)
        for st in plan.steps
        if (data := stored.get(st.sha)) is not None
    }


def status_simulations(store: Store, report: StatusReport) -> dict[str, SimulationSummary]:
    """Stored simulation of ``report.sha`` per branch (branches without one are absent)."""
    out: dict[str, SimulationSummary] = {}
    with store.session() as s:
        for row in report.rows:
            data = stored_simulation_data(s, row.branch).get(report.sha)
            if data is None:
                continue
            head = s.scalar(select(Branch.head_sha).where(Branch.name == row.branch))
            out[row.branch] = summarize(data, head=head, position=row.step.position)
    return out


def plan_dict(plan: Plan, sims: Mapping[str, SimulationSummary]) -> dict[str, object]:
    """``Plan.to_dict()`` with a ``simulation`` object (or null) on every step."""
    return {
        "branch": plan.branch,
        "base": plan.base,
        "steps": [_with_sim(st.to_dict(), sims.get(st.sha)) for st in plan.steps],
    }


def status_dict(report: StatusReport, sims: Mapping[str, SimulationSummary]) -> dict[str, object]:
    """``StatusReport.to_dict()`` with a ``simulation`` object (or null) per branch."""
    return {
        "sha": report.sha,
        "subject": report.subject,
        "branches": [
            _with_sim({"branch": r.branch, **r.step.to_dict()}, sims.get(r.branch))
            for r in report.rows
        ],
    }


def _with_sim(d: dict[str, object], sim: SimulationSummary | None) -> dict[str, object]:
    d["simulation"] = sim.to_dict() if sim is not None else None
    return d
