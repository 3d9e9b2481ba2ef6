"""The prerequisite search's background work: git's merge-base and blame run beside the
simulation, and a conflict's search runs a few steps after its pick. The answers must be the
ones the foreground search (libgit2, at the pick) gives, step for step."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from tests import test_cascade
from tests.gitutil import commit_files, git, git_out, init_repo
from tests.test_cascade import numbered, series
from tracker.errors import InvalidRevisionError
from tracker.gitio import blame_lines, merge_base_of
from tracker.simulate import SearchLimits, SearchSession, StepResult, simulate_sequence

repo = test_cascade.repo  # the same small history: a.c, b.c, .mailmap on main and stable


def limits() -> SearchLimits:
    return SearchLimits(step_budget=0, run_budget=0)


def outcome(step: StepResult) -> tuple[object, ...]:
    pre = step.prerequisites
    return (
        step.index,
        step.verdict,
        step.detail,
        step.blocked_by,
        step.blocked_at,
        pre.commits if pre else None,
        pre.candidates if pre else None,
        pre.message if pre else None,
        pre.blockers if pre else None,
    )


def test_background_answers_are_the_foreground_ones(repo: Path) -> None:
    """Sequences where a later step is the prerequisite of an earlier one, and where a later
    step that fails wrote an earlier step's conflicting lines: the deferred search must see
    the plan as it stood at its own step (neither as in the branch nor as a blocker)."""
    s = series(repo)
    git(repo, "checkout", "-q", "-b", "stable2", "stable~1")
    commit_files(repo, {"a.c": numbered({10: "helper()", 11: "helper2()"})}, "backport of 1/3")
    runs = [
        ("stable", [s["E"], s["F"], s["G"], s["U"], s["M"]]),
        ("stable", [s["G"], s["F"], s["M"]]),
        ("stable2", [s["G"], s["F"]]),
        ("stable2", [s["G"], s["M"], s["U"], s["F"]]),
    ]
    for base, order in runs:
        background = SearchSession(limits(), blame=blame_lines, merge_base=merge_base_of)
        seen: list[int] = []
        got = simulate_sequence(
            repo, base, order, search=background, on_step=lambda r, seen=seen: seen.append(r.index)
        ).steps
        # nothing is held for searches that are done
        assert not background._inflight and not background._pending_bases
        background.close()
        want = simulate_sequence(repo, base, order, search=SearchSession(limits())).steps
        assert [outcome(x) for x in got] == [outcome(x) for x in want], (base, order)
        assert seen == list(range(len(order)))  # given out in step order
        assert background.stats.blame_background > 0  # the blames did run behind
        if base == "stable2" and order[:2] == [s["G"], s["F"]]:
            # G's prerequisite F is a later step: not yet in the branch when G is searched
            pre = got[0].prerequisites
            assert pre is not None and pre.commits == (s["F"],)


def test_off_and_spent_budgets_start_nothing(repo: Path) -> None:
    from tracker.simulate import PrerequisiteMode

    s = series(repo)
    order = [s["G"], s["M"]]
    off = SearchSession(
        SearchLimits(mode=PrerequisiteMode.OFF), blame=blame_lines, merge_base=merge_base_of
    )
    simulate_sequence(repo, "stable", order, search=off)
    spent = SearchSession(
        SearchLimits(run_budget=1e-9), blame=blame_lines, merge_base=merge_base_of
    )
    spent.stats.search_seconds = 1.0  # the run's budget is gone before the first search
    steps = simulate_sequence(repo, "stable", order, search=spent).steps
    assert off.stats.blame_calls == 0 and spent.stats.blame_calls == 0
    assert all(st.prerequisites is not None and st.prerequisites.stopped for st in steps)


def test_git_merge_base_is_libgit2s(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    first = commit_files(root, {"a": "1\n"}, "one")
    git(root, "checkout", "-q", "-b", "side")
    side = commit_files(root, {"b": "2\n"}, "side")
    git(root, "checkout", "-q", "main")
    main = commit_files(root, {"a": "3\n"}, "main")
    r = pygit2.Repository(str(root))
    assert merge_base_of(r.path, main, side) == first == str(r.merge_base(main, side))
    git(root, "checkout", "-q", "--orphan", "alone")
    git(root, "rm", "-q", "-rf", ".")
    lone = commit_files(root, {"c": "4\n"}, "unrelated root")
    assert merge_base_of(r.path, main, lone) is None
    with pytest.raises(InvalidRevisionError):
        merge_base_of(r.path, "--all", main)
    assert git_out(root, "rev-parse", "main") == main
