"""Use cases ``sync`` and ``reparse``: bring the store up to date with git and every mail or
feed source, or rebuild what was parsed from the stored documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from tracker.config import Config
from tracker.errors import ConfigError
from tracker.store.db import Store
from tracker.store.models import Branch, Document

if TYPE_CHECKING:
    from tracker.ingest.gitlog import Progress, SyncStats
    from tracker.ingest.mailstore import IngestCounts
    from tracker.ingest.sources import SourceReport

# The ingest modules (GitPython, b4, the mail parsers) are imported inside the sync use cases:
# plan, status and why are what a maintainer runs interactively, and those imports alone
# cost them half a second.


def sync(
    config: Config, store: Store, progress: Progress | None = None, *, fetch: bool = False
) -> SyncStats:
    from tracker.ingest.gitlog import GitSync
    from tracker.ingest.identity import link_identities
    from tracker.ingest.queuesync import link_queue

    mark_stale_runs(store)
    stats = GitSync(config, store, progress).run(fetch=fetch)
    # Mail synced before git (the CLI reads sources first so that cgit feeds can ask git to
    # fetch) is linked to the commits now known: the order of sources in a sync, or of syncs,
    # must not change what is linked.
    with store.session() as s:
        link_identities(s)
        # Queue patches found by patch-id only: their commits (and patch-ids) are known now.
        link_queue(s)
    if stats.total():
        store.refresh_statistics()
    return stats


def mark_stale_runs(store: Store) -> int:
    """Runs still `running` belong to a process that died (SIGKILL, power loss).

    Callers hold the run lock, so no live run can be among them. Returns how many were marked.
    """
    from sqlalchemy import update

    from tracker.store.models import SyncRun

    with store.session() as s:
        res = s.execute(
            update(SyncRun)
            .where(SyncRun.status == "running")
            .values(status="killed", error="the run ended without recording a result")
        )
        return int(getattr(res, "rowcount", 0) or 0)


def sync_sources(
    config: Config, store: Store, progress: Progress | None = None, only: str | None = None
) -> list[SourceReport]:
    """Mail and feed sources, then identity links; a cgit feed naming unknown commits makes
    the next git sync fetch (``fetch_shas`` in the reports)."""
    from tracker.ingest.sources import SourceSync

    if only is not None and all(src.name != only for src in config.sources):
        known = ", ".join(src.name for src in config.sources) or "none configured"
        raise ConfigError(f"unknown source '{only}' (configured: {known})")
    mark_stale_runs(store)
    reports = SourceSync(config, store, progress).run(only)
    if any(r.counts.messages or r.counts.commits or r.counts.stable_events for r in reports):
        store.refresh_statistics()
    return reports


def reparse(config: Config, store: Store) -> IngestCounts:
    """Rebuild every mail-derived row from the stored raw documents, without fetching."""
    from tracker.ingest.mailstore import IngestCounts, MailStore, clear_derived, document_bytes
    from tracker.ingest.sources import list_of, settle_and_link
    from tracker.store.models import Source

    total = IngestCounts()
    configured = {src.name: list_of(src) for src in config.sources}
    with store.session() as s:
        clear_derived(s)
        # No sync run records a reparse: the stored plans' digests cannot see it.
        s.execute(update(Branch).values(plan_inputs=None))
        ids = list(s.scalars(select(Document.id).order_by(Document.id)))
        lists = {
            sid: configured.get(name) for sid, name in s.execute(select(Source.id, Source.name))
        }
    for i in range(0, len(ids), 200):
        with store.session() as s:
            for doc in s.scalars(select(Document).where(Document.id.in_(ids[i : i + 200]))):
                doc.error = None
                name = lists.get(doc.source_id) if doc.source_id is not None else None
                ms = MailStore(s, config.upstream_patterns, doc.source_id, name, config.stable_list)
                total.add(ms.ingest(doc, document_bytes(doc)))
    settle_and_link(store)
    # The stable queue keeps no documents: its files are parsed again from the local clone.
    queues = [src for src in config.sources if src.kind == "stable-queue"]
    if queues:
        from tracker.ingest.queuesync import forget_reads
        from tracker.ingest.sources import SourceSync

        with store.session() as s:
            forget_reads(s, [src.name for src in queues])
        sync = SourceSync(config, store)
        for src in queues:
            rep = sync.sync_one(src)
            total.documents += rep.counts.documents
            total.errors += rep.counts.errors + ([rep.failed] if rep.failed else [])
    return total
