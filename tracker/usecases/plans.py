"""Use cases ``plan``, ``status`` and ``why``: decide a branch's plan, store its decisions, and
answer for one change (or one posting) from the stored plans when they are current.

Kept apart from the CLI so that tests, the dashboard and the mails drive the same code paths
without a terminal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from tracker.config import BranchConfig, Config
from tracker.decide import (
    Fix,
    PendingFix,
    Plan,
    Prerequisite,
    Step,
    decide,
    presence,
    with_queue,
)
from tracker.errors import UnknownCommitError
from tracker.gcpause import collector_paused
from tracker.store.db import Store
from tracker.store.lookup import HEXISH, find_commit
from tracker.store.models import (
    Branch,
    BranchPrerequisite,
    BranchState,
    Commit,
    Edge,
    Message,
    SyncRun,
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

__all__ = [
    "PostingStatus",
    "StatusReport",
    "StatusRow",
    "WhyLink",
    "WhyReport",
    "decide_plan",
    "find_commit",
    "plan",
    "plan_inputs",
    "posting_status",
    "save_plan",
    "status",
    "store_plans",
    "why",
]


def _topic_names(config: Config) -> list[str]:
    return [t.name for t in config.topics]


def _plan_in_session(
    s: Session,
    config: Config,
    b: BranchConfig,
    topic: str | None,
    extra: Sequence[Prerequisite] = (),
    pending: list[PendingFix] | None = None,
) -> Plan:
    """One branch's plan; ``pending`` (the same for every branch) may come from the caller."""
    with collector_paused():
        return _decide_plan(s, config, b, topic, extra, pending)


def decide_plan(
    s: Session, config: Config, branch: str, extra: Sequence[Prerequisite] = ()
) -> Plan:
    """The branch's whole plan as if ``extra`` prerequisites were stored too; nothing is saved.

    ``tracker check --plan`` re-plans with the prerequisites it verified before storing
    anything, so that a run that dies leaves the store as it found it."""
    return _plan_in_session(s, config, config.branch(branch), None, extra)


def save_plan(s: Session, branch: str, p: Plan) -> None:
    """Store a whole plan's decisions in the caller's transaction (what ``plan`` does).

    Stored without a digest of its inputs: ``status`` decides again until ``plan`` or
    :func:`store_plans` (which ``check --plan`` calls after its transaction) runs."""
    _save_states(s, branch, p, None)


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
        # Read before the plan: a sync committing meanwhile then makes the digest stale, never
        # the stored plan newer than its digest says.
        inputs = plan_inputs(s, config) if topic is None and not store.read_only else None
        result = _plan_in_session(s, config, b, topic)
        # A read-only store (another user's) still answers; it just cannot remember the answer.
        if topic is None and not store.read_only:
            _save_states(s, b.name, result, inputs)
    return result


def store_plans(config: Config, store: Store) -> int:
    """Decide and store every branch's plan, as ``plan`` would, after a sync.

    A sync changes what the plans read, so the stored ones stop answering ``status``; deciding
    them here (the shared reads once for all branches) keeps ``status`` a lookup for the
    interactive user after each cron sync instead of three whole plans. Returns the number of
    branches stored."""
    if store.read_only or not config.branches:
        return 0
    with store.session() as s:
        inputs = plan_inputs(s, config)
        if inputs is None:
            return 0  # another sync is running: its end stores them
        for name, p in _plans_for_every_branch(s, config).items():
            _save_states(s, name, p, inputs)
    return len(config.branches)


def plan_inputs(s: Session, config: Config) -> str | None:
    """A digest of everything a plan reads, or None while a sync is running.

    Every change to the store's facts is made by a sync run (git, mail, feeds), which records
    itself in ``sync_runs``; verified prerequisites come from ``check``; the rest is the
    configuration. A stored plan whose digest equals the current one is the plan that would be
    decided now."""
    running, last_run, last_end = s.execute(
        select(
            func.count(SyncRun.id).filter(SyncRun.status == "running"),
            func.max(SyncRun.id),
            func.max(SyncRun.finished_at),
        )
    ).one()
    if running:
        return None
    prereqs, prereq_at = s.execute(
        select(func.count(), func.max(BranchPrerequisite.found_at)).select_from(BranchPrerequisite)
    ).one()
    wanted = (config.branches, config.topics, config.upstream_patterns, config.stable_list)
    text = f"{last_run}|{last_end}|{prereqs}|{prereq_at}|{wanted!r}"
    return hashlib.sha256(text.encode()).hexdigest()


