"""Cherry-pick sequences: simulate_sequence and the run over a plan, pick after pick."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pygit2

from tracker.simulate.cascade import _hunk_texts, _overlapping
from tracker.simulate.engine import _Engine
from tracker.simulate.objects import _open, _resolve_commit, _subject
from tracker.simulate.prerequisites import SearchLimits, SearchSession, _Prefetched, _PrereqSearch
from tracker.simulate.results import (
    MergeOptions,
    PrerequisiteMode,
    SimulationResult,
    StepResult,
    Verdict,
)
from tracker.simulate.treemerge import _parent_tree, _pick, _step_from_outcome


def simulate_sequence(
    repo_path: str | Path,
    base: str,
    shas: Sequence[str],
    *,
    prerequisites: bool = False,
    depends_on: Mapping[str, Collection[str]] | None = None,
    in_branch: Callable[[str], bool] | None = None,
    max_candidates: int = 8,
    max_depth: int = 2,
    options: MergeOptions | None = None,
    search: SearchSession | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> SimulationResult:
    """Cherry-pick shas one after another onto base, in memory, and give each step a verdict.

    A step that conflicts is skipped (the next one starts from the last good tree), as a
    maintainer would skip a failing patch. depends_on maps a sha to earlier shas it needs: when
    one of those failed the step is "blocked" and not attempted.

    With a search session (what ``tracker check`` passes, shared by all its rounds) every
    conflict is judged: a conflict on lines that an earlier step which did not apply changes is
    BLOCKED by that step; otherwise, unless the session's mode is off, a bounded prerequisite
    search decides between CONFLICT (verified prerequisites named, or the search stopped by a
    budget) and MANUAL (no small verified set exists). prerequisites=True without a session is
    an unbounded search (no size limit, no time budget). in_branch defaults to "reachable from
    base"; steps picked earlier in this sequence always count as in. on_step sees each result
    as soon as it is known (progress display); the results are also returned.
    """
    if search is not None:
        eng = search.engine(repo_path, options or MergeOptions())
        repo = eng.repo
    else:
        repo = _open(repo_path)
        eng = _Engine(repo, options or MergeOptions())
    base_commit = _resolve_commit(repo, base)
    commits = [_resolve_commit(repo, sha) for sha in shas]
    if search is None and prerequisites:
        search = SearchSession(
            SearchLimits(
                mode=PrerequisiteMode.FULL,
                max_candidates=max_candidates,
                max_depth=max_depth,
                step_budget=0,
                run_budget=0,
            )
        )
    run = _SequenceRun(eng, base_commit, _normalise_deps(repo, depends_on or {}), search, in_branch)
    steps = run.all(commits, on_step)
    return SimulationResult(
        str(base_commit.id), str(base_commit.tree.id), str(run.tree.id), tuple(steps)
    )


# How many steps a conflict's search may trail the simulation: enough for its blames, started
# in the background when the conflict is found, to finish meanwhile; few enough that the
# progress display stays close and the held trees stay few.
_SEARCH_LAG = 24


@dataclass
class _Pending:
    """A conflicting step whose prerequisite search waits for its blames: everything the
    search reads, as it was when the step was picked."""

    index: int
    commit: pygit2.Commit
    step: StepResult
    tree: pygit2.Tree
    unapplied: dict[str, tuple[int, pygit2.Commit]]
    key: tuple[str, str]
    blames: Future[_Prefetched] | None

    def ready(self) -> bool:
        return self.blames is None or self.blames.done()


class _SequenceRun:
    """State carried from pick to pick: the current tree and which steps did not apply.

    A conflict's search runs a few steps after the pick (see _SEARCH_LAG), on the tree and the
    unapplied steps of its own position, so that its blames overlap the next picks; results
    still come out, and searches still run, in step order.
    """

    def __init__(
        self,
        eng: _Engine,
        base: pygit2.Commit,
        deps: Mapping[str, set[str]],
        session: SearchSession | None,
        in_branch: Callable[[str], bool] | None,
    ) -> None:
        self.eng = eng
        self.base = base
        self.deps = deps
        self.session = session
        self.in_branch = in_branch
        self.tree = base.tree
        self.picked: dict[str, int] = {}  # sha -> index of the step that applied it
        self.failed: set[str] = set()
        # Earlier steps that did not apply (sha -> index, commit) and, per path, which of them
        # change it: the cascade test looks only at those touching the conflicting files.
        self.unapplied: dict[str, tuple[int, pygit2.Commit]] = {}
        self.by_path: dict[str, list[str]] = {}

    def member_before(self, index: int) -> Callable[[str], bool]:
        """In the branch as step ``index`` sees it: steps after it do not count yet."""

        def member(sha: str) -> bool:
            at = self.picked.get(sha)
            if (at is not None and at < index) or sha == str(self.base.id):
                return True
            if self.in_branch is not None:
                return bool(self.in_branch(sha))
            return bool(self.eng.repo.descendant_of(self.base.id, pygit2.Oid(hex=sha)))

        return member

    def all(
        self, commits: Sequence[pygit2.Commit], on_step: Callable[[StepResult], None] | None
    ) -> list[StepResult]:
        done: list[StepResult] = []
        waiting: deque[StepResult | _Pending] = deque()
        for index, commit in enumerate(commits):
            waiting.append(self.step(index, commit))
            self.settle(waiting, index, done, on_step)
        self.settle(waiting, None, done, on_step)
        return done

    def settle(
        self,
        waiting: deque[StepResult | _Pending],
        now: int | None,
        done: list[StepResult],
        on_step: Callable[[StepResult], None] | None,
    ) -> None:
        """Give out the results at the head of the queue; a search runs once its blames are
        back, when it trails by _SEARCH_LAG steps, or at the end (now None)."""
        while waiting:
            head = waiting[0]
            if isinstance(head, _Pending):
                if now is not None and now - head.index < _SEARCH_LAG and not head.ready():
                    return
                head = self.search(head)
            waiting.popleft()
            if on_step is not None:
                on_step(head)
            done.append(head)

    def step(self, index: int, commit: pygit2.Commit) -> StepResult | _Pending:
        sha = str(commit.id)
        blockers = tuple(sorted(self.deps.get(sha, set()) & self.failed))
        if blockers:
            self.fail(index, commit)
            return StepResult(
                index,
                sha,
                _subject(commit),
                Verdict.BLOCKED,
                None,
                blocked_by=blockers,
                blocked_at=tuple(self.unapplied[b][0] for b in blockers if b in self.unapplied),
                detail="depends on a step that did not apply",
            )
        started = time.perf_counter()
        outcome = _pick(self.eng, self.tree, commit)
        step = _step_from_outcome(index, commit, _subject(commit), self.tree, outcome)
        if self.session is not None:
            self.session.stats.steps += 1
            self.session.stats.simulate_seconds += time.perf_counter() - started
        if step.verdict is not Verdict.CONFLICT:
            self.picked[sha] = index
            self.tree = cast(pygit2.Tree, self.eng.repo[step.tree or self.tree.id])
            return step
        judged = self.judge(index, commit, step) if self.session is not None else step
        self.fail(index, commit)
        return judged

    def fail(self, index: int, commit: pygit2.Commit) -> None:
        sha = str(commit.id)
        self.failed.add(sha)
        if self.session is None or len(commit.parents) > 1:
            return
        self.unapplied[sha] = (index, commit)
        for path in self.eng.changes(_parent_tree(self.eng, commit), commit.tree):
            self.by_path.setdefault(path, []).append(sha)

    def judge(self, index: int, commit: pygit2.Commit, step: StepResult) -> StepResult | _Pending:
        """Blocked by the cascade test, or a plain conflict with the search off; otherwise a
        prerequisite search to run (its blames started now)."""
        session = self.session
        assert session is not None
        step = dataclasses.replace(
            step, hunks=_hunk_texts(self.eng, self.tree, commit, step.conflicts)
        )
        blockers = _overlapping(self.eng, commit, step.conflicts, self.unapplied, self.by_path)
        if blockers:
            return self.blocked(step, blockers, "its conflict is on lines that")
        if session.limits.mode is PrerequisiteMode.OFF:
            return step
        pending = _Pending(
            index,
            commit,
            step,
            self.tree,
            dict(self.unapplied),
            (str(commit.id), self.signature(commit, step)),
            None,
        )
        left = session.run_left()
        if session.cached(pending.key) is None and (left is None or left > 0):
            search = _PrereqSearch(session, self.eng, self.member_before(index), self.base, {})
            pending.blames = search.prefetch(self.tree, commit, step.conflicts)
        return pending

    def search(self, p: _Pending) -> StepResult:
        """Conflict with prerequisites (or a stopped search), blocked, or manual."""
        session = self.session
        assert session is not None
        step = p.step
        found = session.cached(p.key)
        if found is not None and not all(b in p.unapplied for b in found.blockers):
            found = None
        started = time.perf_counter()
        try:
            member = self.member_before(p.index)
            search = _PrereqSearch(session, self.eng, member, self.base, p.unapplied)
            if found is not None and found.found and found.commits:
                # a set verified on another tree (an earlier round) must apply on this one too
                again = [cast(pygit2.Commit, self.eng.repo[c]) for c in found.commits]
                if not search.applies(p.tree, [*again, p.commit]):
                    found = None
            if found is None:
                session.stats.searches += 1
                found = search.result(p.tree, p.commit, step.conflicts)
                session.remember(p.key, found)
        finally:
            session.stats.search_seconds += time.perf_counter() - started
            if p.blames is not None:
                session.discard(p.blames)
        step = dataclasses.replace(step, prerequisites=found)
        if found.blockers:
            return self.blocked(
                step, found.blockers, "blame says the conflicting lines of", p.unapplied
            )
        if found.found or found.stopped:
            return step
        return dataclasses.replace(
            step, verdict=Verdict.MANUAL, detail=f"manual backport needed: {step.detail}"
        )

    def signature(self, commit: pygit2.Commit, step: StepResult) -> str:
        """What a search's outcome depends on in the current tree: the versions of the files
        the step changes or conflicts in. The re-plan rounds change the tree elsewhere (they
        insert prerequisites of other steps), and a step whose files did not change keeps its
        answer instead of being searched again; a set it named is verified again, and the
        steps it was blocked by must still be unapplied. (A blamed commit that an earlier step
        applied or failed to apply differently would have changed these files.)"""
        paths = set(self.eng.changes(_parent_tree(self.eng, commit), commit.tree))
        paths.update(c.path for c in step.conflicts)
        h = hashlib.sha1(usedforsecurity=False)
        for p in sorted(paths):
            ver = _Engine.at(self.tree, p)
            h.update(f"{p}\0{ver.oid if ver is not None else '-'}\0".encode(errors="replace"))
        return h.hexdigest()

    def blocked(
        self,
        step: StepResult,
        shas: Sequence[str],
        why: str,
        unapplied: Mapping[str, tuple[int, pygit2.Commit]] | None = None,
    ) -> StepResult:
        at = tuple((unapplied or self.unapplied)[s][0] for s in shas)
        names = ", ".join(f"step {i + 1} ({s[:12]})" for i, s in zip(at, shas, strict=True))
        return dataclasses.replace(
            step,
            verdict=Verdict.BLOCKED,
            blocked_by=tuple(shas),
            blocked_at=at,
            detail=f"blocked by {names}: {why} that step changes, and it did not apply",
        )


def _normalise_deps(
    repo: pygit2.Repository, deps: Mapping[str, Collection[str]]
) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key, needed in deps.items():
        out[str(_resolve_commit(repo, key).id)] = {str(_resolve_commit(repo, n).id) for n in needed}
    return out
