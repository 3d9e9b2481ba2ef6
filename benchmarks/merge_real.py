"""Differential run of tracker's content merge against git's, on real kernel files.

For a seeded sample of files that exist, changed, in both the 6.1 and the 6.12 source trees,
three-way merges are built two ways:

- "release": base = the 6.1 file, theirs = the 6.12 file, ours = the 6.1 file with seeded
  local edits near the places 6.12 changed;
- "backport": base = the 6.1 file, theirs = a random subset of the 6.1 -> 6.12 changes (a
  commit), ours = another subset plus local edits (a stable branch that has some of them).

All triples go into one repository (a base commit, an "ours" and a "theirs" commit) and one
`git merge-tree --write-tree ours theirs` gives git's answer for every file: merge-tree
(git >= 2.38) runs merge-ort with its defaults, as cherry-pick does. Each file's verdict and
resulting bytes (conflict markers included) are compared with
tracker.simulate.contentmerge.merge. With --myers, `git merge-file` (myers, what libgit2 and
the old simulator used) is run per file too, to count how often a myers merge would have
reached another verdict.

    .venv/bin/python benchmarks/merge_real.py [--files 300] [--seed 1] [--myers]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitutil import FastImport, FileState, git, init_repo
from tracker.simulate.contentmerge import diff_hunks, merge

OLD = Path("/work/kernel/x/usr/src/linux-source-6.1")
NEW = Path("/work/kernel/x/usr/src/linux-source-6.12")
SUFFIXES = (".c", ".h", ".rst", ".txt", ".S", ".py", ".sh", ".yaml")
NAMES = ("Makefile", "Kconfig", "Kbuild")
MAX_SIZE = 300_000


def candidates(rng: random.Random, want: int) -> list[str]:
    paths: list[str] = []
    for root, dirs, files in os.walk(NEW):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(SUFFIXES) or name.startswith(NAMES):
                paths.append(os.path.relpath(os.path.join(root, name), NEW))
    rng.shuffle(paths)
    out: list[str] = []
    for rel in paths:
        old, new = OLD / rel, NEW / rel
        if not old.is_file() or old.is_symlink() or new.is_symlink():
            continue
        a, b = old.read_bytes(), new.read_bytes()
        if a == b or len(a) > MAX_SIZE or len(b) > MAX_SIZE or b"\0" in a[:8000] + b[:8000]:
            continue
        out.append(rel)
        if len(out) == want:
            break
    return out


def local_edits(data: bytes, guide: list[tuple[int, int, int, int]], rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 4)):
        if guide and rng.random() < 0.8:
            i1, c1, _i2, _c2 = rng.choice(guide)
            pos = i1 + rng.randint(-6, c1 + 6)
        else:
            pos = rng.randrange(len(lines))
        pos = max(0, min(len(lines) - 1, pos))
        op = rng.random()
        if op < 0.4:
            lines[pos] = lines[pos] + b" /* local */" if lines[pos] else b"local"
        elif op < 0.7:
            lines[pos:pos] = [rng.choice([b"", b"}", b"\treturn 0;", b"\t}", b"local"])]
        else:
            del lines[pos : pos + rng.randint(1, 3)]
    return b"\n".join(lines)


def apply_subset(
    old: bytes, new: bytes, hunks: list[tuple[int, int, int, int]], keep: float, rng: random.Random
) -> bytes:
    a, b = old.split(b"\n"), new.split(b"\n")
    out: list[bytes] = []
    pos = 0
    for i1, c1, i2, c2 in hunks:
        if rng.random() < keep:
            out += a[pos:i1]
            out += b[i2 : i2 + c2]
            pos = i1 + c1
    out += a[pos:]
    return b"\n".join(out)


def triples(paths: list[str], rng: random.Random) -> list[tuple[str, bytes, bytes, bytes]]:
    out: list[tuple[str, bytes, bytes, bytes]] = []
    for rel in paths:
        old, new = (OLD / rel).read_bytes(), (NEW / rel).read_bytes()
        hunks = diff_hunks(old, new)
        out.append((f"release/{rel}", old, local_edits(old, hunks, rng), new))
        theirs = apply_subset(old, new, hunks, 0.3, rng)
        ours = apply_subset(old, new, hunks, 0.3, rng)
        if rng.random() < 0.5:
            ours = local_edits(ours, hunks, rng)
        out.append((f"backport/{rel}", old, ours, theirs))
    return out


def git_merge(
    repo: Path, cases: list[tuple[str, bytes, bytes, bytes]]
) -> tuple[dict[str, bytes], set[str], float, float]:
    fi = FastImport()
    base = fi.commit("refs/heads/base", "base", {p: FileState(b) for p, b, _o, _t in cases})
    fi.commit("refs/heads/ours", "ours", {p: FileState(o) for p, _b, o, _t in cases}, parent=base)
    fi.commit(
        "refs/heads/theirs", "theirs", {p: FileState(t) for p, _b, _o, t in cases}, parent=base
    )
    fi.run(repo)
    t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = git(repo, "merge-tree", "--write-tree", "--name-only", "ours", "theirs", check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = time.perf_counter() - t0
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr.decode(errors="replace"))
    lines = proc.stdout.decode().split("\n")
    tree, conflicted = lines[0], set()
    for line in lines[1:]:
        if not line:
            break
        conflicted.add(line)
    listing = git(repo, "ls-tree", "-r", "-z", tree).stdout.split(b"\0")
    oids = {}
    for entry in listing:
        if entry:
            meta, raw_path = entry.split(b"\t", 1)
            oids[raw_path.decode()] = meta.split()[2].decode()
    batch = git(
        repo, "cat-file", "--batch", input="".join(oids[p] + "\n" for p, *_ in cases).encode()
    ).stdout
    contents: dict[str, bytes] = {}
    pos = 0
    for path, *_ in cases:
        eol = batch.index(b"\n", pos)
        size = int(batch[pos:eol].split()[2])
        contents[path] = batch[eol + 1 : eol + 1 + size]
        pos = eol + 1 + size + 1
    return contents, conflicted, elapsed, cpu


def myers_clean(tmp: Path, base: bytes, ours: bytes, theirs: bytes) -> bool:
    for name, data in (("b", base), ("o", ours), ("t", theirs)):
        (tmp / name).write_bytes(data)
    proc = subprocess.run(
        ["git", "merge-file", "-q", "-p", str(tmp / "o"), str(tmp / "b"), str(tmp / "t")],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=300, help="real files (two merges each)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--myers", action="store_true", help="also count myers (merge-file) verdicts")
    args = ap.parse_args(argv)
    if not (OLD.is_dir() and NEW.is_dir()):
        print(f"needs the kernel source trees {OLD} and {NEW}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    paths = candidates(rng, args.files)
    cases = triples(paths, rng)
    tmp = Path(tempfile.mkdtemp(prefix="merge-real-"))
    try:
        repo = init_repo(tmp / "repo")
        contents, conflicted, git_s, git_cpu = git_merge(repo, cases)
        t0, cpu0 = time.perf_counter(), time.process_time()
        results = [merge(b, o, t, labels=("ours", "theirs")) for _p, b, o, t in cases]
        ours_s, ours_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        bad = 0
        for (path, *_), res in zip(cases, results, strict=True):
            if res.clean != (path not in conflicted) or res.rendered != contents[path]:
                bad += 1
                git_clean = path not in conflicted
                print(f"  DISAGREE {path}: tracker clean={res.clean}, git clean={git_clean}")
        n = len(cases)
        size = sum(len(b) + len(o) + len(t) for _p, b, o, t in cases)
        clean = sum(r.clean for r in results)
        print(
            f"merges: {n} ({len(paths)} real files, {size / 1e6:.1f} MB of input); "
            f"git: {n - len(conflicted)} clean, {len(conflicted)} conflicted"
        )
        print(f"disagreements with git (verdict or bytes, markers included): {bad}")
        print(
            f"tracker.simulate.contentmerge: {ours_s:7.2f}s wall, {ours_cpu:6.2f}s CPU "
            f"({1000 * ours_cpu / n:.2f} ms CPU/merge), {clean} clean"
        )
        print(
            f"git merge-tree:    {git_s:7.2f}s wall, {git_cpu:6.2f}s CPU "
            f"({1000 * git_cpu / n:.2f} ms CPU/merge, one process, reading the trees included)"
        )
        if args.myers:
            myers = [myers_clean(tmp, b, o, t) for _p, b, o, t in cases]
            wrong = sum(m != (p not in conflicted) for m, (p, *_) in zip(myers, cases, strict=True))
            print(f"myers (git merge-file) verdicts that differ from git's merge: {wrong}")
        return 1 if bad else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
