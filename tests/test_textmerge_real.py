"""Differential tests of the content merge on real kernel files, against real git cherry-pick.

tests/data/realsrc holds eleven files (rst, C, a header, Makefiles, Kconfigs) as they are in the
Debian 6.1.192 and 6.12.117 source trees. Each case is a three-way merge built from them:
base = the 6.1 file, theirs = a seeded subset of the 6.1 -> 6.12 changes (a commit to pick),
ours = another subset, sometimes with local edits (a stable branch). The seeds were chosen
because git's myers merge (`git merge-file`, what libgit2 does) and git's default merge (ort,
histogram) disagree on them, in both directions; every case checks that the disagreement is
real before it compares the simulator with `git cherry-pick`. Further cases cover identical
changes on both sides, adjacent changes, files without a final newline and CRLF files.

For every case the simulator's verdict and tree must be git's, and for conflicts the regions
it reports must be those git marks: the conflicted file git leaves in the work tree must equal
tracker.simulate.contentmerge's rendering of the same merge, markers and all.
"""

from __future__ import annotations

import difflib
import functools
import random
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gitutil import FastImport, FileState, git, git_out, init_repo
from tracker.simulate import Verdict, simulate_sequence
from tracker.simulate import contentmerge as textmerge

DATA = Path(__file__).parent / "data" / "realsrc"

RST = "Documentation_process_stable-kernel-rules.rst"
RST_BIG = "Documentation_process_submitting-patches.rst"
SYSCTL = "Documentation_admin-guide_sysctl_vm.rst"
FORK = "kernel_fork.c"
STRING = "lib_string.c"
SETUP = "arch_sparc_kernel_setup_64.c"
SCHED_H = "include_linux_sched.h"
FS_MAKEFILE = "fs_Makefile"
DRM_MAKEFILE = "drivers_gpu_drm_Makefile"
SPARC_KCONFIG = "arch_sparc_Kconfig"
NET_KCONFIG = "drivers_net_Kconfig"
RST_PATH = "Documentation/process/stable-kernel-rules.rst"
SCHED_PATH = "include/linux/sched.h"


def real(name: str, version: str) -> bytes:
    return (DATA / f"{name}.{version}").read_bytes()


# ---------------------------------------------------------------------------------------------
# Case generators: deterministic, and independent of the code under test (difflib, not textmerge)
# ---------------------------------------------------------------------------------------------

Hunk = tuple[int, int, int, int]


