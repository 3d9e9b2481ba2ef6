"""A kernel-shaped git repository built from real kernel sources, for benchmarks/check_plan.py.

The tree tagged ``v6.1`` is Debian's linux-source-6.1 tree, file for file. Mainline after it is
made of the real difference between that tree and Debian's linux-source-6.12 tree: each hunk of
``diff 6.1 6.12`` of a file is a *region*, and mainline commits move regions (or parts of one)
from their 6.1 text to their 6.12 text. Every file content is therefore real kernel text, and
every change is one the kernel really made, only cut into commits differently.

What the history holds, by construction (``Scenario`` names them per fix):

* ``clean``: a topic fix (``Fixes:`` a commit before v6.1) moving one or two regions;
* ``prereq``: a fix that finishes a region a small, earlier non-fix commit started; the fix
  touches lines that commit changed, so it needs it (a verifiable prerequisite);
* ``chain``: a fix ending a region that four to six earlier non-fix commits built up piece by
  piece (a maintainer backports this by hand);
* ``big-prereq``: a fix finishing a region that a large earlier commit began, one that moves
  other regions too (over the 200 changed lines a bounded prerequisite may have);
* ``adapted-prereq``: as ``prereq``, but the stable branch backported the earlier commit its own
  way (with an upstream reference, without the commit's last line), so the fix's context is gone;
* ``stable-diverged``: the stable branch took an own, different version of the fix's region;
* ``cascade``: a posted series of fixes cutting one region in pieces, whose first patch meets a
  diverged stable region: every later patch touches lines the previous one changed;
* ``series-after-conflict``: a series whose first patch conflicts as above, the others touch
  other regions (git applies them);
* ``series-clean``: a series cutting one region in pieces, nothing diverged;
* ``already-present``: the stable branch carries the fix's change inside an own commit (no
  upstream reference, another patch-id): cherry-picking it changes nothing;
* ``backported``: fixes the stable branch took with ``commit <sha> upstream.`` (not in the plan).

Besides the fixes: non-fix "feature" commits moving other regions of the same topic files,
non-topic noise commits over drivers, fs, net, Documentation (.rst), Kconfig and Makefiles, some of
them backported to the stable branch with an upstream reference, and stable releases with tags.
The culprits are commits before v6.1: the root commit lacks one real line of each culprit file,
and each culprit commit puts its line back, so the v6.1 tree is the 6.1 tree exactly.

Written with three ``git fast-import`` runs (base, mainline, stable); ``meta.json`` beside the
repository records the counts, the scenario of each fix and the generation time.
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import re
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pygit2

EPOCH = 1_670_760_000  # 2022-12-11, the day v6.1 was released
BRANCH = "linux-6.1.y"
BASE_TAG = "v6.1"

# Files whose real 6.1 -> 6.12 hunks become topic fixes (paths and subject keywords of the
# default topics in tracker/topics.py and config.example.toml), and the rest, noise.
FIX_GLOBS = (
    "mm/*.c",
    "mm/*.h",
    "include/linux/hugetlb*.h",
    "include/linux/mm*.h",
    "include/linux/pgtable.h",
    "include/asm-generic/tlb.h",
    "arch/*/include/asm/tlb.h",
    "arch/*/include/asm/tlbflush.h",
    "arch/*/include/asm/hugetlb.h",
    "arch/*/include/asm/pgtable*.h",
    "arch/*/mm/*.c",
    "fs/hugetlbfs/*.c",
    "mm/Kconfig",
    "Documentation/admin-guide/mm/*.rst",
    "Documentation/mm/*.rst",
)
NOISE_DIRS = ("drivers/", "fs/", "net/", "sound/", "Documentation/", "kernel/", "lib/", "block/")
TOPIC_PATHS = (
    "mm/mmu_gather.c",
    "include/asm-generic/tlb.h",
    "arch/*/include/asm/tlb.h",
    "mm/hugetlb.c",
    "mm/hugetlb_*.c",
    "include/linux/hugetlb.h",
    "fs/hugetlbfs/*",
)

NOUNS = (
    "refcount",
    "folio",
    "vma",
    "pte",
    "pmd",
    "mapping",
    "counter",
    "reservation",
    "range",
    "page table",
    "lock",
    "flush",
    "accounting",
    "error path",
    "return value",
)
FIX_TEMPLATES = (
    "fix {kw} {noun} handling in {fn}()",
    "fix {kw} race in {fn}()",
    "avoid {kw} {noun} leak in {fn}()",
    "don't {verb} the {noun} twice in {fn}() ({kw})",
    "fix {kw} {noun} check in {fn}()",
    "handle {kw} {noun} failure in {fn}()",
)
OTHER_TEMPLATES = (
    "prepare {fn}() for {noun} changes",
    "convert {fn}() to use folios",
    "rework {noun} handling in {fn}()",
    "clean up {fn}()",
    "simplify {noun} logic in {fn}()",
    "update {fn}()",
    "factor {noun} code out of {fn}()",
)
VERBS = ("take", "drop", "flush", "free", "update", "check")
BODIES = (
    "The error path returned without dropping the reference taken above.",
    "This can be triggered from userspace with a crafted sequence of calls.",
    "Found by syzkaller; the reproducer is in the report linked below.",
    "Take the lock before reading the field so that a concurrent update cannot race.",
    "No functional change intended for architectures that do not select this option.",
    "The counter could be decremented twice when the operation was retried.",
    "Move the check earlier so that callers never see a half-initialised object.",
)
PEOPLE = (
    ("Mike Kravetz", "mike.kravetz@example.org"),
    ("Muchun Song", "muchun.song@example.org"),
    ("Peter Xu", "peterx@example.org"),
    ("David Hildenbrand", "david@example.org"),
    ("Ryan Roberts", "ryan.roberts@example.org"),
    ("Jann Horn", "jannh@example.org"),
    ("Hugh Dickins", "hughd@example.org"),
    ("Matthew Wilcox", "willy@example.org"),
    ("Will Deacon", "will@example.org"),
    ("Andreas Larsson", "andreas@example.org"),
)
# Changed lines above which a prerequisite is "big": over the checker's default bound (200).
BIG_LINES = 200
FUNC_RE = re.compile(rb"^[A-Za-z_].*?\b([A-Za-z_]\w*)\s*\(")


class WorldError(Exception):
    """The world cannot be built (missing sources, git failure)."""


# -- real text -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """One hunk of the real 6.1 -> 6.12 difference of ``path``: 6.1 lines [start, end) -> new."""

    path: str
    start: int
    end: int
    new: tuple[bytes, ...]

    def size(self) -> int:
        return self.end - self.start + len(self.new)


@dataclass
class Text:
    path: str
    lines: list[bytes]
    regions: list[Region]


def read_text(old: Path, new: Path, rel: str) -> Text | None:
    """The regions of one file, or None when it is not plain text present in both trees."""
    a, b = old / rel, new / rel
    if a.is_symlink() or b.is_symlink() or not b.is_file():
        return None
    x, y = a.read_bytes(), b.read_bytes()
    if x == y or b"\0" in x or b"\0" in y or not x.endswith(b"\n") or not y.endswith(b"\n"):
        return None
    lines = x.splitlines(keepends=True)
    regions = []
    for h in pygit2.Patch.create_from(x, y, context_lines=0).hunks:
        start = h.old_start - 1 if h.old_lines else h.old_start
        added = tuple(ln.raw_content for ln in h.lines if ln.origin == "+")
        regions.append(Region(rel, start, start + h.old_lines, added))
    return Text(rel, lines, regions) if regions else None


def pieces(r: Region, k: int) -> list[tuple[int, int, tuple[bytes, ...]]]:
    """Cut ``r`` into k consecutive changes: piece p turns 6.1 lines [i(p-1), i(p)) into new
    lines [j(p-1), j(p)); after piece p the region reads new[:j(p)] + old[i(p):]."""
    a, b = r.end - r.start, len(r.new)
    cuts = [(round(a * p / k), round(b * p / k)) for p in range(k + 1)]
    return [(r.start + cuts[p][0], cuts[p][1], r.new[: cuts[p][1]]) for p in range(1, k + 1)]


# -- branch state --------------------------------------------------------------------------------


class Tree:
    """The text of the touched files on one branch: 6.1 lines with region states laid over."""

    def __init__(self, texts: dict[str, Text]) -> None:
        self.texts = texts
        # path -> region start -> (6.1 end of the replaced span, lines replacing it)
        self.over: dict[str, dict[int, tuple[int, tuple[bytes, ...]]]] = {}
        self.removed: dict[str, set[int]] = {}

    def set(self, r: Region, upto: int, lines: tuple[bytes, ...]) -> None:
        """Region ``r`` now reads ``lines`` followed by its 6.1 lines from ``upto`` on."""
        self.over.setdefault(r.path, {})[r.start] = (upto, lines)

    def content(self, path: str) -> bytes:
        lines = self.texts[path].lines
        gone = self.removed.get(path, set())
        out: list[bytes] = []
        pos = 0
        for start, (upto, new) in sorted(self.over.get(path, {}).items()):
            out.extend(ln for i, ln in enumerate(lines[pos:start], pos) if i not in gone)
            out.extend(new)
            pos = upto
        out.extend(ln for i, ln in enumerate(lines[pos:], pos) if i not in gone)
        return b"".join(out)


# -- commits -------------------------------------------------------------------------------------

Edit = tuple[Region, int, tuple[bytes, ...]]  # region, 6.1 line it now reads up to, lines


@dataclass
class Change:
    """A commit to write: what it does to which regions, and what it says."""

    subject: str
    edits: list[Edit]
    kind: str  # fix, prereq, feature, noise
    scenario: str = ""
    culprit: int | None = None  # index into World.culprits
    key: float = 0.0
    sha: str = ""
    body: str = ""


@dataclass
class World:
    texts: dict[str, Text]
    rng: random.Random
    culprits: list[tuple[str, int, str]] = field(default_factory=list)  # path, line, subject
    mainline: list[Change] = field(default_factory=list)
    stable: list[Change] = field(default_factory=list)  # edits laid on the stable branch
    stable_refs: list[tuple[Change, Change]] = field(default_factory=list)  # (stable, upstream)
    subjects: set[str] = field(default_factory=set)
    culprit_shas: list[str] = field(default_factory=list)

    def unique(self, subject: str) -> str:
        out, n = subject, 2
        while out in self.subjects:
            out, n = f"{subject} (part {n})", n + 1
        self.subjects.add(out)
        return out


def prefix(path: str) -> str:
    parts = path.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    if parts[0] == "mm":
        return "mm" if stem == "Kconfig" else f"mm/{stem}"
    if parts[0] == "arch":
        return f"{parts[1]}/mm" if "mm" in parts else parts[1]
    if parts[0] == "Documentation":
        return "docs: mm"
    if parts[0] == "include":
        return "asm-generic/tlb" if "asm-generic" in parts else stem
    if parts[0] == "drivers" and len(parts) > 2:
        return f"{parts[1]}/{parts[2].rsplit('.', 1)[0]}"
    return "/".join(parts[:2]).rsplit(".", 1)[0]


def function_near(t: Text, line: int) -> str:
    for i in range(min(line, len(t.lines) - 1), -1, -1):
        m = FUNC_RE.match(t.lines[i])
        if m:
            return m.group(1).decode(errors="replace")
    return t.path.rsplit("/", 1)[-1].split(".")[0].replace("-", "_")


def keyword(path: str, rng: random.Random) -> str:
    if "hugetlb" in path:
        return "hugetlb"
    if path.endswith(("tlb.h", "mmu_gather.c", "tlbflush.h")):
        return rng.choice(("mmu_gather", "tlb flush"))
    if path.startswith("arch/"):
        return "lazy mmu"
    return rng.choice(("hugetlb", "lazy mmu", "mmu_gather", "tlb flush"))


def is_topic_path(path: str) -> bool:
    return any(fnmatch.fnmatch(path, g) for g in TOPIC_PATHS)


def fix_subject(w: World, r: Region) -> str:
    t = w.texts[r.path]
    text = w.rng.choice(FIX_TEMPLATES).format(
        kw=keyword(r.path, w.rng),
        noun=w.rng.choice(NOUNS),
        verb=w.rng.choice(VERBS),
        fn=function_near(t, r.start),
    )
    return w.unique(f"{prefix(r.path)}: {text}")


def other_subject(w: World, r: Region) -> str:
    t = w.texts[r.path]
    text = w.rng.choice(OTHER_TEMPLATES).format(
        noun=w.rng.choice(NOUNS), fn=function_near(t, r.start)
    )
    return w.unique(f"{prefix(r.path)}: {text}")


def whole(r: Region) -> Edit:
    return (r, r.end, r.new)


def diverged(r: Region) -> Edit:
    """The stable branch's own version of a region: the second half of the new text only
    (real lines, but not what any mainline commit of the region ever wrote)."""
    return (r, r.end, r.new[len(r.new) // 2 :])


# -- scenarios -----------------------------------------------------------------------------------


class Pools:
    """Unused regions of fix files, by what a scenario needs, and of noise files."""

    def __init__(self, w: World, fix_files: Sequence[str], noise_files: Sequence[str]) -> None:
        self.rng = w.rng
        self.fix = [r for p in fix_files for r in w.texts[p].regions]
        self.noise = [r for p in noise_files for r in w.texts[p].regions]
        self.rng.shuffle(self.fix)
        self.rng.shuffle(self.noise)

    def take(self, pool: list[Region], **want: int) -> Region:
        lo, hi = want.get("lo", 1), want.get("hi", 10**9)
        min_new, min_old = want.get("new", 0), want.get("old", 0)
        for i, r in enumerate(pool):
            if (
                lo <= r.size() <= hi
                and len(r.new) >= min_new
                and r.end - r.start >= min_old
                and (want.get("topic", 0) == 0 or is_topic_path(r.path))
            ):
                return pool.pop(i)
        raise WorldError(f"no region left with {want}: use fewer --fixes")

    def fix_region(self, **want: int) -> Region:
        return self.take(self.fix, **want)

    def noise_region(self, **want: int) -> Region:
        return self.take(self.noise, **want)


@dataclass
class Mix:
    """How many fixes each scenario gets, out of ``fixes`` planned ones."""

    fixes: int

    def counts(self) -> dict[str, int]:
        n = self.fixes
        share = {
            "prereq": 0.06,
            "chain": 0.04,
            "big-prereq": 0.025,
            "stable-diverged": 0.045,
            "adapted-prereq": 0.025,
            "already-present": 0.035,
            "cascade": 0.065,
            "series-after-conflict": 0.04,
            "series-clean": 0.04,
        }
        out = {k: max(1, round(n * v)) for k, v in share.items()}
        out["clean"] = max(1, n - sum(out.values()))
        out["backported"] = max(1, n // 20)
        return out


def chain_keys(rng: random.Random, n: int, tight: bool) -> list[float]:
    """Mainline positions for n commits that must land in this order (a series lands together)."""
    if tight:
        start = rng.uniform(0.05, 0.95)
        return [start + i * 1e-6 for i in range(n)]
    return sorted(rng.random() for _ in range(n))


def add_chain(w: World, changes: list[Change], tight: bool = False) -> None:
    for c, k in zip(changes, chain_keys(w.rng, len(changes), tight), strict=True):
        c.key = k
        w.mainline.append(c)


def fix(w: World, scenario: str, edits: list[Edit], subject_region: Region) -> Change:
    return Change(fix_subject(w, subject_region), edits, "fix", scenario)


def build_scenarios(w: World, pools: Pools, mix: Mix) -> None:
    rng, counts = w.rng, mix.counts()
    for _ in range(counts["clean"]):
        r = pools.fix_region(hi=24)
        edits = [whole(r)]
        if rng.random() < 0.2:
            edits.append(whole(pools.fix_region(hi=16)))
        add_chain(w, [fix(w, "clean", edits, r)])
    for _ in range(counts["backported"]):
        r = pools.fix_region(hi=24)
        c = fix(w, "backported", [whole(r)], r)
        add_chain(w, [c])
        w.stable_refs.append((Change(c.subject, [whole(r)], "backport"), c))
    for _ in range(counts["prereq"]):
        r = pools.fix_region(lo=4, hi=30, new=2)
        first, _last = pieces(r, 2)
        pre = Change(other_subject(w, r), [(r, first[0], first[2])], "prereq", "prereq")
        add_chain(w, [pre, fix(w, "prereq", [(r, r.end, r.new)], r)])
    for _ in range(counts["chain"]):
        k = rng.randint(5, 7)
        r = pools.fix_region(lo=14, hi=200, new=k)
        cut = pieces(r, k)
        steps = [
            Change(other_subject(w, r), [(r, up, lines)], "prereq", "chain")
            for up, _j, lines in cut[:-1]
        ]
        add_chain(w, [*steps, fix(w, "chain", [(r, r.end, r.new)], r)])
    for _ in range(counts["big-prereq"]):
        # The earlier commit starts the fix's region and moves whole regions elsewhere, more
        # lines in all than a bounded search may propose (200 by default): a maintainer
        # backports the fix by hand.
        r = pools.fix_region(lo=6, hi=60, new=4, old=2)
        keep = len(r.new) - rng.randint(1, 3)
        upto = r.end - min(2, r.end - r.start)
        moved: list[Edit] = [(r, upto, r.new[:keep])]
        while sum(e[0].size() for e in moved) < BIG_LINES + 60:
            moved.append(whole(pools.fix_region(lo=20, hi=150)))
        pre = Change(other_subject(w, r), moved, "prereq", "big-prereq")
        add_chain(w, [pre, fix(w, "big-prereq", [(r, r.end, r.new)], r)])
    for _ in range(counts["adapted-prereq"]):
        # The stable branch backported the earlier commit its own way ("commit X upstream.",
        # without its last line): the line the fix's change abuts is not there, and X counts
        # as present, so no prerequisite can help.
        r = pools.fix_region(lo=6, hi=40, new=4, old=2)
        (up1, _j1, lines1), _last = pieces(r, 2)
        pre = Change(other_subject(w, r), [(r, up1, lines1)], "prereq", "adapted-prereq")
        add_chain(w, [pre, fix(w, "adapted-prereq", [(r, r.end, r.new)], r)])
        adapted = Change(pre.subject, [(r, up1, lines1[:-1])], "backport")
        w.stable_refs.append((adapted, pre))
    for _ in range(counts["stable-diverged"]):
        r = pools.fix_region(lo=3, hi=30, new=2, old=1)
        w.stable.append(Change(stable_subject(w, r), [diverged(r)], "stable-only"))
        add_chain(w, [fix(w, "stable-diverged", [whole(r)], r)])
    for _ in range(counts["already-present"]):
        r = pools.fix_region(hi=20)
        c = fix(w, "already-present", [whole(r)], r)
        add_chain(w, [c])
        # The stable team squashed it with a stable-only change: another patch-id, no reference.
        other = pools.noise_region(hi=20)
        w.stable.append(Change(stable_subject(w, r), [whole(r), whole(other)], "stable-only"))
    done = 0
    while done < counts["cascade"]:
        k = min(rng.randint(3, 5), max(2, counts["cascade"] - done))
        r = pools.fix_region(lo=2 * k + 2, hi=120, new=k + 1, old=2)
        w.stable.append(Change(stable_subject(w, r), [diverged(r)], "stable-only"))
        series = [fix(w, "cascade", [(r, up, lines)], r) for up, _j, lines in pieces(r, k)]
        add_chain(w, series, tight=True)
        done += k
    done = 0
    while done < counts["series-after-conflict"]:
        k = rng.randint(3, 5)
        r = pools.fix_region(lo=3, hi=30, new=2, old=1)
        w.stable.append(Change(stable_subject(w, r), [diverged(r)], "stable-only"))
        series = [fix(w, "series-after-conflict", [whole(r)], r)]
        for _ in range(k - 1):
            o = pools.fix_region(hi=20)
            series.append(fix(w, "series-after-conflict", [whole(o)], o))
        add_chain(w, series, tight=True)
        done += k
    done = 0
    while done < counts["series-clean"]:
        k = rng.randint(2, 4)
        r = pools.fix_region(lo=2 * k, hi=80, new=k)
        series = [fix(w, "series-clean", [(r, up, lines)], r) for up, _j, lines in pieces(r, k)]
        add_chain(w, series, tight=True)
        done += k


def stable_subject(w: World, r: Region) -> str:
    return w.unique(f"{prefix(r.path)}: stable-only {keyword(r.path, w.rng)} adjustment")


def build_background(w: World, pools: Pools, features: int, noise: int, backports: int) -> None:
    """Non-fix commits: features in the topic files, noise elsewhere, some noise backported."""
    for _ in range(features):
        r = pools.fix_region(lo=1)
        add_chain(w, [Change(other_subject(w, r), [whole(r)], "feature")])
    noise_changes = []
    for _ in range(noise):
        r = pools.noise_region()
        edits = [whole(r)]
        if w.rng.random() < 0.3:
            edits.append(whole(pools.noise_region()))
        c = Change(other_subject(w, r), edits, "noise")
        add_chain(w, [c])
        noise_changes.append(c)
    for c in w.rng.sample(noise_changes, min(backports, len(noise_changes))):
        w.stable_refs.append((Change(c.subject, list(c.edits), "backport"), c))


def pick_culprits(w: World, count: int) -> None:
    """Real lines outside every region of the fix files: the root commit lacks them, each culprit
    commit before v6.1 puts one back."""
    files = sorted({r.path for c in w.mainline if c.kind == "fix" for r, _u, _l in c.edits})
    chosen: dict[str, int] = {}
    for path in w.rng.sample(files, min(count, len(files))):
        t = w.texts[path]
        inside = {i for r in t.regions for i in range(r.start - 1, r.end + 1)}
        ok = [
            i
            for i, ln in enumerate(t.lines)
            if i not in inside and len(ln.strip()) > 8 and FUNC_RE.match(ln) is None
        ]
        if ok:
            chosen[path] = w.rng.choice(ok)
    for path, line in sorted(chosen.items()):
        r = Region(path, line, line, ())
        w.culprits.append((path, line, other_subject(w, r)))
    by_path: dict[str, list[int]] = {}
    for i, (path, _l, _s) in enumerate(w.culprits):
        by_path.setdefault(path, []).append(i)
    for c in w.mainline:
        if c.kind == "fix":
            mine = by_path.get(c.edits[0][0].path)
            c.culprit = w.rng.choice(mine) if mine else w.rng.randrange(len(w.culprits))


# -- fast-import ---------------------------------------------------------------------------------


class FastImport:
    def __init__(self, repo: Path, marks: Path) -> None:
        self.marks = marks
        self.proc = subprocess.Popen(
            ["git", "-C", str(repo), "fast-import", "--quiet", "--done", f"--export-marks={marks}"],
            stdin=subprocess.PIPE,
        )
        assert self.proc.stdin is not None
        self.out: IO[bytes] = self.proc.stdin
        self.mark = 0

    def commit(
        self,
        ref: str,
        who: tuple[str, str],
        when: int,
        message: str,
        files: Iterable[tuple[str, str, bytes]],
        parent: str | None = None,
    ) -> int:
        self.mark += 1
        ident = f"{who[0]} <{who[1]}> {when} +0000\n".encode()
        msg = message.encode()
        self.out.write(b"commit %s\nmark :%d\nauthor %s" % (ref.encode(), self.mark, ident))
        self.out.write(b"committer %s" % ident + b"data %d\n%s\n" % (len(msg), msg))
        if parent:
            self.out.write(b"from %s\n" % parent.encode())
        for path, mode, data in files:
            self.out.write(b"M %s inline %s\ndata %d\n" % (mode.encode(), path.encode(), len(data)))
            self.out.write(data + b"\n")
        self.out.write(b"\n")
        return self.mark

    def tag(self, name: str, mark: int, when: int) -> None:
        msg = f"Linux {name[1:]}\n".encode()
        self.out.write(
            b"tag %s\nfrom :%d\ntagger Linus Torvalds <torvalds@example.org> %d +0000\n"
            b"data %d\n%s\n" % (name.encode(), mark, when, len(msg), msg)
        )

    def lightweight(self, name: str, mark: int) -> None:
        self.out.write(b"reset refs/tags/%s\nfrom :%d\n\n" % (name.encode(), mark))

    def finish(self) -> dict[int, str]:
        self.out.write(b"done\n")
        self.out.close()
        if self.proc.wait() != 0:
            raise WorldError("git fast-import failed (its message is above)")
        out = {}
        for line in self.marks.read_text().splitlines():
            m, sha = line.split()
            out[int(m[1:])] = sha
        return out


def tree_files(root: Path) -> Iterator[tuple[str, str, bytes]]:
    """Every file of ``root`` as (path, git mode, content), sorted, symlinks as links."""
    for dirpath, dirnames, filenames in os.walk(root):
        # os.walk lists a symlink to a directory among the directories and does not enter it.
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if d not in links)
        for name in sorted(filenames + links):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                yield rel, "120000", os.readlink(full).encode()
            elif os.path.isfile(full):
                mode = "100755" if os.access(full, os.X_OK) else "100644"
                yield rel, mode, Path(full).read_bytes()


def message(c: Change, w: World, who: tuple[str, str], n: int) -> str:
    lines = [c.subject, "", c.body or w.rng.choice(BODIES), ""]
    if c.culprit is not None:
        cp = w.culprits[c.culprit]
        lines.append(f'Fixes: {w.culprit_shas[c.culprit][:12]} ("{cp[2]}")')
    if c.kind == "fix" and w.rng.random() < 0.5:
        lines.append("Cc: <stable@vger.kernel.org>")
    lines.append(f"Signed-off-by: {who[0]} <{who[1]}>")
    lines.append(f"Link: https://lore.kernel.org/r/20230101{n:06d}.{n}-1-{who[1]}")
    return "\n".join(lines) + "\n"


def makefile(data: bytes, patch: int, sub: int) -> bytes:
    data = re.sub(rb"(?m)^PATCHLEVEL = \d+$", b"PATCHLEVEL = %d" % patch, data)
    return re.sub(rb"(?m)^SUBLEVEL = \d+$", b"SUBLEVEL = %d" % sub, data)


# -- build ---------------------------------------------------------------------------------------


@dataclass
class Options:
    old: Path
    new: Path
    fixes: int = 880
    features: int = 500
    noise: int = 2500
    noise_backports: int = 300
    culprits: int = 150
    seed: int = 10


def collect(o: Options, rng: random.Random) -> tuple[dict[str, Text], list[str], list[str]]:
    """Fix files (all of FIX_GLOBS that differ) and a sample of noise files, with regions."""
    texts: dict[str, Text] = {}
    fix_files: list[str] = []
    noise_candidates: list[str] = []
    for dirpath, dirnames, filenames in os.walk(o.old):
        dirnames.sort()
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), o.old)
            if any(fnmatch.fnmatch(rel, g) for g in FIX_GLOBS):
                t = read_text(o.old, o.new, rel)
                if t is not None:
                    texts[rel] = t
                    fix_files.append(rel)
            elif rel.startswith(NOISE_DIRS) and "hugetlb" not in rel:
                noise_candidates.append(rel)
    rng.shuffle(noise_candidates)
    noise_files: list[str] = []
    regions = 0
    for rel in noise_candidates:
        if regions > 3 * o.noise:
            break
        t = read_text(o.old, o.new, rel)
        if t is not None and not re.search(
            rb"lazy_mmu|tlb_gather|tlb_finish|huge_pmd", b"".join(t.lines)
        ):
            texts[rel] = t
            noise_files.append(rel)
            regions += len(t.regions)
    return texts, fix_files, noise_files


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def build(o: Options, out: Path) -> dict[str, object]:
    """Write the repository ``out/linux.git`` and ``out/meta.json``; return the metadata."""
    t0 = time.perf_counter()
    rng = random.Random(o.seed)
    texts, fix_files, noise_files = collect(o, rng)
    w = World(texts, rng)
    pools = Pools(w, fix_files, noise_files)
    build_scenarios(w, pools, Mix(o.fixes))
    build_background(w, pools, o.features, o.noise, o.noise_backports)
    pick_culprits(w, o.culprits)
    w.mainline.sort(key=lambda c: c.key)
    t_model = time.perf_counter() - t0

    repo = out / "linux.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "master", str(repo)], check=True)
    git(repo, "config", "gc.auto", "0")
    base_sha, t_base = write_base(w, o, repo, out)
    t1 = time.perf_counter()
    when = write_mainline(w, repo, out, base_sha)
    write_stable(w, repo, out, base_sha, o.old, when)
    t_hist = time.perf_counter() - t1
    t2 = time.perf_counter()
    git(repo, "commit-graph", "write", "--reachable", "--no-progress")
    meta: dict[str, object] = {
        "options": {k: str(v) for k, v in vars(o).items()},
        "files": int(git(repo, "ls-tree", "-r", "--name-only", BASE_TAG).count("\n")),
        "mainline_commits": len(w.mainline),
        "fixes": sum(1 for c in w.mainline if c.kind == "fix"),
        "culprits": len(w.culprits),
        "stable_commits": len(w.stable) + len(w.stable_refs),
        "scenario": {c.sha: c.scenario for c in w.mainline if c.scenario},
        "scenario_counts": Mix(o.fixes).counts(),
        "fix_files": len(fix_files),
        "noise_files": len(noise_files),
        "seconds": {
            "model": round(t_model, 1),
            "base_import": round(t_base, 1),
            "history_import": round(t_hist, 1),
            "commit_graph": round(time.perf_counter() - t2, 1),
            "total": round(time.perf_counter() - t0, 1),
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def write_base(w: World, o: Options, repo: Path, out: Path) -> tuple[str, float]:
    """The root commit (the 6.1 tree less the culprit lines), the culprits, tag v6.1."""
    t0 = time.perf_counter()
    root = Tree(w.texts)
    for path, line, _s in w.culprits:
        root.removed.setdefault(path, set()).add(line)
    fi = FastImport(repo, out / "marks-base")
    when = EPOCH - 86400 * 400

    def files() -> Iterator[tuple[str, str, bytes]]:
        for path, mode, data in tree_files(o.old):
            yield path, mode, (root.content(path) if path in root.removed else data)

    fi.commit(
        "refs/heads/master",
        ("Linus Torvalds", "torvalds@example.org"),
        when,
        "Linux 6.0 import\n",
        files(),
    )
    for path, line, subject in w.culprits:
        root.removed[path].discard(line)
        when += 3600
        who = w.rng.choice(PEOPLE)
        msg = f"{subject}\n\n{w.rng.choice(BODIES)}\n\nSigned-off-by: {who[0]} <{who[1]}>\n"
        fi.commit("refs/heads/master", who, when, msg, [(path, "100644", root.content(path))])
    last = fi.mark
    fi.tag(BASE_TAG, last, when)
    marks = fi.finish()
    w.culprit_shas = [marks[i + 2] for i in range(len(w.culprits))]
    return marks[last], time.perf_counter() - t0


def write_mainline(w: World, repo: Path, out: Path, base_sha: str) -> int:
    tree = Tree(w.texts)
    fi = FastImport(repo, out / "marks-mainline")
    when = EPOCH
    releases = {len(w.mainline) * k // 5: k for k in range(1, 5)}
    mark_of: list[tuple[Change, int]] = []
    parent: str | None = base_sha
    for n, c in enumerate(w.mainline):
        when += w.rng.randrange(600, 7200)
        paths = []
        for r, upto, lines in c.edits:
            tree.set(r, upto, lines)
            if r.path not in paths:
                paths.append(r.path)
        who = w.rng.choice(PEOPLE)
        files = [(p, "100644", tree.content(p)) for p in paths]
        mark = fi.commit("refs/heads/master", who, when, message(c, w, who, n), files, parent)
        parent = None
        mark_of.append((c, mark))
        if n in releases:
            fi.tag(f"v6.{1 + releases[n]}", mark, when)
    marks = fi.finish()
    for c, m in mark_of:
        c.sha = marks[m]
    return when


def write_stable(w: World, repo: Path, out: Path, base_sha: str, old: Path, when: int) -> None:
    """Backports with an upstream reference, stable-only commits and releases, shuffled."""
    tree = Tree(w.texts)
    fi = FastImport(repo, out / "marks-stable")
    items: list[tuple[Change, Change | None]] = [(s, u) for s, u in w.stable_refs]
    items += [(s, None) for s in w.stable]
    w.rng.shuffle(items)
    make = (old / "Makefile").read_bytes()
    found = re.search(rb"(?m)^SUBLEVEL = (\d+)$", make)
    sub = int(found.group(1)) if found else 0
    when = EPOCH
    parent: str | None = base_sha
    release = 0
    greg = ("Greg Kroah-Hartman", "gregkh@example.org")
    for n, (c, upstream) in enumerate(items):
        when += w.rng.randrange(600, 3600)
        paths = []
        for r, upto, lines in c.edits:
            tree.set(r, upto, lines)
            if r.path not in paths:
                paths.append(r.path)
        who = w.rng.choice(PEOPLE)
        body = [c.subject, ""]
        if upstream is not None:
            body += [f"commit {upstream.sha} upstream.", ""]
        body += [
            w.rng.choice(BODIES),
            "",
            f"Signed-off-by: {who[0]} <{who[1]}>",
            f"Signed-off-by: {greg[0]} <{greg[1]}>",
        ]
        files = [(p, "100644", tree.content(p)) for p in paths]
        fi.commit(f"refs/heads/{BRANCH}", who, when, "\n".join(body) + "\n", files, parent)
        parent = None
        if n % 60 == 59 or n == len(items) - 1:
            release += 1
            version = f"6.1.{sub + release}"
            fi.commit(
                f"refs/heads/{BRANCH}",
                greg,
                when,
                f"Linux {version}\n",
                [("Makefile", "100644", makefile(make, 1, sub + release))],
            )
            fi.tag(f"v{version}", fi.mark, when)
    fi.finish()
