"""Reference resolution and planner rules over plain values (no I/O)."""

from __future__ import annotations

from tracker.decide import (
    BranchCommitInfo,
    BranchView,
    CommitInfo,
    Fix,
    FixRef,
    World,
    decide,
)
from tracker.graph import Candidate, resolve_reference

A = "a" * 40
B = "b" * 40
C = "c" * 40
S = "5" * 40


def _lookup(cands: list[Candidate]):  # type: ignore[no-untyped-def]
    return (
        lambda p: [c for c in cands if c.sha.startswith(p)],
        lambda subj: [c for c in cands if c.subject == subj],
    )


def test_resolution_rules() -> None:
    cands = [
        Candidate(A, "mm: one", True),
        Candidate(B, "mm: two", True),
        Candidate(S, "mm: two", False),
    ]
    by_prefix, by_subject = _lookup(cands)
    assert resolve_reference(A[:12], "mm: one", by_prefix, by_subject).rule == "sha"
    # The sha names another commit than the quoted subject: repaired to the subject, flagged.
    r = resolve_reference(A[:12], "mm: two", by_prefix, by_subject)
    assert (r.dst, r.rule, r.flagged) == (B, "subject-repair", True)
    # Unknown sha, unambiguous subject (the mainline one wins over its backport).
    r = resolve_reference("d" * 12, "mm: two", by_prefix, by_subject)
    assert (r.dst, r.rule) == (B, "subject-repair")
    assert resolve_reference("d" * 12, None, by_prefix, by_subject).rule == "unknown"
    assert resolve_reference("--upload-pack=x", None, by_prefix, by_subject).rule == "invalid"
    dup = [Candidate("abcd" + "0" * 36, "x", True), Candidate("abcd" + "1" * 36, "y", True)]
    p2, s2 = _lookup(dup)
    assert resolve_reference("abcd", None, p2, s2).rule == "ambiguous"
    assert resolve_reference("abcd", "y", p2, s2).dst == "abcd" + "1" * 36


def _world() -> World:
    return World(
        commits={
            A: CommitInfo(A, "culprit old", True, "v6.1", 0, 1),
            B: CommitInfo(B, "culprit new", True, "v6.6", 1, 2),
            C: CommitInfo(C, "fix", True, None, None, 3),
        }
    )


def _view(*commits: BranchCommitInfo) -> BranchView:
    return BranchView("linux-6.1.y", "v6.1", 0, (6, 1), commits)


def _fix(*dsts: str) -> Fix:
    refs = tuple(FixRef(d[:12], d, "sha", "", False) for d in dsts)
    return Fix(CommitInfo(C, "fix", True, None, None, 3), ("t",), refs)


def test_several_fixes_tags_needed_if_any_culprit_is_in() -> None:
    p = decide(_view(), [_fix(B, A)], _world())
    assert p.steps[0].status == "needed"
    p = decide(_view(), [_fix(B)], _world())
    assert p.steps[0].status == "not-needed"


def test_revert_of_a_revert_restores_the_culprit() -> None:
    bp = BranchCommitInfo(S, "culprit new", 1, None, B, "upstream-reference")
    rv = BranchCommitInfo("6" * 40, "Revert", 2, None, None, None, reverts=(S,))
    rrv = BranchCommitInfo("7" * 40, "Reapply", 3, None, None, None, reverts=("6" * 40,))
    assert decide(_view(bp, rv), [_fix(B)], _world()).steps[0].status == "not-needed"
    assert decide(_view(bp, rv, rrv), [_fix(B)], _world()).steps[0].status == "needed"


def test_culprit_reverted_in_mainline_before_the_base() -> None:
    r = "e" * 40
    w = World(
        commits={**_world().commits, r: CommitInfo(r, "Revert", True, "v6.1", 0, 2)},
        mainline_reverts={A: (r,)},
    )
    step = decide(_view(), [_fix(A)], w).steps[0]
    assert step.status == "not-needed"
    assert "reverted" in step.reason


def test_external_prerequisite_is_inserted_before_its_dependent() -> None:
    from tracker.decide import Prerequisite

    w = _world()
    p = decide(_view(), [_fix(A)], w, prerequisites=[Prerequisite(B, C, "lines 3-5 of x.c")])
    assert [(s.sha, s.status) for s in p.ordered] == [(B, "prerequisite"), (C, "needed")]
    assert p.ordered[1].order_reason == f"after {B[:12]}, its prerequisite"
    # A prerequisite already in the branch adds evidence, not a step.
    p2 = decide(_view(), [_fix(A)], w, prerequisites=[Prerequisite(A, C, "x")])
    assert [s.sha for s in p2.ordered] == [C]


def _nominated(sha: str, order: int) -> Fix:
    from tracker.decide import Nomination

    return Fix(
        CommitInfo(sha, f"fix {order}", True, None, None, order),
        ("t",),
        (),
        (Nomination(None, None),),
    )


def test_series_order_beats_mainline_order() -> None:
    from tracker.decide import SeriesSlot

    # Patch 2/3 reached mainline first (another tree took it); 3/3 is not in the plan.
    p1, p2, other = "1" * 40, "2" * 40, "3" * 40
    fixes = [_nominated(p2, 10), _nominated(other, 11), _nominated(p1, 12)]
    commits = {f.commit.sha: f.commit for f in fixes}
    plain = decide(_view(), fixes, World(commits=commits))
    assert [s.sha for s in plain.ordered] == [p2, other, p1]
    series = {
        p1: SeriesSlot("s:v2", "mm: two fixes v2", 1, 3),
        p2: SeriesSlot("s:v2", "mm: two fixes v2", 2, 3),
    }
    ordered = decide(_view(), fixes, World(commits=commits, series=series)).ordered
    assert [s.sha for s in ordered] == [other, p1, p2]
    assert ordered[0].order_reason == "mainline order"
    assert ordered[2].order_reason == (
        f'after {p1[:12]}, patch 1/3 before this 2/3 of the series "mm: two fixes v2"'
    )


def test_series_order_yields_to_fixes_tags() -> None:
    from tracker.decide import SeriesSlot

    # 2/2 is posted after 1/2 but 1/2 fixes it: the Fixes: tag decides, the series is ignored.
    p1 = Fix(
        CommitInfo("1" * 40, "fix of fix", True, None, None, 20),
        ("t",),
        (FixRef("2" * 12, "2" * 40, "sha", "", False),),
    )
    p2 = Fix(
        CommitInfo("2" * 40, "fix", True, None, None, 10),
        ("t",),
        (FixRef(A[:12], A, "sha", "", False),),
    )
    commits = {**_world().commits, p1.commit.sha: p1.commit, p2.commit.sha: p2.commit}
    series = {p1.commit.sha: SeriesSlot("s", "x", 1, 2), p2.commit.sha: SeriesSlot("s", "x", 2, 2)}
    ordered = decide(_view(), [p1, p2], World(commits=commits, series=series)).ordered
    assert [s.sha for s in ordered] == [p2.commit.sha, p1.commit.sha]
    assert ordered[1].order_reason == f"after {p2.commit.sha[:12]}, the fix it fixes"