def release_hunks(a: list[bytes], b: list[bytes]) -> list[Hunk]:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [(i1, i2, j1, j2) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"]


def apply(a: list[bytes], b: list[bytes], hunks: list[Hunk]) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    for i1, i2, j1, j2 in hunks:
        out += a[pos:i1]
        out += b[j1:j2]
        pos = i2
    return out + a[pos:]


def local_edits(lines: list[bytes], hunks: list[Hunk], rng: random.Random) -> list[bytes]:
    out = list(lines)
    for _ in range(rng.randint(1, 3)):
        if hunks and rng.random() < 0.85:
            i1, i2, _j1, _j2 = rng.choice(hunks)
            pos = i1 + rng.randint(-6, i2 - i1 + 6)
        else:
            pos = rng.randrange(len(out))
        pos = max(0, min(len(out) - 1, pos))
        op = rng.random()
        if op < 0.4:
            out[pos] = out[pos] + b" /* local */" if out[pos] else b"local"
        elif op < 0.7:
            out[pos:pos] = [rng.choice([b"", b"}", b"\treturn 0;", b"local", b"\t}"])]
        else:
            del out[pos : pos + rng.randint(1, 3)]
    return out


@functools.cache
def release(name: str) -> tuple[list[bytes], list[bytes], list[Hunk]]:
    a, b = real(name, "6.1").split(b"\n"), real(name, "6.12").split(b"\n")
    return a, b, release_hunks(a, b)


def backport(name: str, seed: int) -> tuple[bytes, bytes, bytes]:
    """base, ours, theirs for one seed: two random subsets of the 6.1 -> 6.12 changes."""
    rng = random.Random(f"{name}:{seed}")
    a, b, hunks = release(name)
    old = b"\n".join(a)
    theirs = apply(a, b, [h for h in hunks if rng.random() < 0.3])
    ours = apply(a, b, [h for h in hunks if rng.random() < 0.3])
    if rng.random() < 0.5:
        ours = local_edits(ours, hunks, rng)
    return old, b"\n".join(ours), b"\n".join(theirs)


def myers_clean(tmp: Path, base: bytes, ours: bytes, theirs: bytes) -> bool:
    """git merge-file: xdiff's merge with the myers diff (git 2.39 has no option for another)."""
    for name, data in (("base", base), ("ours", ours), ("theirs", theirs)):
        (tmp / name).write_bytes(data)
    proc = subprocess.run(
        [
            "git",
            "merge-file",
            "-q",
            "-p",
            str(tmp / "ours"),
            str(tmp / "base"),
            str(tmp / "theirs"),
        ],
        capture_output=True,
        check=False,
    )
    assert proc.returncode >= 0, proc.stderr
    return proc.returncode == 0


# ---------------------------------------------------------------------------------------------
# Hand-made cases on real text
# ---------------------------------------------------------------------------------------------


def _lines(name: str) -> list[bytes]:
    return real(name, "6.1").split(b"\n")


def identical_changes() -> tuple[bytes, bytes, bytes]:
    """Both sides make the same two changes, and each one more of its own elsewhere."""
    a, b = real(SCHED_H, "6.1").split(b"\n"), real(SCHED_H, "6.12").split(b"\n")
    hunks = release_hunks(a, b)
    shared = [hunks[10], hunks[40]]
    ours = apply(a, b, sorted([*shared, hunks[70]]))
    theirs = apply(a, b, sorted([*shared, hunks[90]]))
    return b"\n".join(a), b"\n".join(ours), b"\n".join(theirs)


def identical_changes_apart() -> tuple[bytes, bytes, bytes]:
    """The same change on both sides, with ours changing the line right after it too: git
    refines the conflict down to the one line that differs."""
    a = _lines(FORK)
    ours, theirs = list(a), list(a)
    i = a.index(b"static int max_threads;\t\t/* tunable limit on nr_threads */")
    theirs[i] = ours[i] = b"static int max_threads;\t/* tunable limit on nr_threads */"
    ours[i + 1] = ours[i + 1] + b" /* ours */"
    return b"\n".join(a), b"\n".join(ours), b"\n".join(theirs)


def adjacent(gap: int) -> tuple[bytes, bytes, bytes]:
    """Ours and theirs change lines `gap` lines apart in a Kconfig (0: touching)."""
    a = _lines(SPARC_KCONFIG)
    i = a.index(b"config SPARC64")
    ours, theirs = list(a), list(a)
    ours[i + 1] = b"\tdef_bool 64BIT && !COMPILE_TEST"
    theirs[i + 2 + gap] = theirs[i + 2 + gap] + b" # theirs"
    return b"\n".join(a), b"\n".join(ours), b"\n".join(theirs)


def no_final_newline(conflict: bool) -> tuple[bytes, bytes, bytes]:
    """A Makefile without its final newline; theirs changes the last line. Ours changes the
    first line (clean), or drops the last line's neighbour and edits the last line too."""
    base = real(FS_MAKEFILE, "6.1").rstrip(b"\n")
    a = base.split(b"\n")
    theirs = list(a)
    theirs[-1] = theirs[-1] + b" theirs.o"
    ours = list(a)
    if conflict:
        ours[-1] = ours[-1] + b" ours.o"
    else:
        ours[0] = b"# SPDX-License-Identifier: GPL-2.0-only"
    return base, b"\n".join(ours), b"\n".join(theirs)


def newline_added_at_end() -> tuple[bytes, bytes, bytes]:
    """Theirs adds the missing final newline while ours edits the top: clean."""
    base = real(DRM_MAKEFILE, "6.1").rstrip(b"\n")
    ours = base.replace(b"# Makefile for the drm device driver.", b"# Makefile for DRM.", 1)
    return base, ours, base + b"\n"


def crlf(conflict: bool) -> tuple[bytes, bytes, bytes]:
    """An rst file with CRLF line ends, merged from two subsets of the real changes."""
    base, ours, theirs = backport(RST, 2 if conflict else 8)
    return (
        base.replace(b"\n", b"\r\n"),
        ours.replace(b"\n", b"\r\n"),
        theirs.replace(b"\n", b"\r\n"),
    )


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    make: Callable[[], tuple[bytes, bytes, bytes]]
    # which of git's two merges is clean when they disagree ("histogram"/"myers"), else None
    only_clean: str | None = None
    # git's verdict, where the case is made to reach a particular one
    expect: str | None = None


def _bp(name: str, seed: int) -> Callable[[], tuple[bytes, bytes, bytes]]:
    return lambda: backport(name, seed)


CASES = [
    # git's default merge is clean, myers conflicts (what the simulator got wrong before)
    Case("rst-hist-clean", RST_PATH, _bp(RST, 8), "histogram"),
    Case(
        "rst-big-hist-clean",
        "Documentation/process/submitting-patches.rst",
        _bp(RST_BIG, 69),
        "histogram",
    ),
    Case("c-hist-clean", "kernel/fork.c", _bp(FORK, 6), "histogram"),
    Case("c-string-hist-clean", "lib/string.c", _bp(STRING, 35), "histogram"),
    Case("h-hist-clean", SCHED_PATH, _bp(SCHED_H, 1), "histogram"),
    Case("kconfig-hist-clean", "arch/sparc/Kconfig", _bp(SPARC_KCONFIG, 23), "histogram"),
    # the opposite: myers merges cleanly, git's default merge conflicts
    Case("rst-myers-clean", RST_PATH, _bp(RST, 41), "myers"),
    Case("h-myers-clean", SCHED_PATH, _bp(SCHED_H, 327), "myers"),
    Case("h-myers-clean-2", SCHED_PATH, _bp(SCHED_H, 541), "myers"),
    # both algorithms agree: conflicts and clean merges of every kind of file
    Case("rst-conflict", "Documentation/admin-guide/sysctl/vm.rst", _bp(SYSCTL, 10)),
    Case("rst-clean", "Documentation/admin-guide/sysctl/vm.rst", _bp(SYSCTL, 1)),
    Case("c-conflict", "kernel/fork.c", _bp(FORK, 1)),
    Case("c-conflict-2", "lib/string.c", _bp(STRING, 0)),
    Case("c-conflict-3", "arch/sparc/kernel/setup_64.c", _bp(SETUP, 10)),
    Case("c-clean", "arch/sparc/kernel/setup_64.c", _bp(SETUP, 1)),
    Case("makefile-conflict", "drivers/gpu/drm/Makefile", _bp(DRM_MAKEFILE, 3)),
    Case("makefile-conflict-2", "fs/Makefile", _bp(FS_MAKEFILE, 7)),
    Case("makefile-clean", "fs/Makefile", _bp(FS_MAKEFILE, 1)),
    Case("kconfig-conflict", "drivers/net/Kconfig", _bp(NET_KCONFIG, 41)),
    Case("kconfig-clean", "drivers/net/Kconfig", _bp(NET_KCONFIG, 1)),
    # hand-made
    Case("identical-changes", SCHED_PATH, identical_changes, expect="clean"),
    Case(
        "identical-change-then-adjacent",
        "kernel/fork.c",
        identical_changes_apart,
        expect="conflict",
    ),
    Case("adjacent-touching", "arch/sparc/Kconfig", lambda: adjacent(0), expect="conflict"),
    Case("adjacent-one-line-apart", "arch/sparc/Kconfig", lambda: adjacent(1), expect="clean"),
    Case("no-final-newline-clean", "fs/Makefile", lambda: no_final_newline(False), expect="clean"),
    Case(
        "no-final-newline-conflict",
        "fs/Makefile",
        lambda: no_final_newline(True),
        expect="conflict",
    ),
    Case("final-newline-added", "drivers/gpu/drm/Makefile", newline_added_at_end, expect="clean"),
    Case("crlf-clean", RST_PATH, lambda: crlf(False), expect="clean"),
    Case("crlf-conflict", RST_PATH, lambda: crlf(True), expect="conflict"),
]


@dataclass
class World:
    repo: Path
    stable: str
    picks: dict[str, str]  # case id -> commit to pick
    texts: dict[str, tuple[bytes, bytes, bytes]]
    wt: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One repository: a base commit with every case's base file (each under its own
    directory), a stable commit with every ours, and one mainline commit per case that
    changes that case's file to theirs."""
    root = tmp_path_factory.mktemp("realmerge")
    repo = init_repo(root / "repo")
    texts = {c.id: c.make() for c in CASES}
    fi = FastImport()
    base = fi.commit(
        "refs/heads/main",
        "base",
        {f"{c.id}/{c.path}": FileState(texts[c.id][0]) for c in CASES},
    )
    stable = fi.commit(
        "refs/heads/stable",
        "stable",
        {f"{c.id}/{c.path}": FileState(texts[c.id][1]) for c in CASES},
        parent=base,
    )
    marks: dict[str, int] = {}
    parent = base
    for c in CASES:
        parent = marks[c.id] = fi.commit(
            "refs/heads/main",
            f"{c.id}: the change to pick",
            {f"{c.id}/{c.path}": FileState(texts[c.id][2])},
            parent=parent,
        )
    shas = fi.run(repo)
    wt = root / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(wt), shas[stable])
    yield World(repo, shas[stable], {k: shas[m] for k, m in marks.items()}, texts, wt)


