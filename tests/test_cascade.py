"""Cascades, manual backports and the bounded prerequisite search, on real repositories.

Each scenario is a small history built with git in a temp dir; verdicts that matter are also
checked against what git cherry-pick does with the same commits.
"""

from __future__ import annotations

import random
from pathlib import Path

import pygit2
import pytest

from tests.gitutil import CherryPicker, add_worktree, commit_files, git, git_out, init_repo
from tracker.gitio import blame_lines
from tracker.simulate import (
    PrerequisiteMode,
    SearchLimits,
    SearchSession,
    Verdict,
    find_prerequisites,
    simulate_sequence,
)


def lines(*items: str | int) -> str:
    return "".join(f"{i}\n" for i in items)


def numbered(changes: dict[int, str], n: int = 40) -> str:
    return lines(*(changes.get(i, str(i)) for i in range(1, n + 1)))


MAILMAP = lines("Alice <a@x>", "Bob <b@x>", "Carol <c@x>", "Dave <d@x>")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    commit_files(root, {"a.c": numbered({}), ".mailmap": MAILMAP, "b.c": numbered({})}, "initial")
    git(root, "branch", "stable")
    return root


def session(mode: PrerequisiteMode = PrerequisiteMode.BOUNDED) -> SearchSession:
    return SearchSession(SearchLimits(mode=mode, step_budget=0, run_budget=0))


def members(root: Path) -> set[str]:
    return set(git_out(root, "rev-list", "stable").split())


def git_pick(root: Path, target: str, sha: str) -> str:
    wt = root.parent / "wt"
    picker = add_worktree(root, wt, target) if not wt.exists() else CherryPicker(wt)
    picker.checkout(target)
    verdict = picker.pick(sha).verdict
    picker.reset()
    return verdict


def series(root: Path) -> dict[str, str]:
    """Stable renamed Carol in .mailmap; mainline's series: 1/3 touches .mailmap and a.c, 2/3
    and 3/3 rework the lines 1/3 wrote; an unrelated fix; a fix hitting a stable-only edit."""
    git(root, "checkout", "-q", "stable")
    commit_files(
        root,
        {".mailmap": MAILMAP.replace("Carol <c@x>", "Carol C <c@x>"), "b.c": numbered({25: "s"})},
        "stable: mailmap and b.c",
    )
    git(root, "checkout", "-q", "main")
    s: dict[str, str] = {}
    s["E"] = commit_files(
        root,
        {
            ".mailmap": MAILMAP.replace("Carol <c@x>", "Carol <carol@x>"),
            "a.c": numbered({10: "helper()", 11: "helper2()"}),
        },
        "1/3 add helpers",
        date=1700000100,
    )
    s["F"] = commit_files(
        root,
        {"a.c": numbered({10: "helper(1)", 11: "helper2()"})},
        "2/3 use helper",
        date=1700000200,
    )
    s["G"] = commit_files(
        root,
        {"a.c": numbered({10: "helper(1)", 11: "helper2(2)"})},
        "3/3 use helper2",
        date=1700000300,
    )
    s["U"] = commit_files(
        root,
        {"a.c": numbered({10: "helper(1)", 11: "helper2(2)", 35: "unrelated"})},
        "unrelated fix",
        date=1700000400,
    )
    s["M"] = commit_files(
        root, {"b.c": numbered({25: "m"})}, "fix over a stable edit", date=1700000500
    )
    return s


def test_cascade_is_blocked_by_the_step_that_wrote_the_lines(repo: Path) -> None:
    s = series(repo)
    order = [s["E"], s["F"], s["G"], s["U"], s["M"]]
    for mode in PrerequisiteMode:
        result = simulate_sequence(repo, "stable", order, search=session(mode))
        e, f, g, u, m = result.steps
        assert e.verdict in (Verdict.CONFLICT, Verdict.MANUAL)
        assert {c.path for c in e.conflicts} == {".mailmap"}
        # 2/3 and 3/3 are the cascade of 1/3, named with its position (index 0 -> step 1)
        assert (f.verdict, f.blocked_by, f.blocked_at) == (Verdict.BLOCKED, (s["E"],), (0,))
        assert "blocked by step 1 (" in f.detail
        assert g.verdict is Verdict.BLOCKED and g.blocked_by[0] in (s["E"], s["F"])
        assert u.verdict is Verdict.CLEAN
        # an independent conflict stays one: nothing earlier in the plan wrote those lines
        assert m.verdict in (Verdict.CONFLICT, Verdict.MANUAL) and not m.blocked_by
    # git agrees that 2/3 conflicts on the branch, and that it applies once 1/3 is resolved
    assert git_pick(repo, "stable", s["F"]) == "conflict"
    resolved = simulate_sequence(repo, s["E"], [s["F"], s["G"]]).steps
    assert [r.verdict for r in resolved] == [Verdict.CLEAN, Verdict.CLEAN]


