"""Benchmark: in-memory cherry-pick simulation versus git worktree + git cherry-pick.

Builds (with git fast-import) a kernel-shaped repository of --files files, a mainline of
--commits commits and a stable branch forked early, then picks --picks mainline commits onto
the stable branch twice: with tracker.simulate.simulate_sequence and with a real work tree and
a `git cherry-pick` loop (conflict: --abort, empty: --skip). Verdicts and the trees of clean
picks must be identical. Prints ms per commit both ways, the ratio and peak memory.

    .venv/bin/python benchmarks/simulate.py [--files N --commits N --picks N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitutil import git, git_out, init_repo
from tracker.simulate import Verdict, simulate_sequence

TOPS = {
    "arch": 22,
    "drivers": 90,
    "fs": 45,
    "net": 35,
    "sound": 14,
    "include": 8,
    "kernel": 10,
    "mm": 3,
    "lib": 6,
    "tools": 14,
    "Documentation": 12,
    "security": 7,
    "crypto": 3,
    "block": 3,
}
WORDS = ["dev", "buf", "len", "ret", "lock", "page", "skb", "ctx", "priv", "irq", "node", "flags"]


@dataclass
class Model:
    """File contents of one branch: only files that were ever edited are kept in memory."""

    seed: int
    paths: list[str]
    edited: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def content(self, path: str) -> bytes:
        data = self.edited.get(path)
        return data if data is not None else initial_content(self.seed, path)

    def copy(self) -> Model:
        return Model(
            self.seed, list(self.paths), dict(self.edited), dict(self.modes), set(self.deleted)
        )


def initial_content(seed: int, path: str) -> bytes:
    rng = random.Random(f"{seed}:{path}")
    out = [b"// SPDX-License-Identifier: GPL-2.0\n", b"#include <linux/%s.h>\n" % path.encode()]
    for i in range(rng.randint(18, 40)):
        w = rng.choice(WORDS)
        out.append(
            b"static int %s_%d(struct %s *p) { return %d; }\n"
            % (w.encode(), i, w.encode(), rng.randrange(1000))
        )
    return b"".join(out)


def make_paths(rng: random.Random, total: int) -> list[str]:
    leaves: list[str] = []
    for top, subs in TOPS.items():
        for s in range(subs):
            for t in range(rng.randint(1, 5)):
                leaves.append(f"{top}/{top[:3]}{s}/part{t}")
    paths: list[str] = []
    i = 0
    while len(paths) < total:
        d = leaves[i % len(leaves)]
        paths.append(f"{d}/file{i // len(leaves)}_{rng.randrange(100)}.c")
        i += 1
    return sorted(set(paths))


def edit(rng: random.Random, data: bytes, tag: str) -> bytes:
    lines = data.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(2, len(lines) + 1)
        roll = rng.random()
        new = b"\t/* %s %d */ static int fix_%d;\n" % (tag.encode(), rng.randrange(10**6), k)
        if roll < 0.5 and k < len(lines):
            lines[k] = new
        elif roll < 0.8:
            lines.insert(k, new)
        elif len(lines) > 6 and k < len(lines):
            del lines[k]
    return b"".join(lines)


class Stream:
    """Writes a fast-import stream straight into git fast-import's stdin."""

    def __init__(self, repo: Path) -> None:
        self.marks = repo / ".git" / "bench-marks"
        self.proc = subprocess.Popen(
            [
                "git",
                "-c",
                "core.autocrlf=false",
                "fast-import",
                "--quiet",
                "--done",
                f"--export-marks={self.marks}",
            ],
            cwd=repo,
            stdin=subprocess.PIPE,
        )
        assert self.proc.stdin is not None
        self.out = self.proc.stdin
        self.mark = 0
        self.time = 1_500_000_000

    def commit(
        self,
        ref: str,
        message: str,
        ops: Iterator[tuple[str, str, bytes | None]],
        parent: int | None = None,
    ) -> int:
        self.mark += 1
        self.time += 30
        msg = message.encode()
        self.out.write(
            b"commit %s\nmark :%d\nauthor A <a@k.invalid> %d +0000\n"
            b"committer C <c@k.invalid> %d +0000\ndata %d\n%s\n"
            % (ref.encode(), self.mark, self.time, self.time, len(msg), msg)
        )
        if parent is not None:
            self.out.write(b"from :%d\n" % parent)
        for path, mode, data in ops:
            if data is None:
                self.out.write(b"D %s\n" % path.encode())
            else:
                self.out.write(
                    b"M %s inline %s\ndata %d\n%s\n"
                    % (mode.encode(), path.encode(), len(data), data)
                )
        self.out.write(b"\n")
        return self.mark

    def finish(self) -> dict[int, str]:
        self.out.write(b"done\n")
        self.out.close()
        if self.proc.wait() != 0:
            raise SystemExit("git fast-import failed")
        marks = {}
        for line in self.marks.read_text().splitlines():
            m, sha = line.split()
            marks[int(m[1:])] = sha
        return marks


