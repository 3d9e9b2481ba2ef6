"""Benchmark: where ``tracker check``'s time goes, simulation versus prerequisite search.

Builds benchmarks/simulate.py's kernel-shaped repository (or reuses --dir), picks --picks
mainline commits onto the stable branch the way ``check`` does, and prints the time spent
picking steps, the time spent searching for prerequisites, and the number and time of blame
calls. Two implementations:

* ``--impl session`` (this tree): one pass; each conflict is judged where it happens (cascade
  test, then the bounded search with its budgets and blame cache), figures from SearchStats.
* ``--impl legacy``: the algorithm ``check`` used before (one plain pass, then for every
  conflict a re-simulation of the steps that applied plus an unbounded search), through the API
  both versions have; blame is timed by wrapping pygit2's Repository.blame in this process.
  Run it with PYTHONPATH pointing at an export of the old tree to time the old code itself.

    .venv/bin/python benchmarks/check_split.py --dir /tmp/bench --impl session [--mode bounded]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pygit2

from benchmarks.simulate import build_once
from tracker import simulate


def _timed_blame() -> dict[str, float]:
    figures = {"calls": 0.0, "seconds": 0.0}
    original = pygit2.Repository.blame

    def blame(self: pygit2.Repository, *args: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, *args, **kw)
        finally:
            figures["calls"] += 1
            figures["seconds"] += time.perf_counter() - started

    pygit2.Repository.blame = blame  # type: ignore[method-assign, assignment]
    return figures


def legacy(repo: Path, stable: str, shas: list[str]) -> dict[str, object]:
    figures = _timed_blame()
    r = pygit2.Repository(str(repo))
    base = r.revparse_single(stable).id
    t0 = time.perf_counter()
    steps = list(simulate.simulate_sequence(repo, stable, shas).steps)
    sim_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    for i, step in enumerate(steps):
        if step.verdict.value != "conflict":
            continue
        earlier = set(shas[:i])

        def member(sha: str, earlier: set[str] = earlier) -> bool:
            return sha in earlier or bool(r.descendant_of(base, pygit2.Oid(hex=sha)))

        applied = [sha for sha, st in zip(shas[:i], steps[:i], strict=True) if st.ok]
        again = simulate.simulate_sequence(
            repo, stable, [*applied, shas[i]], prerequisites=True, in_branch=member
        )
        steps[i] = again.steps[-1]
    return {
        "verdicts": Counter(s.verdict.value for s in steps),
        "found": sum(1 for s in steps if s.prerequisites is not None and s.prerequisites.found),
        "simulate_seconds": sim_s,
        "search_seconds": time.perf_counter() - t1,
        "blame_calls": int(figures["calls"]),
        "blame_seconds": figures["seconds"],
    }


def session(repo: Path, stable: str, shas: list[str], mode: str, blame: str) -> dict[str, object]:
    from tracker.gitio import blame_lines

    limits = simulate.SearchLimits(mode=simulate.PrerequisiteMode(mode))
    sess = simulate.SearchSession(limits, blame=blame_lines if blame == "git" else None)
    r = pygit2.Repository(str(repo))
    base = r.revparse_single(stable).id

    def member(sha: str) -> bool:
        return bool(r.descendant_of(base, pygit2.Oid(hex=sha)))

    steps = simulate.simulate_sequence(repo, stable, shas, in_branch=member, search=sess).steps
    return {
        "verdicts": Counter(s.verdict.value for s in steps),
        "found": sum(1 for s in steps if s.prerequisites is not None and s.prerequisites.found),
        **sess.stats.to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, required=True, help="repository kept here between runs")
    ap.add_argument("--files", type=int, default=70_000)
    ap.add_argument("--commits", type=int, default=3_000)
    ap.add_argument("--stable-commits", type=int, default=400)
    ap.add_argument("--fork-at", type=int, default=150)
    ap.add_argument("--picks", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--impl", choices=("legacy", "session"), default="session")
    ap.add_argument("--mode", choices=("off", "bounded", "full"), default="bounded")
    ap.add_argument("--blame", choices=("git", "libgit2"), default="git", help="session's blame")
    args = ap.parse_args(argv)
    repo, meta = args.dir / "repo", args.dir / "meta.json"
    args.dir.mkdir(parents=True, exist_ok=True)
    if not build_once(args, repo, meta):
        return 1
    info = json.loads(meta.read_text())
    rng = random.Random(args.seed + 1)
    candidates = info["main"][args.fork_at + 2 :]
    picks = sorted(rng.sample(range(len(candidates)), min(args.picks, len(candidates))))
    shas = [candidates[i] for i in picks]
    started = time.perf_counter()
    run: Callable[[], dict[str, object]]
    if args.impl == "legacy":
        run = lambda: legacy(repo, info["stable"], shas)  # noqa: E731
    else:
        run = lambda: session(repo, info["stable"], shas, args.mode, args.blame)  # noqa: E731
    figures = run()
    total = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdicts = dict(sorted(figures.pop("verdicts").items()))  # type: ignore[attr-defined]
    print(
        f"{args.impl} ({args.mode if args.impl == 'session' else 'unbounded'}): {len(shas)} picks"
    )
    print(f"  verdicts: {verdicts}; prerequisites found: {figures['found']}")
    print(
        f"  total {total:.1f} s: simulation {figures['simulate_seconds']:.1f} s, search "
        f"{figures['search_seconds']:.1f} s ({figures['blame_calls']} blame calls, "
        f"{figures['blame_seconds']:.1f} s); peak RSS {rss:.0f} MiB"
    )
    print(f"  all figures: {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
