"""Use cases the CLI (and later the reports) call: open the store, sync, plan, status.

Kept apart from cli.py so that tests drive the same code paths without a terminal.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from tracker.config import BranchConfig, Config
from tracker.errors import ConfigError, UnknownCommitError
from tracker.plan import (
    Fix,
    PendingFix,
    Plan,
    Prerequisite,
    Step,
    decide,
    presence,
    with_queue,
)
from tracker.revisions import check_sha
from tracker.store.db import Store
from tracker.store.models import (
    Branch,
    BranchState,
    Change,
    Commit,
    Document,
    Edge,
    Message,
    Trailer,
)
from tracker.store.postings import PostingView, find_posting, msgid_of, posting_view
from tracker.store.queries import chunked
from tracker.store.queue import load_queue, load_stable_deps
from tracker.store.snapshot import (
    commit_info,
    load_branch,
    load_events,
    load_fixes,
    load_pending,
    load_prerequisites,
    load_series,
    load_world,
)
from tracker.topics import TopicClassifier

if TYPE_CHECKING:
    from tracker.ingest.gitlog import Progress, SyncStats
    from tracker.ingest.mailstore import IngestCounts
    from tracker.ingest.sources import SourceReport

# The ingest modules (GitPython, b4, the mail parsers) are imported inside the sync use cases:
# plan, status and why are what a maintainer runs interactively, and those imports alone
# cost them half a second.

_HEXISH = re.compile(r"^[0-9a-fA-F]{4,40}$")


def open_store(config: Config) -> Store:
    return Store(config.database_url, config.busy_timeout)


def sync(
    config: Config, store: Store, progress: Progress | None = None, *, fetch: bool = False
) -> SyncStats:
    from tracker.ingest.gitlog import GitSync
    from tracker.ingest.identity import link_identities
    from tracker.ingest.queuesync import link_queue

    mark_stale_runs(store)
    stats = GitSync(config, store, progress).run(fetch=fetch)
    # Mail synced before git (the CLI reads sources first so that cgit feeds can ask git to
    # fetch) is linked to the commits now known: the order of sources in a sync, or of syncs,
    # must not change what is linked.
    with store.session() as s:
        link_identities(s)
        # Queue patches found by patch-id only: their commits (and patch-ids) are known now.
        link_queue(s)
    if stats.total():
        store.refresh_statistics()
    return stats


def mark_stale_runs(store: Store) -> int:
    """Runs still `running` belong to a process that died (SIGKILL, power loss).

    Callers hold the run lock, so no live run can be among them. Returns how many were marked.
    """
    from sqlalchemy import update

    from tracker.store.models import SyncRun

    with store.session() as s:
        res = s.execute(
            update(SyncRun)
            .where(SyncRun.status == "running")
            .values(status="killed", error="the run ended without recording a result")
        )
        return int(getattr(res, "rowcount", 0) or 0)


def sync_sources(
    config: Config, store: Store, progress: Progress | None = None, only: str | None = None
) -> list[SourceReport]:
    """Mail and feed sources, then identity links; a cgit feed naming unknown commits makes
    the next git sync fetch (``fetch_shas`` in the reports)."""
    from tracker.ingest.sources import SourceSync

    if only is not None and all(src.name != only for src in config.sources):
        known = ", ".join(src.name for src in config.sources) or "none configured"
        raise ConfigError(f"unknown source '{only}' (configured: {known})")
    mark_stale_runs(store)
    reports = SourceSync(config, store, progress).run(only)
    if any(r.counts.messages or r.counts.commits or r.counts.stable_events for r in reports):
        store.refresh_statistics()
    return reports


def reparse(config: Config, store: Store) -> IngestCounts:
    """Rebuild every mail-derived row from the stored raw documents, without fetching."""
    from tracker.ingest.mailstore import IngestCounts, MailStore, clear_derived, document_bytes
    from tracker.ingest.sources import list_of, settle_and_link
    from tracker.store.models import Source

    total = IngestCounts()
    configured = {src.name: list_of(src) for src in config.sources}
    with store.session() as s:
        clear_derived(s)
        ids = list(s.scalars(select(Document.id).order_by(Document.id)))
        lists = {
            sid: configured.get(name) for sid, name in s.execute(select(Source.id, Source.name))
        }
    for i in range(0, len(ids), 200):
        with store.session() as s:
            for doc in s.scalars(select(Document).where(Document.id.in_(ids[i : i + 200]))):
                doc.error = None
                name = lists.get(doc.source_id) if doc.source_id is not None else None
                ms = MailStore(s, config.upstream_patterns, doc.source_id, name, config.stable_list)
                total.add(ms.ingest(doc, document_bytes(doc)))
    settle_and_link(store)
    # The stable queue keeps no documents: its files are parsed again from the local clone.
    queues = [src for src in config.sources if src.kind == "stable-queue"]
    if queues:
        from tracker.ingest.queuesync import forget_reads
        from tracker.ingest.sources import SourceSync

        with store.session() as s:
            forget_reads(s, [src.name for src in queues])
        sync = SourceSync(config, store)
        for src in queues:
            rep = sync.sync_one(src)
            total.documents += rep.counts.documents
            total.errors += rep.counts.errors + ([rep.failed] if rep.failed else [])
    return total


def _topic_names(config: Config) -> list[str]:
    return [t.name for t in config.topics]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a plan is built.

    A plan builds some 100,000 small acyclic tuples; each young-generation sweep the collector
    makes on the way re-scans the survivors, which cost a fifth of plan time at kernel scale.
    Nothing built here forms a cycle, so plain reference counting frees it all."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _plan_in_session(
    s: Session,
    config: Config,
    b: BranchConfig,
    topic: str | None,
    extra: Sequence[Prerequisite] = (),
    pending: list[PendingFix] | None = None,
) -> Plan:
    """One branch's plan; ``pending`` (the same for every branch) may come from the caller."""
    with _collector_paused():
        return _decide_plan(s, config, b, topic, extra, pending)


