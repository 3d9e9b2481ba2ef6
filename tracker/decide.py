"""Per-branch decisions: which fixes a stable branch needs, in what order, and why.

Pure over plain values (see :mod:`tracker.store.snapshot` for how they are loaded), so each rule is
tested directly. A mainline commit is *in* a branch when it is reachable from the base tag (its
first release is the base or older) or a backport of it is on the branch, and no later revert on
the branch (or in mainline before the base) undid it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

NEEDED = "needed"
NOT_NEEDED = "not-needed"
RELEASED = "released"
IN_BRANCH = "in-branch"
REVERTED = "reverted"
NOMINATED = "nominated"
UNRESOLVED = "unresolved"
PREREQUISITE = "prerequisite"
QUEUED = "queued"
FAILED = "failed"
PENDING_UPSTREAM = "pending-upstream"

# Statuses that put a commit into the ordered list of things to backport. A FAILED fix is still
# to be done (by hand, or with its prerequisites); a QUEUED one is the stable team's already.
ACTIONABLE = (NEEDED, NOMINATED, PREREQUISITE, FAILED)


# The values a plan is decided over are named tuples: an old branch's plan builds some 80,000 of
# them, and a frozen dataclass costs five times as much to construct.


class CommitInfo(NamedTuple):
    sha: str
    subject: str
    mainline: bool
    release: str | None = None
    release_index: int | None = None
    order: int | None = None


class FixRef(NamedTuple):
    raw: str
    dst: str | None
    rule: str
    evidence: str
    flagged: bool


class Nomination(NamedTuple):
    note: str | None
    min_version: tuple[int, int] | None
    prerequisite: str | None = None


@dataclass(frozen=True)
class Prerequisite:
    """A commit that must be applied before ``of`` on a branch, and how we know."""

    sha: str
    of: str
    evidence: str


class Fix(NamedTuple):
    commit: CommitInfo
    topics: tuple[str, ...]
    fixes: tuple[FixRef, ...] = ()
    nominations: tuple[Nomination, ...] = ()


class BranchCommitInfo(NamedTuple):
    sha: str
    subject: str
    position: int
    release: str | None
    upstream: str | None
    upstream_rule: str | None
    reverts: tuple[str, ...] = ()


@dataclass(frozen=True)
class BranchView:
    name: str
    base: str
    base_index: int
    version: tuple[int, int] | None
    commits: tuple[BranchCommitInfo, ...]


@dataclass(frozen=True)
class StableEventInfo:
    """What a stable mail said about an upstream commit on one stable series ("6.12")."""

    kind: str
    branch: str
    at: str | None
    message_id: str
    summary: str
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class PendingFix:
    """A fix not in mainline yet: an -mm patch or a list posting, keyed by file or Message-ID."""

    key: str
    subject: str
    topics: tuple[str, ...]
    fixes: tuple[FixRef, ...]
    where: str
    message_id: str | None


@dataclass(frozen=True)
class SeriesSlot:
    """Where a mainline commit was posted: patch ``index`` of ``total`` in one series version."""

    key: str
    label: str
    index: int
    total: int


@dataclass(frozen=True)
class QueueSlot:
    """What the stable-queue clone says about an upstream commit on one series ("6.12").

    ``state`` is "queued" (``position`` of ``total`` in ``queue-X.Y/series``), "dropped" (left
    the series at ``dropped_head`` without a release) or "released" (``release``)."""

    series: str
    state: str
    file: str
    position: int | None
    total: int | None
    release: str | None
    head: str
    dropped_head: str | None = None
    at: str | None = None

    def describe(self) -> str:
        if self.state == QUEUE_QUEUED:
            return f"queued for {self.series} (position {self.position} of {self.total})"
        if self.state == QUEUE_RELEASED:
            return f"released in {self.release}"
        where = (self.dropped_head or self.head)[:12]
        when = f" on {self.at[:10]}" if self.at else ""
        return f"dropped from the {self.series} queue at stable-queue {where}{when}"

    def to_dict(self) -> dict[str, object]:
        return {
            "series": self.series,
            "state": self.state,
            "file": self.file,
            "position": self.position,
            "total": self.total,
            "release": self.release,
            "head": self.head,
            "dropped_head": self.dropped_head,
            "at": self.at,
        }


QUEUE_QUEUED = "queued"
QUEUE_DROPPED = "dropped"
QUEUE_RELEASED = "released"


@dataclass(frozen=True)
class World:
    """Everything the decisions read, keyed by sha."""

    commits: Mapping[str, CommitInfo]
    # mainline sha -> mainline commits that revert it
    mainline_reverts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # stable sha -> branch name, for culprits that are backports on some branch
    stable_home: Mapping[str, str] = field(default_factory=dict)
    # upstream sha -> what stable mails said about it, oldest first
    stable_events: Mapping[str, tuple[StableEventInfo, ...]] = field(default_factory=dict)
    pending: tuple[PendingFix, ...] = ()
    # mainline sha -> its place in the posted series (from the list mails linked to it)
    series: Mapping[str, SeriesSlot] = field(default_factory=dict)
    # upstream sha -> what stable-queue clones say about it, per series
    queue: Mapping[str, tuple[QueueSlot, ...]] = field(default_factory=dict)
    # fix sha -> commits a Stable-dep-of: line (on a stable branch or in the queue) names as
    # its prerequisite
    stable_deps: Mapping[str, tuple[Prerequisite, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    sha: str
    subject: str
    topic: str
    topics: tuple[str, ...]
    status: str
    reason: str
    evidence: tuple[str, ...]
    position: int | None = None
    order_reason: str | None = None
    after: tuple[str, ...] = ()
    stable_sha: str | None = None
    release: str | None = None
    # The stable-queue's word on this fix for the branch's series, when a queue source has one.
    queue: QueueSlot | None = None
    # Problems a maintainer should look at (a queued fix whose prerequisite is not queued).
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "sha": self.sha,
            "subject": self.subject,
            "topic": self.topic,
            "topics": list(self.topics),
            "status": self.status,
            "reason": self.reason,
            "evidence": list(self.evidence),
            "position": self.position,
            "order_reason": self.order_reason,
            "after": list(self.after),
            "stable_sha": self.stable_sha,
            "release": self.release,
            "queue": self.queue.to_dict() if self.queue else None,
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class Plan:
    branch: str
    base: str
    steps: tuple[Step, ...]

    @property
    def ordered(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.position is not None)

    def to_dict(self) -> dict[str, object]:
        return {
            "branch": self.branch,
            "base": self.base,
            "steps": [s.to_dict() for s in self.steps],
        }


def _short(c: CommitInfo | None, sha: str) -> str:
    return f'{sha[:12]} ("{c.subject}")' if c else sha[:12]


class _Membership:
    """Answers 'is commit X in this branch?' with the evidence for the answer."""

    def __init__(self, branch: BranchView, world: World) -> None:
        self.branch = branch
        self.world = world
        self.on_branch = {c.sha: c for c in branch.commits}
        self.backports: dict[str, list[BranchCommitInfo]] = {}
        for c in branch.commits:
            if c.upstream:
                self.backports.setdefault(c.upstream, []).append(c)
        # Reverts are rare: walk only the commits that revert something.
        reverting = [c for c in branch.commits if c.reverts]
        # A revert that is itself reverted restores what it undid.
        reverted_reverts = {t for c in reverting for t in c.reverts if t in self.on_branch}
        self.reverted_by: dict[str, BranchCommitInfo] = {}
        for c in reverting:
            if c.sha in reverted_reverts:
                continue
            for target in c.reverts:
                self.reverted_by[target] = c
                up = self.on_branch[target].upstream if target in self.on_branch else None
                if up:
                    self.reverted_by[up] = c
        # The first backport of each upstream commit that no revert undid.
        self.live: dict[str, BranchCommitInfo] = {}
        for up, bps in self.backports.items():
            first = next((b for b in bps if b.sha not in self.reverted_by), None)
            if first is not None:
                self.live[up] = first

    def in_base(self, sha: str) -> bool:
        c = self.world.commits.get(sha)
        return bool(
            c
            and c.mainline
            and c.release_index is not None
            and c.release_index <= self.branch.base_index
        )

    def backport(self, sha: str) -> BranchCommitInfo | None:
        return self.live.get(sha)

    def revert_of(self, sha: str) -> BranchCommitInfo | None:
        return self.reverted_by.get(sha)

    def mainline_revert_in_base(self, sha: str) -> str | None:
        for r in self.world.mainline_reverts.get(sha, ()):
            if self.in_base(r):
                return r
        return None

    def presence(self, sha: str) -> tuple[bool, str]:
        """Whether ``sha`` is in the branch, and the evidence either way."""
        b = self.branch
        c = self.world.commits.get(sha)
        name = _short(c, sha)
        if sha in self.on_branch:
            rv = self.revert_of(sha)
            if rv:
                return False, f"{name} is on {b.name} but was reverted by {rv.sha[:12]}"
            return True, f"{name} is a {b.name} commit"
        if c is None:
            return False, f"{name} is not a known commit"
        if not c.mainline:
            home = self.world.stable_home.get(sha)
            where = f"a {home} commit" if home else "not a mainline commit"
            return False, f"{name} is {where}, not on {b.name}"
        rv = self.revert_of(sha)
        if self.in_base(sha):
            if rv:
                return False, f"{name} is in {b.base} but {b.name} reverted it in {rv.sha[:12]}"
            mr = self.mainline_revert_in_base(sha)
            if mr:
                return False, f"{name} is in {b.base} but was reverted by {mr[:12]} before it"
            return True, f"{name} is in {b.base} (first released in {c.release})"
        bp = self.backport(sha)
        if bp:
            return True, f"{name} was backported to {b.name} as {bp.sha[:12]}"
        if rv:
            return False, f"{name} was backported to {b.name} but reverted by {rv.sha[:12]}"
        when = f"first released in {c.release}" if c.release else "not yet in a mainline release"
        return False, f"{name} is not in {b.name}: {when}, after the base {b.base}"


def presence(branch: BranchView, world: World, sha: str) -> tuple[bool, str]:
    """Whether ``sha`` is in ``branch``, with the evidence (for commits outside any plan)."""
    return presence_in(branch, world)(sha)


def presence_in(branch: BranchView, world: World) -> Callable[[str], tuple[bool, str]]:
    """:func:`presence` for many questions about one branch, which is indexed once.

    The answers read ``world``'s mappings at each call, so a caller may add commits to them
    between questions."""
    return _Membership(branch, world).presence


def _version_ok(n: Nomination, version: tuple[int, int] | None) -> bool:
    return n.min_version is None or version is None or version >= n.min_version


def decide(
    branch: BranchView,
    fixes: Sequence[Fix],
    world: World,
    topic: str | None = None,
    prerequisites: Sequence[Prerequisite] = (),
) -> Plan:
    """Decide every candidate fix for ``branch``; needed ones get an order and its reason.

    ``prerequisites`` come from outside the commit messages (the simulator's verified
    prerequisites); ``Cc: stable # x.y: <sha>`` annotations are added here.
    """
    member = _Membership(branch, world)
    planned: dict[str, Step] = {}
    steps: list[Step] = []
    prereqs = list(prerequisites)
    for fix in sorted(fixes, key=lambda f: (f.commit.order or 0, f.commit.sha)):
        if topic and topic not in fix.topics:
            continue
        if member.in_base(fix.commit.sha):
            continue
        base = _decide_one(fix, branch, member, planned)
        step = _with_queue(_with_stable_events(base, branch, world), base, branch, world)
        if step.status in (*ACTIONABLE, QUEUED):
            planned[fix.commit.sha] = step
            prereqs += _annotated_prerequisites(fix, branch)
        steps.append(step)
    steps += _pending_steps(world, member, planned, topic)
    steps = _with_prerequisites(steps, prereqs, member, _series(branch))
    steps = _flag_queued(steps, prereqs, member, branch)
    return Plan(branch=branch.name, base=branch.base, steps=tuple(_order(steps, world)))


def _series(branch: BranchView) -> str | None:
    return f"{branch.version[0]}.{branch.version[1]}" if branch.version else None


def _with_stable_events(step: Step, branch: BranchView, world: World) -> Step:
    """What the stable team said last about this fix on this branch's series."""
    if step.status not in (NEEDED, NOMINATED):
        return step
    series = _series(branch)
    events = [e for e in world.stable_events.get(step.sha, ()) if e.branch == series]
    if not events:
        return step
    last = max(events, key=lambda e: e.at or "")
    said = f"{last.kind} mail <{last.message_id}>" + (f" of {last.at[:10]}" if last.at else "")
    evidence = (*step.evidence, said)
    if last.kind in ("queued", "review"):
        reason = f"queued for {series}-stable: {last.summary}"
        return replace(step, status=QUEUED, reason=reason, evidence=evidence)
    if last.kind == "failed":
        deps = ", ".join(last.dependencies) or "none listed"
        reason = (
            f"FAILED to apply to {series}-stable ({said}); still {step.status}: "
            f"{step.reason}; possible dependencies: {deps}"
        )
        return replace(step, status=FAILED, reason=reason, evidence=evidence)
    return replace(step, evidence=evidence)


