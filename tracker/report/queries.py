"""Read-only queries over the store that the reports need: commits, timelines, graph neighbours.

Nothing here writes. Shas passed in are full 40-character shas (callers resolve user input with
:func:`tracker.store.lookup.find_commit` first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVarTuple

from sqlalchemy import Row, Select, select
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
from tracker.store.queries import chunked
from tracker.store.queue import queue_histories

# Ids per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits, and few
# enough statements that a dashboard of tens of thousands of changes issues a few hundred.
CHUNK = 500
Ts = TypeVarTuple("Ts")


def _rows_in(s: Session, stmt: Select[*Ts], column: Any, keys: Sequence[Any]) -> list[Row[*Ts]]:
    """``stmt`` restricted to ``column IN keys``, run per chunk of keys, rows in chunk order."""
    out: list[Row[*Ts]] = []
    for chunk in chunked(keys, CHUNK):
        out += s.execute(stmt.where(column.in_(chunk))).all()
    return out


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


def commits(s: Session, shas: Sequence[str]) -> dict[str, CommitRecord]:
    """The stored commits among ``shas`` (shas the store has no commit for are left out)."""
    return {c.sha: _record(c) for (c,) in _rows_in(s, select(Commit), Commit.sha, shas)}


def topics(s: Session, shas: Sequence[str]) -> dict[str, list[str]]:
    """The topics of each of ``shas`` that has any, sorted (in Python: a server's collation
    may order ``-`` and ``_`` otherwise)."""
    out: dict[str, list[str]] = {}
    stmt = select(CommitTopic.sha, CommitTopic.topic)
    for sha, topic in _rows_in(s, stmt, CommitTopic.sha, shas):
        out.setdefault(sha, []).append(topic)
    return {sha: sorted(ts) for sha, ts in out.items()}


def subjects(s: Session, shas: list[str]) -> dict[str, str]:
    if not shas:
        return {}
    return dict(s.execute(select(Commit.sha, Commit.subject).where(Commit.sha.in_(shas))).all())


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


def _backports(s: Session, shas: Sequence[str]) -> dict[str, list[Backport]]:
    """Backports of each upstream sha, by branch name then branch order."""
    out: dict[str, list[Backport]] = {}
    stmt = (
        select(
            Commit.upstream_sha,
            Branch.name,
            Commit.sha,
            Commit.subject,
            BranchCommit.release,
            Commit.commit_time,
            Commit.upstream_rule,
        )
        .join(BranchCommit, BranchCommit.sha == Commit.sha)
        .join(Branch, Branch.id == BranchCommit.branch_id)
        .order_by(Commit.upstream_sha, Branch.name, BranchCommit.position)
    )
    for up, branch, sha, subject, release, when, rule in _rows_in(
        s, stmt, Commit.upstream_sha, shas
    ):
        if up is not None:
            out.setdefault(up, []).append(Backport(branch, sha, subject, release, when, rule))
    return out


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


@dataclass(frozen=True)
class _Mail:
    message_id: str
    subject: str
    who: str
    date: datetime | None
    list_id: str | None


@dataclass
class _TimelineRows:
    """What the timelines of a set of changes are assembled from, each kind read in one query
    per chunk of changes (a dashboard of thousands of changes issues a few dozen statements).

    Another kind of event is one more field here, filled by one set-based query in
    :func:`_timeline_rows` and read in :func:`_source_events` or :func:`_timeline`.
    """

    commits: dict[str, Any] = field(default_factory=dict)  # sha -> row of _COMMIT_COLS
    links: dict[str, set[str]] = field(default_factory=dict)  # sha -> Link: message ids
    by_change: dict[int, list[_Mail]] = field(default_factory=dict)
    by_id: dict[str, _Mail] = field(default_factory=dict)
    mm: dict[int, list[Event]] = field(default_factory=dict)
    queue: dict[str, list[Event]] = field(default_factory=dict)
    stable: dict[str, list[Event]] = field(default_factory=dict)
    backports: dict[str, list[Backport]] = field(default_factory=dict)
    released: dict[str, int | None] = field(default_factory=dict)  # release tag -> commit time


_COMMIT_COLS = (
    Commit.sha,
    Commit.author_name,
    Commit.author_time,
    Commit.commit_time,
    Commit.mainline,
    Commit.first_release,
    Commit.change_id,
)


def _mail(m: Any) -> _Mail:
    return _Mail(
        m.message_id, m.subject, m.from_name or m.from_email or "unknown sender", m.date, m.list_id
    )


def _stable_event(ev: StableEvent) -> Event:
    try:
        details = json.loads(ev.details or "{}")
    except ValueError:
        details = {}
    subject = details.get("subject") if isinstance(details, dict) else None
    text = f"{ev.kind} for {ev.branch}" + (f": {subject}" if subject else "")
    return Event(_aware(ev.at), f"stable-{ev.kind}", ev.branch, text, ev.message_id)


def _timeline_rows(s: Session, shas: Sequence[str]) -> _TimelineRows:
    r = _TimelineRows()
    for row in _rows_in(s, select(*_COMMIT_COLS), Commit.sha, shas):
        r.commits[row.sha] = row
    link = select(Trailer.commit_sha, Trailer.value).where(Trailer.kind == "link")
    for sha, value in _rows_in(s, link, Trailer.commit_sha, list(r.commits)):
        if sha is not None:
            r.links.setdefault(sha, set()).add(value)
    mail_cols = select(
        Message.message_id,
        Message.subject,
        Message.from_name,
        Message.from_email,
        Message.date,
        Message.list_id,
        Message.change_id,
    )
    cids = sorted({c.change_id for c in r.commits.values() if c.change_id is not None})
    # By message id: postings of the same date keep one order on either store.
    for m in _rows_in(s, mail_cols.order_by(Message.message_id), Message.change_id, cids):
        r.by_change.setdefault(m.change_id, []).append(_mail(m))
    msgids = sorted({v for vs in r.links.values() for v in vs})
    for m in _rows_in(s, mail_cols, Message.message_id, msgids):
        r.by_id[m.message_id] = _mail(m)
    mm = select(MmPatch.change_id, MmState).join(MmPatch, MmPatch.filename == MmState.filename)
    for cid, st in _rows_in(s, mm.order_by(MmState.id), MmPatch.change_id, cids):
        if cid is None:
            continue
        text = f"{st.filename}: {st.state}" + (f" ({st.reason})" if st.reason else "")
        r.mm.setdefault(cid, []).append(Event(_aware(st.at), "mm", "-mm", text, st.message_id))
    for sha, entries in queue_histories(s, shas).items():
        r.queue[sha] = [
            Event(_aware(at), kind, where, text, ref) for at, kind, where, text, ref in entries
        ]
    # In the order of the (upstream_sha, branch) index the one-change query used to scan.
    stable = select(StableEvent).order_by(StableEvent.branch, StableEvent.id)
    for (ev,) in _rows_in(s, stable, StableEvent.upstream_sha, shas):
        r.stable.setdefault(ev.upstream_sha, []).append(_stable_event(ev))
    r.backports = _backports(s, list(r.commits))
    tags = {c.first_release for c in r.commits.values() if c.mainline and c.first_release}
    tags |= {bp.release for bps in r.backports.values() for bp in bps if bp.release}
    r.released = dict.fromkeys(tags)
    cut = select(Tag.name, Commit.commit_time).join(Commit, Commit.sha == Tag.sha)
    for name, t in _rows_in(s, cut, Tag.name, sorted(tags)):
        r.released[name] = t
    return r


def _source_events(r: _TimelineRows, sha: str) -> list[Event]:
    """Mail-side history (postings, -mm states, stable queue mails) once sources are ingested.

    Empty until a source sync has linked mails to the change; nothing here is required for the
    git-side timeline.
    """
    c = r.commits.get(sha)
    events: list[Event] = []
    if c is None:
        return events
    msgs = list(r.by_change.get(c.change_id, [])) if c.change_id is not None else []
    msgs += [r.by_id[m] for m in sorted(r.links.get(sha, ())) if m in r.by_id]
    seen: set[str] = set()
    for m in msgs:
        if m.message_id in seen:
            continue
        seen.add(m.message_id)
        text = f"{m.subject} ({m.who})"
        events.append(Event(_aware(m.date), "posted", m.list_id or "mail", text, m.message_id))
    if c.change_id is not None:
        events += r.mm.get(c.change_id, [])
    # What stable-queue clones recorded (tracker.store.queue).
    events += r.queue.get(sha, [])
    events += r.stable.get(sha, [])
    return events


def _timeline(r: _TimelineRows, sha: str) -> list[Event]:
    """From posting to -mm to mainline to each stable branch, oldest first."""
    c = r.commits.get(sha)
    if c is None:
        return []
    events = _source_events(r, sha)
    events.append(Event(_ts(c.author_time), "authored", "", f"written by {c.author_name}"))
    if c.mainline:
        events.append(Event(_ts(c.commit_time), "mainline", "mainline", "committed to mainline"))
        if c.first_release:
            events.append(
                Event(
                    _ts(r.released.get(c.first_release)),
                    "release",
                    "mainline",
                    f"first released in {c.first_release}",
                    c.first_release,
                )
            )
    for bp in r.backports.get(sha, []):
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
                    _ts(r.released.get(bp.release)),
                    "stable-release",
                    bp.branch,
                    f"released in {bp.release}",
                    bp.release,
                )
            )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(events, key=lambda e: (e.at or far, e.kind))


def timelines(s: Session, shas: Iterable[str]) -> dict[str, list[Event]]:
    """The timeline of each change (empty for a sha the store has no commit for)."""
    out: dict[str, list[Event]] = {}
    for chunk in chunked(dict.fromkeys(shas), CHUNK):
        rows = _timeline_rows(s, chunk)
        out.update((sha, _timeline(rows, sha)) for sha in chunk)
    return out


def timeline(s: Session, sha: str) -> list[Event]:
    """From posting to -mm to mainline to each stable branch, oldest first."""
    return timelines(s, [sha])[sha]


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


@dataclass
class _GraphRows:
    """The edges around a set of changes and the commits they name, read per chunk of changes."""

    backports: dict[str, list[Backport]]
    out_edges: dict[str, list[Any]] = field(default_factory=dict)  # src -> edges, by id
    in_edges: dict[str, list[Any]] = field(default_factory=dict)  # dst -> edges, by id
    commits: dict[str, Any] = field(default_factory=dict)  # sha -> (sha, subject, upstream_sha)

    def node(self, sha: str, fallback: str = "") -> Node:
        c = self.commits.get(sha) if _SHA40.match(sha) else None
        return Node(sha, c.subject if c else fallback)

    def edges(self, table: dict[str, list[Any]], key: str, kind: str) -> list[Any]:
        return [e for e in table.get(key, ()) if e.kind == kind]


_GRAPH_KINDS = ("fixes", "reverts", "stable-dep-of")


def _graph_rows(s: Session, shas: Sequence[str]) -> _GraphRows:
    r = _GraphRows(_backports(s, shas))
    keys = [*shas, *(bp.sha for bps in r.backports.values() for bp in bps)]
    cols = select(Edge.kind, Edge.src, Edge.dst, Edge.dst_raw).where(Edge.kind.in_(_GRAPH_KINDS))
    for e in _rows_in(s, cols.order_by(Edge.id), Edge.src, keys):
        r.out_edges.setdefault(e.src, []).append(e)
    for e in _rows_in(s, cols.order_by(Edge.id), Edge.dst, keys):
        r.in_edges.setdefault(e.dst, []).append(e)
    named = {*shas}
    for es in (*r.out_edges.values(), *r.in_edges.values()):
        named |= {x for e in es for x in (e.src, e.dst) if x}
    # Two rounds: a Stable-dep-of: source is a backport, shown as the upstream commit it names.
    lookup = select(Commit.sha, Commit.subject, Commit.upstream_sha)
    for _ in range(2):
        want = sorted(x for x in named if _SHA40.match(x) and x not in r.commits)
        for c in _rows_in(s, lookup, Commit.sha, want):
            r.commits[c.sha] = c
        named = {c.upstream_sha for c in r.commits.values() if c.upstream_sha}
    return r


def _neighbours(r: _GraphRows, sha: str) -> Neighbours:
    c = r.commits.get(sha)
    n = Neighbours(Node(sha, c.subject if c else ""))
    # By the raw reference, as the (kind, src, dst_raw) unique index hands them back.
    for e in sorted(r.edges(r.out_edges, sha, "fixes"), key=lambda e: str(e.dst_raw)):
        n.culprits.append(r.node(e.dst) if e.dst else Node(e.dst_raw, "(unknown commit)"))
    for src in sorted(e.src for e in r.edges(r.in_edges, sha, "fixes")):
        n.fixed_by.append(r.node(src))
    for bp in r.backports.get(sha, []):
        n.backports.append((Node(bp.sha, bp.subject), bp.branch))
        for src in sorted(e.src for e in r.edges(r.in_edges, bp.sha, "fixes")):
            n.backport_fixes.append((r.node(src), bp.sha))
    for e in r.edges(r.in_edges, sha, "reverts"):
        n.reverted_by.append(r.node(e.src))
    # Stable-dep-of: is written on the backport of the prerequisite, naming the fix it enables.
    srcs = [sha, *(bp.sha for bp, _ in n.backports)]
    dsts = sorted(e.dst for x in srcs for e in r.edges(r.out_edges, x, "stable-dep-of") if e.dst)
    for dst in dict.fromkeys(dsts):
        n.prerequisite_of.append(r.node(dst))
    seen: set[str] = set()
    for src in sorted(e.src for e in r.edges(r.in_edges, sha, "stable-dep-of")):
        stable = r.commits.get(src)
        up = stable.upstream_sha if stable and stable.upstream_sha else src
        if up not in seen:
            seen.add(up)
            n.prerequisites.append(r.node(up))
    return n


def neighbours_of(s: Session, shas: Iterable[str]) -> dict[str, Neighbours]:
    """The graph neighbours of each change, in a fixed number of queries per chunk of changes."""
    out: dict[str, Neighbours] = {}
    for chunk in chunked(dict.fromkeys(shas), CHUNK):
        rows = _graph_rows(s, chunk)
        out.update((sha, _neighbours(rows, sha)) for sha in chunk)
    return out


def neighbours(s: Session, sha: str) -> Neighbours:
    return neighbours_of(s, [sha])[sha]