def test_without_a_session_conflicts_stay_plain(repo: Path) -> None:
    """The differential test's mode: no cascade judgement, no search."""
    s = series(repo)
    steps = simulate_sequence(repo, "stable", [s["E"], s["F"]]).steps
    assert [st.verdict for st in steps] == [Verdict.CONFLICT, Verdict.CONFLICT]


def test_manual_backport_needed_with_the_hunks(repo: Path) -> None:
    s = series(repo)
    sess = session()
    (m,) = simulate_sequence(repo, "stable", [s["M"]], search=sess).steps
    assert m.verdict is Verdict.MANUAL and m.detail.startswith("manual backport needed")
    assert m.prerequisites is not None and not m.prerequisites.found
    assert "no candidate commits outside the branch" in m.prerequisites.message
    (h,) = m.hunks
    assert (h.path, h.base.start, h.base.count) == ("b.c", 25, 1)
    assert h.expects == ("25",) and h.has == ("s",)
    assert h.ours is not None and h.ours.start == 25
    assert h.text() == "b.c:25-25 (branch lines 25-25)"
    assert git_pick(repo, "stable", s["M"]) == "conflict"
    # what the branch has, the patch expects: the only lines blamed were the one the branch lacks
    assert sess.stats.blame_calls == 1


def test_prerequisites_off_never_blames(repo: Path) -> None:
    s = series(repo)
    order = [s["G"], s["M"]]
    on = session(PrerequisiteMode.BOUNDED)
    simulate_sequence(repo, "stable", order, search=on)
    assert on.stats.blame_calls > 0 and on.stats.searches == 2
    off = session(PrerequisiteMode.OFF)
    steps = simulate_sequence(repo, "stable", order, search=off).steps
    assert off.stats.blame_calls == 0 and off.stats.searches == 0
    assert [st.verdict for st in steps] == [Verdict.CONFLICT, Verdict.CONFLICT]
    assert all(st.prerequisites is None and st.hunks for st in steps)


def test_bounded_prerequisite_outside_the_branch_names_its_lines(repo: Path) -> None:
    s = series(repo)
    sess = session()
    # G alone: it needs 1/3 and 2/3, both outside the branch and small; 1/3 cannot apply (its
    # .mailmap conflicts), so no verified set exists and a maintainer backports by hand ...
    (g,) = simulate_sequence(repo, "stable", [s["G"]], search=sess).steps
    assert g.verdict is Verdict.MANUAL
    assert g.prerequisites is not None and s["F"] in g.prerequisites.candidates
    # ... while on a branch whose .mailmap is mainline's, F is the one prerequisite needed
    git(repo, "checkout", "-q", "-b", "stable2", "stable~1")
    commit_files(repo, {"a.c": numbered({10: "helper()", 11: "helper2()"})}, "backport of 1/3")
    (g2,) = simulate_sequence(repo, "stable2", [s["G"]], search=session()).steps
    assert g2.verdict is Verdict.CONFLICT
    pre = g2.prerequisites
    assert pre is not None and pre.found and pre.commits == (s["F"],)
    (ev,) = pre.evidence
    assert (ev.path, ev.lines) == ("a.c", ev.lines) and ev.lines is not None
    assert ev.lines.start == 10 and ev.text.startswith("lines 10-10 of a.c last changed by ")
    assert git_pick(repo, "stable2", s["G"]) == "conflict"
    # the same when F is a later step of the sequence: the search names it (the planner moves
    # it first); a set of one was enough, so no larger set was tried
    g3, f3 = simulate_sequence(repo, "stable2", [s["G"], s["F"]], search=session()).steps
    assert g3.verdict is Verdict.CONFLICT and f3.verdict is Verdict.CLEAN
    assert g3.prerequisites is not None and g3.prerequisites.commits == (s["F"],)
    assert all(len(t) == 1 for t in g3.prerequisites.tried)
    assert [st.verdict for st in simulate_sequence(repo, "stable2", [s["F"], s["G"]]).steps] == [
        Verdict.CLEAN,
        Verdict.CLEAN,
    ]


def test_too_big_prerequisite_means_manual_unless_full(repo: Path) -> None:
    big = numbered({10: "reworked"}, 40) + lines(*(f"new {i}" for i in range(300)))
    x = commit_files(repo, {"a.c": big}, "big rework", date=1700000100)
    fix = commit_files(
        repo, {"a.c": big.replace("reworked", "reworked(fixed)")}, "fix", date=1700000200
    )
    bounded = find_prerequisites(
        repo,
        "stable",
        fix,
        in_branch=members(repo).__contains__,
        limits=SearchLimits(step_budget=0),
    )
    assert not bounded.found and bounded.rejected == (f"{x[:12]} changes 302 lines",)
    assert "too big" in bounded.message
    full = find_prerequisites(repo, "stable", fix, in_branch=members(repo).__contains__)
    assert full.found and full.commits == (x,)


