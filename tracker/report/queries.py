"""Read-only queries over the store that the reports need: commits, timelines, graph neighbours.

Nothing here writes. Shas passed in are full 40-character shas (callers resolve user input with
:func:`tracker.store.lookup.find_commit` first).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.config import BranchConfig
from tracker.store.models import (
    Branch,
    BranchCommit,
    BranchState,
    Commit,
    CommitTopic,
    Edge,
    Message,
    MmPatch,
    MmState,
    StableEvent,
    Tag,
    Trailer,
)
from tracker.store.queue import queue_history


@dataclass(frozen=True)
class CommitRecord:
    sha: str
    subject: str
    author_name: str
    author_email: str
    author_time: int
    commit_time: int
    message: str | None
    mainline: bool
    first_release: str | None
    upstream_sha: str | None

    @property
    def author(self) -> str:
        return f"{self.author_name} <{self.author_email}>"


def _record(c: Commit) -> CommitRecord:
    return CommitRecord(
        sha=c.sha,
        subject=c.subject,
        author_name=c.author_name,
        author_email=c.author_email,
        author_time=c.author_time,
        commit_time=c.commit_time,
        message=c.message,
        mainline=c.mainline,
        first_release=c.first_release,
        upstream_sha=c.upstream_sha,
    )


def commit(s: Session, sha: str) -> CommitRecord | None:
    c = s.get(Commit, sha)
    return _record(c) if c else None


def commit_time(s: Session, sha: str) -> int:
    return s.scalar(select(Commit.commit_time).where(Commit.sha == sha)) or 0


def subjects(s: Session, shas: list[str]) -> dict[str, str]:
    if not shas:
        return {}
    return dict(s.execute(select(Commit.sha, Commit.subject).where(Commit.sha.in_(shas))).all())


def topics_of(s: Session, sha: str) -> list[str]:
    return list(s.scalars(select(CommitTopic.topic).where(CommitTopic.sha == sha)))


def _branch_id(s: Session, name: str) -> int | None:
    return s.scalar(select(Branch.id).where(Branch.name == name))


def latest_stable_tag(s: Session, branch: str) -> str | None:
    """The newest stable release tag synced for ``branch`` (tags are ordered by ordinal)."""
    return s.scalar(
        select(Tag.name)
        .where(Tag.kind == "stable", Tag.branch == branch)
        .order_by(Tag.ordinal.desc())
        .limit(1)
    )


def tag_sha(s: Session, name: str) -> str | None:
    return s.scalar(select(Tag.sha).where(Tag.name == name))


def unreleased_commits(s: Session, branch: str) -> list[CommitRecord]:
    """Commits on the branch after its latest release, in branch order (a review series)."""
    bid = _branch_id(s, branch)
    if bid is None:
        return []
    rows = s.scalars(
        select(Commit)
        .join(BranchCommit, BranchCommit.sha == Commit.sha)
        .where(BranchCommit.branch_id == bid, BranchCommit.release.is_(None))
        .order_by(BranchCommit.position)
    )
    return [_record(c) for c in rows]


@dataclass(frozen=True)
class Backport:
    branch: str
    sha: str
    subject: str
    release: str | None
    commit_time: int
    rule: str | None


def backports_of(s: Session, sha: str) -> list[Backport]:
    rows = s.execute(
        select(Branch.name, Commit, BranchCommit.release)
        .join(BranchCommit, BranchCommit.sha == Commit.sha)
        .join(Branch, Branch.id == BranchCommit.branch_id)
        .where(Commit.upstream_sha == sha)
        .order_by(Branch.name, BranchCommit.position)
    ).all()
    return [
        Backport(name, c.sha, c.subject, rel, c.commit_time, c.upstream_rule)
        for name, c, rel in rows
    ]


def release_time(s: Session, tag: str | None) -> int | None:
    """Commit time of the commit a release tag points at (the day the release was cut)."""
    if not tag:
        return None
    return s.scalar(
        select(Commit.commit_time).join(Tag, Tag.sha == Commit.sha).where(Tag.name == tag)
    )


def simulations(s: Session, branch: str) -> dict[str, dict[str, object]]:
    """The simulator's stored verdict per step (BranchState.simulation, JSON), where present."""
    bid = _branch_id(s, branch)
    if bid is None:
        return {}
    out: dict[str, dict[str, object]] = {}
    for sha, raw in s.execute(
        select(BranchState.sha, BranchState.simulation).where(BranchState.branch_id == bid)
    ):
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            # A half-written or foreign value must not break the dashboard: say so instead.
            data = {"verdict": "unreadable", "detail": "stored simulation is not valid JSON"}
        if isinstance(data, dict):
            out[sha] = data
    return out


