"""Review trailers (Acked-by, Reviewed-by, Tested-by) and which patch they belong to.

A reviewer answers a patch (or its cover letter) with a trailer line; a maintainer applying the
series adds it to the patch it answers, and a trailer given on a cover letter to every patch of
that posting, as b4 does. Quoted lines (``> Acked-by: ...``) are someone else's words and are
skipped.

Each message keeps the trailers it wrote itself (rows whose ``note`` is its own Message-ID); the
pass here copies a reply's trailers onto the patches it answers, with the reply's Message-ID as
``note``. Copies are rebuilt per reply, so a reply, or the patch it answers, arriving in any
order or in any sync gives the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.ingest.mailparse import Review
from tracker.store.models import Message, Trailer
from tracker.store.postings import REVIEW_KINDS
from tracker.store.queries import chunked, insert_ignore

# A reply's trailer applies to the nearest posted message above it in the thread; a deep
# discussion is followed this far up and no further.
_MAX_DEPTH = 40
POSTING_KINDS = ("patch", "cover")


def change_id_row(msgid: str, change_id: str) -> dict[str, Any]:
    return {
        "message_id": msgid,
        "commit_sha": None,
        "kind": "change-id",
        "value": change_id,
        "subject": None,
        "note": msgid,
    }


def own_rows(msgid: str, reviews: Iterable[Review]) -> list[dict[str, Any]]:
    """Trailer rows for what a message says itself (``note`` = its own Message-ID)."""
    return [
        {
            "message_id": msgid,
            "commit_sha": None,
            "kind": r.kind,
            "value": r.value,
            "subject": None,
            "note": msgid,
        }
        for r in reviews
    ]


@dataclass(frozen=True)
class _Node:
    parent: str | None
    kind: str
    version_id: int | None


def _load(s: Session, ids: Iterable[str], nodes: dict[str, _Node]) -> None:
    want = [i for i in ids if i not in nodes]
    for chunk in chunked(want):
        for msgid, parent, kind, version_id in s.execute(
            select(
                Message.message_id, Message.in_reply_to, Message.kind, Message.series_version_id
            ).where(Message.message_id.in_(chunk))
        ):
            nodes[msgid] = _Node(parent, kind, version_id)


def _is_posting(node: _Node) -> bool:
    return node.kind in POSTING_KINDS and node.version_id is not None


def _targets(s: Session, replies: Sequence[str]) -> dict[str, str]:
    """Reply -> the posted message (patch or cover) it answers, walking up the thread."""
    nodes: dict[str, _Node] = {}
    _load(s, replies, nodes)
    cursor = {r: nodes[r].parent for r in replies if r in nodes and not _is_posting(nodes[r])}
    found: dict[str, str] = {}
    for _ in range(_MAX_DEPTH):
        live = {r: p for r, p in cursor.items() if p}
        if not live:
            break
        _load(s, set(live.values()), nodes)
        cursor = {}
        for reply, parent in live.items():
            node = nodes.get(parent) if parent else None
            if node is None or parent is None:
                continue  # the message it answers is not stored (yet)
            if _is_posting(node):
                found[reply] = parent
            else:
                cursor[reply] = node.parent
    return found


def _version_patches(s: Session, version_ids: Iterable[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    ids = sorted(set(version_ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for msgid, vid in s.execute(
            select(Message.message_id, Message.series_version_id).where(
                Message.series_version_id.in_(chunk), Message.kind == "patch"
            )
        ):
            if vid is not None:
                out.setdefault(vid, []).append(msgid)
    return out


def with_reviews(s: Session, msgids: Iterable[str]) -> list[str]:
    """Those of ``msgids`` that gave review trailers themselves."""
    out: set[str] = set()
    for chunk in chunked(list(set(msgids))):
        out.update(
            s.scalars(
                select(Trailer.message_id).where(
                    Trailer.message_id.in_(chunk),
                    Trailer.kind.in_(REVIEW_KINDS),
                    Trailer.note == Trailer.message_id,
                )
            )
        )
    return sorted(out)


def descendants(s: Session, roots: Iterable[str]) -> set[str]:
    """Replies below these messages, through replies only (another posting is its own tree)."""
    seen: set[str] = set()
    frontier = set(roots)
    for _ in range(_MAX_DEPTH):
        if not frontier:
            break
        nxt: set[str] = set()
        for chunk in chunked(sorted(frontier)):
            for msgid, kind in s.execute(
                select(Message.message_id, Message.kind).where(Message.in_reply_to.in_(chunk))
            ):
                if msgid not in seen and kind not in POSTING_KINDS:
                    seen.add(msgid)
                    nxt.add(msgid)
        frontier = nxt
    return seen


def attribute(s: Session, replies: Sequence[str]) -> int:
    """Rebuild the copies of these replies' review trailers on the patches they answer.

    Returns the number of rows written. A trailer on a cover letter goes to every patch of
    that posting; a patch already carrying the same trailer from the same reply is not doubled.
    """
    if not replies:
        return 0
    s.flush()
    for chunk in chunked(list(replies)):
        s.execute(
            delete(Trailer).where(
                Trailer.note.in_(chunk),
                Trailer.kind.in_(REVIEW_KINDS),
                Trailer.message_id != Trailer.note,
            )
        )
    targets = _targets(s, replies)
    if not targets:
        return 0
    nodes: dict[str, _Node] = {}
    _load(s, set(targets.values()), nodes)
    covers = {t: nodes[t].version_id for t in set(targets.values()) if nodes[t].kind == "cover"}
    patches = _version_patches(s, [v for v in covers.values() if v is not None])
    said: dict[str, list[tuple[str, str]]] = {}
    for chunk in chunked(sorted(targets)):
        for msgid, kind, value in s.execute(
            select(Trailer.message_id, Trailer.kind, Trailer.value).where(
                Trailer.message_id.in_(chunk),
                Trailer.kind.in_(REVIEW_KINDS),
                Trailer.note == Trailer.message_id,
            )
        ):
            if msgid is not None:
                said.setdefault(msgid, []).append((kind, value))
    rows: list[dict[str, Any]] = []
    for reply, target in sorted(targets.items()):
        if target in covers:
            vid = covers[target]
            onto = sorted(patches.get(vid, [])) if vid is not None else []
        else:
            onto = [target]
        for patch in onto:
            for kind, value in said.get(reply, []):
                rows.append(
                    {
                        "message_id": patch,
                        "commit_sha": None,
                        "kind": kind,
                        "value": value,
                        "subject": None,
                        "note": reply,
                    }
                )
    insert_ignore(s, Trailer, rows)
    return len(rows)