def _queued_slot(world: World, sha: str, series: str | None) -> QueueSlot | None:
    slots = [q for q in world.queue.get(sha, ()) if q.series == series and q.state == QUEUE_QUEUED]
    return min(slots, key=lambda q: q.position or 0) if slots else None


def _with_queue(step: Step, base: Step, branch: BranchView, world: World) -> Step:
    """What the stable-queue clone says, over what mails said: it is the stable team's record.

    A fix already on the branch keeps its branch status; otherwise a queued patch makes it
    ``queued`` (with its place in the series), a release directory makes it ``released`` even
    before the branch's commit is synced, and a drop is told in the reason and evidence."""
    series = _series(branch)
    slots = [q for q in world.queue.get(step.sha, ()) if q.series == series]
    if not slots or base.status in (RELEASED, IN_BRANCH, REVERTED):
        return step
    queued = _queued_slot(world, step.sha, series)
    if queued is not None:
        evidence = [
            *step.evidence,
            f"{queued.file} is patch {queued.position} of "
            f"{queued.total} in the queue's series at stable-queue {queued.head[:12]}",
        ]
        if base.status not in (NEEDED, NOMINATED):
            evidence.append(
                f"tracker's own decision without the queue: {base.status}: {base.reason}"
            )
        return replace(
            step,
            status=QUEUED,
            reason=f"{queued.describe()}: {queued.file}",
            evidence=tuple(evidence),
            queue=queued,
        )
    released = next((q for q in slots if q.state == QUEUE_RELEASED), None)
    if released is not None:
        return replace(
            base,
            status=RELEASED,
            release=released.release,
            reason=(
                f"released in {released.release} (stable-queue {released.file}); no "
                f"{branch.name} commit for it synced yet"
            ),
            evidence=(*base.evidence, f"stable-queue {released.file} at {released.head[:12]}"),
            queue=released,
        )
    dropped = next((q for q in slots if q.state == QUEUE_DROPPED), None)
    if dropped is None:
        return step
    said = f"{dropped.file}: {dropped.describe()}"
    # A queued mail is older news than the queue's own history: the drop stands.
    shown = base if step.status == QUEUED else step
    return replace(
        shown,
        reason=f"{shown.reason}; {dropped.describe()}",
        evidence=(*step.evidence, said),
        queue=dropped,
    )


