"""Load the plain values :mod:`tracker.decide` decides over, touching only what a plan needs.

At kernel scale the store holds over a million commits; a plan reads the branch's own commits,
the topic fixes after its base, and the commits those fixes name, never the whole history.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from tracker.config import BranchConfig
from tracker.decide import (
    BranchCommitInfo,
    BranchView,
    CommitInfo,
    Fix,
    FixRef,
    Nomination,
    PendingFix,
    Prerequisite,
    SeriesSlot,
    StableEventInfo,
    World,
)
from tracker.errors import NotSyncedError
from tracker.graph import Candidate, resolve_reference
from tracker.parse.trailers import HEX_RE
from tracker.store.models import (
    Branch,
    BranchCommit,
    BranchPrerequisite,
    Commit,
    CommitTopic,
    Edge,
    Message,
    MmPatch,
    MmState,
    Series,
    SeriesVersion,
    StableEvent,
    Trailer,
)
from tracker.store.queries import chunked
from tracker.store.trailer_rows import with_repair
from tracker.topics import TopicClassifier

# Plans read these columns only: loading whole Commit objects (messages included) for tens of
# thousands of fixes dominated plan time at kernel scale.
_INFO_COLUMNS = (
    Commit.sha,
    Commit.subject,
    Commit.mainline,
    Commit.first_release,
    Commit.release_index,
    Commit.mainline_order,
)


def _row_info(r: Any) -> CommitInfo:
    # _INFO_COLUMNS are in CommitInfo's field order.
    return CommitInfo(r[0], r[1], r[2], r[3], r[4], r[5])


def commit_info(c: Commit) -> CommitInfo:
    return CommitInfo(
        sha=c.sha,
        subject=c.subject,
        mainline=c.mainline,
        release=c.first_release,
        release_index=c.release_index,
        order=c.mainline_order,
    )


def _version(text: str) -> tuple[int, int] | None:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def load_branch(s: Session, cfg: BranchConfig) -> BranchView:
    row = s.scalar(select(Branch).where(Branch.name == cfg.name))
    if row is None or row.base_release_index is None:
        raise NotSyncedError(f"branch '{cfg.name}' has not been synced yet; run 'tracker sync'")
    rows = s.execute(
        select(
            Commit.sha,
            Commit.subject,
            BranchCommit.position,
            BranchCommit.release,
            Commit.upstream_sha,
            Commit.upstream_rule,
        )
        .join(Commit, Commit.sha == BranchCommit.sha)
        .where(BranchCommit.branch_id == row.id)
        .order_by(BranchCommit.position)
    ).all()
    shas = [r[0] for r in rows]
    # Revert trailers are rare (about 1 in 500 commits): reading them all and keeping the
    # branch's beats probing every trailer of a 30,000-commit branch.
    members = set(shas)
    reverts: dict[str, list[str]] = {}
    for src, value in s.execute(
        select(Trailer.commit_sha, Trailer.value).where(
            Trailer.kind.in_(("reverts", "reverts-upstream")), Trailer.commit_sha.is_not(None)
        )
    ):
        if src in members:
            reverts.setdefault(src, []).append(value)
    # Reverts name commits by (possibly abbreviated) sha; resolve against the branch and mainline.
    ordered = sorted(members)
    expanded = {
        sha: tuple(_expand(s, v, ordered) for v in values) for sha, values in reverts.items()
    }
    commits = tuple(
        BranchCommitInfo(sha, subject, position, release, upstream, rule, expanded.get(sha, ()))
        for sha, subject, position, release, upstream, rule in rows
    )
    return BranchView(
        name=cfg.name,
        base=cfg.base,
        base_index=row.base_release_index,
        version=_version(cfg.version),
        commits=commits,
    )


def _expand(s: Session, value: str, branch_shas: Sequence[str]) -> str:
    """A (possibly abbreviated) sha: the branch's commit with that prefix, else the store's only
    one; ``branch_shas`` is sorted, so a prefix is a binary search, not a walk of the branch."""
    if len(value) == 40:
        return value
    i = bisect.bisect_left(branch_shas, value)
    if i < len(branch_shas) and branch_shas[i].startswith(value):
        return branch_shas[i]
    return _unique_sha(s, value) or value


def load_fixes(
    s: Session, base_index: int, topic_order: Sequence[str], topic: str | None = None
) -> list[Fix]:
    """Topic commits after the base release that carry Fixes: or Cc: stable."""
    # Start from the (small) topic table and probe trailers by index: walking every Fixes:
    # trailer of a kernel history costs a second at 1M commits.
    tagged = (
        select(Trailer.id)
        .where(Trailer.commit_sha == Commit.sha, Trailer.kind.in_(("fixes", "cc-stable")))
        .exists()
    )
    topic_q = select(CommitTopic.sha).distinct()
    if topic:
        topic_q = topic_q.where(CommitTopic.topic == topic)
    rows = s.execute(
        select(*_INFO_COLUMNS).where(
            Commit.sha.in_(topic_q),
            Commit.mainline.is_(True),
            or_(Commit.release_index.is_(None), Commit.release_index > base_index),
            tagged,
        )
    ).all()
    infos = [_row_info(r) for r in rows]
    shas = [c.sha for c in infos]
    topics: dict[str, list[str]] = {}
    edges: dict[str, list[FixRef]] = {}
    noms: dict[str, list[Nomination]] = {}
    for chunk in chunked(shas):
        for sha, t in s.execute(
            select(CommitTopic.sha, CommitTopic.topic).where(CommitTopic.sha.in_(chunk))
        ):
            topics.setdefault(sha, []).append(t)
        for src, raw, dst, rule, evidence, flagged in s.execute(
            select(Edge.src, Edge.dst_raw, Edge.dst, Edge.rule, Edge.evidence, Edge.flagged).where(
                Edge.kind == "fixes", Edge.src.in_(chunk)
            )
        ):
            edges.setdefault(src, []).append(FixRef(raw, dst, rule, evidence, flagged))
        for owner, note, meta_text in s.execute(
            select(Trailer.commit_sha, Trailer.subject, Trailer.note).where(
                Trailer.commit_sha.in_(chunk), Trailer.kind == "cc-stable"
            )
        ):
            if owner is None:
                continue
            meta = json.loads(meta_text or "{}")
            mv = meta.get("min_version")
            noms.setdefault(owner, []).append(
                Nomination(
                    note=note,
                    min_version=(mv[0], mv[1]) if mv else None,
                    prerequisite=_unique_sha(s, meta.get("prerequisite")),
                )
            )

    def rank(t: str) -> int:
        return topic_order.index(t) if t in topic_order else len(topic_order)

    return [
        Fix(
            commit=c,
            topics=tuple(sorted(topics.get(c.sha, []), key=rank)),
            fixes=tuple(edges.get(c.sha, [])),
            nominations=tuple(noms.get(c.sha, [])),
        )
        for c in infos
    ]


def _unique_sha(s: Session, prefix: object) -> str | None:
    if not isinstance(prefix, str) or not prefix:
        return None
    hits = s.scalars(
        select(Commit.sha).where(Commit.sha >= prefix, Commit.sha < prefix + "g").limit(2)
    ).all()
    return hits[0] if len(hits) == 1 else None


def load_prerequisites(s: Session, branch: str) -> list[Prerequisite]:
    """Prerequisites the simulator verified for fixes on this branch."""
    rows = s.execute(
        select(BranchPrerequisite)
        .join(Branch, Branch.id == BranchPrerequisite.branch_id)
        .where(Branch.name == branch)
    ).scalars()
    return [Prerequisite(r.prerequisite_sha, r.fix_sha, r.evidence) for r in rows]


def load_world(s: Session, fixes: Iterable[Fix], extra: Iterable[str] = ()) -> World:
    """The commits decisions name: the fixes, their culprits, prerequisites and reverts."""
    commits: dict[str, CommitInfo] = {}
    wanted: set[str] = set(extra)
    for f in fixes:
        commits[f.commit.sha] = f.commit
        wanted.update(r.dst for r in f.fixes if r.dst)
        wanted.update(n.prerequisite for n in f.nominations if n.prerequisite)
    # The branch's backports are matched by sha alone (BranchView); their upstream commits'
    # details are not read, which spares 30,000 lookups on an old branch.
    _add_infos(s, commits, wanted - set(commits))
    # Reverts are rare (a fraction of a percent of commits): one read of them all is cheaper
    # than probing the revert edges for every wanted commit.
    reverts: dict[str, list[str]] = {}
    for src, dst in s.execute(
        select(Edge.src, Edge.dst).where(Edge.kind == "reverts", Edge.dst.is_not(None))
    ):
        if dst in commits:
            reverts.setdefault(dst, []).append(src)
    _add_infos(s, commits, {r for rs in reverts.values() for r in rs} - set(commits))
    stable_home: dict[str, str] = {}
    for chunk in chunked(sorted(wanted)):
        for name, sha in s.execute(
            select(Branch.name, BranchCommit.sha)
            .join(Branch, Branch.id == BranchCommit.branch_id)
            .where(BranchCommit.sha.in_(chunk))
        ):
            stable_home.setdefault(sha, name)
    return World(
        commits=commits,
        mainline_reverts={k: tuple(v) for k, v in reverts.items()},
        stable_home=stable_home,
    )


def _add_infos(s: Session, commits: dict[str, CommitInfo], shas: Iterable[str]) -> None:
    for chunk in chunked(sorted(shas)):
        for r in s.execute(select(*_INFO_COLUMNS).where(Commit.sha.in_(chunk))):
            commits[r[0]] = _row_info(r)


def load_series(s: Session, shas: Iterable[str]) -> dict[str, SeriesSlot]:
    """Where each of these mainline commits sat in its posted series (latest version posted)."""
    best: dict[str, tuple[int, SeriesSlot]] = {}
    for chunk in chunked(sorted(set(shas))):
        rows = s.execute(
            select(
                Commit.sha,
                Series.id,
                Series.subject,
                SeriesVersion.version,
                SeriesVersion.total,
                Message.series_index,
                Message.kind,
            )
            .join(Message, Message.change_id == Commit.change_id)
            .join(SeriesVersion, SeriesVersion.id == Message.series_version_id)
            .join(Series, Series.id == SeriesVersion.series_id)
            # The message kind is tested below: in SQL, SQLite took the kind index (most
            # messages are unlinked, so change_id looks unselective) and walked every patch
            # of a list archive per commit.
            .where(Commit.sha.in_(chunk), SeriesVersion.total > 1)
        )
        for sha, series_id, subject, version, total, index, kind in rows:
            if kind != "patch" or index is None or (sha in best and best[sha][0] >= version):
                continue
            label = f"{subject} v{version}" if version > 1 else subject
            best[sha] = (version, SeriesSlot(f"{series_id}:v{version}", label, index, total))
    return {sha: slot for sha, (_, slot) in best.items()}


def load_events(s: Session, shas: Iterable[str]) -> dict[str, tuple[StableEventInfo, ...]]:
    """Stable-mail events about these upstream commits, oldest first."""
    out: dict[str, list[StableEventInfo]] = {}
    for chunk in chunked(sorted(set(shas))):
        rows = s.scalars(
            select(StableEvent).where(StableEvent.upstream_sha.in_(chunk)).order_by(StableEvent.at)
        )
        for e in rows:
            details = json.loads(e.details or "{}")
            summary = details.get("queue_file") or details.get("subject") or e.kind
            deps = tuple(
                f'{d[0]} ("{d[1]}")' for d in details.get("dependencies", []) if len(d) == 2
            )
            out.setdefault(e.upstream_sha, []).append(
                StableEventInfo(
                    kind=e.kind,
                    branch=e.branch,
                    at=e.at.isoformat() if e.at else None,
                    message_id=e.message_id,
                    summary=str(summary),
                    dependencies=deps,
                )
            )
    return {k: tuple(v) for k, v in out.items()}


# -mm states after which a patch is no longer on its way to mainline.
_MM_GONE = ("dropped", "withdrawn", "nacked", "obsolete", "folded", "merged")


def load_pending(s: Session, classifier: TopicClassifier) -> list[PendingFix]:
    """Fixes not in mainline yet: live -mm patches, then list postings -mm does not carry.

    A fixed number of queries however many postings are waiting: with a list archive loaded,
    one query per posting (and SQLite walking every Fixes: trailer of the history for each)
    made a plan take half a minute.
    """
    mm_rows = s.execute(
        select(MmPatch.filename, MmPatch.subject, MmPatch.state).where(
            MmPatch.change_id.is_(None), MmPatch.state.not_in(_MM_GONE)
        )
    ).all()
    notes: dict[str, list[tuple[str, Any]]] = {}
    for chunk in chunked([r[0] for r in mm_rows]):
        for filename, msgid, at in s.execute(
            select(MmState.filename, MmState.message_id, MmState.at).where(
                MmState.filename.in_(chunk)
            )
        ):
            notes.setdefault(filename, []).append((msgid, at))
    for rows in notes.values():
        rows.sort(key=lambda r: (r[1] is not None, r[1]))  # as SQL orders: NULL first
    mm_msgids = [m for rows in notes.values() for m, _ in rows]
    links: dict[str, list[str]] = {}
    fixes_of: dict[str, list[tuple[str, str | None, str | None]]] = {}
    # The kind is tested here, not in SQL: given "kind IN (...)" SQLite may walk the (kind,
    # value) index over every Link: of the history instead of this message's few trailers.
    cols = (Trailer.message_id, Trailer.kind, Trailer.value, Trailer.subject, Trailer.note)
    for chunk in chunked(mm_msgids):
        for owner, kind, value, subject, note in s.execute(
            select(*cols).where(Trailer.message_id.in_(chunk))
        ):
            if owner is None or kind not in ("link", "fixes"):
                continue
            if kind == "link":
                links.setdefault(owner, []).append(value)
            else:
                fixes_of.setdefault(owner, []).append((value, subject, note))
    # Unmerged postings that name a commit they fix, with where their version stands.
    # Starts from the messages (their kind index) for the same reason.
    posted: dict[str, tuple[str, Any, bool]] = {}
    for msgid, subject, clean, date, version, latest, kind, value, tsubject, note in s.execute(
        select(
            Message.message_id,
            Message.subject,
            Message.clean_subject,
            Message.date,
            SeriesVersion.version,
            Series.latest_version,
            Trailer.kind,
            Trailer.value,
            Trailer.subject,
            Trailer.note,
        )
        .join(Trailer, Trailer.message_id == Message.message_id)
        .outerjoin(SeriesVersion, SeriesVersion.id == Message.series_version_id)
        .outerjoin(Series, Series.id == SeriesVersion.series_id)
        .where(Message.kind == "patch", Message.change_id.is_(None))
    ):
        if kind != "fixes":
            continue
        latest_version = version is None or latest is None or version >= latest
        posted.setdefault(msgid, (clean or subject, date, latest_version))
        fixes_of.setdefault(msgid, []).append((value, tsubject, note))
    resolve = _Resolver(s)
    resolve.prefetch(t for ts in fixes_of.values() for t in ts)
    pending: list[PendingFix] = []
    carried: set[str] = set()
    for filename, subject, state in mm_rows:
        msgids = [m for m, _ in notes.get(filename, [])]
        mm_links = list(dict.fromkeys(v for m in msgids for v in links.get(m, [])))
        carried.update(mm_links)
        refs = resolve.refs(t for m in msgids for t in fixes_of.get(m, []))
        first = notes.get(filename, [])
        since = f" since {first[0][1]:%Y-%m-%d}" if first and first[0][1] else ""
        pending.append(
            PendingFix(
                key=filename,
                subject=subject,
                topics=(),
                fixes=refs,
                where=f"in -mm {state}{since}",
                message_id=mm_links[0] if mm_links else None,
            )
        )
    for msgid, (subject, date, latest_version) in posted.items():
        if msgid in carried or not latest_version:
            continue
        when = f" on {date:%Y-%m-%d}" if date else ""
        pending.append(
            PendingFix(
                key=msgid,
                subject=subject,
                topics=(),
                fixes=resolve.refs(fixes_of[msgid]),
                where=f"posted to the list{when}",
                message_id=msgid,
            )
        )
    pending = [p for p in pending if p.fixes]
    culprit_topics = _topics_of(s, {r.dst for p in pending for r in p.fixes if r.dst})
    order = [t.name for t in classifier.topics]

    def rank(t: str) -> int:
        return order.index(t) if t in order else len(order)

    out: list[PendingFix] = []
    for p in pending:
        # A fix joins its subject's topics and its culprits' (a fix joins its culprit's).
        found = {m.topic for m in classifier.classify(p.subject, "", ())}
        for r in p.fixes:
            if r.dst:
                found.update(culprit_topics.get(r.dst, ()))
        out.append(replace(p, topics=tuple(sorted(found, key=rank))))
    return out


def _topics_of(s: Session, shas: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for chunk in chunked(sorted(shas)):
        for sha, topic in s.execute(
            select(CommitTopic.sha, CommitTopic.topic).where(CommitTopic.sha.in_(chunk))
        ):
            out.setdefault(sha, []).append(topic)
    return out


class _Resolver:
    """Fixes: references of mails resolved against the store, each distinct one once, from
    candidates read for all of them together (one statement per few hundred references, not
    two queries per reference)."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self._done: dict[tuple[str, str | None, str | None], FixRef] = {}
        self._prefix: dict[str, list[Candidate]] = {}
        self._subject: dict[str, list[Candidate]] = {}

    def prefetch(self, rows: Iterable[tuple[str, str | None, str | None]]) -> None:
        rows = list(rows)
        prefixes = sorted({v.strip().lower() for v, _, _ in rows} - {""})
        prefixes = [p for p in prefixes if HEX_RE.match(p)]
        for chunk in chunked(prefixes, 200):
            # A range probe of the sha index per prefix, all in one statement.
            values = ", ".join(f"(:p{i})" for i in range(len(chunk)))
            stmt = text(
                f"WITH p(pfx) AS (VALUES {values}) "
                "SELECT p.pfx, c.sha, c.subject, c.mainline FROM p JOIN commits AS c "
                "ON c.sha >= p.pfx AND c.sha < p.pfx || 'g'"
            )
            params = {f"p{i}": v for i, v in enumerate(chunk)}
            for pfx, sha, subj, main in self.s.execute(stmt, params):
                self._prefix.setdefault(pfx, []).append(Candidate(sha, subj, bool(main)))
        for pfx in prefixes:
            self._prefix.setdefault(pfx, [])
        subjects = sorted({subj for _, subj, _ in rows if subj})
        for chunk in chunked(subjects):
            for sha, subj, main in self.s.execute(
                select(Commit.sha, Commit.subject, Commit.mainline).where(Commit.subject.in_(chunk))
            ):
                self._subject.setdefault(subj, []).append(Candidate(sha, subj, main))
        for subj in subjects:
            self._subject.setdefault(subj, [])

    def refs(self, rows: Iterable[tuple[str, str | None, str | None]]) -> tuple[FixRef, ...]:
        out: dict[str, FixRef] = {}
        for row in rows:
            ref = self._done.get(row)
            if ref is None:
                ref = self._done[row] = self._resolve(*row)
            out[row[0]] = ref
        return tuple(out.values())

    def _resolve(self, value: str, subject: str | None, note: str | None) -> FixRef:
        res = resolve_reference(value, subject, self._by_prefix, self._by_subject)
        evidence, flagged = with_repair(res.evidence, res.flagged, note)
        return FixRef(value, res.dst, res.rule, evidence, flagged)

    # The lookups answer as the LIMIT 3 queries of the sync's resolver do: first three by sha.
    def _by_prefix(self, prefix: str) -> list[Candidate]:
        p = prefix.lower()
        if p not in self._prefix:
            self.prefetch([(p, None, None)])
        return sorted(self._prefix.get(p, []), key=lambda c: c.sha)[:3]

    def _by_subject(self, subject: str) -> list[Candidate]:
        if subject not in self._subject:
            self.prefetch([("", subject, None)])
        return self._subject.get(subject, [])[:3]
