"""``tracker check --plan`` on a kernel-sized plan against a ``git cherry-pick`` loop, same run.

The world (benchmarks/check_world.py) is a git repository whose ``v6.1`` tree is Debian's
linux-source-6.1 tree (78,579 real files) and whose mainline after it is cut from the real
6.1 -> 6.12 difference: about 880 topic fixes with ``Fixes:`` tags to commits before v6.1, among
them fixes that need a small earlier commit, fixes at the end of a long chain, fixes whose region
the stable branch changed its own way, cascading series, already-present fixes; plus feature and
noise commits. ``linux-6.1.y`` is forked at v6.1 with backports, stable-only changes and releases.

Then, in one run, as a user would:

1. ``tracker sync`` and ``tracker plan linux-6.1.y --json`` (timed, not part of the ratio; the
   synced database is kept in the world directory and copied for the next runs, --resync syncs
   again);
2. ``tracker check linux-6.1.y --plan --json`` as a child process, the prerequisite search at its
   default, timed end to end (start-up included) with its own peak RSS (VmHWM, read by the child
   at exit and polled from /proc while it runs, since wait4's ru_maxrss starts at the parent's
   peak); with ``--steps N`` only the plan's first N steps are checked, as
   ``tracker check linux-6.1.y SHA... --json``;
3. ``git worktree add`` of the branch and a ``git cherry-pick`` loop over the steps check
   reported, in its order (conflict: ``--abort``; empty: ``--skip``), timed with the work tree.

It prints the steps, the verdict counts both ways, ``disagreements with git: N`` (any verdict
other than clean or already-present counts as a git conflict; each disagreement is listed), the
times, the ratio and peak memory, and the verdicts per scenario of the generated world.

    .venv/bin/python benchmarks/check_plan.py [--world DIR] [--linux-src DIR] [--steps N]
        [--timeout SECONDS] [--prerequisites MODE] [--profile FILE.prof] [--fixes N]

The world is built once into --world (default /tmp/tracker-check-plan-world, about 1 GB; building
takes a few minutes) and reused while its meta.json exists. Each run works in its own
``run-*`` directory there (config, database, work tree; check's JSON and git's verdicts stay).
The sources are read from --linux-src (default /work/kernel/x/usr/src), which must hold the
unpacked linux-source-6.1 and linux-source-6.12 trees of Debian's packages:

    apt-get download linux-source-6.1 linux-source-6.12
    for p in linux-source-6.1*.deb linux-source-6.12*.deb; do dpkg-deb -x "$p" x; done
    for t in x/usr/src/linux-source-6.1.tar.xz x/usr/src/linux-source-6.12.tar.xz; do
        tar -xf "$t" -C x/usr/src; done      # then --linux-src x/usr/src

--profile runs the checker under cProfile (its time then includes the profiler's overhead) and
prints the functions with the most cumulative and own time; a run stopped by --timeout is
interrupted with SIGTERM so that the profile of what it did is still written.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import check_world

BRANCH = check_world.BRANCH
DEFAULT_SRC = Path("/work/kernel/x/usr/src")
DEFAULT_WORLD = Path("/tmp/tracker-check-plan-world")
GIT_OK = ("clean", "already-present")

# Runs the installed command's entry point in this interpreter and writes the process's own peak
# RSS to $BENCH_MEM at exit (a SIGTERM exits through SystemExit so that atexit and the profile
# still run). With $BENCH_PROFILE set the command runs under cProfile.
_CLI = """\
import atexit, os, signal, sys
def _mem():
    with open(os.environ['BENCH_MEM'], 'w') as out:
        for line in open('/proc/self/status'):
            if line.startswith(('VmHWM:', 'RssAnon:')):
                out.write(line)
atexit.register(_mem)
def _term(*_):
    raise SystemExit(143)
signal.signal(signal.SIGTERM, _term)
sys.argv = ['tracker', *sys.argv[1:]]
from tracker.entry import main
prof = os.environ.get('BENCH_PROFILE')
if prof:
    import cProfile
    p = cProfile.Profile()
    atexit.register(lambda: p.dump_stats(prof))
    p.runcall(main)
