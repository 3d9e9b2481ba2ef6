"""``tracker check``: would this plan, these commits or this posted series apply to a branch?

Three questions, one answer shape (:class:`CheckReport`, one :class:`CheckStep` per patch):

* :func:`check_plan` simulates the branch's ordered plan onto the synced branch head. A step
  that conflicts gets a prerequisite search; prerequisites the search verified are stored in
  ``branch_prerequisites``, which the planner reads, so the next plan inserts them before the fix.
  Plan, simulate, store is repeated until no new prerequisite turns up (at most ``max_rounds``
  times), then each step's :class:`~tracker.simulate.StepResult` JSON is stored in
  ``BranchState.simulation``, where ``plan``, ``status``, the dashboard and the mails read it.
* :func:`check_commits` simulates the given commits, in the given order (nothing is stored: it
  answers "what if", not "what does the plan say").
* :func:`check_series` applies the patches of a stored mail posting, in series order, each on
  the tree the previous one produced (nothing is stored either).

A commit counts as *in* the branch for the prerequisite search exactly as the planner decides it
(:func:`tracker.plan.presence`), or when it is an earlier step of what is being simulated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker import service
from tracker.config import BranchConfig, Config
from tracker.errors import NotSyncedError, SourceError, UnknownCommitError
from tracker.ingest.archive import parse_archive_text
from tracker.ingest.mailstore import ARCHIVE_TEXT, MAIL, MBOX, document_bytes
from tracker.parse.mail import normalize_msgid, parse_mail, split_mbox
from tracker.parse.patch import extract_diff
from tracker.plan import FAILED, BranchView, CommitInfo, Step, World, presence_in
from tracker.revisions import check_sha
from tracker.simulate import (
    Evidence,
    PrerequisiteResult,
    StepResult,
    Verdict,
    apply_mail_patch,
    simulate_sequence,
)
from tracker.store.db import Store
from tracker.store.models import (
    Branch,
    BranchPrerequisite,
    BranchState,
    Commit,
    Document,
    Edge,
    Message,
)
from tracker.store.queries import commits_by_prefix
from tracker.store.snapshot import commit_info, load_branch, load_world

__all__ = [
    "MAX_ROUNDS",
    "AddedPrerequisite",
    "CheckReport",
    "CheckStep",
    "FoundPrerequisite",
    "check_commits",
    "check_plan",
    "check_series",
]

# Each round can only add prerequisites the previous plan lacked; a chain deeper than this is
# better left to a human than chased automatically.
MAX_ROUNDS = 4

# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundPrerequisite:
    """A commit the step needs first, with the blame lines that point at it."""

    sha: str
    subject: str
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"sha": self.sha, "subject": self.subject, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class CheckStep:
    """One simulated patch: a commit (``sha``) or a mail (``message_id``)."""

    position: int
    result: StepResult
    sha: str | None = None
    message_id: str | None = None
    status: str | None = None

    @property
    def subject(self) -> str:
        return self.result.subject

    @property
    def verdict(self) -> str:
        return self.result.verdict.value

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(sorted({c.path for c in self.result.conflicts}))

    @property
    def prerequisites(self) -> tuple[FoundPrerequisite, ...]:
        pre = self.result.prerequisites
        if pre is None or not pre.found:
            return ()
        return tuple(_found(pre, sha) for sha in pre.commits if sha != self.sha)

    @property
    def search(self) -> str | None:
        """The prerequisite search's own summary, when one ran (or was carried over)."""
        pre = self.result.prerequisites
        return pre.message if pre is not None else None

    def to_dict(self) -> dict[str, object]:
        return {
            "position": self.position,
            "sha": self.sha,
            "message_id": self.message_id,
            "subject": self.subject,
            "status": self.status,
            "verdict": self.verdict,
            "files": list(self.files),
            "prerequisites": [p.to_dict() for p in self.prerequisites],
            "search": self.search,
            "detail": self.result.detail,
            "simulation": self.result.to_dict(),
        }