def with_queue(step: Step, branch: BranchView, world: World) -> Step:
    """:func:`_with_queue` for a commit outside any plan (``status`` of a non-topic commit)."""
    return _with_queue(step, step, branch, world)


def _flag_queued(
    steps: list[Step], prereqs: Sequence[Prerequisite], member: _Membership, branch: BranchView
) -> list[Step]:
    """Flag each queued fix whose prerequisite is neither in the branch nor queued before it.

    Prerequisites are what the planner knows: the fix it fixes (``after``), ``Cc: stable #``
    annotations and verified prerequisites, and Stable-dep-of: lines naming the fix."""
    series = _series(branch)
    world = member.world
    out: list[Step] = []
    for st in steps:
        slot = st.queue
        if st.status != QUEUED or slot is None or slot.state != QUEUE_QUEUED:
            out.append(st)
            continue
        needs: dict[str, str] = {}
        for dep in st.after:
            needs.setdefault(dep, "the fix it fixes")
        for p in (*prereqs, *world.stable_deps.get(st.sha, ())):
            if p.of == st.sha:
                needs.setdefault(p.sha, p.evidence)
        flags: list[str] = []
        for sha, why in needs.items():
            present, _ = member.presence(sha)
            if present:
                continue
            name = _short(world.commits.get(sha), sha)
            other = _queued_slot(world, sha, series)
            if other is None:
                flags.append(
                    f"its prerequisite {name} is neither queued for {series} nor in "
                    f"{branch.name} ({why})"
                )
            elif (other.position or 0) > (slot.position or 0):
                flags.append(
                    f"its prerequisite {name} is queued after it (position {other.position}, "
                    f"this is {slot.position}) ({why})"
                )
        if flags:
            st = replace(
                st,
                reason=f"{st.reason}; FLAG: " + "; ".join(flags),
                evidence=(*st.evidence, *flags),
                flags=tuple(flags),
            )
        out.append(st)
    return out