else:
    main()
"""


# -- running tracker -----------------------------------------------------------------------------


@dataclass
class Run:
    """One tracker command: wall time, exit status, output, its own peak and private memory."""

    seconds: float
    code: int | None  # None: stopped by the timeout
    stdout: str
    stderr: str
    hwm_mib: float
    private_mib: float


def proc_status(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {
        ln.split(":")[0]: int(ln.split()[1])
        for ln in text.splitlines()
        if ln.startswith(("VmHWM:", "RssAnon:"))
    }


def tracker(
    work: Path, args: Sequence[str], timeout: float | None = None, profile: Path | None = None
) -> Run:
    mem = work / "mem.txt"
    mem.unlink(missing_ok=True)
    env = dict(os.environ, BENCH_MEM=str(mem))
    if profile is not None:
        env["BENCH_PROFILE"] = str(profile)
    cmd = [sys.executable, "-c", _CLI, "--config", str(work / "tracker.toml"), *args]
    with (
        tempfile.TemporaryFile(dir=work) as out,
        tempfile.TemporaryFile(dir=work) as err,
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        polled: dict[str, int] = {}
        code: int | None = None
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                polled = proc_status(proc.pid) or polled
            if timeout is not None and time.perf_counter() - t0 > timeout:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                code = None
                break
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    final = polled
    if mem.exists():
        final = {
            ln.split(":")[0]: int(ln.split()[1]) for ln in mem.read_text().splitlines() if ":" in ln
        }
    hwm = max(final.get("VmHWM", 0), polled.get("VmHWM", 0))
    return Run(seconds, code, stdout, stderr, hwm / 1024, final.get("RssAnon", 0) / 1024)


def must(run: Run, what: str) -> Run:
    if run.code != 0:
        raise SystemExit(f"{what} failed ({run.code}): {run.stderr.strip()[-2000:]}")
    return run


CONFIG = """\
# Written by benchmarks/check_plan.py: the world of benchmarks/check_world.py.
[database]
url = "sqlite:///{db}"

[[repositories]]
name = "linux"
path = "{repo}"

[mainline]
repository = "linux"
ref = "master"
release_tag_pattern = '^v\\d+\\.\\d+$'

[[branches]]
name = "{branch}"
base = "{base}"
stable_tag_pattern = '^v6\\.1\\.\\d+$'

# No [[topics]]: the three default topics (lazy-mmu, mmu_gather, hugetlb).
"""


def write_config(work: Path, repo: Path) -> None:
    text = CONFIG.format(
        db=work / "tracker.db", repo=repo, branch=BRANCH, base=check_world.BASE_TAG
    )
    (work / "tracker.toml").write_text(text)


# -- the git loop --------------------------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV)
    return subprocess.run(
        ["git", "-c", "gc.auto=0", "-c", "core.hooksPath=/dev/null", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


@dataclass
class GitLoop:
    verdicts: list[str]
    trees: list[str | None]
    add_s: float
    loop_s: float


def git_loop(repo: Path, wt: Path, shas: Sequence[str]) -> GitLoop:
    """Cherry-pick shas in order in a new work tree of the branch, as a maintainer would."""
    if wt.exists():
        shutil.rmtree(wt)
    git(repo, "worktree", "prune")
    t0 = time.perf_counter()
    git(repo, "worktree", "add", "-q", "--detach", str(wt), BRANCH)
    add_s = time.perf_counter() - t0
    verdicts: list[str] = []
    trees: list[str | None] = []
    spent = 0.0
    for sha in shas:
        t1 = time.perf_counter()
        p = git(wt, "cherry-pick", sha, check=False)
        if p.returncode == 0:
            verdict = "clean"
        elif "now empty" in p.stdout + p.stderr:
            git(wt, "cherry-pick", "--skip")
            verdict = "already-present"
        else:
            git(wt, "cherry-pick", "--abort")
            verdict = "conflict"
        spent += time.perf_counter() - t1
        verdicts.append(verdict)
        # Not timed: only to compare the trees of clean picks with the simulator's.
        trees.append(
            git(wt, "rev-parse", "HEAD^{tree}").stdout.strip() if verdict == "clean" else None
        )
    return GitLoop(verdicts, trees, add_s, spent)


# -- comparison ----------------------------------------------------------------------------------


@dataclass
class Step:
    sha: str
    subject: str
    verdict: str
    tree: str | None = None
    blocked_by: list[str] = field(default_factory=list)


def steps_from_check(report: dict[str, Any]) -> list[Step]:
    out = []
    for s in report["steps"]:
        sim = s.get("simulation") or {}
        out.append(
            Step(
                s.get("sha") or "",
                s.get("subject") or "",
                str(s.get("verdict")),
                sim.get("tree"),
                list(sim.get("blocked_by") or []),
            )
        )
    return out


def as_git(verdict: str) -> str:
    """What git's loop would report for a simulator verdict (blocked / manual / ... conflict)."""
    return verdict if verdict in GIT_OK else "conflict"


