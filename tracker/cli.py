"""Command line: arguments, output formatting, and the one place errors become exit codes."""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.table import Table

from tracker import service, simulations
from tracker.cli_check import register as register_check
from tracker.cli_check import simulation_text
from tracker.cli_reports import register as register_reports
from tracker.config import Config, load_config, xdg_config_home
from tracker.errors import ConfigError, InterruptedRun, SourceError, TrackerError, classify
from tracker.lock import run_lock
from tracker.plan import ACTIONABLE, Plan
from tracker.progress import LineProgress
from tracker.report.posting import posting_text
from tracker.simulations import SimulationSummary

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help texts name config tables like [email]; they are text, not rich markup.
    rich_markup_mode=None,
    help="tracker: follow kernel fixes from the mailing list to every stable branch.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(db_app, name="db")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

EXIT_INTERNAL = 70

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (else $TRACKER_CONFIG, ./tracker.toml, XDG)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

_state: dict[str, Path | None] = {"config": None}


@app.callback()
def _main(config: ConfigOpt = None) -> None:
    _state["config"] = config


def _config(local: Path | None = None) -> Config:
    return load_config(local or _state["config"])


@app.command()
def init(
    path: Annotated[Path | None, typer.Argument(help="Where to write the config.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starting configuration (from config.example.toml)."""
    from tracker.paths import EXAMPLE_CONFIG

    target = path or xdg_config_home() / "tracker" / "config.toml"
    if target.exists() and not force:
        raise ConfigError("already exists (use --force to overwrite)", path=str(target))
    example = EXAMPLE_CONFIG
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    load_config(target)
    out.print(f"wrote {target}; edit the repository paths, then run 'tracker sync'")


@app.command()
def sync(
    config: ConfigOpt = None,
    fetch: Annotated[bool, typer.Option("--fetch", help="git fetch configured remotes.")] = False,
    source: Annotated[
        str | None, typer.Option("--source", help="Only this mail/feed source (no git).")
    ] = None,
    no_git: Annotated[bool, typer.Option("--no-git", help="Skip the git repositories.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Bring the store up to date with git and every source (incremental; safe from cron)."""
    cfg = _config(config)
    with run_lock(cfg):
        _sync(cfg, fetch, source, no_git, quiet)


def _sync(cfg: Config, fetch: bool, source: str | None, no_git: bool, quiet: bool) -> None:
    store = service.open_store(cfg)
    progress = LineProgress(sys.stderr, show=not quiet and sys.stderr.isatty())
    try:
        reports = service.sync_sources(cfg, store, progress, source) if cfg.sources else []
        stats = None
        if not no_git and source is None:
            refetch = fetch or any(r.fetch_shas for r in reports)
            stats = service.sync(cfg, store, progress, fetch=refetch)
    finally:
        progress.done()
    # Summaries once the display has ended its last line: they start on a line of their own.
    if stats is not None:
        branches = ", ".join(f"{k} +{v}" for k, v in stats.branch_commits.items())
        out.print(
            f"git: {stats.mainline_commits} mainline commits, {stats.tags} tags, "
            f"branches: {branches or 'none'}, {stats.patch_id_links} backports found by "
            f"patch-id, {stats.edges} edges",
            markup=False,
        )
    failed = []
    for r in reports:
        c = r.counts
        line = (
            f"{r.name}: {c.documents} documents ({c.duplicates} unchanged, {r.not_modified} not "
            f"modified), {c.messages} messages, {c.stable_events} stable events, "
            f"{c.mm_states} -mm states, {c.commits} feed commits, {len(c.errors)} errors"
        )
        out.print(line, markup=False)
        for e in c.errors[:3]:
            out.print(f"  error: {e}", markup=False)
        if r.failed:
            failed.append(f"{r.name}: {r.failed}")
    if failed:
        raise SourceError("source(s) failed (the others synced): " + "; ".join(failed))


@app.command()
def reparse(config: ConfigOpt = None) -> None:
    """Re-run the parsers over every stored document (after a tracker upgrade), no fetching."""
    cfg = _config(config)
    c = service.reparse(cfg, service.open_store(cfg))
    out.print(
        f"reparsed {c.documents} documents: {c.messages} messages, {c.stable_events} stable "
        f"events, {c.mm_states} -mm states, {len(c.errors)} errors",
        markup=False,
    )


def _print_plan(p: Plan, sims: dict[str, SimulationSummary] | None = None) -> None:
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
    _write("\n".join(lines) + "\n")


def _write(text: str) -> None:
    out.file.write(text)
    out.file.flush()


def _print_json(data: object) -> None:
    _write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@app.command()
def plan(
    branch: Annotated[str, typer.Argument(help="Stable branch, e.g. linux-6.12.y.")],
    topic: Annotated[str | None, typer.Option("--topic", "-t", help="Only this topic.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """The fixes a branch needs, in order, with the reason for each."""
    cfg = _config(config)
    store = service.open_store(cfg)
    p = service.plan(cfg, store, branch, topic)
    sims = simulations.plan_simulations(store, p)
    if as_json:
        _print_json(simulations.plan_dict(p, sims))
    else:
        _print_plan(p, sims)


@app.command()
def status(
    query: Annotated[str, typer.Argument(help="A sha, a Message-ID or subject text.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Where one change stands on every configured branch, or where a posting stands."""
    cfg = _config(config)
    store = service.open_store(cfg)
    rep = service.posting_status(cfg, store, query)
    reports = [rep] if isinstance(rep, service.StatusReport) else list(rep.commits)
    sims = {r.sha: simulations.status_simulations(store, r) for r in reports}
    if as_json:
        if isinstance(rep, service.StatusReport):
            _print_json({**rep.to_dict(), **simulations.status_dict(rep, sims[rep.sha])})
        else:
            commits = [{**r.to_dict(), **simulations.status_dict(r, sims[r.sha])} for r in reports]
            _print_json({"posting": rep.posting.to_dict(), "commits": commits})
        return
    posting = rep.posting
    if posting is not None:
        _write(posting_text(posting))
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


@app.command()
def why(
    query: Annotated[str, typer.Argument(help="A sha, a Message-ID or subject text.")],
    branch: Annotated[str, typer.Argument(help="Stable branch, e.g. linux-6.1.y.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """The chain of evidence behind one decision on one branch."""
    cfg = _config(config)
    rep = service.why(cfg, service.open_store(cfg), query, branch)
    if as_json:
        _print_json(rep.to_dict())
        return
    out.print(f"{rep.step.sha[:12]} on {rep.branch}: {rep.step.status}", markup=False)
    for link in rep.chain:
        out.print(f"  {link.relation}: {link.sha[:12]} {link.subject}", markup=False)
        for e in link.evidence:
            out.print(f"      {e}", markup=False)


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to build the sample world.")
    ] = Path("demo-world"),
) -> None:
    """Build the offline sample world, sync it and print the plan of every branch."""
    from tracker.sampleworld.demo import prepare_demo

    cfg_path = prepare_demo(directory)
    out.print(f"sample world built in {directory}/linux; config {cfg_path}")
    cfg = load_config(cfg_path)
    store = service.open_store(cfg)
    stats = service.sync(cfg, store)
    reports = service.sync_sources(cfg, store)
    out.print(
        f"synced {stats.mainline_commits} mainline commits, "
        f"{sum(stats.branch_commits.values())} stable commits, {stats.tags} tags, "
        f"{sum(r.counts.messages for r in reports)} mails"
    )
    from tracker import check  # the simulator: only the commands that simulate load it

    for b in cfg.branches:
        # Simulate each plan in memory first, so prerequisites the simulator finds are in it.
        check.check_plan(cfg, store, b.name)
        p = service.plan(cfg, store, b.name)
        _print_plan(p, simulations.plan_simulations(store, p))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Migrate the database to the latest schema (also done automatically on first use)."""
    from tracker.store.db import current_revision

    cfg = _config(config)
    store = service.open_store(cfg)
    out.print(f"database at revision {current_revision(store.engine)}")


register_reports(app)
register_check(app)


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


if __name__ == "__main__":
    main()
