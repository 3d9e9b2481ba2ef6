"""The simulator's shortcuts give the answers the full computation gives.

The engine keeps merges and diffs of blob triples and pairs, and the cascade test skips its
full-file diff when no line the earlier step wrote has the text of a conflicting line. Both are
only worth having if they never change an answer: these tests compare them with the computation
they stand for, on real repositories built in temp dirs.
"""

from __future__ import annotations

import random
from pathlib import Path

import pygit2

from tests.gitutil import commit_files, git, git_out, init_repo
from tracker.simulate import (
    LineRange,
    MergeOptions,
    SearchLimits,
    SearchSession,
    Verdict,
    simulate_sequence,
)
from tracker.simulate.cascade import _map_span, _may_meet, _region
from tracker.simulate.engine import _Engine
from tracker.simulate.treemerge import _pick


def _text(rng: random.Random, n: int) -> list[str]:
    # few distinct lines, so that texts repeat as real code's "}" and blank lines do
    return [
        rng.choice(("}", "", "\treturn 0;", "\tx++;", f"line {rng.randrange(40)}"))
        for _ in range(n)
    ]


def _mutate(rng: random.Random, lines: list[str]) -> list[str]:
    out = list(lines)
    for _ in range(rng.randint(0, 4)):
        at = rng.randrange(len(out) + 1)
        kind = rng.randrange(3)
        if kind == 0 and out:
            del out[at : at + rng.randint(1, 3)]
        elif kind == 1:
            out[at:at] = _text(rng, rng.randint(1, 3))
        elif out:
            out[min(at, len(out) - 1)] = f"changed {rng.randrange(1000)}"
    return out


def _blob(repo: pygit2.Repository, lines: list[str], newline: bool) -> pygit2.Oid:
    data = "\n".join(lines) + ("\n" if newline and lines else "")
    return repo.create_blob(data.encode())


def test_text_prefilter_never_drops_a_written_line(tmp_path: Path) -> None:
    """_may_meet is a necessary condition of what _wrote_lines computes with the full diff."""
    repo = pygit2.init_repository(str(tmp_path / "r"), bare=True)
    eng = _Engine(repo, MergeOptions())
    rng = random.Random(7)
    met = dropped = 0
    for _ in range(600):
        before = _text(rng, rng.randint(0, 25))
        after = _mutate(rng, before)
        parent = _mutate(rng, after)
        b, a = _blob(repo, before, rng.random() < 0.9), _blob(repo, after, rng.random() < 0.9)
        p = _blob(repo, parent, rng.random() < 0.9)
        written = [(ns, ns + nl - 1) if nl else (ns, ns + 1) for _, _, ns, nl in eng.hunks(b, a)]
        n = len(parent)
        start = rng.randint(1, max(1, n + 1))
        regions = [_region(LineRange(start, rng.randint(0, 3)))]
        moved = [m for lo, hi in written for m in _map_span(lo, hi, eng.hunks(a, p))]
        full = any(lo <= r_hi and r_lo <= hi for lo, hi in moved for r_lo, r_hi in regions)
        quick = _may_meet(eng, a, written, p, regions)
        assert quick or not full, (before, after, parent, regions)
        met += full
        dropped += not quick
    # the cases exercise both answers, and the filter does spare diffs
    assert met > 50 and dropped > 50


def test_engine_caches_answer_as_a_fresh_engine_does(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    base = {f"f{i}.c": "".join(f"{i} line {k}\n" for k in range(60)) for i in range(4)}
    commit_files(root, base, "base")
    git(root, "branch", "stable")
    shas = []
    rng = random.Random(3)
    files = dict(base)
    for n in range(12):
        name = f"f{rng.randrange(4)}.c"
        lines = files[name].splitlines(keepends=True)
        k = rng.randrange(len(lines))
        lines[k] = f"main change {n}\n"
        files[name] = "".join(lines)
        commit_files(root, {name: files[name]}, f"change {n}")
        shas.append(git_out(root, "rev-parse", "HEAD").strip())
    git(root, "checkout", "-q", "stable")
    stable = {name: text.replace(" line 1", " stable line 1") for name, text in base.items()}
    commit_files(root, stable, "stable edits")
    head = git_out(root, "rev-parse", "HEAD").strip()
    repo = pygit2.Repository(str(root))
    warm = _Engine(repo, MergeOptions())
    tree = repo.revparse_single(head).peel(pygit2.Tree)
    verdicts = set()
    for sha in shas:
        commit = repo[sha]
        first = _pick(warm, tree, commit)
        again = _pick(warm, tree, commit)  # every merge and diff now from the caches
        cold = _pick(_Engine(repo, MergeOptions()), tree, commit)
        for out in (again, cold):
            assert (out.tree, out.conflicts) == (first.tree, first.conflicts)
        verdicts.add(first.tree is None)
        if first.tree is not None:
            tree = repo[first.tree]
    assert verdicts == {True, False}  # clean picks and conflicts both


def test_a_later_round_on_a_warm_session_equals_one_on_a_fresh_session(tmp_path: Path) -> None:
    """check --plan's rounds share one session, hence one engine and its caches: the second
    round (a prerequisite inserted first) must give exactly what it gives from scratch, while
    computing no file merge the first round already computed."""
    import tracker.simulate.engine as sim
    from tests.test_cascade import MAILMAP, numbered, series

    root = init_repo(tmp_path / "repo")
    commit_files(root, {"a.c": numbered({}), ".mailmap": MAILMAP, "b.c": numbered({})}, "init")
    git(root, "branch", "stable")
    s = series(root)
    git(root, "checkout", "-q", "-b", "other", "stable~1")
    elsewhere = commit_files(root, {"z.c": "z\n"}, "a prerequisite elsewhere")
    first_round = [s["E"], s["F"], s["G"], s["U"], s["M"]]
    second_round = [elsewhere, *first_round]

    def limits() -> SearchSession:
        return SearchSession(SearchLimits(step_budget=0, run_budget=0))

    computed: list[bytes] = []
    real_merge = sim.contentmerge.merge

    def counting(base: bytes, *args: object, **kw: object) -> sim.contentmerge.MergeResult:
        computed.append(base)
        return real_merge(base, *args, **kw)  # type: ignore[arg-type]

    sim.contentmerge.merge = counting  # type: ignore[assignment]
    try:
        warm = limits()
        simulate_sequence(root, "stable", first_round, search=warm)
        before = len(computed)
        assert before > 0
        again = simulate_sequence(root, "stable", second_round, search=warm).steps
        assert len(computed) == before  # every file merge of round two came from round one
        fresh = simulate_sequence(root, "stable", second_round, search=limits()).steps
    finally:
        sim.contentmerge.merge = real_merge
    assert [st.to_dict() for st in again] == [st.to_dict() for st in fresh]
    assert {st.verdict for st in fresh} >= {Verdict.CLEAN, Verdict.BLOCKED}