def _found(pre: PrerequisiteResult, sha: str) -> FoundPrerequisite:
    mine = [e for e in pre.evidence if e.commit == sha]
    subject = mine[0].subject if mine else ""
    return FoundPrerequisite(sha, subject, tuple(e.text for e in mine))


@dataclass(frozen=True)
class AddedPrerequisite:
    """A row this run wrote to ``branch_prerequisites``."""

    fix: str
    prerequisite: str
    evidence: str

    def to_dict(self) -> dict[str, object]:
        return {"fix": self.fix, "prerequisite": self.prerequisite, "evidence": self.evidence}


@dataclass(frozen=True)
class CheckReport:
    branch: str
    mode: str  # "plan", "commits" or "series"
    head: str
    steps: tuple[CheckStep, ...]
    message_id: str | None = None
    rounds: int = 1
    converged: bool = True
    added: tuple[AddedPrerequisite, ...] = ()

    @property
    def clean(self) -> bool:
        return all(s.result.ok for s in self.steps)

    def counts(self) -> dict[str, int]:
        return {v.value: sum(1 for s in self.steps if s.result.verdict is v) for v in Verdict}

    def to_dict(self) -> dict[str, object]:
        return {
            "branch": self.branch,
            "mode": self.mode,
            "head": self.head,
            "message_id": self.message_id,
            "clean": self.clean,
            "counts": self.counts(),
            "rounds": self.rounds,
            "converged": self.converged,
            "prerequisites_added": [a.to_dict() for a in self.added],
            "steps": [s.to_dict() for s in self.steps],
        }


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _repo_path(config: Config, b: BranchConfig) -> Path:
    # The branch's repository holds its head; in a linux-stable clone it holds mainline too.
    return config.repositories[b.repository].path


def _head(s: Session, branch: str) -> str:
    head = s.scalar(select(Branch.head_sha).where(Branch.name == branch))
    if head is None:
        raise NotSyncedError(f"branch '{branch}' has not been synced yet; run 'tracker sync'")
    return head


def _resolve_sha(s: Session, text: str) -> str:
    sha = check_sha(text)
    hits = commits_by_prefix(s, sha, limit=2)
    if len(hits) > 1:
        raise UnknownCommitError(f"'{text}' is ambiguous: matches several commits")
    if not hits:
        raise UnknownCommitError(f"unknown commit '{text}': not in the store (run 'tracker sync'?)")
    return hits[0].sha


class _Membership:
    """The planner's idea of "in the branch", for the prerequisite search's ``in_branch``.

    Blamed commits are usually not among the commits a plan loads, so each unknown one is read
    from the store on first sight (with the mainline reverts presence() looks at); otherwise
    presence() would call every such commit "not a known commit", hence missing.
    """

    def __init__(self, s: Session, view: BranchView, world: World) -> None:
        self.s = s
        self.view = view
        self.commits: dict[str, CommitInfo] = dict(world.commits)
        self.reverts: dict[str, tuple[str, ...]] = dict(world.mainline_reverts)
        self.home = dict(world.stable_home)
        self.earlier: frozenset[str] = frozenset()
        # One index of the branch for every question: _load() grows these same mappings.
        self._presence = presence_in(
            view, World(commits=self.commits, mainline_reverts=self.reverts, stable_home=self.home)
        )

    def __call__(self, sha: str) -> bool:
        if sha in self.earlier:
            return True
        self._load(sha)
        return self._presence(sha)[0]

    def _load(self, sha: str) -> None:
        if sha in self.commits:
            return
        c = self.s.get(Commit, sha)
        if c is None:
            return
        self.commits[sha] = commit_info(c)
        by = tuple(self.s.scalars(select(Edge.src).where(Edge.kind == "reverts", Edge.dst == sha)))
        for r in by:
            rc = self.s.get(Commit, r)
            if rc is not None:
                self.commits.setdefault(r, commit_info(rc))
        if by:
            self.reverts[sha] = by


