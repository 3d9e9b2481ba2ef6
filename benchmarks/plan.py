"""Sync and plan benchmark at kernel scale (figures for the "Decisions" issue).

Generates with ``git fast-import`` a kernel-shaped mainline of --commits commits (Fixes: about one
in eight, topic paths and lazy-MMU keywords on a few percent, ``Cc: stable`` and ``Link:`` trailers,
release tags v6.0..v6.19), three stable branches forked from v6.1, v6.6 and v6.12 carrying backports
of later mainline fixes (both upstream-reference styles, a few found by patch-id only) with stable
release tags, and 1,000 further mainline commits on ``bench-next``. Then, in a fresh child process
so that memory figures are tracker's alone, it times the first ``sync``, ``plan`` per branch,
``status`` of one topic fix, an incremental sync after fast-forwarding master to
``bench-next``, and a no-op sync, next to git's own cost of streaming the same history. With
``--mail`` (by default the real sparclinux corpus of shared/corpus, 17,891 messages) the corpus is
then ingested into the same store and ``plan`` and ``status`` are timed again beside the no-mail
figures: unmerged postings with ``Fixes:`` join every plan as pending fixes.

    .venv/bin/python benchmarks/plan.py [--commits 1000000] [--stable 12000,24000,32000]
                                        [--workdir DIR]
                                        [--mail BUNDLE] [--keep] [--profile]
                                        [--all-paths [--again] [--rounds 5]]

With --all-paths the plan and status figures are skipped: the first sync is timed instead with
one topic watching every path (``paths = ["*"]``, no mail) beside git's own ``git log`` of the
commit list tracker reads (mainline and each stable branch, same format and options), and the
ratio printed (goal: within 2x), over --rounds rounds of git, tracker and git again, one after
the other, the median ratio counting. --again re-times that first sync on the repository a --keep'd
--all-paths run left in --workdir, without generating it anew.

Figures are printed as a table and saved to DIR/figures.json; --profile also writes cProfile
dumps (sync*.prof, plan-*.prof) and the SQL statements by total time. Unless --keep, the
repository and database are deleted afterwards (about 2 GB at 1,000,000 commits).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, func, select, update

from tracker import usecases
from tracker.config import Config, load_config
from tracker.ingest.gitlog import GitSync, SyncStats
from tracker.store import models
from tracker.store.db import Store

BRANCHES = (("linux-6.12.y", "v6.12"), ("linux-6.6.y", "v6.6"), ("linux-6.1.y", "v6.1"))
# Backports per branch, about the size of the real branches after one, two and three years of
# stable releases (linux-6.1.y passed 30,000 commits since v6.1).
STABLE_SIZES = "12000,24000,32000"
STABLE_RELEASE_EVERY = 200  # backports per stable release, as in a typical 6.x.y release
RELEASES = [f"v6.{m}" for m in range(20)]
APPEND = 1000
MARK_WINDOW = 1000  # commits per get-mark batch: 41 bytes each stays under a 64 KiB pipe
MAIL_BUNDLE = Path(__file__).resolve().parents[2] / "shared/corpus/sparclinux-2019-2026.bundle"
EPOCH = 1_654_041_600  # 2022-06-01, a few months before v6.0


def words(text: str) -> list[str]:
    return text.split()


# -- the tree -----------------------------------------------------------------------------------

STEMS = words(
    "core main ctrl irq dma phy debugfs sysfs pm regs fw tx rx ethtool ioctl super inode file "
    "dir namei xattr acl init setup probe clk reset power sriov vf mbox queue ring stats link "
    "port mac mdio hwmon trace event param quirks utils helpers sched timer msg cmd bus"
)
MM_FILES = words(
    "memory.c vmalloc.c page_alloc.c mmap.c mprotect.c mremap.c gup.c huge_memory.c "
    "khugepaged.c madvise.c memcontrol.c migrate.c rmap.c shmem.c slub.c swap.c swapfile.c "
    "vmscan.c filemap.c pagewalk.c userfaultfd.c compaction.c ksm.c mlock.c percpu.c "
    "pgtable-generic.c memory-failure.c page_vma_mapped.c truncate.c readahead.c"
)
ARCHES = words("x86 arm64 powerpc sparc s390 riscv loongarch mips arm xtensa")
ARCH_MM = words("fault.c init.c tlb.c pgtable.c ioremap.c mmap.c pageattr.c extable.c")
ARCH_ASM = words("pgtable.h tlbflush.h page.h cacheflush.h mmu_context.h")
FS = words("ext4 btrfs xfs nfs f2fs fuse proc overlayfs smb/client ceph erofs ocfs2")
DRIVERS = words(
    "gpu/drm/i915 gpu/drm/amd/amdgpu gpu/drm/msm net/ethernet/intel/ice net/ethernet/mellanox/mlx5 "
    "net/wireless/ath/ath11k net/ethernet/broadcom/bnxt usb/core usb/host usb/gadget scsi "
    "scsi/lpfc nvme/host nvme/target block md infiniband/core iommu/intel iommu/arm vfio pci "
    "platform/x86 input/touchscreen hid i2c/busses spi tty/serial mmc/host mtd/nand "
    "net/phy net/can thermal cpufreq clk/qcom pinctrl/qcom regulator firmware/efi base acpi "
    "media/platform bluetooth"
)
NET = words("core ipv4 ipv6 netfilter mac80211 bluetooth sched unix tls mptcp")
KERNEL = words("sched bpf trace events time locking rcu irq")
TOPIC_FILES = {
    "hugetlb": [
        "mm/hugetlb.c",
        "mm/hugetlb_vmemmap.c",
        "include/linux/hugetlb.h",
        "fs/hugetlbfs/inode.c",
    ],
    "mmu_gather": [
        "mm/mmu_gather.c",
        "include/asm-generic/tlb.h",
        *[f"arch/{a}/include/asm/tlb.h" for a in ARCHES[:5]],
    ],
    "lazy-mmu": [f"arch/{a}/mm/tlb.c" for a in ARCHES[:5]] + ["mm/memory.c", "mm/vmalloc.c"],
}
SYMBOLS = {
    "hugetlb": "huge_pmd_unshare",
    "mmu_gather": "tlb_finish_mmu",
    "lazy-mmu": "arch_enter_lazy_mmu_mode",
}


def _named(directory: str, count: int, ext: str = ".c") -> list[str]:
    return [
        f"{directory}/{STEMS[i % len(STEMS)]}{i // len(STEMS) or ''}{ext}" for i in range(count)
    ]


def kernel_paths() -> list[str]:
    """About 3,000 files in kernel-like directories (topic files included)."""
    paths = ["Makefile", *(f"mm/{f}" for f in MM_FILES), *_named("mm/damon", 12)]
    for a in ARCHES:
        paths += [f"arch/{a}/mm/{f}" for f in ARCH_MM]
        paths += [f"arch/{a}/include/asm/{f}" for f in ARCH_ASM] + _named(f"arch/{a}/kernel", 12)
    for fs in FS:
        paths += _named(f"fs/{fs}", 20)
    for d in DRIVERS:
        paths += _named(f"drivers/{d}", 36)
    for n in NET:
        paths += _named(f"net/{n}", 24)
    for k in KERNEL:
        paths += _named(f"kernel/{k}", 16)
    paths += _named("include/linux", 260, ".h") + _named("include/asm-generic", 24, ".h")
    paths += _named("sound/soc/codecs", 60) + _named("lib", 40) + _named("crypto", 30)
    paths += _named("security/selinux", 20) + _named("tools/testing/selftests/mm", 20)
    for files in TOPIC_FILES.values():
        paths += files
    return sorted(set(paths))


def subject_prefix(path: str) -> str:
    """The subsystem prefix a kernel subject would carry for a change to ``path``."""
    parts = path.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    if parts[0] == "mm":
        return f"mm/{stem}" if len(parts) == 2 else f"mm/{parts[1]}"
    if parts[0] == "arch":
        return f"{parts[1]}/mm" if parts[2] == "mm" else parts[1]
    if parts[0] == "include":
        return "asm-generic/tlb" if path.endswith("asm-generic/tlb.h") else stem
    if parts[0] in ("fs", "net", "kernel") and len(parts) > 2:
        return parts[1]
    if parts[0] == "drivers":
        return parts[-2]
    if parts[0] == "tools":
        return "selftests/mm"
    return parts[0] if len(parts) > 1 else "kbuild"


# -- words --------------------------------------------------------------------------------------

NOUNS = words(
    "refcount folio vma pte pmd mapping cgroup counter queue buffer descriptor table entry "
    "context handle request mutex spinlock worker reservation region range slot index "
    "node zone extent bitmap cache cursor"
)
VERBS = words(
    "alloc free init exit get put lookup insert remove update flush walk map unmap split "
    "merge release attach detach prepare commit reset"
)
TEMPLATES = (
    "fix use-after-free in {f}",
    "fix NULL pointer dereference in {f}",
    "fix {n} leak on error path in {f}",
    "avoid {n} underflow in {f}",
    "fix race between {f} and {g}",
    "don't take the {n} lock twice in {f}",
    "handle -ENOMEM in {f}",
    "add missing {n} check in {f}",
    "convert {f} to use folios",
    "remove unused {n} argument from {f}",
    "simplify {f}",
    "use {g} in {f}",
    "clean up {n} handling",
    "add {n} statistics",
    "make {f} static",
    "document {f} locking rules",
)
TOPIC_TEMPLATES = {
    "hugetlb": ("fix {n} accounting in hugetlb {f}", "hugetlb: handle huge pmd sharing in {f}"),
    "mmu_gather": ("mmu_gather: batch {n} frees in {f}", "fix tlb flush range in {f}"),
    "lazy-mmu": ("disable preemption in lazy mmu mode in {f}", "fix lazy_mmu nesting in {f}"),
}
FIRST = words(
    "Alex Anna Ben Chen Dan Dmitry Elena Fang Greg Hugh Ilya Jan Jörg José Kai Lena Lorenzo "
    "Mike Nadia Oscar Peter Qi Rick Sara Tomás Uwe Vlastimil Wei Xin Yu Zoe"
)
LAST = words(
    "Adams Baker Costa Dimitrov Eriksson Fischer Garcia Hansen Ivanov Jensen Kato Larsen "
    "Moreau Novak Olsen Petrov Quinn Rossi Schmidt Tanaka Ueda Vogel Weber Xu Young Zhang"
)
BODY = (
    "The error path returned without dropping the reference taken above.",
    "This can be triggered from userspace with a crafted sequence of calls.",
    "Found by syzkaller; the reproducer is attached to the report.",
    "Take the lock before reading the field so that a concurrent update cannot race.",
    "No functional change intended for architectures that do not select this option.",
    "Benchmarks show no regression on a 64-core machine.",
    "The counter could be decremented twice when the operation was retried.",
    "Move the check earlier so that callers never see a half-initialised object.",
)


def author(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    ascii_first = first.replace("ö", "o").replace("é", "e").replace("á", "a").lower()
    return f"{first} {last}", f"{ascii_first}.{last.lower()}@example.org"


def func_name(rng: random.Random) -> str:
    return f"{rng.choice(NOUNS)}_{rng.choice(VERBS)}"


# -- fast-import --------------------------------------------------------------------------------


class FastImport:
    """One ``git fast-import`` process; ``get-mark`` answers are read one window behind so that
    Python keeps generating while git hashes (a synchronous round trip per commit would idle
    both sides)."""

    def __init__(self, repo: Path) -> None:
        self.proc = subprocess.Popen(
            ["git", "-C", str(repo), "fast-import", "--quiet", "--force", "--done"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        self.pending = 0

    def write(self, data: bytes) -> None:
        self.stdin.write(data)

    def request_marks(self, marks: Sequence[int]) -> None:
        self.write(b"".join(b"get-mark :%d\n" % m for m in marks))
        self.pending += len(marks)

    def read_marks(self) -> list[str]:
        self.stdin.flush()
        shas = [self.stdout.readline()[:40].decode() for _ in range(self.pending)]
        self.pending = 0
        if shas and len(shas[-1]) != 40:  # fast-import died: it reported why on stderr
            raise RuntimeError("git fast-import stopped answering get-mark")
        return shas

    def close(self) -> None:
        self.write(b"done\n")
        self.stdin.close()
        if self.proc.wait() != 0:
            raise RuntimeError(f"git fast-import failed with status {self.proc.returncode}")


def data(text: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(text), text)


def commit_cmd(
    ref: str,
    mark: int,
    who: tuple[str, str],
    when: int,
    message: str,
    changes: bytes,
    parent: str | None = None,
) -> bytes:
    ident = f"{who[0]} <{who[1]}> {when} +0000\n".encode()
    head = b"commit %s\nmark :%d\nauthor %s" % (ref.encode(), mark, ident)
    head += b"committer %s" % ident + data(message.encode())
    if parent:
        head += b"from %s\n" % parent.encode()
    return head + changes + b"\n"


def modify(path: str, content: bytes) -> bytes:
    return b"M 100644 inline %s\n" % path.encode() + data(content)


def file_content(path: str, rev: int, extra: str = "") -> bytes:
    return (
        f"// SPDX-License-Identifier: GPL-2.0\n/* {path} */\n{extra}static int rev = {rev};\n"
    ).encode()


# -- the mainline model -------------------------------------------------------------------------


@dataclass
class FixInfo:
    """What a stable backport of a mainline fix needs to know about it."""

    index: int
    paths: tuple[str, ...]
    topic: str | None
    new_file: bytes | None  # content of the only file it adds (patch-id-matchable), if any


@dataclass
class Mainline:
    rng: random.Random
    paths: list[str]
    shas: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    fixes: list[FixInfo] = field(default_factory=list)
    topic_fixes: list[int] = field(default_factory=list)
    revs: dict[str, int] = field(default_factory=dict)
    tag_at: dict[int, str] = field(default_factory=dict)
    now: int = EPOCH

    def __post_init__(self) -> None:
        topical = {p for files in TOPIC_FILES.values() for p in files}
        self.plain = [p for p in self.paths if p not in topical and p != "Makefile"]

    def content(self, path: str, extra: str = "") -> bytes:
        self.revs[path] = self.revs.get(path, 0) + 1
        return file_content(path, self.revs[path], extra)


def release_points(total: int) -> dict[int, str]:
    """Commit index of each mainline release, evenly spread, leaving a merge window after the last
    one (commits there have no first release yet)."""
    step = total // (len(RELEASES) + 1)
    return {step * (i + 1): name for i, name in enumerate(RELEASES)}


def pick_culprit(m: Mainline, known: int, topic: str | None) -> int:
    """An earlier commit whose sha is already known: often recent, often years back, and for topic
    fixes sometimes an earlier topic fix (a fix of a fix)."""
    rng = m.rng
    if topic and m.topic_fixes and rng.random() < 0.15:
        recent = [i for i in m.topic_fixes[-20:] if i < known]
        if recent:
            return rng.choice(recent)
    if rng.random() < 0.4:
        return rng.randrange(max(1, known - 30_000), known)
    return rng.randrange(1, known)


def fixes_line(m: Mainline, culprit: int) -> str:
    roll = m.rng.random()
    if roll < 0.004:  # a typo'd sha quoting no known subject: unresolvable
        return f'Fixes: {m.rng.getrandbits(48):012x} ("{m.subjects[culprit]} again")'
    if roll < 0.006:  # a wrong sha whose quoted subject still names the culprit: repairable
        return f'Fixes: {m.rng.getrandbits(48):012x} ("{m.subjects[culprit]}")'
    return f'Fixes: {m.shas[culprit][:12]} ("{m.subjects[culprit]}")'


def trailers(m: Mainline, i: int, who: tuple[str, str], fix: FixInfo | None) -> list[str]:
    rng, known = m.rng, len(m.shas)
    lines = []
    if fix and known > 1:
        lines.append(fixes_line(m, pick_culprit(m, known, fix.topic)))
    if (fix and rng.random() < 0.4) or rng.random() < 0.01:
        note = rng.choice(("", "", " # 6.6.x", " # 6.12.x", " # v6.1+"))
        lines.append(f"Cc: <stable@vger.kernel.org>{note}")
    lines.append(f"Signed-off-by: {who[0]} <{who[1]}>")
    if rng.random() < 0.7:
        lines.append(f"Link: https://lore.kernel.org/r/{EPOCH + i}.{i}-1-{who[1]}")
    return lines


@dataclass
class Drawn:
    """One mainline commit as drawn: its subject, message and fast-import file changes."""

    subject: str
    message: str
    changes: bytes


def pick_paths(m: Mainline, topic: str | None) -> list[str]:
    rng = m.rng
    if topic:
        return rng.sample(TOPIC_FILES[topic], 1) + rng.sample(m.plain, rng.randrange(0, 2))
    return rng.sample(m.plain, rng.choice((1, 1, 1, 2, 2, 3)))


def draw_commit(m: Mainline, i: int, who: tuple[str, str]) -> Drawn:
    """Mainline commit ``i``: a release, a revert, or a change (maybe a fix, maybe topical)."""
    rng = m.rng
    if i in m.tag_at:
        subject = f"Linux {m.tag_at[i][1:]}"
        return Drawn(subject, subject + "\n", modify("Makefile", m.content("Makefile")))
    topic = rng.choice(list(TOPIC_FILES)) if rng.random() < 0.03 else None
    paths = pick_paths(m, topic)
    if len(m.shas) > 10 and rng.random() < 0.002:
        target = rng.randrange(max(1, len(m.shas) - 5000), len(m.shas))
        subject = f'Revert "{m.subjects[target]}"'
        message = f"{subject}\n\nThis reverts commit {m.shas[target]}.\n"
        return Drawn(subject, message, b"".join(modify(p, m.content(p)) for p in paths))
    f, g = func_name(rng), func_name(rng)
    template = rng.choice(TOPIC_TEMPLATES[topic] if topic else TEMPLATES)
    subject = f"{subject_prefix(paths[0])}: {template.format(f=f, g=g, n=rng.choice(NOUNS))}"
    extra = f"\t{SYMBOLS[rng.choice(list(SYMBOLS))]}(ctx);\n" if rng.random() < 0.01 else ""
    fix = (
        FixInfo(i, tuple(paths), topic, None) if rng.random() < (0.35 if topic else 0.115) else None
    )
    if fix and topic and rng.random() < 0.2:
        # Adds a file only: its diff does not depend on the parent tree, so an unreferenced
        # stable backport of it has the same patch-id.
        path = f"tools/testing/selftests/mm/{topic}-{f}-{i}.c"
        fix.paths, fix.new_file = (path,), file_content(path, 1)
        changes = modify(path, fix.new_file)
    else:
        changes = b"".join(modify(p, m.content(p, extra)) for p in paths)
    body = [subject, "", rng.choice(BODY), rng.choice(BODY), "", *trailers(m, i, who, fix)]
    if fix:
        m.fixes.append(fix)
        if topic:
            m.topic_fixes.append(i)
    return Drawn(subject, "\n".join(body) + "\n", changes)


def write_mainline(fi: FastImport, m: Mainline, start: int, count: int, ref: str) -> None:
    """Commits ``start .. start+count-1`` with mark = index + 1. Their shas are asked for per
    window and read one window later, so culprits lag the newest commit by at most two windows."""
    window = start
    for i in range(start, start + count):
        m.now += m.rng.randrange(30, 150)
        who = author(m.rng)
        drawn = draw_commit(m, i, who)
        m.subjects.append(drawn.subject)
        m.times.append(m.now)
        fi.write(commit_cmd(ref, i + 1, who, m.now, drawn.message, drawn.changes))
        if i in m.tag_at:
            fi.write(tag_cmd(m.tag_at[i], i + 1, m.now))
        if i + 1 - window >= MARK_WINDOW:
            m.shas += fi.read_marks()
            fi.request_marks(range(window + 1, i + 2))
            window = i + 1
    m.shas += fi.read_marks()
    fi.request_marks(range(window + 1, start + count + 1))
    m.shas += fi.read_marks()


def tag_cmd(name: str, mark: int, when: int) -> bytes:
    ident = f"Linus Torvalds <torvalds@example.org> {when} +0000\n".encode()
    return b"tag %s\nfrom :%d\ntagger %s" % (name.encode(), mark, ident) + data(
        f"Linux {name[1:]}".encode()
    )


def initial_tree(fi: FastImport, m: Mainline) -> None:
    changes = b"".join(modify(p, m.content(p)) for p in m.paths)
    who = ("Linus Torvalds", "torvalds@example.org")
    fi.write(commit_cmd("refs/heads/master", 1, who, m.now, "Initial import\n", changes))
    m.subjects.append("Initial import")
    m.times.append(m.now)
    fi.request_marks([1])


# -- stable branches ----------------------------------------------------------------------------


@dataclass
class StableCounts:
    referenced: int = 0
    by_patch_id: int = 0
    unreferenced: int = 0
    tags: int = 0


def backport_pool(m: Mainline, base_index: int, want: int) -> list[FixInfo]:
    """Later mainline fixes to backport: most topic fixes, then any fixes, in mainline order."""
    later = [f for f in m.fixes if f.index > base_index]
    topic = [f for f in later if f.topic and m.rng.random() < 0.6]
    rest = [f for f in later if not f.topic]
    extra = m.rng.sample(rest, min(len(rest), max(0, want - len(topic))))
    return sorted(topic + extra, key=lambda f: f.index)[:want]


def stable_message(m: Mainline, fix: FixInfo, style: int, who: tuple[str, str]) -> str:
    sha = m.shas[fix.index]
    ref = (f"commit {sha} upstream.", f"[ Upstream commit {sha} ]", "")[style]
    lines = [m.subjects[fix.index], ""]
    if ref:
        lines += [ref, ""]
    lines += [
        m.rng.choice(BODY),
        "",
        f"Signed-off-by: {who[0]} <{who[1]}>",
        "Signed-off-by: Greg Kroah-Hartman <gregkh@example.org>",
    ]
    return "\n".join(lines) + "\n"


def write_stable(
    fi: FastImport, m: Mainline, name: str, base: str, count: int, next_mark: int
) -> tuple[int, StableCounts]:
    base_index = next(i for i, t in m.tag_at.items() if t == base)
    ref, rng = f"refs/heads/{name}", m.rng
    when, counts, release = m.times[base_index], StableCounts(), 0
    parent: str | None = f":{base_index + 1}"
    for n, fix in enumerate(backport_pool(m, base_index, count)):
        when += rng.randrange(600, 7200)
        style = 2 if fix.new_file and rng.random() < 0.5 else n % 2
        who = author(rng)
        if style == 2 and fix.new_file:
            changes = modify(fix.paths[0], fix.new_file)
            counts.by_patch_id += 1
        else:
            changes = b"".join(modify(p, file_content(p, n, f"/* {name} */\n")) for p in fix.paths)
            counts.referenced += 1
        msg = stable_message(m, fix, style, who)
        fi.write(commit_cmd(ref, next_mark, who, when, msg, changes, parent))
        parent, next_mark = None, next_mark + 1
        if n % STABLE_RELEASE_EVERY == STABLE_RELEASE_EVERY - 1:
            release += 1
            version = f"{base[1:]}.{release}"
            mk = modify("Makefile", file_content("Makefile", release, f"# {version}\n"))
            fi.write(
                commit_cmd(
                    ref,
                    next_mark,
                    ("Greg Kroah-Hartman", "gregkh@example.org"),
                    when,
                    f"Linux {version}\n",
                    mk,
                )
            )
            fi.write(b"reset refs/tags/v%s\nfrom :%d\n\n" % (version.encode(), next_mark))
            next_mark += 1
            counts.unreferenced += 1
            counts.tags += 1
    return next_mark, counts


# -- generation ---------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def generate(repo: Path, commits: int, stable: dict[str, int], seed: int) -> dict[str, Any]:
    """Mainline + stable branches in one fast-import run, then the 1,000-commit append in
    another (timed on its own), then a commit-graph as a maintained clone would have."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "master", str(repo)], check=True)
    m = Mainline(random.Random(seed), kernel_paths())
    m.tag_at = release_points(commits)
    fig: dict[str, Any] = {"files": len(m.paths)}
    t0 = time.perf_counter()
    fi = FastImport(repo)
    initial_tree(fi, m)
    write_mainline(fi, m, 1, commits, "refs/heads/master")
    mark, per_branch = commits + 2 + APPEND, {}
    for name, base in BRANCHES:
        mark, per_branch[name] = write_stable(fi, m, name, base, stable[name], mark)
    fi.close()
    fig["generate_s"] = time.perf_counter() - t0
    fig["stable"] = {k: vars(v) for k, v in per_branch.items()}
    fig["mainline_fixes"] = len(m.fixes)
    fig["topic_fixes"] = len(m.topic_fixes)

    def append() -> None:
        fa = FastImport(repo)
        fa.write(b"reset refs/heads/bench-next\nfrom refs/heads/master^0\n\n")
        write_mainline(fa, m, commits + 1, APPEND, "refs/heads/bench-next")
        fa.close()

    fig["append_s"], _ = timed(append)
    fig["commit_graph_s"], _ = timed(
        lambda: git(repo, "commit-graph", "write", "--reachable", "--no-progress")
    )
    fig["pack_mib"] = sum(p.stat().st_size for p in (repo / "objects/pack").glob("*.pack")) / 2**20
    return fig


