"""The stable review series made from a stable-queue clone's ``series``, in the queue's order.

Each mail carries the queue file as the stable team will apply it: its author, its message
(without the upstream line, which the template writes as ``[ Upstream commit <sha> ]``) and its
diffstat and diff. The files are read from the clone by the blob ids the last sync recorded, so
the series is the one tracker decided over; a sync must have run since the queue changed.
"""

from __future__ import annotations

import re

from tracker.config import BranchConfig, SourceConfig
from tracker.errors import ConfigError, GitError, RepositoryError, SourceError, UnknownCommitError
from tracker.gitio import GitRepo
from tracker.ingest.stablequeue import parse_queue_file
from tracker.report import queries as q
from tracker.report.email import MailError
from tracker.report.mails import MailContext, ReviewItem
from tracker.store.queue import queue_entries

_UPSTREAM = re.compile(
    r"^(?:commit [0-9a-fA-F]{40} upstream\.?|\[ *[Uu]pstream commit [0-9a-fA-F]{40} *\])\s*$",
    re.MULTILINE,
)


def queue_source(ctx: MailContext, b: BranchConfig) -> SourceConfig | None:
    """The first stable-queue source that maps ``b`` to a queue directory."""
    for src in ctx.config.sources:
        if src.kind == "stable-queue" and any(name == b.name for name, _ in src.queues):
            return src
    return None


def queue_review_items(
    ctx: MailContext, b: BranchConfig, *, required: bool
) -> tuple[list[ReviewItem], str, str | None] | None:
    """(items in series order, diffstat of them all, latest stable tag), or None when there is
    no queue to take them from and ``required`` is False."""
    src = queue_source(ctx, b)
    if src is None or src.path is None:
        if required:
            raise ConfigError(f"no stable-queue source maps {b.name}: add one to [[sources]]")
        return None
    with ctx.store.session() as s:
        entries = [e for e in queue_entries(s, b.version) if e.source == src.name]
        latest = q.latest_stable_tag(s, b.name)
    if not entries:
        if required:
            raise UnknownCommitError(
                f"the {b.version} queue of source '{src.name}' holds no patches (synced?): "
                "nothing to review"
            )
        return None
    missing = [f"{e.directory}/{e.filename}" for e in entries if e.blob is None]
    if missing:
        raise MailError(
            f"{entries[0].directory}/series names files the clone does not have: "
            f"{', '.join(missing)}; fix the queue (or --from branch)"
        )
    try:
        repo = GitRepo(src.path)
        blobs = repo.blobs([e.blob for e in entries if e.blob])
    except (RepositoryError, GitError) as exc:
        raise SourceError(f"source '{src.name}': {exc}") from None
    items: list[ReviewItem] = []
    raw_patches: list[bytes] = []
    for e in entries:
        data = blobs.get(e.blob or "")
        if data is None:
            raise SourceError(
                f"source '{src.name}': {e.directory}/{e.filename} changed since the last sync "
                f"(run 'tracker sync --source {src.name}')"
            )
        f = parse_queue_file(data)
        body = _UPSTREAM.sub("", f.message).strip("\n")
        raw_patches.append(f.patch.encode("utf-8", "surrogateescape"))
        items.append(
            ReviewItem(
                subject=f.subject or e.subject,
                author=f.author or e.author or "unknown",
                upstream_sha=e.upstream_sha,
                message_body=re.sub(r"\n{3,}", "\n\n", body),
                patch=f.patch,
                commit=e.upstream_sha,
            )
        )
    return items, repo.apply_stat(b"".join(raw_patches)), latest
