"""A world with over a thousand fixes for the dashboard tests, written by git fast-import.

Mainline: a culprit in v6.1, then FIXES commits that each fix it (``Fixes:`` and ``Cc: stable``),
released 200 at a time in v6.2 .. v6.5 (the last 200 unreleased). linux-6.1.y carries backports of
the first BACKPORTED fixes, released 100 at a time (the last 100 unreleased); the rest are still
needed there. linux-6.5.y has no backports: the fixes released by v6.5 are in its base and the
unreleased ones are needed. Some needed fixes of linux-6.1.y are then marked as the simulator and
the stable team would mark them (blocked, manual, already present, failed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from tests.gitutil import FastImport, FileState, git, init_repo
from tracker import usecases
from tracker.config import Config, load_config
from tracker.store.db import Store
from tracker.store.models import Branch, BranchState, StableEvent

FIXES = 1000
PER_RELEASE = 200
BACKPORTED = 700
PER_STABLE_RELEASE = 100
BASE_65 = 4 * PER_RELEASE  # fixes released by v6.5 (linux-6.5.y's base)
CULPRIT_SUBJECT = "mm/hugetlb: share page tables between processes"

CONFIG = """\
[database]
url = "sqlite:///{db}"

[[repositories]]
name = "linux"
path = "linux"

[mainline]
repository = "linux"
ref = "master"

[[branches]]
name = "linux-6.5.y"
base = "v6.5"

[[branches]]
name = "linux-6.1.y"
base = "v6.1"

[[topics]]
name = "hugetlb"
paths = ["mm/hugetlb*.c"]
"""


@dataclass
class BigWorld:
    config: Config
    store: Store
    fixes: list[str]  # mainline order
    backports: list[str]  # linux-6.1.y, branch order; backports[i] backports fixes[i]
    # Needed fixes of linux-6.1.y given a simulator verdict or a stable "failed" mail.
    marked: dict[str, list[str]]

    @property
    def released_61(self) -> list[str]:
        return self.fixes[: BACKPORTED - PER_STABLE_RELEASE]

    @property
    def in_branch_61(self) -> list[str]:
        return self.fixes[BACKPORTED - PER_STABLE_RELEASE : BACKPORTED]

    @property
    def in_base_65(self) -> list[str]:
        return self.fixes[:BASE_65]

    @property
    def needed_65(self) -> list[str]:
        return self.fixes[BASE_65:]


def _file(i: int, text: str) -> dict[str, FileState | None]:
    return {f"mm/hugetlb_{i % 40}.c": FileState(text.encode())}


def build(root: Path, n_fixes: int = FIXES) -> BigWorld:
    """The world with ``n_fixes`` fixes (at least FIXES; benchmarks/dashboard.py builds more)."""
    assert n_fixes >= FIXES
    repo = init_repo(root / "linux")
    fi = FastImport()
    base = fi.commit(
        "refs/heads/master", "Linux 6.0\n", {"mm/hugetlb.c": FileState(b"int pages;\n")}
    )
    culprit = fi.commit(
        "refs/heads/master",
        f"{CULPRIT_SUBJECT}\n\nShare them.\n",
        {"mm/hugetlb.c": FileState(b"int pages;\nint shared;\n")},
        parent=base,
    )
    marks = fi.run(repo)
    git(repo, "tag", "v6.0", marks[base])
    git(repo, "tag", "v6.1", marks[culprit])
    culprit_sha = marks[culprit]

    fi = FastImport(time=fi.time)
    parent = culprit
    fix_marks = []
    fi.chunks.append(b"reset refs/heads/master\nfrom %s\n\n" % culprit_sha.encode())
    for i in range(n_fixes):
        msg = (
            f"mm/hugetlb: fix shared page table race number {i}\n\n"
            f"Race {i} in the shared page tables.\n\n"
            f'Fixes: {culprit_sha[:12]} ("{CULPRIT_SUBJECT}")\n'
            "Cc: stable@vger.kernel.org\n"
        )
        parent = fi.commit("refs/heads/master", msg, _file(i, f"fix {i}\n"))
        fix_marks.append(parent)
    marks = fi.run(repo)
    fixes = [marks[m] for m in fix_marks]
    for r in range(1, (n_fixes - 1) // PER_RELEASE + 1):
        git(repo, "tag", f"v6.{r + 1}", fixes[r * PER_RELEASE - 1])
    git(repo, "branch", "linux-6.5.y", "v6.5")

    fi = FastImport(time=fi.time)
    fi.chunks.append(b"reset refs/heads/linux-6.1.y\nfrom %s\n\n" % culprit_sha.encode())
    bp_marks = []
    for i in range(BACKPORTED):
        msg = (
            f"mm/hugetlb: fix shared page table race number {i}\n\n"
            f"commit {fixes[i]} upstream.\n\nRace {i} in the shared page tables.\n"
        )
        bp_marks.append(fi.commit("refs/heads/linux-6.1.y", msg, _file(i, f"backport {i}\n")))
    marks = fi.run(repo)
    backports = [marks[m] for m in bp_marks]
    for r in range(1, BACKPORTED // PER_STABLE_RELEASE + 1):
        if r * PER_STABLE_RELEASE < BACKPORTED:
            git(repo, "tag", f"v6.1.{r}", backports[r * PER_STABLE_RELEASE - 1])

    (root / "tracker.toml").write_text(CONFIG.format(db=root / "tracker.db"))
    config = load_config(root / "tracker.toml")
    store = usecases.open_store(config)
    usecases.sync(config, store)
    world = BigWorld(config, store, fixes, backports, {})
    _mark(world)
    return world


def _mark(w: BigWorld) -> None:
    """Stored simulator verdicts and one stable "failed" mail, as check and ingest store them."""
    usecases.plan(w.config, w.store, "linux-6.1.y")  # the BranchState rows verdicts live on
    needed = w.fixes[BACKPORTED:]
    w.marked = {
        "blocked": needed[0:4],
        "manual": needed[4:9],
        "already-present": needed[9:12],
        "failed": needed[12:14],
    }
    with w.store.session() as s:
        bid = s.scalar(select(Branch.id).where(Branch.name == "linux-6.1.y"))
        for verdict in ("blocked", "manual", "already-present"):
            for sha in w.marked[verdict]:
                row = s.get(BranchState, (bid, sha))
                assert row is not None
                row.simulation = json.dumps(
                    {"commit": sha, "verdict": verdict, "detail": f"simulated as {verdict}"}
                )
        for n, sha in enumerate(w.marked["failed"]):
            s.add(
                StableEvent(
                    kind="failed",
                    branch="6.1",
                    upstream_sha=sha,
                    message_id=f"failed-{n}@example.org",
                    at=datetime(2026, 1, 2, tzinfo=UTC),
                    details="{}",
                )
            )