def simulated_prerequisites(s: Session, branch: str, sha: str) -> list[str]:
    """Prerequisites the simulator verified for ``sha`` on ``branch`` (empty when none stored)."""
    sim = simulations(s, branch).get(sha) or {}
    pre = sim.get("prerequisites")
    if isinstance(pre, dict) and pre.get("found"):
        commits = pre.get("commits")
        if isinstance(commits, list):
            return [str(c) for c in commits if isinstance(c, str) and c != sha]
    return []


def failed_mail_id(s: Session, sha: str, branch: BranchConfig) -> str | None:
    """The Message-ID of the stable team's FAILED mail for ``sha`` on ``branch``, if ingested."""
    return s.scalar(
        select(StableEvent.message_id)
        .where(
            StableEvent.kind == "failed",
            StableEvent.upstream_sha == sha,
            StableEvent.branch.in_((branch.name, branch.version)),
        )
        .order_by(StableEvent.at.desc())
        .limit(1)
    )


# -- timelines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One dated step in a change's life; ``at`` is None when a source gave no date."""

    at: datetime | None
    kind: str
    where: str
    text: str
    ref: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat() if self.at else None,
            "kind": self.kind,
            "where": self.where,
            "text": self.text,
            "ref": self.ref,
        }


def _ts(t: int | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t is not None else None


def _aware(d: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    if d is not None and d.tzinfo is None:
        return d.replace(tzinfo=UTC)
    return d


def source_events(s: Session, sha: str) -> list[Event]:
    """Mail-side history (postings, -mm states, stable queue mails) once sources are ingested.

    Empty until a source sync has linked mails to the change; nothing here is required for the
    git-side timeline.
    """
    c = s.get(Commit, sha)
    events: list[Event] = []
    if c is None:
        return events
    msgids = set(
        s.scalars(select(Trailer.value).where(Trailer.commit_sha == sha, Trailer.kind == "link"))
    )
    if c.change_id is not None:
        q = select(Message).where(Message.change_id == c.change_id)
        msgs = list(s.scalars(q))
    else:
        msgs = []
    if msgids:
        msgs += list(s.scalars(select(Message).where(Message.message_id.in_(msgids))))
    seen: set[str] = set()
    for m in msgs:
        if m.message_id in seen:
            continue
        seen.add(m.message_id)
        who = m.from_name or m.from_email or "unknown sender"
        events.append(
            Event(
                _aware(m.date), "posted", m.list_id or "mail", f"{m.subject} ({who})", m.message_id
            )
        )
    if c.change_id is not None:
        for st in s.scalars(
            select(MmState)
            .join(MmPatch, MmPatch.filename == MmState.filename)
            .where(MmPatch.change_id == c.change_id)
        ):
            text = f"{st.filename}: {st.state}" + (f" ({st.reason})" if st.reason else "")
            events.append(Event(_aware(st.at), "mm", "-mm", text, st.message_id))
    # What stable-queue clones recorded (tracker.store.queue).
    for at, kind, where, text, ref in queue_history(s, sha):
        events.append(Event(_aware(at), kind, where, text, ref))
    for ev in s.scalars(select(StableEvent).where(StableEvent.upstream_sha == sha)):
        try:
            details = json.loads(ev.details or "{}")
        except ValueError:
            details = {}
        subject = details.get("subject") if isinstance(details, dict) else None
        text = f"{ev.kind} for {ev.branch}" + (f": {subject}" if subject else "")
        events.append(Event(_aware(ev.at), f"stable-{ev.kind}", ev.branch, text, ev.message_id))
    return events


def timeline(s: Session, sha: str) -> list[Event]:
    """From posting to -mm to mainline to each stable branch, oldest first."""
    c = s.get(Commit, sha)
    if c is None:
        return []
    events = source_events(s, sha)
    events.append(Event(_ts(c.author_time), "authored", "", f"written by {c.author_name}"))
    if c.mainline:
        events.append(Event(_ts(c.commit_time), "mainline", "mainline", "committed to mainline"))
        if c.first_release:
            events.append(
                Event(
                    _ts(release_time(s, c.first_release)),
                    "release",
                    "mainline",
                    f"first released in {c.first_release}",
                    c.first_release,
                )
            )
    for bp in backports_of(s, sha):
        how = f" (found by {bp.rule})" if bp.rule else ""
        events.append(
            Event(
                _ts(bp.commit_time),
                "backport",
                bp.branch,
                f"backported as {bp.sha[:12]}{how}",
                bp.sha,
            )
        )
        if bp.release:
            events.append(
                Event(
                    _ts(release_time(s, bp.release)),
                    "stable-release",
                    bp.branch,
                    f"released in {bp.release}",
                    bp.release,
                )
            )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(events, key=lambda e: (e.at or far, e.kind))


# -- graph neighbours ------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    sha: str
    subject: str


@dataclass
class Neighbours:
    """The change and what it touches in the dependency graph (one hop, plus backport fixes)."""

    change: Node
    culprits: list[Node] = field(default_factory=list)
    fixed_by: list[Node] = field(default_factory=list)
    backports: list[tuple[Node, str]] = field(default_factory=list)
    # fixes whose Fixes: names one of the backports (a fix of a backport), keyed by backport sha
    backport_fixes: list[tuple[Node, str]] = field(default_factory=list)
    reverted_by: list[Node] = field(default_factory=list)
    prerequisite_of: list[Node] = field(default_factory=list)
    # prerequisites a stable branch pulled in for this change (Stable-dep-of: naming it)
    prerequisites: list[Node] = field(default_factory=list)


_SHA40 = re.compile(r"^[0-9a-f]{40}$")


def _node(s: Session, sha: str, fallback: str = "") -> Node:
    c = s.get(Commit, sha) if _SHA40.match(sha) else None
    return Node(sha, c.subject if c else fallback)


def neighbours(s: Session, sha: str) -> Neighbours:
    c = s.get(Commit, sha)
    n = Neighbours(Node(sha, c.subject if c else ""))
    for dst, raw in s.execute(
        select(Edge.dst, Edge.dst_raw).where(Edge.kind == "fixes", Edge.src == sha)
    ):
        n.culprits.append(_node(s, dst) if dst else Node(raw, "(unknown commit)"))
    for (src,) in s.execute(
        select(Edge.src).where(Edge.kind == "fixes", Edge.dst == sha).order_by(Edge.src)
    ):
        n.fixed_by.append(_node(s, src))
    for bp in backports_of(s, sha):
        n.backports.append((Node(bp.sha, bp.subject), bp.branch))
        for (src,) in s.execute(
            select(Edge.src).where(Edge.kind == "fixes", Edge.dst == bp.sha).order_by(Edge.src)
        ):
            n.backport_fixes.append((_node(s, src), bp.sha))
    for (src,) in s.execute(select(Edge.src).where(Edge.kind == "reverts", Edge.dst == sha)):
        n.reverted_by.append(_node(s, src))
    # Stable-dep-of: is written on the backport of the prerequisite, naming the fix it enables.
    srcs = [sha, *(bp.sha for bp, _ in n.backports)]
    seen: set[str] = set()
    for (dst,) in s.execute(
        select(Edge.dst).where(Edge.kind == "stable-dep-of", Edge.src.in_(srcs)).order_by(Edge.dst)
    ):
        if dst and dst not in seen:
            seen.add(dst)
            n.prerequisite_of.append(_node(s, dst))
    seen = set()
    for (src,) in s.execute(
        select(Edge.src).where(Edge.kind == "stable-dep-of", Edge.dst == sha).order_by(Edge.src)
    ):
        stable = s.get(Commit, src)
        up = stable.upstream_sha if stable and stable.upstream_sha else src
        if up not in seen:
            seen.add(up)
            n.prerequisites.append(_node(s, up))
    return n