def _pending_steps(
    world: World, member: _Membership, planned: Mapping[str, Step], topic: str | None
) -> list[Step]:
    """Fixes still in -mm or on a list whose culprit is (or will be) in the branch."""
    out: list[Step] = []
    for p in world.pending:
        if topic and topic not in p.topics:
            continue
        for ref in p.fixes:
            if ref.dst is None:
                continue
            present, why = member.presence(ref.dst)
            if present or ref.dst in planned:
                if not present:
                    why = f"{_short(member.world.commits.get(ref.dst), ref.dst)} is in this plan"
                out.append(
                    Step(
                        p.key,
                        p.subject,
                        p.topics[0] if p.topics else "",
                        p.topics,
                        PENDING_UPSTREAM,
                        f"pending upstream ({p.where}); its culprit {why}",
                        (why, *(f"Fixes: {r.raw}: {r.evidence}" for r in p.fixes if r.flagged)),
                    )
                )
                break
    return out


def _annotated_prerequisites(fix: Fix, branch: BranchView) -> list[Prerequisite]:
    return [
        Prerequisite(
            n.prerequisite,
            fix.commit.sha,
            f"Cc: stable # {n.note} names {n.prerequisite[:12]} as a prerequisite",
        )
        for n in fix.nominations
        if n.prerequisite and _version_ok(n, branch.version)
    ]