# -- baselines ----------------------------------------------------------------------------------


def git_baselines(repo: Path) -> dict[str, float]:
    """git's own cost of streaming master: a plain message dump, and the exact log tracker runs
    (paths included, oldest first), both piped to ``wc -c``."""
    tracker_fmt = "--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%ct%x1f%B%x1f"
    cmds = {
        "git_log_messages_s": "git log --format=%H%x00%B master | wc -c",
        "git_log_as_tracker_s": (
            f"git log --reverse --topo-order --no-color '{tracker_fmt}' --name-only "
            "--no-renames -c --diff-merges=off master -- | wc -c"
        ),
    }
    out: dict[str, float] = {}
    for key, cmd in cmds.items():
        t0 = time.perf_counter()
        subprocess.run(["bash", "-c", cmd], cwd=repo, check=True, capture_output=True)
        out[key] = time.perf_counter() - t0
    return out


# -- measurement (child process) ----------------------------------------------------------------


CONFIG = """\
# Written by benchmarks/plan.py.
[database]
url = "sqlite:///{db}"

[[repositories]]
name = "linux"
path = "{repo}"

[mainline]
repository = "linux"
ref = "master"
"""


def write_config(work: Path, repo: Path, inbox: Path | None = None) -> Path:
    text = CONFIG.format(db=work / "tracker.db", repo=repo)
    for name, base in BRANCHES:
        text += f'\n[[branches]]\nname = "{name}"\nbase = "{base}"\n'
    if inbox is not None:
        text += (
            f'\n[[sources]]\nname = "sparclinux"\nkind = "public-inbox-mirror"\npath = "{inbox}"\n'
        )
    path = work / "tracker.toml"
    path.write_text(text)
    return path