def test_budget_spent_leaves_a_plain_conflict(repo: Path) -> None:
    s = series(repo)
    spent = SearchSession(SearchLimits(run_budget=1e-9))
    steps = simulate_sequence(repo, "stable", [s["M"]], search=spent).steps
    assert steps[0].verdict is Verdict.CONFLICT
    pre = steps[0].prerequisites
    assert pre is not None and pre.stopped and "budget ran out" in pre.message
    assert spent.stats.blame_calls == 0 and spent.stats.stopped == 1


def test_blame_is_cached_per_path_and_parent(repo: Path) -> None:
    s = series(repo)
    sess = session()
    simulate_sequence(repo, "stable", [s["M"]], search=sess)
    first = sess.stats.blame_calls
    git(repo, "branch", "-f", "other", "stable")
    simulate_sequence(repo, "other", [s["M"]], search=sess)
    assert first == 1 and sess.stats.blame_calls == 1


def test_git_blame_from_an_anchor_agrees_with_a_full_libgit2_blame(repo: Path) -> None:
    """The session blames later parents back to an earlier, cached one (with git blame); the
    answer must be the one a full blame from the branch's base gives (libgit2's, uncached)."""
    rng = random.Random(5)
    text = [f"line {i}" for i in range(1, 61)]
    parents: list[str] = []
    for n in range(14):
        for k in rng.sample(range(len(text)), 5):
            text[k] = f"c{n} {k}"
        if n % 3 == 1:
            text.insert(rng.randrange(len(text)), f"inserted {n}")
        if n % 4 == 2:
            del text[rng.randrange(len(text))]
        files = {"a.c": lines(*text)}
        if n % 5 == 0:
            files["b.c"] = lines(*(f"noise {n}" for _ in range(3)))
        parents.append(commit_files(repo, files, f"change {n}", date=1700000000 + n))
    r = pygit2.Repository(str(repo))
    boundary = r.revparse_single("stable").id
    anchored = SearchSession(blame=blame_lines)
    truth: dict[int, str] = {}
    for sha in parents[3::2]:
        commit = r[sha]
        assert isinstance(commit, pygit2.Commit)
        blob = commit.tree["a.c"]
        assert isinstance(blob, pygit2.Blob)
        n = len(blob.data.splitlines())
        truth = SearchSession().blame(r, "a.c", commit, boundary, 1, n)
        assert anchored.blame(r, "a.c", commit, boundary, 1, n) == truth
        assert anchored.blame(r, "a.c", commit, boundary, 5, 9) == {
            k: truth[k] for k in range(5, 10)
        }
    owners = set(truth.values())
    assert owners <= {*parents, str(boundary)} and len(owners) > 5
    # each later parent was blamed back to the previous one, not to the base
    assert anchored.stats.blame_calls >= len(parents[3::2])


def test_a_later_round_reuses_searches_whose_files_did_not_change(repo: Path) -> None:
    s = series(repo)
    git(repo, "checkout", "-q", "-b", "other", "stable~1")
    elsewhere = commit_files(repo, {"z.c": lines("z")}, "unrelated prerequisite elsewhere")
    sess = session()
    first = simulate_sequence(repo, "stable", [s["G"], s["M"]], search=sess).steps
    assert sess.stats.searches == 2
    # the next round puts another step first: the tree differs, these files do not
    again = simulate_sequence(repo, "stable", [elsewhere, s["G"], s["M"]], search=sess).steps
    assert sess.stats.searches == 2
    assert [st.verdict for st in again[1:]] == [st.verdict for st in first]
    assert [st.prerequisites for st in again[1:]] == [st.prerequisites for st in first]
    # a change to a file the step conflicts in makes it search again
    git(repo, "checkout", "-q", "-b", "third", "stable")
    touch = commit_files(repo, {"b.c": numbered({25: "s", 40: "x"})}, "touches b.c")
    simulate_sequence(repo, "stable", [touch, s["M"]], search=sess)
    assert sess.stats.searches == 3


def test_one_blame_per_file_for_all_its_conflicting_spans(repo: Path) -> None:
    """Two far-apart conflicts in one file need two earlier commits: one git blame (with two
    -L ranges) names both, as two blames did; the walk through history is shared."""
    p1 = commit_files(repo, {"a.c": numbered({5: "p1"})}, "p1", date=1700000100)
    p2 = commit_files(repo, {"a.c": numbered({5: "p1", 30: "p2"})}, "p2", date=1700000200)
    fix = commit_files(
        repo, {"a.c": numbered({5: "p1 fixed", 30: "p2 fixed"})}, "fix", date=1700000300
    )
    sess = SearchSession(SearchLimits(step_budget=0, run_budget=0), blame=blame_lines)
    (step,) = simulate_sequence(repo, "stable", [fix], search=sess).steps
    assert git_pick(repo, "stable", fix) == "conflict"
    pre = step.prerequisites
    assert pre is not None and pre.found and set(pre.commits) == {p1, p2}
    assert {(e.commit, e.lines.start if e.lines else None) for e in pre.evidence} == {
        (p1, 5),
        (p2, 30),
    }
    assert sess.stats.blame_calls == 1