def compare(steps: Sequence[Step], loop: GitLoop) -> tuple[list[str], int, int]:
    """Disagreeing steps (one line each), then clean trees compared and how many differ."""
    lines: list[str] = []
    compared = trees_differ = 0
    for i, (s, g) in enumerate(zip(steps, loop.verdicts, strict=True)):
        if as_git(s.verdict) != g:
            lines.append(f"  {i + 1:>4}. {s.sha[:12]} tracker {s.verdict}, git {g}: {s.subject}")
        elif g == "clean" and s.tree and loop.trees[i]:
            compared += 1
            trees_differ += s.tree != loop.trees[i]
    return lines, compared, trees_differ


# -- world ---------------------------------------------------------------------------------------


def sources(src: Path) -> tuple[Path, Path]:
    old, new = src / "linux-source-6.1", src / "linux-source-6.12"
    for d in (old, new):
        if not (d / "Makefile").is_file():
            raise SystemExit(
                f"{d} is not an unpacked kernel tree. This benchmark reads Debian's kernel "
                "sources: 'apt-get download linux-source-6.1 linux-source-6.12', "
                "'dpkg-deb -x linux-source-6.1_*.deb x' (and the 6.12 one), then "
                "'tar -xf x/usr/src/linux-source-6.1.tar.xz -C x/usr/src' (and 6.12), "
                "and pass --linux-src x/usr/src"
            )
    return old, new


def ensure_world(args: argparse.Namespace) -> dict[str, Any]:
    meta_path = args.world / "meta.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        print(f"world: reusing {args.world} (built in {meta['seconds']['total']:.0f} s)")
        return meta
    old, new = sources(args.linux_src)
    if args.world.exists():
        shutil.rmtree(args.world)  # a build that did not finish
    args.world.mkdir(parents=True)
    opts = check_world.Options(old=old, new=new, fixes=args.fixes, seed=args.seed)
    print(f"world: building {args.world} from {old} and {new} ...", flush=True)
    # A child builds it, so that none of the generator's memory is counted as this process's.
    child = multiprocessing.get_context("fork").Process(
        target=check_world.build, args=(opts, args.world)
    )
    child.start()
    child.join()
    if child.exitcode != 0 or not meta_path.exists():
        raise SystemExit("building the world failed (see above)")
    meta = json.loads(meta_path.read_text())
    print(f"world: built in {meta['seconds']['total']:.0f} s {meta['seconds']}")
    return meta


# -- report --------------------------------------------------------------------------------------


def counts_text(verdicts: Sequence[str]) -> str:
    c = Counter(verdicts)
    return ", ".join(f"{n} {v}" for v, n in sorted(c.items(), key=lambda kv: -kv[1]))


def print_profile(path: Path) -> None:
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).sort_stats(key).print_stats(25)
        print(f"\n== profile of tracker check, by {key} ==")
        print("\n".join(buf.getvalue().splitlines()[6:]))