def _membership(s: Session, b: BranchConfig) -> _Membership:
    view = load_branch(s, b)
    return _Membership(s, view, load_world(s, []))


def _simulate(
    repo: Path, head: str, shas: Sequence[str], member: _Membership
) -> tuple[StepResult, ...]:
    """Pick shas in order; each conflicting step then gets its own prerequisite search.

    The search runs separately per step because "earlier step" depends on the step: a later
    step of the sequence must stay a candidate (the planner will move it forward). Conflicting
    steps leave the tree alone, so re-picking only the steps that applied rebuilds the very tree
    the conflict happened on.
    """
    steps = list(simulate_sequence(repo, head, shas).steps)
    for i, step in enumerate(steps):
        if step.verdict is not Verdict.CONFLICT:
            continue
        member.earlier = frozenset(shas[:i])
        applied = [sha for sha, st in zip(shas[:i], steps[:i], strict=True) if st.ok]
        again = simulate_sequence(
            repo, head, [*applied, shas[i]], prerequisites=True, in_branch=member
        )
        steps[i] = replace(again.steps[-1], index=i)
    member.earlier = frozenset()
    return tuple(steps)


# ---------------------------------------------------------------------------------------------
# check SHA...
# ---------------------------------------------------------------------------------------------


def check_commits(config: Config, store: Store, branch: str, shas: Sequence[str]) -> CheckReport:
    """Simulate ``shas`` (full or abbreviated, all validated first) in order onto the head."""
    b = config.branch(branch)
    if not shas:
        raise UnknownCommitError("no commit given")
    with store.session() as s:
        full = [_resolve_sha(s, text) for text in shas]
        head = _head(s, b.name)
        results = _simulate(_repo_path(config, b), head, full, _membership(s, b))
    steps = tuple(
        CheckStep(i + 1, r, sha=sha) for i, (sha, r) in enumerate(zip(full, results, strict=True))
    )
    return CheckReport(branch=b.name, mode="commits", head=head, steps=steps)


# ---------------------------------------------------------------------------------------------
# check --plan
# ---------------------------------------------------------------------------------------------


def check_plan(
    config: Config, store: Store, branch: str, *, max_rounds: int = MAX_ROUNDS
) -> CheckReport:
    """Simulate the plan, store verified prerequisites, re-plan until stable; store results."""
    b = config.branch(branch)
    repo = _repo_path(config, b)
    added: list[AddedPrerequisite] = []
    rounds = max(1, max_rounds)
    n = 0
    while True:
        n += 1
        # service.plan saves the plan's BranchState rows, which the results are stored on.
        ordered = service.plan(config, store, b.name).ordered
        with store.session() as s:
            head = _head(s, b.name)
            member = _membership(s, b)
            results = _simulate(repo, head, [st.sha for st in ordered], member)
            fresh = _fresh_prerequisites(s, b.name, ordered, results)
            fresh += _failed_alone(s, repo, head, ordered, member, b.name, fresh)
            if fresh and n < rounds:
                _store_prerequisites(s, b.name, fresh)
                added += fresh
                continue
            results = _with_known_prerequisites(s, b.name, ordered, results)
            _store_simulations(s, b.name, head, ordered, results)
        break
    steps = tuple(
        CheckStep(st.position or 0, r, sha=st.sha, status=st.status)
        for st, r in zip(ordered, results, strict=True)
    )
    return CheckReport(
        branch=b.name,
        mode="plan",
        head=head,
        steps=steps,
        rounds=n,
        converged=not fresh,
        added=tuple(added),
    )