def git_cherry_pick(w: World, sha: str, path: str) -> tuple[str, str | None, bytes]:
    """(verdict, tree or None, the file as git leaves it) for a cherry-pick onto stable."""
    git(w.wt, "reset", "-q", "--hard", w.stable)
    proc = git(w.wt, "cherry-pick", "--no-commit", sha, check=False)
    content = (w.wt / path).read_bytes()
    if proc.returncode != 0:
        assert git_out(w.wt, "ls-files", "-u"), proc.stderr
        git(w.wt, "cherry-pick", "--abort", check=False)
        git(w.wt, "reset", "-q", "--hard", w.stable)
        return "conflict", None, content
    tree = git_out(w.wt, "write-tree")
    git(w.wt, "reset", "-q", "--hard", w.stable)
    if tree == git_out(w.wt, "rev-parse", "HEAD^{tree}"):
        return "already-present", None, content
    return "clean", tree, content


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_real_merge_matches_git_cherry_pick(world: World, case: Case, tmp_path: Path) -> None:
    base, ours, theirs = world.texts[case.id]
    sha = world.picks[case.id]
    path = f"{case.id}/{case.path}"
    verdict, tree, content = git_cherry_pick(world, sha, path)

    if case.expect is not None:
        assert verdict == case.expect
    if case.only_clean is not None:
        # the case must really separate the two diff algorithms
        myers = myers_clean(tmp_path, base, ours, theirs)
        assert myers == (case.only_clean == "myers")
        assert (verdict == "clean") == (case.only_clean == "histogram")

    step = simulate_sequence(world.repo, world.stable, [sha]).steps[0]
    got_tree = step.tree if step.verdict is Verdict.CLEAN else None
    assert (step.verdict.value, got_tree) == (verdict, tree)

    # cherry-pick labels the commit's side "<abbrev> (<subject>)"
    short = git_out(world.repo, "rev-parse", "--short", sha)
    label = f"{short} ({case.id}: the change to pick)"
    merged = textmerge.merge(base, ours, theirs, labels=("HEAD", label))
    # the bytes git leaves in the work tree: the merged file, or the file with its markers
    assert merged.rendered == content
    if verdict == "conflict":
        # the simulator reports the regions git marked, one hunk per marker block
        (conflict,) = step.conflicts
        assert conflict.path == path
        reported = [
            (h.base.start - 1, h.base.count, h.ours.start - 1, h.ours.count, h.theirs.start - 1)
            for h in conflict.hunks
            if h.ours is not None
        ]
        assert reported == [
            (c.base, c.base_count, c.ours, c.ours_count, c.theirs) for c in merged.conflicts
        ]
        markers = sum(1 for line in content.splitlines() if line.startswith(b"<<<<<<< HEAD"))
        assert markers == len(conflict.hunks) > 0


def test_cases_cover_both_directions() -> None:
    kinds = {c.only_clean for c in CASES}
    assert {"histogram", "myers"} <= kinds
