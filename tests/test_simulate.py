"""Focused tests of tracker.simulate against real repositories and real git cherry-pick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitutil import CherryPicker, add_worktree, commit_files, git, git_out, init_repo
from tracker.errors import InvalidRevisionError, UnknownCommitError
from tracker.simulate import (
    ConflictKind,
    Verdict,
    apply_mail_patch,
    find_prerequisites,
    simulate_sequence,
)


def lines(*items: str | int) -> str:
    return "".join(f"{i}\n" for i in items)


NUMBERS = lines(*range(1, 41))


def numbered(changes: dict[int, str]) -> str:
    return lines(*(changes.get(i, str(i)) for i in range(1, 41)))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    commit_files(root, {"a.c": NUMBERS, "lib/b.c": lines("b1", "b2", "b3", "b4", "b5")}, "initial")
    git(root, "branch", "stable")
    return root


def head(root: Path) -> str:
    return git_out(root, "rev-parse", "HEAD")


def on_stable(root: Path) -> None:
    git(root, "checkout", "-q", "stable")


def on_main(root: Path) -> None:
    git(root, "checkout", "-q", "main")


def git_pick(root: Path, target: str, sha: str) -> tuple[str, str | None]:
    wt = root.parent / "wt"
    picker = add_worktree(root, wt, target) if not wt.exists() else CherryPicker(wt)
    picker.checkout(target)
    result = picker.pick(sha)
    picker.reset()
    return result.verdict, result.tree


def sim_one(root: Path, target: str, sha: str) -> tuple[str, str | None]:
    step = simulate_sequence(root, target, [sha]).steps[0]
    return step.verdict.value, step.tree if step.verdict is Verdict.CLEAN else None


# --- cherry-picks --------------------------------------------------------------------------


def test_clean_modify_matches_git(repo: Path) -> None:
    fix = commit_files(repo, {"a.c": numbered({30: "thirty"})}, "fix")
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({3: "three"})}, "stable change")
    result = sim_one(repo, "stable", fix)
    assert result[0] == "clean"
    assert result == git_pick(repo, "stable", fix)


def test_conflict_reports_hunks_in_parent_theirs_and_ours(repo: Path) -> None:
    fix = commit_files(repo, {"a.c": numbered({20: "twenty-main", 21: "21-main"})}, "fix")
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({21: "21-stable"})}, "stable edit")
    step = simulate_sequence(repo, "refs/heads/stable", [fix]).steps[0]
    assert step.verdict is Verdict.CONFLICT
    assert git_pick(repo, "stable", fix)[0] == "conflict"
    (conflict,) = step.conflicts
    assert conflict.path == "a.c" and conflict.kind is ConflictKind.CONTENT
    (hunk,) = conflict.hunks
    assert (hunk.base.start, hunk.base.count) == (20, 2)
    assert (hunk.theirs.start, hunk.theirs.count) == (20, 2)
    # git's conflict markers show ours' lines 20-21: the conflict spans both sides' changes
    assert hunk.ours is not None and (hunk.ours.start, hunk.ours.count) == (20, 2)


def test_already_present_is_an_empty_result(repo: Path) -> None:
    fix = commit_files(repo, {"a.c": numbered({5: "five"})}, "fix")
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({5: "five"})}, "backport")
    assert sim_one(repo, "stable", fix) == ("already-present", None)
    assert git_pick(repo, "stable", fix)[0] == "already-present"


def test_empty_commit_is_already_present(repo: Path) -> None:
    empty = commit_files(repo, {}, "empty commit")
    assert sim_one(repo, "stable", empty)[0] == "already-present"


def test_add_and_delete(repo: Path) -> None:
    fix = commit_files(repo, {"new/c.c": lines("c"), "lib/b.c": None}, "add and delete")
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({1: "one"})}, "unrelated")
    result = sim_one(repo, "stable", fix)
    assert result[0] == "clean"
    assert result == git_pick(repo, "stable", fix)


def test_delete_of_modified_file_is_modify_delete(repo: Path) -> None:
    fix = commit_files(repo, {"lib/b.c": None}, "delete")
    on_stable(repo)
    commit_files(repo, {"lib/b.c": lines("b1", "B2", "b3", "b4", "b5")}, "stable edit")
    step = simulate_sequence(repo, "stable", [fix]).steps[0]
    assert step.verdict is Verdict.CONFLICT
    assert step.conflicts[0].kind is ConflictKind.MODIFY_DELETE
    assert git_pick(repo, "stable", fix)[0] == "conflict"


def test_missing_file_is_a_labelled_conflict(repo: Path) -> None:
    commit_files(repo, {"drivers/x.c": NUMBERS}, "add driver")
    fix = commit_files(repo, {"drivers/x.c": numbered({7: "seven"})}, "fix driver")
    step = simulate_sequence(repo, "stable", [fix]).steps[0]
    assert step.verdict is Verdict.CONFLICT
    (conflict,) = step.conflicts
    assert conflict.kind is ConflictKind.MISSING_FILE and conflict.path == "drivers/x.c"
    assert conflict.hunks and conflict.hunks[0].base.start == 7
    assert git_pick(repo, "stable", fix)[0] == "conflict"


def test_theirs_rename_carries_our_edit(repo: Path) -> None:
    git(repo, "mv", "a.c", "a_renamed.c")
    fix = commit_files(repo, {"a_renamed.c": numbered({40: "forty"})}, "rename and edit")
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({2: "two"})}, "stable edit")
    step = simulate_sequence(repo, "stable", [fix]).steps[0]
    assert step.verdict is Verdict.CLEAN
    assert any(r.side == "theirs" and r.new_path == "a_renamed.c" for r in step.renames)
    assert (step.verdict.value, step.tree) == git_pick(repo, "stable", fix)


def test_fix_follows_rename_in_target(repo: Path) -> None:
    on_stable(repo)
    git(repo, "mv", "a.c", "old_name.c")
    commit_files(repo, {}, "stable has the file under another name")
    on_main(repo)
    fix = commit_files(repo, {"a.c": numbered({12: "twelve"})}, "fix")
    step = simulate_sequence(repo, "stable", [fix]).steps[0]
    assert step.verdict is Verdict.CLEAN
    assert [(r.side, r.old_path, r.new_path) for r in step.renames] == [
        ("ours", "a.c", "old_name.c")
    ]
    assert (step.verdict.value, step.tree) == git_pick(repo, "stable", fix)


def test_mode_change_merges_with_content_change(repo: Path) -> None:
    fix = commit_files(repo, {}, "chmod", executable=["a.c"])
    assert git_out(repo, "ls-tree", fix, "a.c").startswith("100755")
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({9: "nine"})}, "stable edit")
    result = sim_one(repo, "stable", fix)
    assert result[0] == "clean"
    assert result == git_pick(repo, "stable", fix)


def test_symlink_change_conflicts_when_both_sides_change_it(repo: Path) -> None:
    commit_files(repo, {}, "link", symlinks={"cur": "a.c"})
    git(repo, "branch", "-f", "stable")
    fix = commit_files(repo, {}, "relink", symlinks={"cur": "lib/b.c"})
    on_stable(repo)
    commit_files(repo, {}, "stable relink", symlinks={"cur": "other"})
    step = simulate_sequence(repo, "stable", [fix]).steps[0]
    assert step.verdict is Verdict.CONFLICT and step.conflicts[0].kind is ConflictKind.SYMLINK
    assert git_pick(repo, "stable", fix)[0] == "conflict"


def test_binary_conflict(repo: Path) -> None:
    commit_files(repo, {"fw.bin": b"\0\1\2\3"}, "firmware")
    git(repo, "branch", "-f", "stable")
    fix = commit_files(repo, {"fw.bin": b"\0\1\2\4"}, "new firmware")
    on_stable(repo)
    commit_files(repo, {"fw.bin": b"\0\1\2\5"}, "other firmware")
    step = simulate_sequence(repo, "stable", [fix]).steps[0]
    assert step.verdict is Verdict.CONFLICT
    assert step.conflicts[0].kind is ConflictKind.BINARY
    assert step.binary_files == ("fw.bin",)
    assert git_pick(repo, "stable", fix)[0] == "conflict"


def test_sequence_skips_conflicts_and_blocks_dependents(repo: Path) -> None:
    good = commit_files(repo, {"a.c": numbered({1: "one"})}, "good")
    bad = commit_files(repo, {"a.c": numbered({1: "one", 20: "main20"})}, "bad")
    dependent = commit_files(repo, {"a.c": numbered({1: "one", 20: "main20", 30: "x"})}, "dep")
    later = commit_files(repo, {"lib/b.c": lines("b1", "b2", "b3", "b4", "B5")}, "later")
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({20: "stable20"})}, "stable edit")
    result = simulate_sequence(
        repo, "stable", [good, bad, dependent, later], depends_on={dependent: [bad]}
    )
    assert [s.verdict for s in result.steps] == [
        Verdict.CLEAN,
        Verdict.CONFLICT,
        Verdict.BLOCKED,
        Verdict.CLEAN,
    ]
    assert result.steps[2].blocked_by == (bad,)
    assert result.final_tree == result.steps[3].tree
    assert result.count(Verdict.CLEAN) == 2
    json.dumps(result.to_dict())


def test_revisions_are_validated(repo: Path) -> None:
    with pytest.raises(InvalidRevisionError):
        simulate_sequence(repo, "--upload-pack=evil", [])
    with pytest.raises(InvalidRevisionError):
        simulate_sequence(repo, "stable", ["-n"])
    with pytest.raises(InvalidRevisionError):
        simulate_sequence(repo, "stable..main", [])
    with pytest.raises(UnknownCommitError):
        simulate_sequence(repo, "stable", ["deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"])
    with pytest.raises(UnknownCommitError):
        simulate_sequence(repo, "refs/heads/nope", [])


# --- mail patches ----------------------------------------------------------------------------


def test_mail_patch_git_style(repo: Path) -> None:
    fix = commit_files(repo, {"a.c": numbered({15: "fifteen"}), "lib/new.c": lines("n")}, "fix")
    mail = git(repo, "format-patch", "-1", "--stdout", fix).stdout
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({30: "thirty"})}, "stable edit")
    step = apply_mail_patch(repo, "stable", mail)
    assert step.verdict is Verdict.CLEAN
    assert step.subject == "fix"
    assert (step.verdict.value, step.tree) == git_pick(repo, "stable", fix)


def test_mail_patch_quilt_style(repo: Path) -> None:
    quilt = (
        "Subject: [PATCH] quilt fix\n\n"
        "--- linux.orig/lib/b.c\t2024-01-01 00:00:00.000000000 +0000\n"
        "+++ linux/lib/b.c\t2024-01-01 00:00:00.000000000 +0000\n"
        "@@ -2,3 +2,3 @@\n"
        " b2\n"
        "-b3\n"
        "+B3\n"
        " b4\n"
    )
    step = apply_mail_patch(repo, "stable", quilt)
    assert step.verdict is Verdict.CLEAN
    tree = step.tree
    assert tree is not None
    assert git_out(repo, "cat-file", "-p", f"{tree}:lib/b.c") == "b1\nb2\nB3\nb4\nb5"


def test_mail_patch_falls_back_to_three_way(repo: Path) -> None:
    fix = commit_files(repo, {"a.c": numbered({20: "twenty"})}, "fix")
    mail = git(repo, "format-patch", "-1", "--stdout", fix).stdout
    on_stable(repo)
    # an edit inside the context defeats a plain apply but not a 3-way merge
    commit_files(repo, {"a.c": "top\n" + numbered({17: "seventeen"})}, "stable edit")
    step = apply_mail_patch(repo, "stable", mail)
    assert step.verdict is Verdict.CLEAN
    assert "3-way" in step.detail
    assert step.tree == git_pick(repo, "stable", fix)[1]


def test_mail_patch_that_does_not_apply_without_blobs(repo: Path) -> None:
    patch = "--- a/a.c\n+++ b/a.c\n@@ -5,3 +5,3 @@\n 4\n-nope\n+five\n 6\n"
    step = apply_mail_patch(repo, "stable", patch)
    assert step.verdict is Verdict.CONFLICT
    assert step.conflicts[0].kind is ConflictKind.PATCH_DOES_NOT_APPLY
    assert step.conflicts[0].hunks[0].base.start == 5


def test_binary_mail_patch_is_reported(repo: Path) -> None:
    fix = commit_files(repo, {"fw.bin": b"\0\1\2\3" * 10}, "firmware")
    mail = git(repo, "format-patch", "-1", "--binary", "--stdout", fix).stdout
    step = apply_mail_patch(repo, "stable", mail)
    assert step.verdict is Verdict.CLEAN and step.binary_files == ("fw.bin",)
    assert step.tree == git_pick(repo, "stable", fix)[1]
    no_data = (
        "diff --git a/fw2.bin b/fw2.bin\nnew file mode 100644\n"
        "index 0000000..1234567\nBinary files /dev/null and b/fw2.bin differ\n"
    )
    step = apply_mail_patch(repo, "stable", no_data)
    assert step.verdict is Verdict.CONFLICT
    assert step.conflicts[0].kind is ConflictKind.BINARY_PATCH
    assert step.binary_files == ("fw2.bin",)


def test_mail_patch_rename_and_mode(repo: Path) -> None:
    git(repo, "mv", "lib/b.c", "lib/moved.c")
    fix = commit_files(
        repo,
        {"lib/moved.c": lines("b1", "b2", "b3", "b4", "b5", "b6")},
        "move",
        executable=["lib/moved.c"],
    )
    mail = git(repo, "format-patch", "-1", "-M", "--stdout", fix).stdout
    assert b"rename from lib/b.c" in mail
    step = apply_mail_patch(repo, "stable", mail)
    assert step.verdict is Verdict.CLEAN
    assert step.tree == git_pick(repo, "stable", fix)[1]


# --- prerequisites ------------------------------------------------------------------------


def branch_members(root: Path, branch: str) -> set[str]:
    return set(git_out(root, "rev-list", branch).split())


def test_prerequisite_single_commit(repo: Path) -> None:
    on_stable(repo)
    commit_files(repo, {"lib/b.c": lines("b1", "b2", "b3", "b4", "B5")}, "stable only")
    on_main(repo)
    commit_files(repo, {"a.c": numbered({35: "unrelated"})}, "noise", date=1700000100)
    prereq = commit_files(
        repo,
        {"a.c": numbered({10: "ten", 11: "eleven", 35: "unrelated"})},
        "mm: rework ten",
        date=1700000200,
    )
    fix = commit_files(
        repo,
        {"a.c": numbered({10: "ten", 11: "ELEVEN", 35: "unrelated"})},
        "mm: fix eleven",
        date=1700000300,
    )
    members = branch_members(repo, "stable")
    result = find_prerequisites(repo, "stable", fix, in_branch=members.__contains__)
    assert result.found and result.commits == (prereq,)
    assert any(
        "of a.c last changed by" in e.text and prereq[:12] in e.text for e in result.evidence
    )
    json.dumps(result.to_dict())


def test_prerequisite_two_commit_set(repo: Path) -> None:
    first = commit_files(repo, {"a.c": numbered({10: "ten"})}, "first", date=1700000100)
    second = commit_files(
        repo, {"a.c": numbered({10: "ten", 30: "thirty"})}, "second", date=1700000200
    )
    fix = commit_files(repo, {"a.c": numbered({10: "TEN", 30: "THIRTY"})}, "fix", date=1700000300)
    members = branch_members(repo, "stable")
    result = find_prerequisites(repo, "stable", fix, in_branch=members.__contains__)
    assert result.found and result.commits == (first, second)
    result = simulate_sequence(repo, "stable", [fix], prerequisites=True).steps[0].prerequisites
    assert result is not None and result.commits == (first, second)


def test_prerequisite_needing_its_own_prerequisite(repo: Path) -> None:
    first = commit_files(repo, {"a.c": numbered({10: "ten"})}, "first", date=1700000100)
    second = commit_files(
        repo, {"a.c": numbered({10: "ten", 11: "eleven"})}, "second", date=1700000200
    )
    fix = commit_files(
        repo, {"a.c": numbered({10: "ten", 11: "ELEVEN", 12: "12!"})}, "fix", date=1700000300
    )
    members = branch_members(repo, "stable")
    shallow = find_prerequisites(repo, "stable", fix, in_branch=members.__contains__, max_depth=1)
    deep = find_prerequisites(repo, "stable", fix, in_branch=members.__contains__, max_depth=2)
    assert deep.found and deep.commits == (first, second)
    assert not shallow.found or shallow.commits != (second,)


def test_prerequisites_not_found_is_honest(repo: Path) -> None:
    on_stable(repo)
    commit_files(repo, {"a.c": numbered({25: "stable25"})}, "stable edit")
    on_main(repo)
    fix = commit_files(repo, {"a.c": numbered({25: "main25"})}, "fix")
    members = branch_members(repo, "stable")
    result = find_prerequisites(repo, "stable", fix, in_branch=members.__contains__)
    assert not result.found
    assert result.commits == ()
    assert "no candidate" in result.message


def test_file_added_in_a_directory_the_target_renamed(repo: Path) -> None:
    commit_files(repo, {"drv/a.c": NUMBERS, "drv/b.c": lines("x", "y", "z")}, "driver")
    git(repo, "branch", "-f", "stable")
    fix = commit_files(repo, {"drv/c.c": lines("new")}, "add to driver")
    on_stable(repo)
    git(repo, "mv", "drv", "driver")
    commit_files(repo, {}, "stable renamed the directory")
    step = simulate_sequence(repo, "stable", [fix]).steps[0]
    assert step.verdict is Verdict.CONFLICT
    assert step.conflicts[0].kind is ConflictKind.FILE_LOCATION
    assert git_pick(repo, "stable", fix)[0] == "conflict"


def test_mail_with_crlf_line_ends(repo: Path) -> None:
    fix = commit_files(repo, {"a.c": numbered({3: "three"})}, "fix")
    mail = git(repo, "format-patch", "-1", "--stdout", fix).stdout.replace(b"\n", b"\r\n")
    step = apply_mail_patch(repo, "stable", mail)
    assert step.verdict is Verdict.CLEAN
    assert step.tree == git_pick(repo, "stable", fix)[1]