def _failed_alone(
    s: Session,
    repo: Path,
    head: str,
    ordered: Sequence[Step],
    member: _Membership,
    branch: str,
    already: Sequence[AddedPrerequisite],
) -> list[AddedPrerequisite]:
    """What a fix the stable team failed to apply needs on the bare branch.

    Inside the plan such a fix may apply only because another step happens to come first;
    the FAILED mail's "Possible dependencies" is what a maintainer lacks, so name it anyway.
    """
    known = _existing_prerequisites(s, branch)
    known.update({(a.fix, a.prerequisite): "" for a in already})
    out: list[AddedPrerequisite] = []
    for st in ordered:
        if st.status != FAILED:
            continue
        alone = simulate_sequence(repo, head, [st.sha], prerequisites=True, in_branch=member)
        pre = alone.steps[0].prerequisites
        if alone.steps[0].verdict is not Verdict.CONFLICT or pre is None or not pre.found:
            continue
        for sha in pre.commits:
            if sha != st.sha and (st.sha, sha) not in known:
                known[(st.sha, sha)] = ""
                out.append(AddedPrerequisite(st.sha, sha, _evidence_text(pre, sha, branch)))
    return out


def _existing_prerequisites(s: Session, branch: str) -> dict[tuple[str, str], str]:
    rows = s.execute(
        select(BranchPrerequisite)
        .join(Branch, Branch.id == BranchPrerequisite.branch_id)
        .where(Branch.name == branch)
    ).scalars()
    return {(r.fix_sha, r.prerequisite_sha): r.evidence for r in rows}


def _fresh_prerequisites(
    s: Session, branch: str, ordered: Sequence[Step], results: Sequence[StepResult]
) -> list[AddedPrerequisite]:
    known = _existing_prerequisites(s, branch)
    out: list[AddedPrerequisite] = []
    for st, r in zip(ordered, results, strict=True):
        pre = r.prerequisites
        if pre is None or not pre.found:
            continue
        for sha in pre.commits:
            if sha != st.sha and (st.sha, sha) not in known:
                known[(st.sha, sha)] = ""
                out.append(AddedPrerequisite(st.sha, sha, _evidence_text(pre, sha, branch)))
    return out


def _evidence_text(pre: PrerequisiteResult, sha: str, branch: str) -> str:
    lines = [e.text for e in pre.evidence if e.commit == sha]
    why = "; ".join(lines) or f"needed for {pre.fix[:12]} to apply"
    return f"simulation on {branch}: {why}"


def _store_prerequisites(s: Session, branch: str, rows: Iterable[AddedPrerequisite]) -> None:
    bid = s.scalar(select(Branch.id).where(Branch.name == branch))
    if bid is None:
        raise NotSyncedError(f"branch '{branch}' has not been synced yet; run 'tracker sync'")
    now = datetime.now(UTC)
    for a in rows:
        s.add(
            BranchPrerequisite(
                branch_id=bid,
                fix_sha=a.fix,
                prerequisite_sha=a.prerequisite,
                evidence=a.evidence,
                found_at=now,
            )
        )


def _with_known_prerequisites(
    s: Session, branch: str, ordered: Sequence[Step], results: Sequence[StepResult]
) -> tuple[StepResult, ...]:
    """Name the stored prerequisites on steps that apply *because* the plan put them first.

    Once a prerequisite is a step of its own the fix simulates clean and no search runs; without
    this the stored result (which the FAILED and backport mails read) would forget it.
    """
    known = _existing_prerequisites(s, branch)
    subjects = {st.sha: st.subject for st in ordered}
    out: list[StepResult] = []
    for i, (st, r) in enumerate(zip(ordered, results, strict=True)):
        earlier = [x.sha for x in ordered[:i]]
        mine = [(p, ev) for p in earlier if (ev := known.get((st.sha, p))) is not None]
        if r.prerequisites is None and r.ok and mine:
            r = replace(r, prerequisites=_carried(st.sha, mine, subjects))
        out.append(r)
    return tuple(out)


def _carried(
    fix: str, mine: Sequence[tuple[str, str]], subjects: Mapping[str, str]
) -> PrerequisiteResult:
    names = ", ".join(p[:12] for p, _ in mine)
    return PrerequisiteResult(
        fix=fix,
        found=True,
        commits=tuple(p for p, _ in mine),
        evidence=tuple(Evidence(p, subjects.get(p, ""), "", None, ev) for p, ev in mine),
        tried=(),
        candidates=(),
        message=f"applies cleanly after {names}, placed before it as verified prerequisites",
    )


