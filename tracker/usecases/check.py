"""``tracker check``: would this plan, these commits or this posted series apply to a branch?

Three questions, one answer shape (:class:`CheckReport`, one :class:`CheckStep` per patch):

* :func:`check_plan` simulates the branch's ordered plan onto the synced branch head, in one
  pass per round; each conflicting step is judged where it happens (blocked by an earlier
  unapplied step, conflict with verified prerequisites, or manual backport needed, see
  :class:`~tracker.simulate.Verdict`). Prerequisites the search verified make the next round
  plan as if they were stored (the planner inserts them before the fix); at most ``max_rounds``
  rounds. Rounds only read the store: the plan, the new ``branch_prerequisites`` rows and each
  step's :class:`~tracker.simulate.StepResult` JSON (``BranchState.simulation``, where ``plan``,
  ``status``, the dashboard and the mails read it) are written in one transaction at the end,
  so a run killed half-way leaves the store as it was.
* :func:`check_commits` simulates the given commits, in the given order (nothing is stored: it
  answers "what if", not "what does the plan say").
* :func:`check_series` applies the patches of a stored mail posting, in series order, each on
  the tree the previous one produced (nothing is stored either).

A commit counts as *in* the branch for the prerequisite search exactly as the planner decides it
(:func:`tracker.decide.presence`), or when it is an earlier step that applied in this run; an
earlier step that did not apply is what a later conflict may be blocked by.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.config import BranchConfig, Config
from tracker.decide import FAILED, BranchView, CommitInfo, Prerequisite, Step, World, presence_in
from tracker.errors import ConfigError, NotSyncedError, SourceError, UnknownCommitError
from tracker.ingest.archive import parse_archive_text
from tracker.ingest.mailstore import ARCHIVE_TEXT, MAIL, MBOX, document_bytes
from tracker.parse.mail import normalize_msgid, parse_mail, split_mbox
from tracker.parse.patch import extract_diff
from tracker.revisions import check_sha
from tracker.simulate import (
    Evidence,
    PrerequisiteMode,
    PrerequisiteResult,
    SearchLimits,
    SearchSession,
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
from tracker.usecases.plans import decide_plan, save_plan, store_plans

__all__ = [
    "MAX_ROUNDS",
    "AddedPrerequisite",
    "CheckProgress",
    "CheckReport",
    "CheckStep",
    "FoundPrerequisite",
    "check_commits",
    "check_plan",
    "check_series",
    "search_limits",
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
    # (position, sha) of the earlier steps that block this one
    blocked: tuple[tuple[int, str], ...] = ()

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
            "blocked_by": [{"position": p, "sha": sha} for p, sha in self.blocked],
            "hunks": [h.to_dict() for h in self.result.hunks],
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
    # where the time went (simulation, search, blame calls), see SearchStats
    stats: Mapping[str, object] | None = None

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
            "stats": dict(self.stats or {}),
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
        # One index of the branch for every question: _load() grows these same mappings.
        self._presence = presence_in(
            view, World(commits=self.commits, mainline_reverts=self.reverts, stable_home=self.home)
        )

    def __call__(self, sha: str) -> bool:
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


def _session(limits: SearchLimits) -> SearchSession:
    # git's own blame and merge-base: several times cheaper than libgit2's on a long history,
    # and run beside the simulation (see gitio and SearchSession.prefetch)
    from tracker.gitio import blame_lines, merge_base_of

    return SearchSession(limits, blame=blame_lines, merge_base=merge_base_of)


def search_limits(
    config: Config,
    *,
    prerequisites: str | None = None,
    step_budget: float | None = None,
    run_budget: float | None = None,
) -> SearchLimits:
    """The search's limits: the ``[check]`` config, with command-line values taking precedence."""
    c = config.check
    mode = prerequisites or c.prerequisites
    try:
        chosen = PrerequisiteMode(mode)
    except ValueError:
        raise ConfigError(f"--prerequisites must be off, bounded or full, not {mode!r}") from None
    return SearchLimits(
        mode=chosen,
        max_commits=c.max_prerequisites,
        max_lines=c.max_prerequisite_lines,
        step_budget=c.step_budget if step_budget is None else max(0.0, step_budget),
        run_budget=c.run_budget if run_budget is None else max(0.0, run_budget),
    )