def _with_prerequisites(
    steps: list[Step], prereqs: Sequence[Prerequisite], member: _Membership, series: str | None
) -> list[Step]:
    """Make each dependent follow its prerequisites, adding missing ones as steps of their own."""
    by_sha = {s.sha: s for s in steps}
    for p in prereqs:
        dep = by_sha.get(p.of)
        if dep is None or dep.status not in ACTIONABLE:
            continue
        present, why = member.presence(p.sha)
        if present:
            by_sha[p.of] = replace(dep, evidence=(*dep.evidence, f"{p.evidence}; {why}"))
            continue
        queued = _queued_slot(member.world, p.sha, series)
        if queued is not None:
            # The queue goes first: the prerequisite will be there before the dependent.
            said = f"{p.evidence}; {queued.describe()}"
            by_sha[p.of] = replace(dep, evidence=(*dep.evidence, said))
            continue
        pre = by_sha.get(p.sha)
        if pre is None or pre.status not in ACTIONABLE:
            c = member.world.commits.get(p.sha)
            pre = Step(
                p.sha,
                c.subject if c else "",
                dep.topic,
                dep.topics,
                PREREQUISITE,
                f"prerequisite of {_short(member.world.commits.get(p.of), p.of)}",
                (p.evidence, why),
            )
        by_sha[p.sha] = pre
        by_sha[p.of] = replace(dep, after=(*dep.after, p.sha), evidence=(*dep.evidence, p.evidence))
    seen: set[str] = set()
    out: list[Step] = []
    for s in [*steps, *by_sha.values()]:
        if s.sha not in seen:
            seen.add(s.sha)
            out.append(by_sha[s.sha])
    return out


