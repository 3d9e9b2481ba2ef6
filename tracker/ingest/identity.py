"""Link mails and -mm patches to the mainline commits they became.

Rules, strongest first, each recorded as the link's ``link_rule``: the commit's ``Link:`` names
the mail (``link``); the mail's stable patch-id equals the commit's (``patch-id``); the normalised
subject and author match (``subject-author``, the weakest, used only when nothing stronger applies).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.store.models import Change, Commit, Message, MmPatch, MmState, Trailer

# Kinds of message that may be linked to a commit (also: the mails a patch-id is wanted for).
LINKABLE = ("patch", "cover", "tip-commit", "mm-added", "mm-removed")


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
    """Link every unlinked mail and -mm patch it can; returns how many links were made.

    Each rule is one join over indexed columns, so a run costs a few queries however many
    messages are waiting, and messages that match nothing cost nothing more than a lookup.
    """
    unlinked = (Message.change_id.is_(None), Message.kind.in_(LINKABLE))
    by_link = s.execute(
        select(Message.message_id, Commit.sha)
        .join(Trailer, (Trailer.kind == "link") & (Trailer.value == Message.message_id))
        .join(Commit, (Commit.sha == Trailer.commit_sha) & Commit.mainline.is_(True))
        .where(*unlinked)
    ).all()
    by_patch_id = s.execute(
        select(Message.message_id, Commit.sha)
        .join(Commit, (Commit.patch_id == Message.patch_id) & Commit.mainline.is_(True))
        .where(*unlinked, Message.patch_id.is_not(None), Message.patch_id != "")
    ).all()
    by_subject = s.execute(
        select(Message.message_id, Commit.sha)
        .join(
            Commit,
            (Commit.subject == Message.clean_subject)
            & (Commit.author_email == Message.from_email)
            & Commit.mainline.is_(True),
        )
        .where(*unlinked, Message.kind.in_(("patch", "tip-commit")))
    ).all()
    chosen: dict[str, tuple[str, str]] = {}
    # Weakest first, so a stronger rule overwrites; subject matches must be unambiguous.
    subject_hits: dict[str, set[str]] = {}
    for msgid, sha in by_subject:
        subject_hits.setdefault(msgid, set()).add(sha)
    for msgid, shas in subject_hits.items():
        if len(shas) == 1:
            chosen[msgid] = (next(iter(shas)), "subject-author")
    for rule, rows in (("patch-id", by_patch_id), ("link", by_link)):
        for msgid, sha in rows:
            chosen[msgid] = (sha, rule)
    changes = _changes_for(s, {sha for sha, _ in chosen.values()})
    for msgid, (sha, rule) in chosen.items():
        msg = s.get(Message, msgid)
        if msg is not None:
            msg.change_id, msg.link_rule = changes[sha], rule
    made = len(chosen)
    for mm in s.scalars(select(MmPatch).where(MmPatch.change_id.is_(None))):
        change = _mm_change(s, mm)
        if change is not None:
            mm.change_id = change
            made += 1
    return made


def _changes_for(s: Session, shas: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for sha in shas:
        c = s.get(Commit, sha)
        if c is not None:
            out[sha] = _change_for(s, c)
    return out


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
