"""Benchmark: syncing a stable-queue clone of real size (first sync, no-op, one new head).

Generates a stable-queue repository shaped like the real one: for each series (default 6.12,
6.6, 6.1) ``--releases`` directories ``releases/X.Y.N/`` of ``--per-release`` patches each
(one commit per release, as the queue moves into releases/) and a ``queue-X.Y/series`` of
``--queued`` patches. Patch files are the two real queue patches of tests/data/samples with
another upstream sha each (1 in 20 without an upstream line, so found by patch-id). Then, each in
a new process: tracker's first sync of the source, a no-op sync, and a sync after one new head
that queues a patch, reorders and drops one. Baseline in the same run: git itself listing every
directory and reading every patch blob (``git ls-tree -r`` + ``git cat-file --batch``), the
floor for reading what tracker reads.

    .venv/bin/python benchmarks/queue_sync.py [--series 6.12,6.6,6.1] [--releases 60]
        [--per-release 150] [--queued 300] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitutil import commit_files, git, init_repo

SAMPLES = Path(__file__).resolve().parents[1] / "tests/data/samples/stable-queue/releases"
REAL = [
    (SAMPLES / "6.6.88/mm-fix-lazy-mmu-docs-and-usage.patch").read_text(),
    (
        SAMPLES / "6.12.24/sparc-mm-avoid-calling-arch_enter-leave_lazy_mmu-in-set_ptes.patch"
    ).read_text(),
]

CHILD = """
import json, resource, sys, time
from tracker import service
from tracker.config import load_config
import tracker.ingest.sources, tracker.ingest.queuesync  # imports are not the sync's work
cfg = load_config(sys.argv[1])
store = service.open_store(cfg)
t = time.perf_counter(); r = service.sync_sources(cfg, store)[0]
out = {"s": time.perf_counter() - t, "files": r.counts.documents, "changes": r.counts.stable_events,
       "errors": len(r.counts.errors), "failed": r.failed,
       "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(out))
"""


def patch_text(rng: random.Random, n: int) -> str:
    text = REAL[n % 2]
    old = text.split("commit ", 2)[1].split(" ", 1)[0] if "upstream." in text else ""
    sha = f"{rng.getrandbits(160):040x}"
    text = text.replace(old, sha)
    # distinct subjects and diffs, so every file is a patch of its own
    text = text.replace("Subject: ", f"Subject: [{n}] ", 1).replace("+ *", f"+ * {n}", 1)
    if n % 20 == 7:
        text = text.replace(f"commit {sha} upstream.\n", "")
    return text


def generate(root: Path, series: list[str], releases: int, per: int, queued: int) -> Path:
    repo = init_repo(root / "stable-queue")
    rng = random.Random(7)
    n = 0
    for r in range(1, releases + 1):
        files: dict[str, bytes | str | None] = {}
        for sv in series:
            names = []
            for _ in range(per):
                n += 1
                name = f"patch-{n}.patch"
                names.append(name)
                files[f"releases/{sv}.{r}/{name}"] = patch_text(rng, n)
            files[f"releases/{sv}.{r}/series"] = "".join(x + "\n" for x in names)
        commit_files(repo, files, f"release {r}")
    files = {}
    for sv in series:
        names = []
        for _ in range(queued):
            n += 1
            names.append(f"patch-{n}.patch")
            files[f"queue-{sv}/{names[-1]}"] = patch_text(rng, n)
        files[f"queue-{sv}/series"] = "".join(x + "\n" for x in names)
    commit_files(repo, files, "queues")
    return repo


def write_config(root: Path, repo: Path, series: list[str]) -> Path:
    linux = init_repo(root / "linux")
    commit_files(linux, {"README": "x\n"}, "init")
    git(linux, "tag", "v6.1")
    branches = "".join(f'[[branches]]\nname = "linux-{sv}.y"\nbase = "v{sv}"\n' for sv in series)
    cfg = root / "tracker.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///{root / "t.db"}"\n'
        f'[[repositories]]\nname = "linux"\npath = "{linux}"\n{branches}'
        '[[topics]]\nname = "all"\npaths = ["*"]\n'
        f'[[sources]]\nname = "stable-queue"\nkind = "stable-queue"\npath = "{repo}"\n'
    )
    return cfg


def child(cfg: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(cfg)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"sync failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def git_floor(repo: Path) -> tuple[float, int]:
    t = time.perf_counter()
    listing = git(repo, "ls-tree", "-r", "HEAD").stdout.decode().splitlines()
    blobs = [ln.split()[2] for ln in listing if ln.endswith(".patch")]
    out = git(repo, "cat-file", "--batch", input=("\n".join(blobs) + "\n").encode()).stdout
    return time.perf_counter() - t, len(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", default="6.12,6.6,6.1")
    ap.add_argument("--releases", type=int, default=60)
    ap.add_argument("--per-release", type=int, default=150)
    ap.add_argument("--queued", type=int, default=300)
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    series = a.series.split(",")
    root = a.work or Path(tempfile.mkdtemp(prefix="queue-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    repo = generate(root, series, a.releases, a.per_release, a.queued)
    print(f"generated {root} in {time.perf_counter() - t:.1f} s")
    cfg = write_config(root, repo, series)
    floor, size = git_floor(repo)
    first = child(cfg)
    noop = child(cfg)
    # one new head: a patch queued at the front, the last one dropped
    sv = series[0]
    names = (repo / f"queue-{sv}/series").read_text().split()
    new = patch_text(random.Random(1), 10**6)
    commit_files(
        repo,
        {
            f"queue-{sv}/new.patch": new,
            f"queue-{sv}/series": "".join(x + "\n" for x in ["new.patch", *names[:-1]]),
        },
        "one more",
    )
    step = child(cfg)
    files = len(series) * (a.releases * a.per_release + a.queued)
    print(f"queue: {len(series)} series, {files} patch files ({size / 2**20:.0f} MiB)")
    print(f"git floor (ls-tree -r + cat-file --batch of every patch): {floor:.2f} s")
    print(
        f"first sync: {first['s']:.2f} s, {first['files']} files read, {first['errors']} "
        f"errors, peak RSS {first['rss_mib']:.0f} MiB ({first['s'] / floor:.1f}x the git floor; "
        f"{int(first['files']) / first['s']:.0f} files/s)"  # type: ignore[arg-type, call-overload]
    )
    print(f"no-op sync: {noop['s']:.3f} s, {noop['files']} files read")
    print(
        f"new head (1 queued, 1 dropped): {step['s']:.3f} s, {step['files']} files read, "
        f"{step['changes']} state changes"
    )


if __name__ == "__main__":
    main()