def _decide_one(
    fix: Fix, branch: BranchView, member: _Membership, planned: Mapping[str, Step]
) -> Step:
    c = fix.commit
    topic = fix.topics[0] if fix.topics else ""

    def step(
        status: str,
        reason: str,
        evidence: list[str],
        *,
        after: tuple[str, ...] = (),
        stable_sha: str | None = None,
        release: str | None = None,
    ) -> Step:
        return Step(
            c.sha,
            c.subject,
            topic,
            fix.topics,
            status,
            reason,
            tuple(evidence),
            after=after,
            stable_sha=stable_sha,
            release=release,
        )

    bp = member.backport(c.sha)
    if bp:
        rule = "patch-id" if bp.upstream_rule == "patch-id" else "upstream reference"
        ev = [f"{bp.sha[:12]} on {branch.name} is a backport ({rule})"]
        if bp.release:
            return step(
                RELEASED,
                f"released in {bp.release} as {bp.sha[:12]}",
                ev,
                stable_sha=bp.sha,
                release=bp.release,
            )
        return step(
            IN_BRANCH,
            f"in {branch.name} as {bp.sha[:12]}, not yet in a release",
            ev,
            stable_sha=bp.sha,
        )
    rv = member.revert_of(c.sha)
    if rv:
        return step(
            REVERTED,
            f"backported, then reverted on {branch.name} by {rv.sha[:12]}",
            [f'{rv.sha[:12]} ("{rv.subject}") reverts it'],
            stable_sha=rv.sha,
        )

    if not fix.fixes:
        noms = list(fix.nominations)
        fitting = [n for n in noms if _version_ok(n, branch.version)]
        if fitting:
            tag = f" # {fitting[0].note}" if fitting[0].note else ""
            return step(NOMINATED, f"Cc: stable{tag} without Fixes:", [f"tagged Cc: stable{tag}"])
        first = noms[0].note if noms else None
        return step(
            NOT_NEEDED,
            f"Cc: stable # {first} excludes {branch.name}",
            [f"annotation '{first}' asks for newer branches only"],
        )

    evidence: list[str] = []
    culprit_in: list[str] = []
    via_plan: list[str] = []
    unresolved: list[str] = []
    for ref in fix.fixes:
        if ref.flagged:
            evidence.append(f"Fixes: {ref.raw}: {ref.evidence}")
        if ref.dst is None:
            unresolved.append(ref.raw)
            continue
        present, why = member.presence(ref.dst)
        evidence.append(why)
        if present:
            culprit_in.append(ref.dst)
        elif ref.dst in planned:
            via_plan.append(ref.dst)
    flag = (
        " (its Fixes: tag was repaired, see evidence)"
        if any(r.flagged and r.dst for r in fix.fixes)
        else ""
    )
    if culprit_in:
        return step(NEEDED, "its culprit " + member.presence(culprit_in[0])[1] + flag, evidence)
    if via_plan:
        dep = member.world.commits.get(via_plan[0])
        return step(
            NEEDED,
            f"fixes {_short(dep, via_plan[0])}, which this plan backports",
            evidence,
            after=tuple(via_plan),
        )
    if unresolved and len(unresolved) == len(fix.fixes):
        return step(UNRESOLVED, f"Fixes: {', '.join(unresolved)} names no known commit", evidence)
    return step(
        NOT_NEEDED,
        "; ".join(e for e in evidence if not e.startswith("Fixes:"))
        or f"no commit it fixes is in {branch.name}",
        evidence,
    )