def random_change(
    rng: random.Random, model: Model, hot: list[str], tag: str
) -> list[tuple[str, str, bytes | None]]:
    roll = rng.random()
    live = hot if rng.random() < 0.75 else model.paths
    path = rng.choice(live)
    while path in model.deleted:
        path = rng.choice(model.paths)
    mode = model.modes.get(path, "100644")
    if roll < 0.82:
        ops = [(path, mode, edit(rng, model.content(path), tag))]
        if rng.random() < 0.15:
            other = rng.choice(hot)
            if other not in model.deleted and other != path:
                ops.append(
                    (other, model.modes.get(other, "100644"), edit(rng, model.content(other), tag))
                )
        return ops
    if roll < 0.88:
        new = f"{path.rsplit('/', 1)[0]}/new_{tag.replace(' ', '_')}.c"
        return [(new, "100644", initial_content(rng.randrange(10**6), new))]
    if roll < 0.91:
        return [(path, mode, None)]
    if roll < 0.97:
        new = f"{path.rsplit('/', 1)[0]}/renamed_{tag.replace(' ', '_')}.c"
        return [(path, mode, None), (new, mode, edit(rng, model.content(path), tag))]
    return [(path, "100755" if mode == "100644" else "100644", model.content(path))]


def apply(model: Model, ops: list[tuple[str, str, bytes | None]], hot: list[str]) -> None:
    for path, mode, data in ops:
        if data is None:
            model.deleted.add(path)
            model.edited.pop(path, None)
            continue
        if path not in model.edited and path in model.deleted:
            model.deleted.discard(path)
        if (
            path not in set(model.paths[-50:])
            and path not in model.edited
            and path.rsplit("/", 1)[1].startswith(("new_", "renamed_"))
        ):
            model.paths.append(path)
            hot.append(path)
        model.edited[path] = data
        model.modes[path] = mode


def build(
    root: Path,
    files: int,
    commits: int,
    stable_commits: int,
    fork_at: int,
    seed: int,
    out_json: Path,
) -> None:
    rng = random.Random(seed)
    init_repo(root)
    paths = make_paths(rng, files)
    main = Model(seed, paths)
    hot = rng.sample(paths, 600)
    stream = Stream(root)
    mark = stream.commit(
        "refs/heads/main",
        "initial import",
        ((p, "100644", initial_content(seed, p)) for p in paths),
    )
    main_marks = [mark]
    history: list[list[tuple[str, str, bytes | None]]] = [[]]
    stable: Model | None = None
    fork_mark = mark
    for i in range(commits):
        if i == fork_at:
            fork_mark, stable = main_marks[-1], main.copy()
        ops = random_change(rng, main, hot, f"main {i}")
        apply(main, ops, hot)
        history.append(ops)
        main_marks.append(stream.commit("refs/heads/main", f"mainline change {i}", iter(ops)))
    assert stable is not None
    parent = fork_mark
    stable_hot = list(hot)
    for i in range(stable_commits):
        ops = backport(rng, stable, main_marks, history, fork_at)
        if not ops:
            ops = random_change(rng, stable, stable_hot, f"stable {i}")
        apply(stable, ops, stable_hot)
        parent = stream.commit("refs/heads/stable", f"stable change {i}", iter(ops), parent=parent)
    marks = stream.finish()
    out_json.write_text(
        json.dumps(
            {
                "main": [marks[m] for m in main_marks],
                "fork": marks[fork_mark],
                "stable": marks[parent],
            }
        )
    )


def backport(
    rng: random.Random,
    stable: Model,
    main_marks: list[int],
    history: list[list[tuple[str, str, bytes | None]]],
    fork_at: int,
) -> list[tuple[str, str, bytes | None]]:
    """Now and then copy a mainline commit's result for files that match (a clean backport)."""
    if rng.random() > 0.35:
        return []
    k = rng.randrange(fork_at + 1, len(history))
    ops = history[k]
    if any(
        data is None or path not in stable.paths or path in stable.deleted for path, _, data in ops
    ):
        return []
    return list(ops)