def decide_plan(
    s: Session, config: Config, branch: str, extra: Sequence[Prerequisite] = ()
) -> Plan:
    """The branch's whole plan as if ``extra`` prerequisites were stored too; nothing is saved.

    ``tracker check --plan`` re-plans with the prerequisites it verified before storing
    anything, so that a run that dies leaves the store as it found it."""
    return _plan_in_session(s, config, config.branch(branch), None, extra)


def save_plan(s: Session, branch: str, p: Plan) -> None:
    """Store a whole plan's decisions in the caller's transaction (what ``plan`` does)."""
    _save_states(s, branch, p)


def _decide_plan(
    s: Session,
    config: Config,
    b: BranchConfig,
    topic: str | None,
    extra: Sequence[Prerequisite] = (),
    pending: list[PendingFix] | None = None,
) -> Plan:
    view = load_branch(s, b)
    fixes = load_fixes(s, view.base_index, _topic_names(config), None)
    prereqs = [*load_prerequisites(s, b.name), *extra]
    if pending is None:
        pending = load_pending(s, TopicClassifier(config.topics))
    culprits = [r.dst for p in pending for r in p.fixes if r.dst]
    queue = load_queue(s, [f.commit.sha for f in fixes])
    stable_deps = load_stable_deps(s, queue)
    deps = [p.sha for ps in stable_deps.values() for p in ps]
    world = load_world(s, fixes, extra=[*(p.sha for p in prereqs), *culprits, *deps])
    world = replace(
        world,
        stable_events=load_events(s, [f.commit.sha for f in fixes]),
        series=load_series(s, [f.commit.sha for f in fixes]),
        pending=tuple(pending),
        queue=queue,
        stable_deps=stable_deps,
    )
    # Decide over every topic so fix-of-fix chains across topics stay intact, then filter.
    full = decide(view, fixes, world, prerequisites=prereqs)
    if topic is None:
        return full
    kept = tuple(st for st in full.steps if topic in st.topics)
    return Plan(branch=full.branch, base=full.base, steps=kept)


def plan(config: Config, store: Store, branch: str, topic: str | None = None) -> Plan:
    b = config.branch(branch)
    if topic is not None:
        config.topic(topic)
    with store.session() as s:
        result = _plan_in_session(s, config, b, topic)
        # A read-only store (another user's) still answers; it just cannot remember the answer.
        if topic is None and not store.read_only:
            _save_states(s, b.name, result)
    return result