def reset_peak() -> None:
    # Linux: writing 5 resets VmHWM, so each phase reports its own peak.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status ("VmHWM", "RssAnon"), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def peak_mib() -> float:
    hwm = status_mib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class SqlTimer:
    """Total time per SQL statement shape (IN-lists collapsed), via engine events."""

    _IN = re.compile(r"\((?:\?|__\[POSTCOMPILE_\w+\])(?:, \?)*\)")

    def __init__(self, store: Store) -> None:
        self.totals: dict[str, list[float]] = {}
        event.listen(store.engine, "before_cursor_execute", self._before)
        event.listen(store.engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cur: Any, _stmt: str, _p: Any, _ctx: Any, _many: bool) -> None:
        conn.info.setdefault("t0", []).append(time.perf_counter())

    def _after(self, conn: Any, _cur: Any, stmt: str, _p: Any, _ctx: Any, _many: bool) -> None:
        took = time.perf_counter() - conn.info["t0"].pop()
        key = self._IN.sub("(?...)", " ".join(stmt.split()))[:240]
        t = self.totals.setdefault(key, [0.0, 0.0])
        t[0] += took
        t[1] += 1

    def top(self, n: int = 12) -> list[dict[str, Any]]:
        rows = sorted(self.totals.items(), key=lambda kv: -kv[1][0])[:n]
        return [{"seconds": round(v[0], 3), "calls": int(v[1]), "sql": k} for k, v in rows]

    def reset(self) -> None:
        self.totals.clear()


