"""Prerequisite discovery: search limits, the session a check run shares, and the blame-based
search for the smallest verified set of commits that lets a fix apply."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pygit2

from tracker.errors import GitError
from tracker.simulate.cascade import Span, _change_spans, _region
from tracker.simulate.engine import _blob_of, _Engine
from tracker.simulate.objects import _is_reg, _open, _resolve_commit, _subject
from tracker.simulate.results import (
    Evidence,
    FileConflict,
    LineRange,
    MergeOptions,
    PrerequisiteMode,
    PrerequisiteResult,
)
from tracker.simulate.treemerge import _Outcome, _pick


@dataclass(frozen=True)
class SearchLimits:
    """How far the prerequisite search may go.

    bounded: a proposed set has at most max_commits commits, each changing at most max_lines
    lines (added + deleted); full: up to max_candidates commits of any size. Both blame only
    the conflicting lines the branch lacks, follow a candidate's own conflict max_depth deep,
    and stop at step_budget seconds per conflicting step and run_budget seconds of search per
    run (0: no limit); a stopped search leaves the step a plain conflict.
    """

    mode: PrerequisiteMode = PrerequisiteMode.BOUNDED
    max_commits: int = 3
    max_lines: int = 200
    step_budget: float = 5.0
    run_budget: float = 120.0
    max_candidates: int = 8
    max_depth: int = 2


@dataclass
class SearchStats:
    """Where a run's time went: picking steps, searching, and blame inside the search.

    blame_seconds is what the run waited for blame; blame_background counts the blames that
    ran beside the simulation (see :meth:`SearchSession.prefetch`)."""

    steps: int = 0
    simulate_seconds: float = 0.0
    searches: int = 0
    search_seconds: float = 0.0
    blame_calls: int = 0
    blame_seconds: float = 0.0
    blame_background: int = 0
    search_picks: int = 0
    stopped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            k: round(v, 3) if isinstance(v, float) else v
            for k, v in dataclasses.asdict(self).items()
        }


# (first line, count, commit, path in that commit, first line there)
BlameHunk = tuple[int, int, str, str, int]
# (git dir, path, newest sha, oldest sha or None, line ranges) -> hunks; may raise GitError
BlameFn = Callable[[str, str, str, str | None, Sequence[tuple[int, int]]], list[BlameHunk]]
# (git dir, commit, commit) -> their best common ancestor or None; may raise GitError
MergeBaseFn = Callable[[str, str, str], str | None]
# a step's background work: the boundary it blamed back to, and each path's hunks
_Prefetched = tuple[str | None, dict[str, list[BlameHunk]]]
_NOT_YET = "?"  # a boundary the background job is to find

_BLAME_CACHE_PATHS = 2048
_RESULT_CACHE = 4096


class SearchSession:
    """What one ``tracker check`` run shares across its rounds: limits, budgets, caches, figures.

    Blame answers are cached per (path, fix's parent, branch base): consecutive patches of one
    series, the re-plan rounds and the searches of candidates' own conflicts ask about the same
    files of the same parents again and again, and a later parent reuses an earlier one's
    answer (see :meth:`blame`). Every libgit2 blame goes through :meth:`_blame_call`, which
    counts it.
    """

    def __init__(
        self,
        limits: SearchLimits | None = None,
        *,
        blame: BlameFn | None = None,
        merge_base: MergeBaseFn | None = None,
    ) -> None:
        self.limits = limits or SearchLimits()
        self.stats = SearchStats()
        self.blame_fn = blame
        self.merge_base_fn = merge_base
        self._blame: dict[tuple[str, str, str], dict[int, str]] = {}
        self._anchors: dict[tuple[str, str], list[pygit2.Commit]] = {}
        self._sizes: dict[str, int] = {}
        self._results: dict[tuple[str, str], PrerequisiteResult] = {}
        self._bases: dict[tuple[pygit2.Oid, pygit2.Oid], pygit2.Oid | None] = {}
        self._engines: dict[tuple[str, MergeOptions], _Engine] = {}
        # work started ahead of its search: per (path, parent), the job and the lines it
        # blames; per (base, parent), the job finding their boundary
        self._inflight: dict[tuple[str, str], list[tuple[Future[_Prefetched], frozenset[int]]]]
        self._inflight = {}
        self._pending_bases: dict[tuple[pygit2.Oid, pygit2.Oid], Future[_Prefetched]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Drop the blames nobody will wait for (an interrupted or finished run)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._inflight.clear()
        self._pending_bases.clear()

    def engine(self, repo_path: str | Path, options: MergeOptions) -> _Engine:
        """One engine per repository for the whole run: its merge, diff and blob caches serve
        every round (a re-plan round merges most steps' files exactly as the round before)."""
        key = (str(repo_path), options)
        eng = self._engines.get(key)
        if eng is None:
            eng = self._engines[key] = _Engine(_open(repo_path), options)
        return eng

    def run_left(self) -> float | None:
        if self.limits.run_budget <= 0:
            return None
        return self.limits.run_budget - self.stats.search_seconds

    def cached(self, key: tuple[str, str]) -> PrerequisiteResult | None:
        return self._results.get(key)

    def remember(self, key: tuple[str, str], result: PrerequisiteResult) -> None:
        if result.stopped:
            return  # a later round may have budget left
        if len(self._results) >= _RESULT_CACHE:
            self._results.clear()
        self._results[key] = result

    def blame(
        self,
        repo: pygit2.Repository,
        path: str,
        parent: pygit2.Commit,
        boundary: pygit2.Oid | None,
        lo: int,
        hi: int,
    ) -> dict[int, str]:
        """Line -> commit that last changed it (between boundary and parent), lines lo..hi."""
        return self.blame_spans(repo, path, parent, boundary, [(lo, hi)])

    def blame_spans(
        self,
        repo: pygit2.Repository,
        path: str,
        parent: pygit2.Commit,
        boundary: pygit2.Oid | None,
        spans: Sequence[Span],
    ) -> dict[int, str]:
        """Line -> commit that last changed it (between boundary and parent), for every line
        of ``spans``; the lines not yet known are blamed in one call.

        A plan's fixes come in mainline order, so the parent of a later fix descends from the
        parent of an earlier one that conflicted in the same file. Blame then walks only from
        the new parent back to that anchor (a few commits instead of the whole range since
        the branch's base) and takes the lines the anchor still has from the anchor's own,
        cached answer, asking it (recursively, the same way) for lines it lacks.
        """
        key, known, wanted = self._entry(path, parent, boundary, spans)
        self._settle(repo, key, known, boundary)
        missing = [k for k in wanted if k not in known]
        if missing:
            anchor = self._anchor(repo, path, key[2], parent)
            oldest = anchor.id if anchor is not None else boundary
            hunks = self._blame_call(
                repo, path, parent, oldest, _merge_spans((k, k) for k in missing)
            )
            self._absorb(repo, known, anchor, boundary, hunks)
            for k in missing:
                known.setdefault(k, "")
        return {k: known[k] for k in wanted}

    def prefetch(
        self,
        repo: pygit2.Repository,
        base: pygit2.Oid,
        parent: pygit2.Commit,
        wanted: Sequence[tuple[str, Sequence[Span]]],
    ) -> Future[_Prefetched] | None:
        """Start in the background what a later search of a fix with this parent will ask:
        the boundary (merge base of the branch and the parent) and the blame of these lines.

        Both are git processes of their own: while they walk the history, the run goes on
        simulating the next steps on the other core, and the search, run a few steps later,
        finds its answers waiting. Only with git's blame and merge-base (``blame_fn``,
        ``merge_base_fn``): libgit2 objects must not be used from two threads at once. The
        background blame walks back to the boundary, not to an anchor (choosing one needs the
        boundary): more work, but on a core that would otherwise wait.
        """
        if self.blame_fn is None or self.merge_base_fn is None:
            return None
        pkey = str(parent.id)
        boundary: pygit2.Oid | str | None = self._bases.get((base, parent.id), _NOT_YET)
        jobs: list[tuple[str, list[Span], frozenset[int]]] = []
        for path, spans in wanted:
            lines = {k for lo, hi in spans for k in range(lo, hi + 1)}
            if boundary != _NOT_YET:
                lines -= self._blame.get((path, pkey, str(boundary or "")), {}).keys()
            for _, covered in self._inflight.get((path, pkey), ()):
                lines -= covered
            if lines:
                jobs.append((path, _merge_spans((k, k) for k in lines), frozenset(lines)))
        if not jobs:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blame")
        job = self._pool.submit(
            self._background,
            str(repo.path),
            str(base),
            pkey,
            boundary if isinstance(boundary, str) else str(boundary or ""),
            [(path, ranges) for path, ranges, _ in jobs],
        )
        if boundary == _NOT_YET:
            self._pending_bases.setdefault((base, parent.id), job)
        for path, _, covers in jobs:
            self._inflight.setdefault((path, pkey), []).append((job, covers))
        self.stats.blame_calls += len(jobs)
        self.stats.blame_background += len(jobs)
        return job

    def discard(self, job: Future[_Prefetched]) -> None:
        """Forget what a search did not ask for (it stopped early, or an answer was cached), so
        that the answers held stay as few as the searches waiting."""
        for key in [k for k, jobs in self._inflight.items() if any(j is job for j, _ in jobs)]:
            left = [(j, lines) for j, lines in self._inflight[key] if j is not job]
            if left:
                self._inflight[key] = left
            else:
                del self._inflight[key]
        for bases in [k for k, j in self._pending_bases.items() if j is job]:
            del self._pending_bases[bases]

    def _background(
        self,
        git_dir: str,
        base: str,
        parent: str,
        boundary: str,
        jobs: list[tuple[str, list[Span]]],
    ) -> _Prefetched:
        """Runs in the worker thread: git processes only, no libgit2 object, no shared state."""
        assert self.blame_fn is not None and self.merge_base_fn is not None
        found = self.merge_base_fn(git_dir, base, parent) if boundary == _NOT_YET else boundary
        out: dict[str, list[BlameHunk]] = {}
        for path, ranges in jobs:
            try:
                out[path] = self.blame_fn(git_dir, path, parent, found or None, ranges)
            except (GitError, OSError, ValueError):
                out[path] = []
        return found or None, out

    def _entry(
        self, path: str, parent: pygit2.Commit, boundary: pygit2.Oid | None, spans: Sequence[Span]
    ) -> tuple[tuple[str, str, str], dict[int, str], list[int]]:
        bkey = str(boundary) if boundary is not None else ""
        key = (path, str(parent.id), bkey)
        known = self._blame.get(key)
        if known is None:
            if len(self._blame) >= _BLAME_CACHE_PATHS:
                self._blame.clear()
                self._anchors.clear()
            known = self._blame[key] = {}
            self._anchors.setdefault((path, bkey), []).append(parent)
        return key, known, sorted({k for lo, hi in spans for k in range(lo, hi + 1)})

    def _settle(
        self,
        repo: pygit2.Repository,
        key: tuple[str, str, str],
        known: dict[int, str],
        boundary: pygit2.Oid | None,
    ) -> None:
        """Take in the background blames of key's path and parent (waiting for those still
        running) that stopped at key's boundary."""
        path, parent, bkey = key
        for job, lines in self._inflight.pop((path, parent), ()):
            answer = self._wait(job)
            if answer is None or (answer[0] or "") != bkey:
                continue  # lines left unknown: blamed in the foreground
            self._absorb(repo, known, None, boundary, answer[1].get(path, []))
            for k in lines:
                known.setdefault(k, "")

    def _wait(self, job: Future[_Prefetched]) -> _Prefetched | None:
        started = time.perf_counter()
        try:
            return job.result()
        except (GitError, OSError, ValueError, CancelledError):
            return None
        finally:
            self.stats.blame_seconds += time.perf_counter() - started

    def _absorb(
        self,
        repo: pygit2.Repository,
        known: dict[int, str],
        anchor: pygit2.Commit | None,
        boundary: pygit2.Oid | None,
        hunks: Sequence[BlameHunk],
    ) -> None:
        """Record a blame's answer; lines it gives to the anchor take the anchor's answer."""
        pending: dict[str, dict[int, int]] = {}
        for start, count, sha, orig_path, orig_start in hunks:
            for off in range(count):
                if anchor is not None and sha == str(anchor.id):
                    pending.setdefault(orig_path, {})[start + off] = orig_start + off
                else:
                    known[start + off] = sha
        for orig_path, lines in pending.items():
            assert anchor is not None
            older = self.blame(
                repo, orig_path, anchor, boundary, min(lines.values()), max(lines.values())
            )
            for k, orig in lines.items():
                known[k] = older.get(orig, "")

    def _anchor(
        self, repo: pygit2.Repository, path: str, bkey: str, parent: pygit2.Commit
    ) -> pygit2.Commit | None:
        """The newest parent already blamed for this path that is an ancestor of ``parent``."""
        seen = [c for c in self._anchors.get((path, bkey), ()) if c.id != parent.id]
        seen.sort(key=lambda c: c.commit_time, reverse=True)
        for c in seen[:4]:
            if c.commit_time <= parent.commit_time and repo.descendant_of(parent.id, c.id):
                return c
        return None

    def _blame_call(
        self,
        repo: pygit2.Repository,
        path: str,
        newest: pygit2.Commit,
        oldest: pygit2.Oid | None,
        ranges: Sequence[Span],
    ) -> list[BlameHunk]:
        """The one place a blame is run in the foreground: its hunks; counted (one per git
        process, or per libgit2 range) and timed."""
        started = time.perf_counter()
        try:
            if self.blame_fn is not None:
                self.stats.blame_calls += 1
                newest_sha = str(newest.id)
                old = str(oldest) if oldest is not None else None
                return self.blame_fn(repo.path, path, newest_sha, old, ranges)
            out: list[BlameHunk] = []
            for lo, hi in ranges:
                self.stats.blame_calls += 1
                blame = repo.blame(
                    path, newest_commit=newest.id, oldest_commit=oldest, min_line=lo, max_line=hi
                )
                out += [
                    (
                        bh.final_start_line_number,
                        bh.lines_in_hunk,
                        str(bh.final_commit_id),
                        bh.orig_path or path,
                        bh.orig_start_line_number,
                    )
                    for bh in blame
                ]
            return out
        except (pygit2.GitError, KeyError, ValueError, GitError):
            return []
        finally:
            self.stats.blame_seconds += time.perf_counter() - started

    def merge_base(
        self, repo: pygit2.Repository, a: pygit2.Oid, b: pygit2.Oid
    ) -> pygit2.Oid | None:
        """Cached: the search of a step, of its candidates' own conflicts and of the next
        round ask for the same parents again. A background job may have found it already."""
        key = (a, b)
        if key not in self._bases:
            if len(self._bases) >= _RESULT_CACHE:
                self._bases.clear()
            job = self._pending_bases.pop(key, None)
            answer = self._wait(job) if job is not None else None
            if answer is not None:
                self._bases[key] = pygit2.Oid(hex=answer[0]) if answer[0] else None
            else:
                self._bases[key] = self._merge_base_now(repo, a, b)
        return self._bases[key]

    def _merge_base_now(
        self, repo: pygit2.Repository, a: pygit2.Oid, b: pygit2.Oid
    ) -> pygit2.Oid | None:
        try:
            if self.merge_base_fn is not None:
                found = self.merge_base_fn(str(repo.path), str(a), str(b))
                return pygit2.Oid(hex=found) if found else None
            return repo.merge_base(a, b)
        except (pygit2.GitError, GitError):
            return None

    def changed_lines(self, eng: _Engine, commit: pygit2.Commit) -> int:
        """Lines the commit adds and deletes, as libgit2 counts them (binary files: none).

        File by file, on the files the commit changes: a whole-tree diff with stats costs
        ten times more (about 0.1 s a commit of a kernel-sized tree) for the same figure."""
        sha = str(commit.id)
        n = self._sizes.get(sha)
        if n is None:
            if len(commit.parents) != 1:
                n = 1 << 30  # a merge is never a prerequisite one would pick
            else:
                n = 0
                for old, new in eng.changes(commit.parents[0].tree, commit.tree).values():
                    a = _blob_of(eng, old)
                    b = _blob_of(eng, new)
                    if a is None and b is None:
                        continue
                    _context, added, deleted = pygit2.Patch.create_from(a, b).line_stats
                    n += added + deleted
            self._sizes[sha] = n
        return n


def find_prerequisites(
    repo_path: str | Path,
    base: str,
    fix_sha: str,
    *,
    in_branch: Callable[[str], bool],
    max_candidates: int = 8,
    max_depth: int = 2,
    options: MergeOptions | None = None,
    limits: SearchLimits | None = None,
) -> PrerequisiteResult:
    """Find the smallest set of commits that, picked first, lets fix_sha apply cleanly on base.

    Candidates are the commits that last touched the conflicting lines in the fix's parent
    (blame, only of the lines the branch lacks) and are not in the branch; sets are tried
    smallest first, in mainline order, and a set only counts once a re-simulation of set + fix
    comes out clean. Without limits the search is unbounded in size and time.
    """
    repo = _open(repo_path)
    eng = _Engine(repo, options or MergeOptions())
    base_commit = _resolve_commit(repo, base)
    fix = _resolve_commit(repo, fix_sha)
    session = SearchSession(
        limits
        or SearchLimits(
            mode=PrerequisiteMode.FULL,
            max_candidates=max_candidates,
            max_depth=max_depth,
            step_budget=0,
            run_budget=0,
        )
    )
    return _PrereqSearch(session, eng, in_branch, base_commit, {}).result(base_commit.tree, fix)


@dataclass
class _Found:
    ok: bool
    commits: list[pygit2.Commit]
    evidence: list[Evidence]


class _Stop(Exception):
    """A budget ran out; the message says which."""


Unit = tuple[list[pygit2.Commit], list[Evidence]]


class _PrereqSearch:
    """Blame the conflicting lines the branch lacks, then try candidate sets smallest first."""

    def __init__(
        self,
        session: SearchSession,
        eng: _Engine,
        in_branch: Callable[[str], bool],
        base: pygit2.Commit,
        unapplied: Mapping[str, object],
        picks: int = 256,
    ) -> None:
        lim = session.limits
        self.session = session
        self.eng = eng
        self.in_branch = in_branch
        self.base = base
        self.unapplied = unapplied
        self.bounded = lim.mode is PrerequisiteMode.BOUNDED
        self.max_candidates = max(1, lim.max_candidates)
        self.max_commits = max(1, lim.max_commits if self.bounded else lim.max_candidates)
        self.max_depth = max(1, lim.max_depth)
        self.picks = picks
        self.tried: list[tuple[str, ...]] = []
        self.candidates: list[str] = []
        self.rejected: list[str] = []
        self.blockers: dict[str, list[Evidence]] = {}
        self._member: dict[str, bool] = {}
        # (start tree, commits picked in order) -> resulting tree, None when the last conflicted
        self._after: dict[tuple[pygit2.Oid, tuple[pygit2.Oid, ...]], pygit2.Oid | None] = {}
        self.deadline: tuple[float, str] | None = None

    # --- budgets --------------------------------------------------------------------------

    def start_clock(self) -> None:
        lim = self.session.limits
        now = time.perf_counter()
        ends: list[tuple[float, str]] = []
        if lim.step_budget > 0:
            ends.append((now + lim.step_budget, f"the step's {lim.step_budget:g} s budget ran out"))
        left = self.session.run_left()
        if left is not None:
            ends.append((now + left, f"the run's {lim.run_budget:g} s search budget ran out"))
        self.deadline = min(ends) if ends else None

    def tick(self) -> None:
        if self.deadline is not None and time.perf_counter() >= self.deadline[0]:
            raise _Stop(self.deadline[1])
        if self.picks <= 0:
            raise _Stop("the search tried as many picks as it may (256)")

    def pick(self, tree: pygit2.Tree, commit: pygit2.Commit) -> _Outcome:
        self.tick()
        self.picks -= 1
        self.session.stats.search_picks += 1
        return _pick(self.eng, tree, commit)

    # --- driver ---------------------------------------------------------------------------

    def result(
        self,
        tree: pygit2.Tree,
        fix: pygit2.Commit,
        conflicts: Sequence[FileConflict] | None = None,
    ) -> PrerequisiteResult:
        stopped = ""
        found = _Found(False, [], [])
        self.start_clock()
        try:
            found = self.search(tree, fix, self.max_depth, self.max_commits, conflicts, top=True)
        except _Stop as stop:
            stopped = str(stop)
            self.session.stats.stopped += 1
        sha = str(fix.id)
        blockers = tuple(self.blockers) if not found.ok and not stopped else ()
        evidence = found.evidence
        if blockers:
            evidence = [e for b in blockers for e in self.blockers[b]]
        return PrerequisiteResult(
            sha,
            found.ok and not blockers,
            tuple(str(c.id) for c in found.commits),
            tuple(evidence),
            tuple(self.tried),
            tuple(self.candidates),
            self.message(found, stopped, blockers),
            mode=self.session.limits.mode.value,
            stopped=stopped,
            blockers=blockers,
            rejected=tuple(self.rejected),
        )

    def message(self, found: _Found, stopped: str, blockers: Sequence[str]) -> str:
        if stopped:
            return f"search stopped before a verdict: {stopped}"
        if blockers:
            names = ", ".join(b[:12] for b in blockers)
            return f"the conflicting lines were last changed by earlier unapplied steps: {names}"
        if found.ok and not found.commits:
            return "applies without prerequisites"
        if found.ok:
            names = ", ".join(_short(c) for c in found.commits)
            return f"applies cleanly after {names} (verified by re-simulation)"
        size = (
            f"at most {self.max_commits} commit(s) of at most {self.session.limits.max_lines} "
            "changed lines each"
            if self.bounded
            else f"up to {self.max_commits} commits (depth {self.max_depth})"
        )
        too_big = f"; too big: {'; '.join(self.rejected)}" if self.rejected else ""
        if not self.candidates:
            return "no candidate commits outside the branch touched the conflicting lines" + (
                f" ({size}){too_big}" if too_big else ""
            )
        return f"no set of {size} makes it apply; tried {len(self.tried)} sets{too_big}"

    def is_in_branch(self, sha: str) -> bool:
        known = self._member.get(sha)
        if known is None:
            known = bool(self.in_branch(sha))
            self._member[sha] = known
        return known

    def search(
        self,
        tree: pygit2.Tree,
        fix: pygit2.Commit,
        depth: int,
        room: int,
        conflicts: Sequence[FileConflict] | None = None,
        *,
        top: bool = False,
    ) -> _Found:
        """The smallest verified set of at most ``room`` commits that lets fix apply on tree.

        A candidate's own prerequisites count against the room of the set it would join: a
        set over max_commits can never be proposed, so it is never tried (nor searched for).
        """
        if conflicts is None:
            first = self.pick(tree, fix)
            if first.tree is not None:
                return _Found(True, [], [])
            conflicts = first.conflicts
        blamed = self.blame(tree, fix, conflicts, top)
        if top and self.blockers:
            return _Found(False, [], [])
        units: list[Unit] = []
        for cand, evidence in blamed:
            unit = self.unit(tree, cand, evidence, depth, room)
            if unit is not None:
                units.append(unit)
        for size in range(1, len(units) + 1):
            for combo in itertools.combinations(units, size):
                if len({c.id for u in combo for c in u[0]}) > room:
                    continue
                found = self.try_set(tree, fix, combo)
                if found is not None:
                    return self.minimal(tree, fix, found)
        return _Found(False, [], [])

    def unit(
        self,
        tree: pygit2.Tree,
        cand: pygit2.Commit,
        evidence: list[Evidence],
        depth: int,
        room: int,
    ) -> Unit | None:
        alone = self.pick(tree, cand)
        self._after[(tree.id, (cand.id,))] = alone.tree
        if alone.tree is not None:
            return None if alone.tree == tree.id else ([cand], evidence)
        if depth <= 1 or room <= 1:
            return None  # no room left for what the candidate itself would need
        sub = self.search(tree, cand, depth - 1, room - 1, alone.conflicts)
        if not sub.ok:
            return None
        needed = [
            dataclasses.replace(e, text=f"{e.text}; needed by {_short(cand)}") for e in sub.evidence
        ]
        return [*sub.commits, cand], needed + evidence

    def applies(self, tree: pygit2.Tree, commits: Sequence[pygit2.Commit]) -> bool:
        """Do commits apply one after another onto tree? Every search starts from the same
        tree, so the trees of prefixes already picked (a candidate alone, a tried set) are
        kept and not picked again."""
        ids = tuple(c.id for c in commits)
        start = next((k for k in range(len(ids), 0, -1) if (tree.id, ids[:k]) in self._after), 0)
        if start:
            after = self._after[(tree.id, ids[:start])]
            if after is None:
                return False
            current = cast(pygit2.Tree, self.eng.repo[after])
        else:
            current = tree
        for k in range(start, len(ids)):
            out = self.pick(current, commits[k])
            self._after[(tree.id, ids[: k + 1])] = out.tree
            if out.tree is None:
                return False
            current = cast(pygit2.Tree, self.eng.repo[out.tree])
        return True

    def try_set(
        self, tree: pygit2.Tree, fix: pygit2.Commit, combo: Sequence[Unit]
    ) -> _Found | None:
        commits: dict[str, pygit2.Commit] = {}
        evidence: list[Evidence] = []
        for unit_commits, unit_evidence in combo:
            for c in unit_commits:
                commits[str(c.id)] = c
            evidence.extend(unit_evidence)
        ordered = sorted(commits.values(), key=_mainline_key)
        self.tried.append(tuple(str(c.id) for c in ordered))
        if not self.applies(tree, [*ordered, fix]):
            return None
        unique = list({(e.commit, e.text): e for e in evidence}.values())
        return _Found(True, ordered, unique)

    def minimal(self, tree: pygit2.Tree, fix: pygit2.Commit, found: _Found) -> _Found:
        """Drop every member the fix turns out not to need (sets are tried smallest first, but a
        chained unit can carry a commit that a later member made unnecessary)."""
        commits = list(found.commits)
        for c in list(commits):
            if len(commits) == 1:
                break
            rest = [x for x in commits if x.id != c.id]
            if self.applies(tree, [*rest, fix]):
                commits = rest
        kept = {str(c.id) for c in commits}
        return _Found(True, commits, [e for e in found.evidence if e.commit in kept])

    # --- blame ----------------------------------------------------------------------------

    def blame(
        self, tree: pygit2.Tree, fix: pygit2.Commit, conflicts: Sequence[FileConflict], top: bool
    ) -> list[tuple[pygit2.Commit, list[Evidence]]]:
        """Commits outside the branch that last changed the conflicting lines, mainline order."""
        if len(fix.parents) != 1:
            return []
        parent = fix.parents[0]
        repo = self.eng.repo
        boundary = self.session.merge_base(repo, self.base.id, parent.id)
        lines: Counter[str] = Counter()
        evidence: dict[str, list[Evidence]] = {}
        skip = {str(fix.id), str(boundary) if boundary is not None else ""}
        for path, spans in self.lacking(tree, parent, conflicts):
            self.tick()
            # One blame for all of a file's spans: they share the walk through its history.
            every = self.session.blame_spans(repo, path, parent, boundary, spans)
            for lo, hi in spans:
                owners = {k: every[k] for k in range(lo, hi + 1)}
                for sha, start, count in _runs(owners):
                    if sha in skip:
                        continue
                    self.attribute(sha, path, start, count, top, lines, evidence)
        chosen = [sha for sha, _ in lines.most_common(self.max_candidates)]
        commits = sorted((cast(pygit2.Commit, repo[sha]) for sha in chosen), key=_mainline_key)
        for c in commits:
            if str(c.id) not in self.candidates:
                self.candidates.append(str(c.id))
        return [(c, evidence[str(c.id)]) for c in commits]

    def prefetch(
        self, tree: pygit2.Tree, fix: pygit2.Commit, conflicts: Sequence[FileConflict]
    ) -> Future[_Prefetched] | None:
        """Start the boundary and the blames the top of this fix's search will ask for (see
        :meth:`SearchSession.prefetch`)."""
        if len(fix.parents) != 1:
            return None
        parent = fix.parents[0]
        wanted = list(self.lacking(tree, parent, conflicts))
        return self.session.prefetch(self.eng.repo, self.base.id, parent, wanted)

    def lacking(
        self, tree: pygit2.Tree, parent: pygit2.Commit, conflicts: Sequence[FileConflict]
    ) -> Iterable[tuple[str, list[Span]]]:
        """Per conflicting file (its path in the parent), the lines to blame."""
        for conflict in conflicts:
            path = conflict.base_path or conflict.path
            spans = self.targets(tree, conflict, parent.tree, path)
            if spans:
                yield path, spans

    def attribute(
        self,
        sha: str,
        path: str,
        start: int,
        count: int,
        top: bool,
        lines: Counter[str],
        evidence: dict[str, list[Evidence]],
    ) -> None:
        commit = cast(pygit2.Commit, self.eng.repo[sha])
        text = (
            f"lines {start}-{start + count - 1} of {path} last changed by "
            f'{_short(commit)} ("{_subject(commit)}")'
        )
        ev = Evidence(sha, _subject(commit), path, LineRange(start, count), text)
        if sha in self.unapplied:
            # an earlier step of the sequence that did not apply: the conflict is its cascade
            if top:
                self.blockers.setdefault(sha, []).append(ev)
            return
        if self.is_in_branch(sha):
            return
        if self.bounded:
            size = self.session.changed_lines(self.eng, commit)
            if size > self.session.limits.max_lines:
                note = f"{_short(commit)} changes {size} lines"
                if note not in self.rejected:
                    self.rejected.append(note)
                return
        lines[sha] += count
        evidence.setdefault(sha, []).append(ev)

    def targets(
        self, tree: pygit2.Tree, conflict: FileConflict, parent: pygit2.Tree, path: str
    ) -> list[Span]:
        """The lines of the conflicting hunks (in the fix's parent) that the branch lacks.

        Lines the branch's tree already has came from commits the branch has (or from the
        common base): blaming them can only name commits that are not missing. What the branch
        lacks is found with one blob diff of the branch's file against the parent's.
        """
        p_ver = _Engine.at(parent, path)
        if p_ver is None or not _is_reg(p_ver.mode) or not conflict.hunks:
            return []
        total = _line_count(self.eng, parent, path)
        if total == 0:
            return []
        o_ver = _Engine.at(tree, conflict.path)
        if o_ver is None or not _is_reg(o_ver.mode):
            lacking: list[Span] = [(1, total)]
        else:
            lacking = _change_spans(self.eng, o_ver.oid, p_ver.oid)
        out: list[Span] = []
        for h in conflict.hunks:
            r_lo, r_hi = _region(h.base)
            r_lo, r_hi = max(1, r_lo), min(total, r_hi)
            for a, b in lacking:
                lo, hi = max(r_lo, a), min(r_hi, b, total)
                if lo <= hi:
                    out.append((lo, hi))
        return _merge_spans(out)


def _merge_spans(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _runs(owners: Mapping[int, str]) -> Iterable[tuple[str, int, int]]:
    """(sha, first line, count) for each run of consecutive lines with the same owner."""
    run: tuple[str, int, int] | None = None
    for k in sorted(owners):
        sha = owners[k]
        if run is not None and run[0] == sha and run[1] + run[2] == k:
            run = (sha, run[1], run[2] + 1)
            continue
        if run is not None and run[0]:
            yield run
        run = (sha, k, 1)
    if run is not None and run[0]:
        yield run


def _short(commit: pygit2.Commit) -> str:
    return str(commit.id)[:12]


def _mainline_key(commit: pygit2.Commit) -> tuple[int, int, str]:
    return (commit.commit_time, commit.author.time, str(commit.id))


def _line_count(eng: _Engine, tree: pygit2.Tree, path: str) -> int:
    ver = _Engine.at(tree, path)
    if ver is None or not _is_reg(ver.mode):
        return 0
    data = eng.data(ver.oid)
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