def run_git_loop(
    repo: Path, wt: Path, stable: str, picks: list[str]
) -> tuple[list[tuple[str, str | None]], float, float]:
    t0 = time.perf_counter()
    git(repo, "worktree", "add", "-q", "--detach", str(wt), stable)
    t_add = time.perf_counter() - t0
    out: list[tuple[str, str | None]] = []
    t1 = time.perf_counter()
    for sha in picks:
        proc = git(wt, "cherry-pick", sha, check=False)
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode == 0:
            out.append(("clean", git_out(wt, "rev-parse", "HEAD^{tree}")))
        elif "now empty" in text:
            git(wt, "cherry-pick", "--skip")
            out.append(("already-present", None))
        else:
            git(wt, "cherry-pick", "--abort")
            out.append(("conflict", None))
    return out, t_add, time.perf_counter() - t1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=70_000)
    ap.add_argument("--commits", type=int, default=3_000)
    ap.add_argument("--stable-commits", type=int, default=400)
    ap.add_argument("--fork-at", type=int, default=150)
    ap.add_argument("--picks", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=None, help="work here (kept) instead of a tmp dir")
    args = ap.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="sim-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    repo, meta = base / "repo", base / "meta.json"
    try:
        return run(args, repo, base / "wt", meta)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


def build_once(args: argparse.Namespace, repo: Path, meta: Path) -> bool:
    """Build the repository unless ``meta`` says it exists; False when the build failed.

    A child process builds it, so that its memory does not count as the measured process's."""
    if meta.exists():
        return True
    child = multiprocessing.get_context("fork").Process(
        target=build,
        args=(repo, args.files, args.commits, args.stable_commits, args.fork_at, args.seed, meta),
    )
    child.start()
    child.join()
    return child.exitcode == 0


def run(args: argparse.Namespace, repo: Path, wt: Path, meta: Path) -> int:
    t0 = time.perf_counter()
    if not build_once(args, repo, meta):
        return 1
    info = json.loads(meta.read_text())
    n_files = int(git_out(repo, "ls-tree", "-r", "--name-only", "main").count("\n")) + 1
    print(
        f"repository: {n_files} files, {len(info['main']) - 1} mainline commits, "
        f"stable forked at {info['fork'][:12]} (built in {time.perf_counter() - t0:.1f}s)"
    )
    rng = random.Random(args.seed + 1)
    candidates = info["main"][args.fork_at + 2 :]
    picks = sorted(rng.sample(range(len(candidates)), min(args.picks, len(candidates))))
    shas = [candidates[i] for i in picks]

    t_sim, cpu_sim = time.perf_counter(), time.process_time()
    sim = simulate_sequence(repo, info["stable"], shas)
    sim_s = time.perf_counter() - t_sim
    sim_cpu = time.process_time() - cpu_sim
    sim_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    shutil.rmtree(wt, ignore_errors=True)
    git(repo, "worktree", "prune")
    truth, add_s, loop_s = run_git_loop(repo, wt, info["stable"], shas)
    git_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

    mismatches = 0
    for step, (verdict, tree) in zip(sim.steps, truth, strict=True):
        got_tree = step.tree if step.verdict is Verdict.CLEAN else None
        if step.verdict.value != verdict or got_tree != tree:
            mismatches += 1
            print(
                f"  MISMATCH {step.commit}: sim={step.verdict.value} {got_tree} "
                f"git={verdict} {tree}"
            )
    counts = {v.value: sim.count(v) for v in Verdict if sim.count(v)}
    n = len(shas)
    sim_ms, git_ms = 1000 * sim_s / n, 1000 * loop_s / n
    print(f"picks: {n} onto stable; verdicts {counts}; disagreements with git: {mismatches}")
    print(
        f"simulator:        {sim_ms:8.1f} ms/commit  ({sim_s:.2f}s total, "
        f"{1000 * sim_cpu / n:.1f} ms/commit of CPU time: wall time suffers on a loaded machine)"
    )
    print(
        f"git cherry-pick:  {git_ms:8.1f} ms/commit  ({loop_s:.2f}s, plus {add_s:.2f}s "
        f"for git worktree add)"
    )
    print(
        f"ratio:            {git_ms / sim_ms:8.1f}x per commit, "
        f"{(loop_s + add_s) / sim_s:.1f}x including the work tree"
    )
    print(
        f"peak RSS:         simulator process {sim_rss / 1024:.0f} MiB, "
        f"largest git child {git_rss / 1024:.0f} MiB"
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
