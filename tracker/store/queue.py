"""Read the stable-queue rows for plans, status, mails and the dashboard (nothing here writes).

Queued and dropped patches are few (a queue holds a few hundred); released ones are read only
for the commits asked about, since ``releases/`` of a long-lived series holds thousands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.decide import QUEUE_QUEUED, QUEUE_RELEASED, Prerequisite, QueueSlot
from tracker.store.models import Commit, Edge, QueuePatch
from tracker.store.queries import chunked


def _slot(r: QueuePatch) -> QueueSlot:
    return QueueSlot(
        series=r.series,
        state=r.state,
        file=f"{r.directory}/{r.filename}",
        position=r.position if r.state == QUEUE_QUEUED else None,
        total=r.total if r.state == QUEUE_QUEUED else None,
        release=r.release,
        head=r.head,
        dropped_head=r.dropped_head,
        at=r.changed_at.isoformat() if r.changed_at else None,
    )


def has_queue(s: Session) -> bool:
    return s.scalar(select(QueuePatch.id).limit(1)) is not None


def load_queue(s: Session, shas: Iterable[str]) -> dict[str, tuple[QueueSlot, ...]]:
    """upstream sha -> queue slots: every queued and dropped patch, and the released ones of
    ``shas``. Queued first, then by series and position."""
    if not has_queue(s):
        return {}
    rows = list(
        s.scalars(
            select(QueuePatch).where(
                QueuePatch.upstream_sha.is_not(None), QueuePatch.state != QUEUE_RELEASED
            )
        )
    )
    for chunk in chunked(sorted(set(shas))):
        rows += s.scalars(
            select(QueuePatch).where(
                QueuePatch.upstream_sha.in_(chunk), QueuePatch.state == QUEUE_RELEASED
            )
        )
    out: dict[str, list[QueueSlot]] = {}
    seen: set[int] = set()
    for r in rows:
        if r.id in seen or r.upstream_sha is None:
            continue
        seen.add(r.id)
        out.setdefault(r.upstream_sha, []).append(_slot(r))
    for slots in out.values():
        slots.sort(key=lambda q: (q.state != QUEUE_QUEUED, q.series, q.position or 0, q.file))
    return {k: tuple(v) for k, v in out.items()}


def load_stable_deps(
    s: Session, queue: dict[str, tuple[QueueSlot, ...]]
) -> dict[str, tuple[Prerequisite, ...]]:
    """For each queued fix, the commits Stable-dep-of: lines name as its prerequisite: lines in
    the queue's own patches and in the backports already on stable branches."""
    queued = sorted(
        sha for sha, slots in queue.items() if any(q.state == QUEUE_QUEUED for q in slots)
    )
    if not queued:
        return {}
    out: dict[str, list[Prerequisite]] = {}
    for r in s.scalars(select(QueuePatch).where(QueuePatch.stable_dep_of != "[]")):
        if r.upstream_sha is None:
            continue
        for ref in _refs(r.stable_dep_of):
            for fix in _matching(queued, ref):
                ev = f"{r.directory}/{r.filename} says Stable-dep-of: {ref[:12]}"
                out.setdefault(fix, []).append(Prerequisite(r.upstream_sha, fix, ev))
    for chunk in chunked(queued):
        for src, dst, upstream in s.execute(
            select(Edge.src, Edge.dst, Commit.upstream_sha)
            .join(Commit, Commit.sha == Edge.src)
            .where(Edge.kind == "stable-dep-of", Edge.dst.in_(chunk))
        ):
            if dst and upstream:
                ev = f"stable commit {src[:12]} ({upstream[:12]} upstream) says Stable-dep-of: it"
                out.setdefault(dst, []).append(Prerequisite(upstream, dst, ev))
    return {k: tuple(v) for k, v in out.items()}


def _refs(raw: str) -> list[str]:
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    return [str(d[0]).lower() for d in data if isinstance(d, list) and d]


def _matching(shas: Sequence[str], prefix: str) -> list[str]:
    hits = [sha for sha in shas if sha.startswith(prefix)]
    return hits if len(hits) == 1 else []


@dataclass(frozen=True)
class QueueEntry:
    """One patch of a queue as the dashboard and the review mail show it."""

    series: str
    directory: str
    filename: str
    state: str
    position: int | None
    total: int | None
    subject: str
    author: str | None
    upstream_sha: str | None
    link_rule: str | None
    blob: str | None
    head: str
    dropped_head: str | None
    release: str | None
    error: str | None
    source: str

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def queue_entries(
    s: Session, series: str, states: Sequence[str] = (QUEUE_QUEUED,)
) -> list[QueueEntry]:
    """The patches of ``series`` in these states, queued ones in series order."""
    from tracker.store.models import Source

    rows = s.execute(
        select(QueuePatch, Source.name)
        .join(Source, Source.id == QueuePatch.source_id)
        .where(QueuePatch.series == series, QueuePatch.state.in_(list(states)))
        .order_by(QueuePatch.position, QueuePatch.directory, QueuePatch.filename)
    ).all()
    return [
        QueueEntry(
            series=r.series,
            directory=r.directory,
            filename=r.filename,
            state=r.state,
            position=r.position,
            total=r.total,
            subject=r.subject,
            author=r.author,
            upstream_sha=r.upstream_sha,
            link_rule=r.link_rule,
            blob=r.blob,
            head=r.head,
            dropped_head=r.dropped_head,
            release=r.release,
            error=r.error,
            source=name,
        )
        for r, name in rows
    ]


def queue_histories(
    s: Session, shas: Sequence[str]
) -> dict[str, list[tuple[datetime | None, str, str, str, str]]]:
    """(when, kind, where, text, file) for each queue row of each upstream commit (timelines),
    read in one query per chunk of commits."""
    out: dict[str, list[tuple[datetime | None, str, str, str, str]]] = {}
    # Per commit in the order of the (upstream_sha, series) index a one-commit query scans.
    stmt = select(QueuePatch).order_by(QueuePatch.series, QueuePatch.id)
    for chunk in chunked(shas):
        for r in s.scalars(stmt.where(QueuePatch.upstream_sha.in_(chunk))):
            if r.upstream_sha is not None:
                out.setdefault(r.upstream_sha, []).append(_history_entry(r))
    return out


def _history_entry(r: QueuePatch) -> tuple[datetime | None, str, str, str, str]:
    file = f"{r.directory}/{r.filename}"
    if r.state == QUEUE_QUEUED:
        text = f"queued for {r.series} (position {r.position} of {r.total}) as {file}"
    elif r.state == QUEUE_RELEASED:
        text = f"released in {r.release} (stable-queue {file})"
    else:
        head = (r.dropped_head or r.head)[:12]
        text = f"dropped from the {r.series} queue at stable-queue {head} ({file})"
    return (r.changed_at, f"queue-{r.state}", r.series, text, file)
