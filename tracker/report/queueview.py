"""The dashboard's stable-queue page: each mapped queue in series order, with what left it.

Kept apart from :mod:`tracker.report.dashboard`, which only renders it: :func:`queue_page`
returns the page's data (also written as ``queue.json``), or None when no stable-queue source
is configured.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from tracker.config import Config
from tracker.decide import QUEUE_DROPPED, QUEUE_QUEUED
from tracker.store.db import Store
from tracker.store.models import Source
from tracker.store.queue import QueueEntry, queue_entries


def _entry(e: QueueEntry, pages: set[str]) -> dict[str, Any]:
    d = e.to_dict()
    d["file"] = f"{e.directory}/{e.filename}"
    d["page"] = f"change-{e.upstream_sha}.html" if e.upstream_sha in pages else None
    return d


def queue_page(config: Config, store: Store, pages: set[str]) -> dict[str, Any] | None:
    """Per mapped branch: the queued patches in order, the dropped ones, how many do not link.

    ``pages`` are the changes that have a page of their own (linked from the rows)."""
    sources = [src for src in config.sources if src.kind == "stable-queue"]
    if not sources:
        return None
    queues: list[dict[str, Any]] = []
    with store.session() as s:
        for src in sources:
            raw = s.scalar(select(Source.cursor).where(Source.name == src.name))
            try:
                head = json.loads(raw or "{}").get("head")
            except (ValueError, AttributeError):
                head = None
            for branch, directory in src.queues:
                version = config.branch(branch).version
                queued = [
                    _entry(e, pages)
                    for e in queue_entries(s, version, (QUEUE_QUEUED,))
                    if e.source == src.name and e.directory == directory
                ]
                dropped = [
                    _entry(e, pages)
                    for e in queue_entries(s, version, (QUEUE_DROPPED,))
                    if e.source == src.name and e.directory == directory
                ]
                queues.append(
                    {
                        "source": src.name,
                        "branch": branch,
                        "series": version,
                        "directory": directory,
                        "head": head,
                        "queued": queued,
                        "dropped": dropped,
                        "unlinked": sum(1 for e in queued if not e["upstream_sha"]),
                    }
                )
    return {"kind": "queue", "queues": queues}
