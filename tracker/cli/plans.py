"""``tracker plan``, ``tracker status`` and ``tracker why``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tracker import usecases
from tracker.cli.options import ConfigOpt, JsonOpt, config_of
from tracker.cli.output import out, print_json, print_plan, write
from tracker.cli.text import simulation_text
from tracker.report.posting import posting_text


def plan(
    branch: Annotated[str, typer.Argument(help="Stable branch, e.g. linux-6.12.y.")],
    topic: Annotated[str | None, typer.Option("--topic", "-t", help="Only this topic.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """The fixes a branch needs, in order, with the reason for each."""
    cfg = config_of(config)
    store = usecases.open_store(cfg)
    p = usecases.plan(cfg, store, branch, topic)
    sims = usecases.plan_simulations(store, p)
    if as_json:
        print_json(usecases.plan_dict(p, sims))
    else:
        print_plan(p, sims)


def status(
    query: Annotated[str, typer.Argument(help="A sha, a Message-ID or subject text.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Where one change stands on every configured branch, or where a posting stands."""
    cfg = config_of(config)
    store = usecases.open_store(cfg)
    rep = usecases.posting_status(cfg, store, query)
    reports = [rep] if isinstance(rep, usecases.StatusReport) else list(rep.commits)
    sims = {r.sha: usecases.status_simulations(store, r) for r in reports}
    if as_json:
        if isinstance(rep, usecases.StatusReport):
            print_json({**rep.to_dict(), **usecases.status_dict(rep, sims[rep.sha])})
        else:
            commits = [{**r.to_dict(), **usecases.status_dict(r, sims[r.sha])} for r in reports]
            print_json({"posting": rep.posting.to_dict(), "commits": commits})
        return
    posting = rep.posting
    if posting is not None:
        write(posting_text(posting))
    for r in reports:
        out.print(f"{r.sha[:12]} {r.subject}", markup=False)
        table = Table(show_header=True)
        for col in ("branch", "status", "reason", "simulation"):
            table.add_column(col, overflow="fold")
        for row in r.rows:
            sim = simulation_text(sims[r.sha].get(row.branch)) or ""
            table.add_row(
                row.branch, row.step.status, row.step.reason, sim.removeprefix("simulation: ")
            )
        out.print(table)


def why(
    query: Annotated[str, typer.Argument(help="A sha, a Message-ID or subject text.")],
    branch: Annotated[str, typer.Argument(help="Stable branch, e.g. linux-6.1.y.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """The chain of evidence behind one decision on one branch."""
    cfg = config_of(config)
    rep = usecases.why(cfg, usecases.open_store(cfg), query, branch)
    if as_json:
        print_json(rep.to_dict())
        return
    out.print(f"{rep.step.sha[:12]} on {rep.branch}: {rep.step.status}", markup=False)
    for link in rep.chain:
        out.print(f"  {link.relation}: {link.sha[:12]} {link.subject}", markup=False)
        for e in link.evidence:
            out.print(f"      {e}", markup=False)