def _save_states(s: Session, branch: str, p: Plan) -> None:
    """Keep the latest decision per change; rows that did not change are not rewritten.

    Plain columns and bulk statements: a kernel branch has ten thousand decisions, and ORM
    objects for each cost more than deciding them.
    """
    branch_id = s.scalar(select(Branch.id).where(Branch.name == branch))
    if branch_id is None:
        return
    now = datetime.now(UTC)
    existing = {
        sha: (status, reason, evidence, position)
        for sha, status, reason, evidence, position in s.execute(
            select(
                BranchState.sha,
                BranchState.status,
                BranchState.reason,
                BranchState.evidence,
                BranchState.position,
            ).where(BranchState.branch_id == branch_id)
        )
    }
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    for step in p.steps:
        values = (step.status, step.reason, json.dumps(list(step.evidence)), step.position)
        old = existing.pop(step.sha, None)
        if old == values:
            continue
        row = {
            "branch_id": branch_id,
            "sha": step.sha,
            "status": values[0],
            "reason": values[1],
            "evidence": values[2],
            "position": values[3],
            "computed_at": now,
        }
        (inserts if old is None else updates).append(row)
    if inserts:
        s.execute(insert(BranchState), [{**r, "simulation": None} for r in inserts])
    if updates:
        s.execute(update(BranchState), updates)
    for chunk in chunked(list(existing)):
        s.execute(
            delete(BranchState).where(
                BranchState.branch_id == branch_id, BranchState.sha.in_(chunk)
            )
        )


@dataclass(frozen=True)
class StatusRow:
    branch: str
    step: Step


@dataclass(frozen=True)
class StatusReport:
    sha: str
    subject: str
    rows: tuple[StatusRow, ...]
    # The posting this commit came from, when tracker has its mails.
    posting: PostingView | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "sha": self.sha,
            "subject": self.subject,
            "branches": [{"branch": r.branch, **r.step.to_dict()} for r in self.rows],
            "posting": self.posting.to_dict() if self.posting else None,
        }


@dataclass(frozen=True)
class PostingStatus:
    """A posting (merged or not) and, for each of its patches in mainline, its decisions."""

    posting: PostingView
    commits: tuple[StatusReport, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "posting": self.posting.to_dict(),
            "commits": [c.to_dict() for c in self.commits],
        }


def find_commit(s: Session, query: str) -> Commit:
    """A commit named by sha (full or abbreviated), Message-ID (via Link:), or subject text."""
    q = query.strip()
    if _HEXISH.match(q):
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


def status(config: Config, store: Store, query: str) -> StatusReport:
    with store.session() as s:
        c = find_commit(s, query)
        return _commit_status(s, config, [c])[0]


def _commit_status(s: Session, config: Config, commits: list[Commit]) -> list[StatusReport]:
    """Each commit's decision on every branch; one plan per branch however many commits."""
    rows: dict[str, list[StatusRow]] = {c.sha: [] for c in commits}
    with _collector_paused():
        plans = _plans_for_every_branch(s, config)
    for b in config.branches:
        steps = {st.sha: st for st in plans[b.name].steps}
        for c in commits:
            step = steps.get(c.sha) or _single(s, b, c)
            rows[c.sha].append(StatusRow(b.name, step))
    return [
        StatusReport(sha=c.sha, subject=c.subject, rows=tuple(rows[c.sha]), posting=_posted(s, c))
        for c in commits
    ]


def _posted(s: Session, c: Commit) -> PostingView | None:
    if c.change_id is None:
        return None
    msg = s.scalar(
        select(Message)
        .where(Message.change_id == c.change_id, Message.kind == "patch")
        .order_by(Message.date.desc())
        .limit(1)
    )
    return posting_view(s, msg, c.sha) if msg is not None else None


def posting_status(config: Config, store: Store, query: str) -> StatusReport | PostingStatus:
    """``tracker status``: a commit's decisions, or where a posting stands (merged or not).

    A sha, or a Message-ID / subject a mainline commit answers to, gives the commit's report;
    otherwise the posting the Message-ID, lore URL or subject names, with the decisions of
    each of its patches already merged."""
    with store.session() as s:
        text = " ".join(query.split())
        if _HEXISH.match(text):
            return _commit_status(s, config, [find_commit(s, text)])[0]
        if msgid_of(text) is None and s.scalar(
            select(Commit.sha).where(Commit.mainline.is_(True), Commit.subject == text).limit(1)
        ):
            return _commit_status(s, config, [find_commit(s, text)])[0]
        try:
            commit: Commit | None = find_commit(s, text)
        except UnknownCommitError as exc:
            commit, missing = None, exc
        posting = find_posting(s, text)
        if commit is not None and (posting is None or msgid_of(text) is not None):
            # A patch's own Message-ID: its commit, with the posting attached.
            return _commit_status(s, config, [commit])[0]
        if posting is None:
            raise UnknownCommitError(f"{missing}; no posting matches either")
        commits = [c for sha in posting.commits if (c := s.get(Commit, sha)) is not None]
        return PostingStatus(posting=posting, commits=tuple(_commit_status(s, config, commits)))