@dataclass(frozen=True)
class CheckProgress:
    """One finished step of a ``check`` run, for a progress display."""

    round: int
    step: int  # 1-based
    total: int
    sha: str
    verdict: str
    elapsed: float  # seconds since the run started
    failed: int  # steps of this round so far that did not apply


ProgressFn = Callable[[CheckProgress], None]


def _ticker(
    progress: ProgressFn | None, round_no: int, total: int, started: float
) -> Callable[[StepResult], None] | None:
    if progress is None:
        return None
    failed = 0

    def tick(r: StepResult) -> None:
        nonlocal failed
        if not r.ok:
            failed += 1
        elapsed = time.monotonic() - started
        progress(
            CheckProgress(
                round_no, r.index + 1, total, r.commit or "", r.verdict.value, elapsed, failed
            )
        )

    return tick


def _simulate(
    repo: Path,
    head: str,
    shas: Sequence[str],
    member: _Membership,
    session: SearchSession,
    on_step: Callable[[StepResult], None] | None = None,
) -> tuple[StepResult, ...]:
    """Pick shas in order, in one pass; each conflicting step is judged where it happened.

    Earlier steps that applied count as in the branch; earlier steps that did not are what a
    later conflict may be blocked by; later steps stay candidates (the planner moves a verified
    prerequisite forward).
    """
    return simulate_sequence(
        repo, head, shas, in_branch=member, search=session, on_step=on_step
    ).steps


def _steps(
    shas: Sequence[str],
    results: Sequence[StepResult],
    positions: Sequence[int],
    statuses: Sequence[str | None] | None = None,
) -> tuple[CheckStep, ...]:
    out: list[CheckStep] = []
    for i, (sha, r) in enumerate(zip(shas, results, strict=True)):
        blocked = tuple((positions[k], b) for k, b in zip(r.blocked_at, r.blocked_by, strict=False))
        status = statuses[i] if statuses is not None else None
        out.append(CheckStep(positions[i], r, sha=sha, status=status, blocked=blocked))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# check SHA...
# ---------------------------------------------------------------------------------------------


def check_commits(
    config: Config,
    store: Store,
    branch: str,
    shas: Sequence[str],
    *,
    limits: SearchLimits | None = None,
    progress: ProgressFn | None = None,
) -> CheckReport:
    """Simulate ``shas`` (full or abbreviated, all validated first) in order onto the head."""
    b = config.branch(branch)
    if not shas:
        raise UnknownCommitError("no commit given")
    session = _session(limits or search_limits(config))
    started = time.monotonic()
    try:
        with store.session() as s:
            full = [_resolve_sha(s, text) for text in shas]
            head = _head(s, b.name)
            tick = _ticker(progress, 1, len(full), started)
            repo = _repo_path(config, b)
            results = _simulate(repo, head, full, _membership(s, b), session, tick)
    finally:
        session.close()
    steps = _steps(full, results, list(range(1, len(full) + 1)))
    return CheckReport(
        branch=b.name,
        mode="commits",
        head=head,
        steps=steps,
        stats=_stats(session, started),
    )


def _stats(session: SearchSession, started: float) -> dict[str, object]:
    return {
        "mode": session.limits.mode.value,
        "elapsed_seconds": round(time.monotonic() - started, 3),
        **session.stats.to_dict(),
    }


# ---------------------------------------------------------------------------------------------
# check --plan
# ---------------------------------------------------------------------------------------------


def check_plan(
    config: Config,
    store: Store,
    branch: str,
    *,
    max_rounds: int = MAX_ROUNDS,
    limits: SearchLimits | None = None,
    progress: ProgressFn | None = None,
) -> CheckReport:
    """Simulate the plan, re-plan with the verified prerequisites, store everything at the end.

    Rounds only read the store: round n plans as if the prerequisites rounds 1..n-1 verified
    were stored. Plan, prerequisites and results are written in one transaction after the last
    round, so a run that is killed or interrupted leaves the store exactly as it found it.
    """
    session = _session(limits or search_limits(config))
    try:
        return _check_plan(config, store, config.branch(branch), session, max_rounds, progress)
    finally:
        session.close()