def _save_states(s: Session, branch: str, p: Plan, inputs: str | None) -> None:
    """Keep the latest decision per change; rows that did not change are not rewritten.

    Plain columns and bulk statements: a kernel branch has ten thousand decisions, and ORM
    objects for each cost more than deciding them. ``inputs`` is :func:`plan_inputs` as read
    before the plan was decided (None: status must not reuse these rows).
    """
    branch_id = s.scalar(select(Branch.id).where(Branch.name == branch))
    if branch_id is None:
        return
    s.execute(update(Branch).where(Branch.id == branch_id).values(plan_inputs=inputs))
    now = datetime.now(UTC)
    existing = {
        sha: (status, reason, evidence, position, whole)
        for sha, status, reason, evidence, position, whole in s.execute(
            select(
                BranchState.sha,
                BranchState.status,
                BranchState.reason,
                BranchState.evidence,
                BranchState.position,
                BranchState.step,
            ).where(BranchState.branch_id == branch_id)
        )
    }
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    for step in p.steps:
        values = (
            step.status,
            step.reason,
            json.dumps(list(step.evidence)),
            step.position,
            json.dumps(step.to_dict()),
        )
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
            "step": values[4],
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


def status(config: Config, store: Store, query: str) -> StatusReport:
    with store.session() as s:
        c = find_commit(s, query)
        return _commit_status(s, config, [c])[0]


def _commit_status(s: Session, config: Config, commits: list[Commit]) -> list[StatusReport]:
    """Each commit's decision on every branch; one plan per branch however many commits."""
    if not commits:
        return []  # a posting none of whose patches is merged yet: no decision to look up
    rows: dict[str, list[StatusRow]] = {c.sha: [] for c in commits}
    decided = _stored_steps(s, config, [c.sha for c in commits])
    if decided is None:
        with collector_paused():
            plans = _plans_for_every_branch(s, config)
        decided = {name: {st.sha: st for st in p.steps} for name, p in plans.items()}
    for b in config.branches:
        steps = decided[b.name]
        for c in commits:
            step = steps.get(c.sha) or _single(s, b, c)
            rows[c.sha].append(StatusRow(b.name, step))
    return [
        StatusReport(sha=c.sha, subject=c.subject, rows=tuple(rows[c.sha]), posting=_posted(s, c))
        for c in commits
    ]


def _stored_steps(s: Session, config: Config, shas: list[str]) -> dict[str, dict[str, Step]] | None:
    """These commits' decisions as every branch's stored plan has them, when each stored plan
    read what the store holds now (:func:`plan_inputs`); else None, and status decides anew.

    A commit no stored plan lists was no step of the plan then and is none now."""
    inputs = plan_inputs(s, config)
    if inputs is None or not config.branches:
        return None
    names = [b.name for b in config.branches]
    ids = {
        name: bid
        for bid, name, stored in s.execute(
            select(Branch.id, Branch.name, Branch.plan_inputs).where(Branch.name.in_(names))
        )
        if stored == inputs
    }
    if len(ids) < len(names):
        return None
    out: dict[str, dict[str, Step]] = {}
    for name in names:
        found: dict[str, Step] = {}
        for part in chunked(shas):
            for sha, whole in s.execute(
                select(BranchState.sha, BranchState.step).where(
                    BranchState.branch_id == ids[name], BranchState.sha.in_(part)
                )
            ):
                if whole is None:
                    return None
                found[sha] = _step_from_json(whole)
        out[name] = found
    return out


def _step_from_json(text: str) -> Step:
    d = json.loads(text)
    return Step(
        sha=d["sha"],
        subject=d["subject"],
        topic=d["topic"],
        topics=tuple(d["topics"]),
        status=d["status"],
        reason=d["reason"],
        evidence=tuple(d["evidence"]),
        position=d["position"],
        order_reason=d["order_reason"],
        after=tuple(d["after"]),
        stable_sha=d["stable_sha"],
        release=d["release"],
    )


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
        if HEXISH.match(text):
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