def _store_simulations(
    s: Session, branch: str, head: str, ordered: Sequence[Step], results: Sequence[StepResult]
) -> None:
    bid = s.scalar(select(Branch.id).where(Branch.name == branch))
    states = {
        st.sha: st for st in s.scalars(select(BranchState).where(BranchState.branch_id == bid))
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for step, r in zip(ordered, results, strict=True):
        row = states.pop(step.sha, None)
        if row is None:
            continue
        data = r.to_dict()
        # Extra keys past StepResult's own: readers ignore them; plan/status use them for staleness.
        data.update(head=head, position=step.position, checked_at=now)
        row.simulation = json.dumps(data)
    for rest in states.values():
        # Not a step of this plan any more: an old verdict would describe another sequence.
        rest.simulation = None


# ---------------------------------------------------------------------------------------------
# check --series MSGID
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Posted:
    message_id: str
    subject: str
    diff: str


def check_series(config: Config, store: Store, branch: str, message_id: str) -> CheckReport:
    """Apply the patches of the posting containing ``message_id`` in order, chained."""
    b = config.branch(branch)
    with store.session() as s:
        head = _head(s, b.name)
        mid, patches = _series_patches(s, message_id)
    repo = _repo_path(config, b)
    tree = head
    steps: list[CheckStep] = []
    for i, p in enumerate(patches):
        r = replace(apply_mail_patch(repo, tree, p.diff), index=i, subject=p.subject)
        if r.ok and r.tree:
            tree = r.tree
        steps.append(CheckStep(i + 1, r, message_id=p.message_id))
    return CheckReport(branch=b.name, mode="series", head=head, steps=tuple(steps), message_id=mid)


def _series_patches(s: Session, message_id: str) -> tuple[str, list[_Posted]]:
    mid = normalize_msgid(message_id)
    msg = s.get(Message, mid) if mid else None
    if msg is None:
        raise UnknownCommitError(f"no stored message has Message-ID <{mid or message_id}>")
    members = _members(s, msg)
    if not members:
        raise UnknownCommitError(f"<{msg.message_id}> is not part of a stored patch posting")
    return msg.message_id, [
        _Posted(m.message_id, m.clean_subject or m.subject, _diff_of(s, m)) for m in members
    ]


def _members(s: Session, msg: Message) -> list[Message]:
    """The patches (not the cover, not replies) of msg's posting, in series order."""
    if msg.series_version_id is None:
        return [msg] if msg.kind == "patch" else []
    rows = s.scalars(
        select(Message)
        .where(Message.series_version_id == msg.series_version_id, Message.kind == "patch")
        .order_by(Message.series_index, Message.date, Message.message_id)
    )
    out: list[Message] = []
    seen: set[int | None] = set()
    for m in rows:
        # A resent "n/m" is the same patch again; the first one received stands for it.
        if m.series_index is not None and m.series_index in seen:
            continue
        seen.add(m.series_index)
        out.append(m)
    return out


def _diff_of(s: Session, m: Message) -> str:
    doc = s.get(Document, m.document_id) if m.document_id is not None else None
    if doc is None:
        raise SourceError(f"<{m.message_id}>: its raw document is no longer stored")
    data = document_bytes(doc)
    if doc.content_type == ARCHIVE_TEXT:
        page = parse_archive_text(data.decode("utf-8", "replace"))
        return page.diff.text if page.diff is not None else ""
    if doc.content_type not in (MBOX, MAIL):
        raise SourceError(f"<{m.message_id}>: stored as {doc.content_type}, not a mail")
    raws = split_mbox(data) if doc.content_type == MBOX else iter([data])
    for raw in raws:
        try:
            mail = parse_mail(raw)
        except SourceError:
            continue
        if mail.msgid == m.message_id:
            return extract_diff(mail.body) or ""
    raise SourceError(f"<{m.message_id}> is not in its stored document {doc.key}")