def _plans_for_every_branch(s: Session, config: Config) -> dict[str, Plan]:
    """Every branch's full plan, reading what the branches share once: the fixes after the
    oldest base (each branch keeps those after its own), the commits they name, stable events,
    series and the fixes still on their way upstream. Same decisions as one plan per branch."""
    views = {b.name: load_branch(s, b) for b in config.branches}
    if not views:
        return {}
    oldest = min(v.base_index for v in views.values())
    every = load_fixes(s, oldest, _topic_names(config), None)
    prereqs = {b.name: load_prerequisites(s, b.name) for b in config.branches}
    pending = load_pending(s, TopicClassifier(config.topics))
    culprits = [r.dst for p in pending for r in p.fixes if r.dst]
    extra = [p.sha for ps in prereqs.values() for p in ps]
    shas = [f.commit.sha for f in every]
    queue = load_queue(s, shas)
    stable_deps = load_stable_deps(s, queue)
    deps = [p.sha for ps in stable_deps.values() for p in ps]
    world = load_world(s, every, extra=[*extra, *culprits, *deps])
    world = replace(
        world,
        stable_events=load_events(s, shas),
        series=load_series(s, shas),
        pending=tuple(pending),
        queue=queue,
        stable_deps=stable_deps,
    )
    plans: dict[str, Plan] = {}
    for b in config.branches:
        view = views[b.name]
        fixes = [
            f
            for f in every
            if f.commit.release_index is None or f.commit.release_index > view.base_index
        ]
        plans[b.name] = decide(view, fixes, world, prerequisites=prereqs[b.name])
    return plans


def _single(s: Session, b: BranchConfig, c: Commit) -> Step:
    """Status of a commit that is not a topic fix candidate for this branch."""
    view = load_branch(s, b)
    fix = Fix(commit=commit_info(c), topics=())
    world = load_world(s, [fix])
    present, why = presence(view, world, c.sha)
    step = Step(c.sha, c.subject, "", (), "present" if present else "absent", why, (why,))
    if present:
        return step
    # Not a topic fix, but the stable queue may still carry it (a prerequisite, say).
    return with_queue(step, view, replace(world, queue=load_queue(s, [c.sha])))


@dataclass(frozen=True)
class WhyLink:
    sha: str
    subject: str
    relation: str
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "sha": self.sha,
            "subject": self.subject,
            "relation": self.relation,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class WhyReport:
    branch: str
    step: Step
    chain: tuple[WhyLink, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "branch": self.branch,
            **self.step.to_dict(),
            "chain": [c.to_dict() for c in self.chain],
        }


def why(config: Config, store: Store, query: str, branch: str) -> WhyReport:
    """The decision for one change on one branch, and the chain of evidence behind it."""
    b = config.branch(branch)
    with store.session() as s:
        c = find_commit(s, query)
        full = _plan_in_session(s, config, b, None)
        steps = {st.sha: st for st in full.steps}
        step = steps.get(c.sha) or _single(s, b, c)
        chain: list[WhyLink] = []
        seen: set[str] = set()
        _explain(s, step, steps, chain, seen, depth=0)
        return WhyReport(branch=branch, step=step, chain=tuple(chain))


def _explain(
    s: Session,
    step: Step,
    steps: dict[str, Step],
    chain: list[WhyLink],
    seen: set[str],
    depth: int,
) -> None:
    """Walk from a decision to the commits it rests on: culprits, fixes they fix, prerequisites."""
    if step.sha in seen or depth > 6:
        return
    seen.add(step.sha)
    chain.append(
        WhyLink(
            step.sha,
            step.subject,
            "decision" if depth == 0 else "depends on",
            # The reason is usually built from the first fact: say it once.
            (f"{step.status}: {step.reason}", *(e for e in step.evidence if e not in step.reason)),
        )
    )
    for dst, raw, rule, evidence in s.execute(
        select(Edge.dst, Edge.dst_raw, Edge.rule, Edge.evidence).where(
            Edge.kind == "fixes", Edge.src == step.sha
        )
    ):
        target = s.get(Commit, dst) if dst else None
        chain.append(
            WhyLink(dst or raw, target.subject if target else "", f"Fixes: ({rule})", (evidence,))
        )
        if dst and dst in steps:
            _explain(s, steps[dst], steps, chain, seen, depth + 1)
    for dep in step.after:
        if dep in steps:
            _explain(s, steps[dep], steps, chain, seen, depth + 1)
