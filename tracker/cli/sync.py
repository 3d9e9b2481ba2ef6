"""``tracker sync`` and ``tracker reparse``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tracker import usecases
from tracker.cli.options import ConfigOpt, config_of
from tracker.cli.output import out
from tracker.config import Config
from tracker.errors import SourceError
from tracker.lock import run_lock
from tracker.progress import LineProgress


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
    cfg = config_of(config)
    with run_lock(cfg):
        _sync(cfg, fetch, source, no_git, quiet)


def _sync(cfg: Config, fetch: bool, source: str | None, no_git: bool, quiet: bool) -> None:
    store = usecases.open_store(cfg)
    progress = LineProgress(sys.stderr, show=not quiet and sys.stderr.isatty())
    try:
        reports = usecases.sync_sources(cfg, store, progress, source) if cfg.sources else []
        stats = None
        if not no_git and source is None:
            refetch = fetch or any(r.fetch_shas for r in reports)
            stats = usecases.sync(cfg, store, progress, fetch=refetch)
        # Every branch's plan decided and stored once per sync: status then reads them.
        progress("plans", usecases.store_plans(cfg, store))
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


def reparse(config: ConfigOpt = None) -> None:
    """Re-run the parsers over every stored document (after a tracker upgrade), no fetching."""
    cfg = config_of(config)
    c = usecases.reparse(cfg, usecases.open_store(cfg))
    out.print(
        f"reparsed {c.documents} documents: {c.messages} messages, {c.stable_events} stable "
        f"events, {c.mm_states} -mm states, {len(c.errors)} errors",
        markup=False,
    )
