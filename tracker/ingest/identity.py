"""Link mails and -mm patches to the mainline commits they became.

Rules, strongest first, each recorded as the link's ``link_rule``: the commit's ``Link:`` names
the mail (``link``); the mail's stable patch-id equals the commit's (``patch-id``); the normalised
subject and author match (``subject-author``, the weakest, used only when nothing stronger applies).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.graph import normalise_subject
from tracker.store.models import Change, Commit, Message, MmPatch, MmState, Trailer

_LINKABLE = ("patch", "cover", "tip-commit", "mm-added", "mm-removed")


def _change_for(s: Session, commit: Commit) -> int:
    if commit.change_id is None:
        ch = s.scalar(select(Change).where(Change.mainline_sha == commit.sha))
        if ch is None:
            ch = Change(
                subject=commit.subject,
                author_email=commit.author_email,
                mainline_sha=commit.sha,
                created_at=datetime.now(UTC),
            )
            s.add(ch)
            s.flush()
        commit.change_id, commit.link_rule = ch.id, "mainline"
    return commit.change_id


def link_identities(s: Session) -> int:
    """Link every unlinked mail and -mm patch it can; returns how many links were made."""
    made = 0
    pending = list(
        s.scalars(select(Message).where(Message.change_id.is_(None), Message.kind.in_(_LINKABLE)))
    )
    for msg in pending:
        commit, rule = _match(s, msg)
        if commit is not None:
            msg.change_id, msg.link_rule = _change_for(s, commit), rule
            made += 1
    for mm in s.scalars(select(MmPatch).where(MmPatch.change_id.is_(None))):
        change = _mm_change(s, mm)
        if change is not None:
            mm.change_id = change
            made += 1
    return made


def _match(s: Session, msg: Message) -> tuple[Commit | None, str | None]:
    sha = s.scalar(
        select(Trailer.commit_sha)
        .join(Commit, Commit.sha == Trailer.commit_sha)
        .where(Trailer.kind == "link", Trailer.value == msg.message_id, Commit.mainline.is_(True))
        .limit(1)
    )
    if sha:
        return s.get(Commit, sha), "link"
    if msg.patch_id:
        c = s.scalars(
            select(Commit)
            .where(Commit.patch_id == msg.patch_id, Commit.mainline.is_(True))
            .order_by(Commit.mainline_order)
            .limit(1)
        ).first()
        if c is not None:
            return c, "patch-id"
    if msg.kind in ("patch", "tip-commit") and msg.from_email:
        from tracker.parse.mail import parse_subject

        subject = parse_subject(msg.subject).subject
        cands = list(
            s.scalars(
                select(Commit)
                .where(
                    Commit.subject == subject,
                    Commit.mainline.is_(True),
                    Commit.author_email == msg.from_email,
                )
                .limit(2)
            )
        )
        if len(cands) == 1 and normalise_subject(cands[0].subject) == normalise_subject(subject):
            return cands[0], "subject-author"
    return None, None


def _mm_change(s: Session, mm: MmPatch) -> int | None:
    """An -mm patch is the change its notifications' Link: names, or the commit linking it."""
    notes = list(s.scalars(select(MmState.message_id).where(MmState.filename == mm.filename)))
    links = list(
        s.scalars(
            select(Trailer.value).where(Trailer.message_id.in_(notes), Trailer.kind == "link")
        )
    )
    for msgid in links:
        posted = s.get(Message, msgid)
        if posted is not None and posted.change_id is not None:
            return posted.change_id
        sha = s.scalar(
            select(Trailer.commit_sha)
            .join(Commit, Commit.sha == Trailer.commit_sha)
            .where(Trailer.kind == "link", Trailer.value == msgid, Commit.mainline.is_(True))
            .limit(1)
        )
        if sha:
            c = s.get(Commit, sha)
            if c is not None:
                return _change_for(s, c)
    return None