def scenario_table(meta: dict[str, Any], steps: Sequence[Step], loop: GitLoop) -> list[str]:
    by: dict[str, Counter[str]] = {}
    for s, g in zip(steps, loop.verdicts, strict=True):
        name = meta["scenario"].get(s.sha, "(prerequisite step)")
        by.setdefault(name, Counter())[f"{s.verdict}/{g}"] += 1
    return [
        f"  {name:<24} " + ", ".join(f"{n} {k}" for k, n in sorted(c.items()))
        for name, c in sorted(by.items())
    ]


def synced_database(args: argparse.Namespace, work: Path) -> float:
    """Sync a new database, or copy the one synced before (check --plan writes to it, so every
    run starts from the pristine copy); returns the time the sync took."""
    pristine, figures = args.world / "synced.db", args.world / "sync.json"
    if pristine.exists() and figures.exists() and not args.resync:
        took = json.loads(figures.read_text())
        shutil.copyfile(pristine, work / "tracker.db")
        print(
            f"tracker sync: reusing the database synced in {took['seconds']:.1f} s "
            f"(peak RSS {took['hwm_mib']:.0f} MiB then; --resync to sync again)"
        )
        return float(took["seconds"])
    sync = must(tracker(work, ["sync", "--quiet"]), "tracker sync")
    print(f"tracker sync: {sync.seconds:.1f} s, peak RSS {sync.hwm_mib:.0f} MiB")
    if (work / "tracker.db-wal").exists():
        raise SystemExit("tracker sync left a write-ahead log behind: not copying a live database")
    shutil.copyfile(work / "tracker.db", work / "synced.db")
    os.replace(work / "synced.db", pristine)
    figures.write_text(json.dumps({"seconds": sync.seconds, "hwm_mib": sync.hwm_mib}))
    return sync.seconds


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--world", type=Path, default=DEFAULT_WORLD, help="world cache directory")
    ap.add_argument("--linux-src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--fixes", type=int, default=880, help="planned fixes (a new world only)")
    ap.add_argument("--seed", type=int, default=10, help="generator seed (a new world only)")
    ap.add_argument("--steps", type=int, default=None, help="check only the plan's first N steps")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds for tracker check")
    ap.add_argument(
        "--prerequisites", default=None, help="pass --prerequisites MODE (default: tracker's)"
    )
    ap.add_argument("--profile", type=Path, default=None, help="cProfile dump of tracker check")
    ap.add_argument("--resync", action="store_true", help="sync anew, not from the saved database")
    args = ap.parse_args(argv)
    # Progress lines must show when written, also when the output goes to a file.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    meta = ensure_world(args)
    repo = args.world / "linux.git"
    # A directory per run: two runs on one world (another tracker checkout) do not collide.
    work = Path(tempfile.mkdtemp(dir=args.world, prefix=time.strftime("run-%Y%m%d-%H%M%S-")))
    write_config(work, repo)
    print(
        f"world: {meta['files']:,} files at {check_world.BASE_TAG}, "
        f"{meta['mainline_commits']:,} mainline commits after it ({meta['fixes']} fixes), "
        f"{meta['stable_commits']} stable commits"
    )

    sync_s = synced_database(args, work)
    plan_run = must(tracker(work, ["plan", BRANCH, "--json"]), "tracker plan")
    plan = json.loads(plan_run.stdout)
    ordered = [s for s in plan["steps"] if s.get("position")]
    ordered.sort(key=lambda s: s["position"])
    print(f"tracker plan: {plan_run.seconds:.1f} s, {len(ordered)} numbered steps")

    help_text = must(tracker(work, ["check", "--help"]), "tracker check --help").stdout
    cmd = ["check", BRANCH]
    if args.steps is not None and args.steps < len(ordered):
        ordered = ordered[: args.steps]
        cmd += [s["sha"] for s in ordered]
        mode = f"the plan's first {len(ordered)} steps, as SHA arguments"
    else:
        cmd.append("--plan")
        mode = "--plan"
    if args.prerequisites is not None:
        if "--prerequisites" not in help_text:
            raise SystemExit("this tracker check has no --prerequisites option")
        cmd += ["--prerequisites", args.prerequisites]
    cmd.append("--json")
    search = args.prerequisites or "default"
    print(f"tracker check {BRANCH} ({mode}, prerequisite search: {search}) ...", flush=True)
    if args.profile is not None:
        args.profile.unlink(missing_ok=True)
    loads = {"before check": os.getloadavg()}
    check = tracker(work, cmd, timeout=args.timeout, profile=args.profile)
    loads["after check"] = os.getloadavg()
    if check.code is None:
        print(
            f"tracker check: stopped after {check.seconds:.0f} s (--timeout), "
            f"peak RSS {check.hwm_mib:.0f} MiB; stderr tail: {check.stderr.strip()[-500:]}"
        )
        steps = [Step(s["sha"], s.get("subject", ""), "(not checked)") for s in ordered]
    else:
        must(check, "tracker check")
        report = json.loads(check.stdout)
        steps = steps_from_check(report)
        print(
            f"tracker check: {check.seconds:.1f} s, rounds {report.get('rounds')}, "
            f"prerequisites added {len(report.get('prerequisites_added') or [])}"
        )
        if report.get("stats"):  # the search's own accounting, when the checker reports one
            print(f"tracker check stats: {json.dumps(report['stats'])}")

    loop = git_loop(repo, work / "wt", [s.sha for s in steps])
    loads["after git"] = os.getloadavg()
    # Kept for a closer look: what tracker printed, and git's verdict per step.
    (work / "check.json").write_text(check.stdout)
    (work / "check.stderr").write_text(check.stderr)
    (work / "git.json").write_text(
        json.dumps(list(zip([s.sha for s in steps], loop.verdicts, strict=True)))
    )
    git_s = loop.add_s + loop.loop_s

    print()
    print(f"steps: {len(steps)}")
    print(f"tracker verdicts: {counts_text([s.verdict for s in steps])}")
    print(f"git verdicts:     {counts_text(loop.verdicts)}")
    conflicts = sum(1 for v in loop.verdicts if v == "conflict")
    share = 100 * conflicts / max(1, len(steps))
    print(f"git conflicts:    {conflicts} of {len(steps)} ({share:.0f}%)")
    if check.code is None:
        print("disagreements with git: not known (tracker check did not finish)")
    else:
        lines, compared, trees_differ = compare(steps, loop)
        print(f"disagreements with git: {len(lines)}")
        for ln in lines:
            print(ln)
        print(f"trees of clean picks: {trees_differ} of {compared} differ from git's")
        print("verdicts per scenario (tracker/git):")
        for ln in scenario_table(meta, steps, loop):
            print(ln)
    print(
        f"time, tracker check: {check.seconds:.1f} s end to end (start-up included)"
        + (" [stopped by --timeout]" if check.code is None else "")
    )
    print(
        f"time, git:           {git_s:.1f} s ({loop.add_s:.1f} s git worktree add, counted: "
        "a git user needs a work tree; "
        f"{loop.loop_s:.1f} s cherry-pick loop, {1000 * loop.loop_s / max(1, len(steps)):.0f} "
        "ms per step)"
    )
    ratio = git_s / check.seconds
    print(
        f"ratio: {ratio:.1f}x"
        + (" (tracker stopped early: not a result)" if check.code is None else "")
    )
    print(
        f"peak memory: tracker check {check.hwm_mib:.0f} MiB RSS (VmHWM; private "
        f"{check.private_mib:.0f} MiB at exit)"
    )
    print(
        "load average (1, 5, 15 min; the machine's, other processes included): "
        + "; ".join(f"{k} {a:.2f} {b:.2f} {c:.2f}" for k, (a, b, c) in loads.items())
        + f"; {os.cpu_count()} CPUs"
    )
    print(f"generation: {meta['seconds']}; sync {sync_s:.1f} s; plan {plan_run.seconds:.1f} s")
    if args.profile is not None and args.profile.exists():
        print_profile(args.profile)
    sys.stdout.flush()
    git(repo, "worktree", "remove", "--force", str(work / "wt"), check=False)
    (work / "tracker.db").unlink()  # the JSON and git's verdicts stay in the run directory
    print(f"outputs kept in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