def profiled(fn: Callable[[], Any], out: Path | None) -> tuple[float, Any]:
    """Time ``fn``; under cProfile when ``out`` is given (then the time includes its overhead)."""
    if out is None:
        return timed(fn)
    prof = cProfile.Profile()
    t, res = timed(lambda: prof.runcall(fn))
    prof.dump_stats(out)
    return t, res


def row_counts(store: Store) -> dict[str, int]:
    tables = (
        models.Commit,
        models.Trailer,
        models.CommitTopic,
        models.Edge,
        models.BranchCommit,
        models.Tag,
    )
    with store.session() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) or 0 for t in tables}


def measure_plans(
    config: Config, store: Store, prof_dir: Path | None, tag: str = ""
) -> dict[str, Any]:
    plans: dict[str, Any] = {}
    for name, _base in BRANCHES:
        times: list[float] = []
        steps = needed = 0
        for rep in range(3):
            out = prof_dir / f"plan{tag}-{name}.prof" if prof_dir and rep == 0 else None
            t, p = profiled(partial(usecases.plan, config, store, name), out)
            times.append(t)
            steps, needed = len(p.steps), len(p.ordered)
        plans[name] = {
            "min_s": min(times),
            "median_s": statistics.median(times),
            "steps": steps,
            "ordered": needed,
        }
    return plans