def _order_reason(
    s: Step, actionable: Mapping[str, Step], series_prev: str | None, world: World
) -> str:
    parts = []
    for dep in s.after:
        d = actionable.get(dep)
        kind = "its prerequisite" if d and d.status == PREREQUISITE else "the fix it fixes"
        parts.append(f"{dep[:12]}, {kind}")
    slot = world.series.get(s.sha)
    prev_slot = world.series.get(series_prev) if series_prev else None
    if series_prev and slot and prev_slot:
        parts.append(
            f"{series_prev[:12]}, patch {prev_slot.index}/{prev_slot.total} before this "
            f'{slot.index}/{slot.total} of the series "{slot.label}"'
        )
    return "after " + "; ".join(parts) if parts else "mainline order"


def _series_links(actionable: Mapping[str, Step], world: World) -> dict[str, str]:
    """Each actionable patch of a series -> the actionable patch before it in that series."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for sha in actionable:
        slot = world.series.get(sha)
        if slot:
            groups.setdefault(slot.key, []).append((slot.index, sha))
    prev: dict[str, str] = {}
    for members in groups.values():
        members.sort()
        for (_, a), (_, b) in itertools.pairwise(members):
            prev[b] = a
    return prev


def _topological(
    actionable: Mapping[str, Step], world: World, series_prev: Mapping[str, str]
) -> dict[str, int]:
    """Positions honouring ``after`` and series order; ties (and free steps) in mainline order."""
    indeg = {sha: 0 for sha in actionable}
    children: dict[str, list[str]] = {sha: [] for sha in actionable}
    for s in actionable.values():
        deps = [d for d in s.after if d in actionable]
        if s.sha in series_prev:
            deps.append(series_prev[s.sha])
        for dep in dict.fromkeys(deps):
            indeg[s.sha] += 1
            children[dep].append(s.sha)

    def key(sha: str) -> tuple[int, str]:
        c = world.commits.get(sha)
        return ((c.order if c and c.order is not None else 1 << 62), sha)

    heap = [key(sha) for sha, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    position: dict[str, int] = {}
    while heap:
        _, sha = heapq.heappop(heap)
        position[sha] = len(position) + 1
        for ch in children[sha]:
            indeg[ch] -= 1
            if indeg[ch] == 0:
                heapq.heappush(heap, key(ch))
    return position


def _order(steps: list[Step], world: World) -> list[Step]:
    """Number the steps: fixes in the stable queue first, in the queue's series order; then the
    actionable ones, prerequisites and culprit fixes first, then series order, then mainline
    order."""
    queued = sorted(
        (s for s in steps if s.status == QUEUED and s.queue and s.queue.state == QUEUE_QUEUED),
        key=lambda s: (s.queue.position or 0 if s.queue else 0, s.sha),
    )
    first = len(queued)
    actionable = {s.sha: s for s in steps if s.status in ACTIONABLE}
    series_prev = _series_links(actionable, world)
    position = _topological(actionable, world, series_prev)
    if len(position) < len(actionable):
        # A series posted in an order its own Fixes: contradict: the tags win.
        series_prev = {}
        position = _topological(actionable, world, series_prev)
    in_queue = {s.sha: i for i, s in enumerate(queued, start=1)}
    out: list[Step] = []
    for s in steps:
        if s.sha in in_queue and s.queue is not None:
            where = s.queue.file.rsplit("/", 1)[0]
            why = f"in queue order: patch {s.queue.position} of {s.queue.total} of {where}/series"
            out.append(replace(s, position=in_queue[s.sha], order_reason=why))
            continue
        if s.sha not in position:
            out.append(s)
            continue
        why = _order_reason(s, actionable, series_prev.get(s.sha), world)
        out.append(replace(s, position=first + position[s.sha], order_reason=why))
    out.sort(key=lambda s: (s.position is None, s.position or 0))
    return out