def _check_plan(
    config: Config,
    store: Store,
    b: BranchConfig,
    session: SearchSession,
    max_rounds: int,
    progress: ProgressFn | None,
) -> CheckReport:
    repo = _repo_path(config, b)
    started = time.monotonic()
    with store.session() as s:
        known = _existing_prerequisites(s, b.name)
    added: list[AddedPrerequisite] = []
    rounds = max(1, max_rounds)
    n = 0
    round_seconds: list[float] = []
    while True:
        n += 1
        round_started = time.monotonic()
        extra = [Prerequisite(a.prerequisite, a.fix, a.evidence) for a in added]
        with store.session() as s:
            plan = decide_plan(s, config, b.name, extra)
            ordered = plan.ordered
            head = _head(s, b.name)
            member = _membership(s, b)
            shas = [st.sha for st in ordered]
            tick = _ticker(progress, n, len(shas), started)
            results = _simulate(repo, head, shas, member, session, tick)
            have = {**known, **{(a.fix, a.prerequisite): a.evidence for a in added}}
            fresh = _fresh_prerequisites(have, b.name, ordered, results)
            have.update({(a.fix, a.prerequisite): a.evidence for a in fresh})
            fresh += _failed_alone(repo, head, ordered, member, b.name, have, session)
        round_seconds.append(round(time.monotonic() - round_started, 3))
        if fresh and n < rounds:
            added += fresh
            continue
        break
    have = {**known, **{(a.fix, a.prerequisite): a.evidence for a in added}}
    results = _with_known_prerequisites(have, ordered, results)
    with store.session() as s:
        _store_prerequisites(s, b.name, added)
        save_plan(s, b.name, plan)
        _store_simulations(s, b.name, head, ordered, results)
    # New prerequisites change what every branch's plan reads: stored anew, with the digest
    # status checks, they keep status a lookup after a check as after a sync.
    store_plans(config, store)
    positions = [st.position or 0 for st in ordered]
    return CheckReport(
        branch=b.name,
        mode="plan",
        head=head,
        steps=_steps(shas, results, positions, [st.status for st in ordered]),
        rounds=n,
        converged=not fresh,
        added=tuple(added),
        stats={**_stats(session, started), "round_seconds": round_seconds},
    )


def _failed_alone(
    repo: Path,
    head: str,
    ordered: Sequence[Step],
    member: _Membership,
    branch: str,
    known: dict[tuple[str, str], str],
    session: SearchSession,
) -> list[AddedPrerequisite]:
    """What a fix the stable team failed to apply needs on the bare branch.

    Inside the plan such a fix may apply only because another step happens to come first;
    the FAILED mail's "Possible dependencies" is what a maintainer lacks, so name it anyway.
    """
    out: list[AddedPrerequisite] = []
    if session.limits.mode is PrerequisiteMode.OFF:
        return out
    for st in ordered:
        if st.status != FAILED:
            continue
        alone = simulate_sequence(repo, head, [st.sha], in_branch=member, search=session)
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
    known: Mapping[tuple[str, str], str],
    branch: str,
    ordered: Sequence[Step],
    results: Sequence[StepResult],
) -> list[AddedPrerequisite]:
    seen = set(known)
    out: list[AddedPrerequisite] = []
    for st, r in zip(ordered, results, strict=True):
        pre = r.prerequisites
        if r.verdict is not Verdict.CONFLICT or pre is None or not pre.found:
            continue
        for sha in pre.commits:
            if sha != st.sha and (st.sha, sha) not in seen:
                seen.add((st.sha, sha))
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
    known: Mapping[tuple[str, str], str], ordered: Sequence[Step], results: Sequence[StepResult]
) -> tuple[StepResult, ...]:
    """Name the stored prerequisites on steps that apply *because* the plan put them first.

    Once a prerequisite is a step of its own the fix simulates clean and no search runs; without
    this the stored result (which the FAILED and backport mails read) would forget it.
    """
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
        if r.blocked_at:
            data["blocked_positions"] = [ordered[k].position for k in r.blocked_at]
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