# Runs the installed command's entry point and reports the process's own peak RSS: the kernel
# starts a forked child's ru_maxrss at its parent's peak, so wait4() would report this script's.
_CLI = (
    "import atexit, sys\n"
    "def hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith(('VmHWM:', 'RssAnon:')):\n"
    "            sys.stderr.write(line.split()[0] + ' ' + line.split()[1] + '\\n')\n"
    "atexit.register(hwm)\n"
    "sys.argv = ['tracker', *sys.argv[1:]]\n"
    "from tracker.entry import main\n"
    "main()\n"
)


def measure_cli_plans(work: Path) -> dict[str, Any]:
    """``tracker plan BRANCH`` as a maintainer runs it: a new process each time (interpreter
    start, imports, a cold SQLite cache), output to /dev/null; wall time and peak RSS."""
    plans: dict[str, Any] = {}
    for name, _base in BRANCHES:
        times: list[float] = []
        rss: list[float] = []
        private: list[float] = []
        for _ in range(3):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", _CLI, "--config", str(work / "tracker.toml"), "plan", name],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(f"tracker plan {name} failed: {proc.stderr.strip()}")
            kib = {
                x.split()[0]: int(x.split()[1])
                for x in proc.stderr.splitlines()
                if x.startswith(("VmHWM: ", "RssAnon: "))
            }
            rss.append(kib.get("VmHWM:", 0) / 1024)
            private.append(kib.get("RssAnon:", 0) / 1024)
        plans[name] = {
            "min_s": min(times),
            "median_s": statistics.median(times),
            "rss_mib": max(rss),
            "private_mib": max(private),
        }
    return plans


def private_mib() -> float:
    """Anonymous (private) resident memory now: RSS minus mapped database pages."""
    return status_mib("RssAnon") or 0.0


