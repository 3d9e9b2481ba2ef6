"""Find the commit a maintainer names: a sha (full or abbreviated), a Message-ID (via its Link:
trailer or the change it was linked to), or subject text."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.errors import UnknownCommitError
from tracker.revisions import check_sha
from tracker.store.models import Change, Commit, Message, Trailer
from tracker.store.postings import msgid_of

# What looks like an abbreviated or full sha rather than a Message-ID or subject text.
HEXISH = re.compile(r"^[0-9a-fA-F]{4,40}$")


def find_commit(s: Session, query: str) -> Commit:
    """A commit named by sha (full or abbreviated), Message-ID (via Link:), or subject text."""
    q = query.strip()
    if HEXISH.match(q):
        sha = check_sha(q)
        hits = list(
            s.scalars(select(Commit).where(Commit.sha >= sha, Commit.sha < sha + "g").limit(5))
        )
        if len(hits) == 1:
            c = hits[0]
            if not c.mainline and c.upstream_sha:
                up = s.get(Commit, c.upstream_sha)
                return up or c
            return c
        if len(hits) > 1:
            raise UnknownCommitError(f"'{q}' is ambiguous: matches {len(hits)} commits")
        raise UnknownCommitError(f"unknown commit '{q}': not in the store (run 'tracker sync'?)")
    msgid = msgid_of(q)
    if msgid is not None:
        sha = s.scalar(
            select(Trailer.commit_sha).where(Trailer.kind == "link", Trailer.value == msgid)
        )
        if sha is None:
            # Linked by patch-id or subject and author instead of a Link: trailer.
            sha = s.scalar(
                select(Change.mainline_sha)
                .join(Message, Message.change_id == Change.id)
                .where(Message.message_id == msgid)
            )
        linked = s.get(Commit, sha) if sha else None
        if linked is None:
            raise UnknownCommitError(f"no commit links to Message-ID <{msgid}>")
        return linked
    hits = list(
        s.scalars(select(Commit).where(Commit.mainline.is_(True), Commit.subject == q).limit(5))
    )
    if not hits:
        hits = list(
            s.scalars(
                select(Commit).where(Commit.mainline.is_(True), Commit.subject.contains(q)).limit(6)
            )
        )
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UnknownCommitError(f"no mainline commit has a subject matching '{q}'")
    names = "; ".join(f"{h.sha[:12]} {h.subject}" for h in hits[:5])
    raise UnknownCommitError(f"'{q}' matches several commits: {names}")
