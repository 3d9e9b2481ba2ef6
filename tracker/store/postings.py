"""A posting as a maintainer asks about it: its series, versions, completeness and reviews.

``tracker status`` answers for a Message-ID, a lore URL or a subject before anything is merged:
which series the mail belongs to, every version posted, whether each is complete, who acked or
reviewed which patch (and in which message), ``Cc: stable``, ``Fixes:``, the -mm state and, for
patches already merged, the mainline commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.store.models import (
    Change,
    Message,
    MessageList,
    MmPatch,
    MmState,
    Series,
    SeriesVersion,
    Trailer,
)
from tracker.store.queries import chunked

REVIEW_KINDS = ("acked-by", "reviewed-by", "tested-by")
_MAX_DEPTH = 40


@dataclass(frozen=True)
class ReviewView:
    kind: str
    who: str
    message_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "who": self.who, "message_id": self.message_id}


@dataclass(frozen=True)
class PatchView:
    index: int | None
    subject: str
    message_id: str
    reviews: tuple[ReviewView, ...]
    cc_stable: tuple[str, ...]
    fixes: tuple[str, ...]
    commit: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "subject": self.subject,
            "message_id": self.message_id,
            "reviews": [r.to_dict() for r in self.reviews],
            "cc_stable": list(self.cc_stable),
            "fixes": list(self.fixes),
            "commit": self.commit,
        }


@dataclass(frozen=True)
class VersionView:
    version: int
    total: int
    complete: bool
    posted_at: datetime | None
    root_message_id: str | None
    cover_reviews: tuple[ReviewView, ...]
    patches: tuple[PatchView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "total": self.total,
            "complete": self.complete,
            "posted_at": self.posted_at.isoformat() if self.posted_at else None,
            "message_id": self.root_message_id,
            "cover_reviews": [r.to_dict() for r in self.cover_reviews],
            "patches": [p.to_dict() for p in self.patches],
        }


@dataclass(frozen=True)
class PostingView:
    """A series (or one unseries'd patch) and everything known about it."""

    subject: str
    author: str | None
    matched: str
    lists: tuple[str, ...]
    versions: tuple[VersionView, ...]
    mm: tuple[tuple[str, str], ...]

    @property
    def commits(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for v in self.versions:
            for p in v.patches:
                if p.commit:
                    seen.setdefault(p.commit, None)
        return tuple(seen)

    @property
    def latest(self) -> VersionView:
        return self.versions[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "author": self.author,
            "matched": self.matched,
            "lists": list(self.lists),
            "latest_version": self.latest.version,
            "versions": [v.to_dict() for v in self.versions],
            "mm": [{"patch": f, "state": st} for f, st in self.mm],
            "merged": list(self.commits),
        }


def msgid_of(query: str) -> str | None:
    """A Message-ID from ``<id>``, ``id`` or a lore URL (``/list/<id>/``, ``/r/<id>``)."""
    q = query.strip()
    if q.startswith(("http://", "https://")):
        for seg in urlsplit(q).path.split("/"):
            seg = unquote(seg)
            if "@" in seg:
                return seg.strip("<>")
        return None
    if "@" in q and " " not in q:
        return q.strip("<>")
    return None


def _posting_message(s: Session, msgid: str) -> Message | None:
    """The message itself if it was posted in a series, else the posted message it answers."""
    msg = s.get(Message, msgid)
    seen: set[str] = set()
    while msg is not None and len(seen) < _MAX_DEPTH:
        if msg.series_version_id is not None or msg.kind == "patch":
            return msg
        seen.add(msg.message_id)
        if not msg.in_reply_to or msg.in_reply_to in seen:
            return None
        msg = s.get(Message, msg.in_reply_to)
    return None


def find_posting(s: Session, query: str) -> PostingView | None:
    """The posting a Message-ID, lore URL or subject names; None when none matches."""
    msgid = msgid_of(query)
    if msgid is not None:
        msg = _posting_message(s, msgid)
        return posting_view(s, msg, msgid) if msg is not None else None
    text = " ".join(query.split())
    if not text:
        return None
    lowered = text.lower()
    for exact in (True, False):
        cond = (
            func.lower(Series.subject) == lowered
            if exact
            else func.lower(Series.subject).contains(lowered)
        )
        series = list(s.scalars(select(Series).where(cond).order_by(Series.id).limit(2)))
        if len(series) == 1:
            return series_view(s, series[0], text)
        mcond = (
            func.lower(Message.clean_subject) == lowered
            if exact
            else func.lower(Message.clean_subject).contains(lowered)
        )
        msg = s.scalar(
            select(Message)
            .where(mcond, Message.kind.in_(("patch", "cover")))
            .order_by(Message.date.desc())
            .limit(1)
        )
        if msg is not None:
            return posting_view(s, msg, text)
    return None


def posting_view(s: Session, msg: Message, matched: str) -> PostingView:
    if msg.series_version_id is not None:
        sv = s.get(SeriesVersion, msg.series_version_id)
        series = s.get(Series, sv.series_id) if sv is not None else None
        if series is not None:
            return series_view(s, series, matched)
    patch = _patches(s, [msg])[0]
    return PostingView(
        subject=msg.clean_subject or msg.subject,
        author=msg.from_email,
        matched=matched,
        lists=_lists(s, [msg.message_id]),
        versions=(VersionView(1, 1, True, msg.date, msg.message_id, (), (patch,)),),
        mm=_mm(s, [msg.message_id]),
    )


def series_view(s: Session, series: Series, matched: str) -> PostingView:
    versions: list[VersionView] = []
    msgids: list[str] = []
    for sv in s.scalars(
        select(SeriesVersion)
        .where(SeriesVersion.series_id == series.id)
        .order_by(SeriesVersion.version)
    ):
        members = list(
            s.scalars(
                select(Message)
                .where(Message.series_version_id == sv.id)
                .order_by(Message.series_index, Message.date)
            )
        )
        patches = [m for m in members if m.kind == "patch"]
        covers = [m.message_id for m in members if m.kind == "cover"]
        msgids += [m.message_id for m in members]
        cover_reviews = _reviews(s, covers)
        versions.append(
            VersionView(
                version=sv.version,
                total=sv.total,
                complete=sv.complete,
                posted_at=sv.posted_at,
                root_message_id=sv.cover_message_id,
                cover_reviews=tuple(r for c in covers for r in cover_reviews.get(c, [])),
                patches=tuple(_patches(s, patches)),
            )
        )
    return PostingView(
        subject=series.subject,
        author=series.author_email,
        matched=matched,
        lists=_lists(s, msgids),
        versions=tuple(versions),
        mm=_mm(s, msgids),
    )


def _reviews(s: Session, msgids: list[str]) -> dict[str, list[ReviewView]]:
    out: dict[str, list[ReviewView]] = {}
    for chunk in chunked(msgids):
        for msgid, kind, value, note in s.execute(
            select(Trailer.message_id, Trailer.kind, Trailer.value, Trailer.note)
            .where(Trailer.message_id.in_(chunk), Trailer.kind.in_(REVIEW_KINDS))
            .order_by(Trailer.id)
        ):
            if msgid is not None:
                out.setdefault(msgid, []).append(ReviewView(kind, value, note or msgid))
    return out


def _patches(s: Session, msgs: list[Message]) -> list[PatchView]:
    ids = [m.message_id for m in msgs]
    reviews = _reviews(s, ids)
    refs: dict[str, dict[str, list[str]]] = {}
    for chunk in chunked(ids):
        for msgid, kind, value in s.execute(
            select(Trailer.message_id, Trailer.kind, Trailer.value).where(
                Trailer.message_id.in_(chunk), Trailer.kind.in_(("cc-stable", "fixes"))
            )
        ):
            if msgid is not None:
                refs.setdefault(msgid, {}).setdefault(kind, []).append(value)
    out = []
    for m in msgs:
        commit = None
        if m.change_id is not None:
            commit = s.scalar(select(Change.mainline_sha).where(Change.id == m.change_id))
        r = refs.get(m.message_id, {})
        out.append(
            PatchView(
                index=m.series_index,
                subject=m.clean_subject or m.subject,
                message_id=m.message_id,
                reviews=tuple(reviews.get(m.message_id, [])),
                cc_stable=tuple(r.get("cc-stable", [])),
                fixes=tuple(r.get("fixes", [])),
                commit=commit,
            )
        )
    return out


def _lists(s: Session, msgids: list[str]) -> tuple[str, ...]:
    found: set[str] = set()
    for chunk in chunked(msgids):
        found.update(
            s.scalars(select(MessageList.list_name).where(MessageList.message_id.in_(chunk)))
        )
    return tuple(sorted(found))


def _mm(s: Session, msgids: list[str]) -> tuple[tuple[str, str], ...]:
    """-mm patches whose notifications link these mails, with their current state."""
    files: set[str] = set()
    for chunk in chunked(msgids):
        files.update(
            s.scalars(
                select(MmState.filename)
                .join(Trailer, Trailer.message_id == MmState.message_id)
                .where(Trailer.kind == "link", Trailer.value.in_(chunk))
            )
        )
    out = []
    for name in sorted(files):
        mm = s.get(MmPatch, name)
        if mm is not None:
            out.append((mm.filename, mm.state))
    return tuple(out)


def pending_series(s: Session, limit: int = 200) -> list[PostingView]:
    """Series whose latest version is not all in mainline yet, most recently posted first.

    A version counts as merged when it has patches and every one is linked to a commit; one
    whose patches went to other lists only (a cover alone) stays pending."""
    merged = (
        select(Message.series_version_id)
        .where(Message.kind == "patch", Message.series_version_id.is_not(None))
        .group_by(Message.series_version_id)
        .having(func.count(Message.change_id) == func.count())
    )
    series = s.scalars(
        select(Series)
        .join(SeriesVersion, SeriesVersion.series_id == Series.id)
        .where(
            SeriesVersion.version == Series.latest_version,
            SeriesVersion.id.not_in(merged),
        )
        .order_by(SeriesVersion.posted_at.desc(), Series.id)
        .limit(limit)
    ).all()
    return [series_view(s, row, row.subject) for row in series]