def status_query(config: Config, store: Store) -> str:
    """A topic fix the newest branch decides about: what a maintainer would ask about."""
    steps = usecases.plan(config, store, BRANCHES[0][0]).steps
    ordered = [st for st in steps if st.position is not None] or list(steps)
    return ordered[len(ordered) // 2].sha


def measure_status(config: Config, store: Store, prof_dir: Path | None, tag: str = "") -> Any:
    """``tracker status SHA`` in process: one decision per configured branch.

    Twice: with every branch's plan stored since the last sync (what ``plan`` after each cron
    sync leaves; status answers from it), and cold, as right after a sync before any ``plan``
    (status decides every branch's plan)."""
    query = status_query(config, store)
    for name, _base in BRANCHES:
        usecases.plan(config, store, name)
    times: list[float] = []
    cold: list[float] = []
    for rep in range(3):
        out = prof_dir / f"status{tag}.prof" if prof_dir and rep == 0 else None
        t, warm_answer = profiled(partial(usecases.status, config, store, query), out)
        times.append(t)
    with store.session() as s:
        stored = list(s.execute(select(models.Branch.id, models.Branch.plan_inputs)))
    for rep in range(3):
        with store.session() as s:
            s.execute(update(models.Branch).values(plan_inputs=None))
        out = prof_dir / f"status{tag}-cold.prof" if prof_dir and rep == 0 else None
        t, cold_answer = profiled(partial(usecases.status, config, store, query), out)
        cold.append(t)
    if warm_answer.to_dict() != cold_answer.to_dict():
        raise SystemExit(f"status {query}: the stored plans answer differently from new ones")
    with store.session() as s:
        for bid, inputs in stored:
            s.execute(
                update(models.Branch).where(models.Branch.id == bid).values(plan_inputs=inputs)
            )
    return {
        "query": query,
        "min_s": min(times),
        "median_s": statistics.median(times),
        "cold_min_s": min(cold),
        "cold_median_s": statistics.median(cold),
    }


def measure_with_mail(config: Config, store: Store, prof_dir: Path | None) -> dict[str, Any]:
    """The configured mail sources (the real corpus) ingested into the same store, then plans
    and status again: postings not yet merged join every plan as pending fixes."""
    t0 = time.perf_counter()
    reports = usecases.sync_sources(config, store)
    ingest = time.perf_counter() - t0
    with store.session() as s:
        messages = s.scalar(select(func.count()).select_from(models.Message)) or 0
    return {
        "ingest_s": ingest,
        "messages": messages,
        "errors": sum(len(r.counts.errors) for r in reports),
        "plan": measure_plans(config, store, prof_dir, "-mail"),
        "status": measure_status(config, store, prof_dir, "-mail"),
    }


class PhaseTimer:
    """Seconds spent in each GitSync phase. Wraps the phase methods on the class for the life of
    the measuring child only: usecases.sync builds its own GitSync, and a per-phase split at full
    size cannot come from cProfile, whose overhead would distort it."""

    PHASES = (
        "sync_mainline",
        "sync_release_tags",
        "sync_branch",
        "sync_stable_tags",
        "sync_symbol_topics",
        "sync_patch_ids",
        "resolve_edges",
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        for name in self.PHASES:
            setattr(GitSync, name, self._wrap(name, getattr(GitSync, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed_phase(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

        return timed_phase

    def take(self) -> dict[str, float]:
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        self.seconds = {}
        return out


def timed_sync(
    config: Config, store: Store, phases: PhaseTimer, prof: Path | None
) -> dict[str, Any]:
    t, stats = profiled(lambda: usecases.sync(config, store), prof)
    return {
        "seconds": t,
        "added": stats.total(),
        "mainline": stats.mainline_commits,
        "phases": phases.take(),
    }


def measure(work: Path, profile: bool) -> dict[str, Any]:
    config = load_config(work / "tracker.toml")
    repo = work / "linux.git"
    prof_dir = work if profile else None
    phases = PhaseTimer()
    fig: dict[str, Any] = {}
    fig["open_store_s"], store = timed(lambda: usecases.open_store(config))
    sql = SqlTimer(store) if profile else None
    reset_peak()
    fig["first_sync"] = timed_sync(config, store, phases, prof_dir and work / "sync.prof")
    fig["first_sync"]["rss_mib"] = peak_mib()
    fig["first_sync"]["private_mib"] = private_mib()
    fig["first_sync"]["git_children_rss_mib"] = children_peak_mib()
    fig["first_sync"]["rows"] = row_counts(store)
    if sql:
        fig["first_sync"]["sql_top"] = sql.top()
        sql.reset()
    reset_peak()
    fig["plan"] = measure_plans(config, store, prof_dir)
    fig["plan_rss_mib"] = peak_mib()
    fig["plan_private_mib"] = private_mib()
    fig["plan_cli"] = measure_cli_plans(work)
    fig["status"] = measure_status(config, store, prof_dir)
    if sql:
        fig["plan_sql_top"] = sql.top()
        sql.reset()
    if config.sources:
        fig["mail"] = measure_with_mail(config, store, prof_dir)
        if sql:
            fig["mail_sql_top"] = sql.top()
    git(repo, "update-ref", "refs/heads/master", "refs/heads/bench-next")
    prof = prof_dir and work / "sync-incremental.prof"
    fig["incremental_sync"] = timed_sync(config, store, phases, prof)
    fig["noop_sync"] = timed_sync(config, store, phases, prof_dir and work / "sync-noop.prof")
    fig["db_mib"] = (work / "tracker.db").stat().st_size / 2**20
    store.close()
    return fig


# -- all-paths first sync (issue 12, item 6) ---------------------------------------------------
# Kept apart from the plan figures above: its own store, config and child process.

ALL_PATHS_TOPIC = '\n[[topics]]\nname = "everything"\npaths = ["*"]\n'


def all_paths_git_log(repo: Path) -> float:
    """git's own cost of the commit list tracker reads: mainline, then each stable branch from
    its base, with the format and options of ``GitRepo.log``, piped to ``wc -c``."""
    tracker_fmt = "--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%ct%x1f%B%x1f"
    log = (
        f"git -c core.quotePath=false log --reverse --topo-order --no-color '{tracker_fmt}' "
        "--name-only --no-renames -c --diff-merges=off"
    )
    cmd = "; ".join([f"{log} master --", *(f"{log} {name} ^{base} --" for name, base in BRANCHES)])
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", f"({cmd}) | wc -c"], cwd=repo, check=True, capture_output=True)
    return time.perf_counter() - t0


def measure_all_paths(work: Path, profile: bool) -> dict[str, Any]:
    """In the child: the first sync into a fresh store, every mainline commit in the topic."""
    config = load_config(work / "tracker-all-paths.toml")
    phases = PhaseTimer()
    store = usecases.open_store(config)
    sql = SqlTimer(store) if profile else None
    reset_peak()
    prof = work / "sync-all-paths.prof" if profile else None

    def sync_and_close() -> SyncStats:
        # Closing counts: it is where SQLite copies the rest of its log into the database.
        stats = usecases.sync(config, store)
        store.close()
        return stats

    t, stats = profiled(sync_and_close, prof)
    sql_top = sql.top() if sql else None
    store = usecases.open_store(config)
    with store.session() as s:
        topic_rows = s.scalar(select(func.count()).select_from(models.CommitTopic)) or 0
    store.close()
    return {
        "sql_top": sql_top,
        "seconds": t,
        "mainline": stats.mainline_commits,
        "topic_commits": topic_rows,
        "patch_ids": stats.patch_ids,
        "patch_id_links": stats.patch_id_links,
        "rss_mib": peak_mib(),
        "phases": phases.take(),
    }


def all_paths_first_sync(work: Path, repo: Path, profile: bool, rounds: int) -> dict[str, Any]:
    """Rounds of git's log, tracker's first sync, git's log again: this machine's speed drifts
    by a fifth and more from minute to minute, so each round compares tracker with the mean of
    the git runs just before and just after it."""
    text = CONFIG.format(db=work / "tracker-all-paths.db", repo=repo)
    for name, base in BRANCHES:
        text += f'\n[[branches]]\nname = "{name}"\nbase = "{base}"\n'
    (work / "tracker-all-paths.toml").write_text(text + ALL_PATHS_TOPIC)
    runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        for db in work.glob("tracker-all-paths.db*"):
            db.unlink()
        before = all_paths_git_log(repo)
        cmd = [sys.executable, __file__, "--measure-all-paths", "--workdir", str(work)]
        subprocess.run(cmd + (["--profile"] if profile else []), check=True)
        git_s = (before + all_paths_git_log(repo)) / 2
        run: dict[str, Any] = json.loads((work / "measure-all-paths.json").read_text())
        run["git_log_s"], run["ratio"] = git_s, run["seconds"] / git_s
        runs.append(run)
    # The round with the median ratio stands for all; the others are listed beside it.
    fig = sorted(runs, key=lambda r: float(r["ratio"]))[len(runs) // 2]
    fig["rounds"] = [
        {"git_log_s": r["git_log_s"], "seconds": r["seconds"], "ratio": r["ratio"]} for r in runs
    ]
    return fig


def all_paths_table(fig: dict[str, Any]) -> str:
    a = fig["all_paths"]
    phases = ", ".join(f"{k.removeprefix('sync_')} {v:.2f}" for k, v in a["phases"].items())
    rounds = a.get("rounds") or [a]
    each = "; ".join(
        f"{r['seconds']:.2f}/{r['git_log_s']:.2f} s = {r['ratio']:.2f}x" for r in rounds
    )
    rows = [
        ("mainline commits", f"{fig['commits']:,} ({a['topic_commits']:,} in the topic)"),
        (
            "stable backports",
            ", ".join(f"{k} {v:,}" for k, v in fig["stable_per_branch"].items()),
        ),
        ("git log of the commit list", f"{a['git_log_s']:.2f} s (median round, before/after)"),
        (
            "tracker first sync, all paths",
            f"{a['seconds']:.2f} s, peak RSS {a['rss_mib']:.0f} MiB",
        ),
        ("ratio (goal <= 2x), median", f"{a['ratio']:.2f}x"),
        (f"rounds (tracker/git), {len(rounds)}", each),
        (
            "patch-ids computed",
            f"{a['patch_ids']:,} ({a['patch_id_links']:,} backports found by patch-id)",
        ),
        ("  phases (s)", phases),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


# -- report -------------------------------------------------------------------------------------


def table(fig: dict[str, Any]) -> str:
    ms = fig["measure"]
    fs = ms["first_sync"]
    rows = [
        ("mainline commits", f"{fig['commits']:,} (+{APPEND:,} appended)"),
        ("tree files / pack", f"{fig['gen']['files']:,} files, {fig['gen']['pack_mib']:.0f} MiB"),
        (
            "mainline fixes / topic fixes",
            f"{fig['gen']['mainline_fixes']:,} / {fig['gen']['topic_fixes']:,}",
        ),
        (
            "stable backports",
            ", ".join(f"{k} {v:,}" for k, v in fig["stable_per_branch"].items()),
        ),
        ("generation (fast-import)", f"{fig['gen']['generate_s']:.1f} s"),
        ("append 1,000 commits", f"{fig['gen']['append_s']:.2f} s"),
        ("commit-graph write", f"{fig['gen']['commit_graph_s']:.1f} s"),
        ("git log messages | wc -c", f"{fig['baseline']['git_log_messages_s']:.1f} s"),
        ("git log as tracker | wc -c", f"{fig['baseline']['git_log_as_tracker_s']:.1f} s"),
        ("first sync", f"{fs['seconds']:.1f} s, {fs['added']:,} rows added"),
        (
            "first sync peak RSS",
            # Linux carries a child's pre-exec RSS (the forked Python) into its maxrss, so the
            # git figure is an upper bound, not git's own footprint.
            f"{fs['rss_mib']:.0f} MiB incl. mapped database pages, private "
            f"{fs['private_mib']:.0f} MiB after it (largest git child <= "
            f"{fs['git_children_rss_mib']:.0f} MiB)",
        ),
    ]
    for name, p in ms["plan"].items():
        rows.append(
            (
                f"plan {name}",
                f"min {p['min_s']:.2f} s, median {p['median_s']:.2f} s "
                f"({p['steps']} steps, {p['ordered']} ordered)",
            )
        )
    for name, p in ms["plan_cli"].items():
        rows.append(
            (
                f"tracker plan {name} (CLI)",
                f"min {p['min_s']:.2f} s, median {p['median_s']:.2f} s, "
                f"peak RSS {p['rss_mib']:.0f} MiB incl. mapped database pages, "
                f"private {p['private_mib']:.0f} MiB at exit",
            )
        )
    rows += [
        (
            "plan peak RSS",
            f"{ms['plan_rss_mib']:.0f} MiB (private memory after the plans "
            f"{ms['plan_private_mib']:.0f} MiB; the rest is mapped database pages)",
        ),
        (
            "status SHA (no mail)",
            f"min {ms['status']['min_s']:.3f} s, median {ms['status']['median_s']:.3f} s "
            f"({len(BRANCHES)} branches, plans stored since the last sync); "
            f"cold (deciding every plan) min {ms['status']['cold_min_s']:.3f} s",
        ),
    ]
    mail = ms.get("mail")
    if mail:
        rows.append(
            (
                "mail corpus ingest",
                f"{mail['messages']:,} messages in {mail['ingest_s']:.1f} s, "
                f"{mail['errors']} document errors",
            )
        )
        for name, p in mail["plan"].items():
            rows.append(
                (
                    f"plan {name} with mail",
                    f"min {p['min_s']:.2f} s, median {p['median_s']:.2f} s "
                    f"({p['steps']} steps; no mail {ms['plan'][name]['min_s']:.2f} s)",
                )
            )
        rows.append(
            (
                "status SHA with mail",
                f"min {mail['status']['min_s']:.3f} s, median {mail['status']['median_s']:.3f} s "
                f"(no mail {ms['status']['min_s']:.3f} s); cold min "
                f"{mail['status']['cold_min_s']:.3f} s "
                f"(no mail {ms['status']['cold_min_s']:.3f} s)",
            )
        )
    rows += [
        (
            "incremental sync (+1,000)",
            f"{ms['incremental_sync']['seconds']:.2f} s, {ms['incremental_sync']['added']:,} rows",
        ),
        (
            "no-op sync",
            f"{ms['noop_sync']['seconds'] * 1000:.0f} ms, {ms['noop_sync']['added']} rows",
        ),
        ("database size", f"{ms['db_mib']:.0f} MiB"),
    ]
    for run in ("first_sync", "incremental_sync", "noop_sync"):
        split = ", ".join(
            f"{k.removeprefix('sync_')} {v:.2f}" for k, v in ms[run]["phases"].items()
        )
        rows.append((f"  {run.replace('_', ' ')} phases (s)", split))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def print_profiles(work: Path) -> None:
    for name in sorted(work.glob("*.prof")):
        buf = io.StringIO()
        pstats.Stats(str(name), stream=buf).sort_stats("tottime").print_stats(15)
        print(f"\n== {name.name} (by own time) ==")
        print("\n".join(buf.getvalue().splitlines()[6:]))


def print_sql(top: list[dict[str, Any]] | None, what: str) -> None:
    print(f"\n== SQL by total time: {what} ==")
    for row in top or []:
        print(f"{row['seconds']:8.3f} s {row['calls']:8d}x  {row['sql'][:150]}")


def run_child(work: Path, profile: bool) -> dict[str, Any]:
    """Measure in a fresh interpreter: its peak RSS is tracker's, not the generator's."""
    cmd = [sys.executable, __file__, "--measure", "--workdir", str(work)]
    subprocess.run(cmd + (["--profile"] if profile else []), check=True)
    result: dict[str, Any] = json.loads((work / "measure.json").read_text())
    return result


def stable_sizes(text: str) -> dict[str, int]:
    sizes = [int(v) for v in text.split(",")]
    if len(sizes) == 1:
        sizes *= len(BRANCHES)
    if len(sizes) != len(BRANCHES) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"give one or {len(BRANCHES)} positive counts")
    return {name: n for (name, _), n in zip(BRANCHES, sizes, strict=True)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--commits", type=int, default=1_000_000)
    ap.add_argument(
        "--stable",
        type=stable_sizes,
        default=stable_sizes(STABLE_SIZES),
        help="backports per stable branch: N, or N12,N6,N1 for 6.12.y, 6.6.y, 6.1.y",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    ap.add_argument(
        "--mail",
        type=Path,
        default=MAIL_BUNDLE if MAIL_BUNDLE.exists() else None,
        help="a public-inbox epoch bundle ingested after the no-mail plans (default: the "
        "sparclinux corpus when present); --mail '' to skip",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="cProfile sync and plan, time SQL statements (slower figures)",
    )
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--all-paths",
        action="store_true",
        help="time only the first sync with an all-paths topic, against git log",
    )
    ap.add_argument(
        "--again",
        action="store_true",
        help="with --all-paths --workdir DIR of a --keep'd run: time the sync again on the "
        "repository generated there (a fresh store; figures.json's counts reused)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="with --all-paths: rounds of git log, first sync, git log (the median counts)",
    )
    ap.add_argument("--measure-all-paths", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.measure:
        measured = measure(args.workdir, args.profile)
        (args.workdir / "measure.json").write_text(json.dumps(measured, indent=2))
        return
    if args.measure_all_paths:
        measured = measure_all_paths(args.workdir, args.profile)
        (args.workdir / "measure-all-paths.json").write_text(json.dumps(measured, indent=2))
        return
    if args.again:
        all_paths_again(args)
        return
    if args.commits < 2 * (len(RELEASES) + 1):
        sys.exit("--commits is too small to place the release tags")
    work: Path = args.workdir or Path(tempfile.mkdtemp(prefix="tracker-plan-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "linux.git"
    if repo.exists() or (work / "tracker.db").exists():
        sys.exit(f"{work} already holds a benchmark; choose an empty --workdir")
    try:
        fig: dict[str, Any] = {"commits": args.commits, "stable_per_branch": args.stable}
        fig["gen"] = generate(repo, args.commits, args.stable, args.seed)
        print(f"generated {args.commits:,} commits in {fig['gen']['generate_s']:.1f} s", flush=True)
        if args.all_paths:
            all_paths_report(work, fig, args)
            return
        fig["baseline"] = git_baselines(repo)
        write_config(work, repo, mail_inbox(work, args.mail))
        fig["measure"] = run_child(work, args.profile)
        (work / "figures.json").write_text(json.dumps(fig, indent=2))
        print(table(fig))
        if args.profile:
            print_profiles(work)
            for phase in ("first_sync", "plan_sql_top"):
                top = fig["measure"].get(phase)
                print_sql(top.get("sql_top") if isinstance(top, dict) else top, phase)
        print(f"\nfigures: {work / 'figures.json'}")
    finally:
        if not args.keep:
            cleanup(work)


def all_paths_again(args: argparse.Namespace) -> None:
    """Re-time the all-paths first sync on a kept repository: no regeneration between two
    versions of the code (the store is made anew, the repository is left as generated)."""
    work: Path | None = args.workdir
    if not args.all_paths or work is None or not (work / "figures.json").is_file():
        sys.exit("--again needs --all-paths and the --workdir of a kept --all-paths run")
    for db in work.glob("tracker-all-paths.db*"):
        db.unlink()
    all_paths_report(work, json.loads((work / "figures.json").read_text()), args)


def all_paths_report(work: Path, fig: dict[str, Any], args: argparse.Namespace) -> None:
    fig["all_paths"] = all_paths_first_sync(work, work / "linux.git", args.profile, args.rounds)
    (work / "figures.json").write_text(json.dumps(fig, indent=2))
    print(all_paths_table(fig))
    if args.profile:
        print_profiles(work)
        print_sql(fig["all_paths"].get("sql_top"), "first sync, all paths")
    if not args.keep:
        for db in work.glob("tracker-all-paths.db*"):
            db.unlink()


def mail_inbox(work: Path, bundle: Path | None) -> Path | None:
    """The corpus as a public-inbox v2 inbox, cloned as shared/corpus/README.md says."""
    if bundle is None or not str(bundle) or not bundle.is_file():
        return None
    inbox = work / "inbox" / "sparclinux"
    epoch = inbox / "git" / "0.git"
    epoch.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(bundle), str(epoch)], check=True)
    return inbox


def cleanup(work: Path) -> None:
    """Drop the repository and database (gigabytes at full size); keep figures and profiles."""
    shutil.rmtree(work / "linux.git", ignore_errors=True)
    shutil.rmtree(work / "inbox", ignore_errors=True)
    for db in work.glob("tracker.db*"):
        db.unlink()


if __name__ == "__main__":
    main()
