"""The stable queue as a source: a real stable-queue-shaped git repository built here, with the
two real queue patches of ``tests/data/samples/stable-queue`` among generated ones, read head by
head (patches added, reordered, dropped, released) into SQLite and PostgreSQL, and the plans,
status, review mails and dashboard that use it."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.gitutil import commit_files, git, init_repo
from tests.test_parse_patch import _hunks_by_file, _images
from tracker import usecases
from tracker.config import Config, parse_config
from tracker.decide import Step
from tracker.gitio import GitRepo
from tracker.ingest.sources import SourceReport
from tracker.ingest.stablequeue import git_form, parse_queue_file, parse_series, release_of
from tracker.report.mails import MailContext
from tracker.store.db import Store
from tracker.store.models import QueuePatch, SyncRun

SAMPLES = Path(__file__).parent / "data" / "samples" / "stable-queue" / "releases"
REAL_MM = SAMPLES / "6.6.88" / "mm-fix-lazy-mmu-docs-and-usage.patch"
REAL_SPARC = (
    SAMPLES / "6.12.24" / "sparc-mm-avoid-calling-arch_enter-leave_lazy_mmu-in-set_ptes.patch"
)
REAL_MM_SHA = "691ee97e1a9de0cdb3efb893c1f180e3f4a35e32"
REAL_SPARC_SHA = "eb61ad14c459b54f71f76331ca35d12fa3eb8f98"


# ------------------------------------------------------------------------------------------
# Pure parts


def test_series_file_order_comments_and_options() -> None:
    data = b"# comment\nfirst.patch\n\n  second.patch -p1  # why\nthird.patch\n"
    assert parse_series(data) == ["first.patch", "second.patch", "third.patch"]


def test_release_directories_of_a_series() -> None:
    assert release_of("6.12.24", "6.12") == "6.12.24"
    assert release_of("6.12.24", "6.1") is None
    assert release_of("6.1.24", "6.1") == "6.1.24"
    assert release_of("6.12", "6.12") is None
    assert release_of("6.12.x", "6.12") is None


def test_real_queue_files_parse() -> None:
    mm = parse_queue_file(REAL_MM.read_bytes(), with_diff=True)
    assert mm.subject == "mm: fix lazy mmu docs and usage"
    assert mm.upstream == REAL_MM_SHA
    assert mm.author == "Ryan Roberts <ryan.roberts@arm.com>"
    assert mm.diff is not None and mm.diff.form == "plain"
    sparc = parse_queue_file(REAL_SPARC.read_bytes())
    assert sparc.subject == "sparc/mm: avoid calling arch_enter/leave_lazy_mmu() in set_ptes"
    assert sparc.upstream == REAL_SPARC_SHA


def test_sasha_form_and_stable_dep_of() -> None:
    text = (
        "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n"
        "From: A <a@example.org>\nSubject: [PATCH] x: prepare\n\n"
        "[ Upstream commit 2222222222222222222222222222222222222222 ]\n\nbody\n\n"
        'Stable-dep-of: 333333333333 ("x: fix")\nSigned-off-by: Sasha Levin <s@k.org>\n'
        "---\n a | 1 +\n\ndiff --git a/a b/a\nindex 1..2 100644\n--- a/a\n+++ b/a\n"
        "@@ -1 +1,2 @@\n a\n+b\n"
    )
    f = parse_queue_file(text.encode())
    assert f.upstream == "2222222222222222222222222222222222222222"
    assert f.subject == "x: prepare"
    assert [r.sha for r in f.stable_dep_of] == ["333333333333"]


# ------------------------------------------------------------------------------------------
# A mainline repository and a stable-queue repository, built with git


@dataclass
class QueueWorld:
    root: Path
    linux: Path
    queue: Path
    shas: dict[str, str]

    def patch(self, name: str, *, style: str = "greg", dep_of: str | None = None) -> bytes:
        """The queue file of mainline commit ``name``, as Greg (plain diff, ``commit X
        upstream.``) or Sasha (git diff, ``[ Upstream commit X ]``) writes it."""
        sha = self.shas[name]
        raw = git(self.linux, "format-patch", "-1", "--stdout", "--no-signature", sha).stdout
        head, _, rest = raw.decode().partition("\n\n")
        ref = f"commit {sha} upstream." if style == "greg" else f"[ Upstream commit {sha} ]"
        msg, _, diff = rest.partition("\n---\n")
        if dep_of:
            msg = msg.rstrip("\n") + f'\n\nStable-dep-of: {self.shas[dep_of][:12]} ("x")\n'
        if style == "greg":
            diff = "\n".join(
                ln for ln in diff.split("\n") if not ln.startswith(("diff --git", "index "))
            )
        return f"{head}\n\n{ref}\n\n{msg}\n---\n{diff}".encode()


FILLER = "".join(f"int filler_{i};\n" for i in range(40))


def _culprit_files() -> dict[str, str]:
    return {f"mm/{n}.c": f"/* {n} */\n{FILLER}int {n}_value = 1;\n{FILLER}" for n in "abcdef"}


def _fix(world_files: dict[str, str], n: str, new: str) -> dict[str, str]:
    text = re.sub(rf"int {n}_value = \d+;", f"int {n}_value = {new};", world_files[f"mm/{n}.c"])
    world_files[f"mm/{n}.c"] = text
    return {f"mm/{n}.c": text}


def build_world(root: Path) -> QueueWorld:
    linux = init_repo(root / "linux")
    files = _culprit_files()
    images = {}
    for real in (REAL_MM, REAL_SPARC):
        diff = parse_queue_file(real.read_bytes(), with_diff=True).diff
        assert diff is not None
        for path, (_, _, hunks) in _hunks_by_file(diff.text).items():
            images[path] = _images(path, hunks)
    pre = {p: "".join(line + "\n" for line in old) for p, (old, _) in images.items()}
    post = {p: "".join(line + "\n" for line in new) for p, (_, new) in images.items()}
    shas: dict[str, str] = {}
    t = 1_700_000_000
    shas["base"] = commit_files(linux, {**files, **pre}, "Initial import", date=t)
    shas["culprit"] = commit_files(
        linux, _fix(files, "a", "2"), "mm: add the a value\n\nA change that breaks.", date=t + 10
    )
    git(linux, "tag", "v6.12")
    culprit = shas["culprit"][:12]
    fixes = f'Fixes: {culprit} ("mm: add the a value")'
    t += 100
    for name, n in (("f1", "b"), ("f2", "c"), ("f3", "d"), ("p5", "e")):
        body = f"mm/{n}: fix {name}\n\nReason.\n\n{fixes if name != 'p5' else 'Cleanup.'}\n"
        shas[name] = commit_files(linux, _fix(files, n, "3"), body, date=t)
        t += 10
    shas["f4"] = commit_files(
        linux,
        _fix(files, "b", "4"),
        f'mm/b: fix the fix\n\nFixes: {shas["f1"][:12]} ("mm/b: fix f1")\n',
        date=t,
    )
    shas["f5"] = commit_files(
        linux, _fix(files, "e", "5"), f"mm/e: fix f5\n\n{fixes}\n", date=t + 5
    )
    mm_path = "include/linux/pgtable.h"
    shas["mm"] = commit_files(
        linux,
        {mm_path: post[mm_path]},
        f"mm: fix lazy mmu docs and usage\n\n{fixes}\n",
        date=t + 20,
    )
    sparc_path = "arch/sparc/include/asm/pgtable_64.h"
    shas["sparc"] = commit_files(
        linux,
        {sparc_path: post[sparc_path]},
        f"sparc/mm: avoid calling arch_enter/leave_lazy_mmu() in set_ptes\n\n{fixes}\n",
        date=t + 30,
    )
    # The stable branch: f3 backported and released in v6.12.1.
    git(linux, "checkout", "-q", "-b", "linux-6.12.y", "v6.12")
    msg = f"mm/d: fix f3\n\ncommit {shas['f3']} upstream.\n\n{fixes}\n"
    shas["f3-stable"] = commit_files(linux, {"mm/d.c": files["mm/d.c"]}, msg, date=t + 40)
    git(linux, "tag", "v6.12.1")
    git(linux, "checkout", "-q", "main")
    queue = init_repo(root / "stable-queue")
    return QueueWorld(root=root, linux=linux, queue=queue, shas=shas)


def queue_commit(w: QueueWorld, files: dict[str, bytes | str | None], msg: str) -> str:
    return commit_files(w.queue, files, msg)


def series(*names: str) -> str:
    return "".join(n + "\n" for n in names)


def config(w: QueueWorld, url: str, queue_path: Path | None = None) -> Config:
    return parse_config(
        {
            "database": {"url": url},
            "repositories": [{"name": "linux", "path": str(w.linux)}],
            "mainline": {"ref": "main"},
            "branches": [{"name": "linux-6.12.y", "base": "v6.12"}],
            "topics": [{"name": "all", "paths": ["*"]}],
            "sources": [
                {"name": "queue", "kind": "stable-queue", "path": str(queue_path or w.queue)}
            ],
        },
        None,
    )


@pytest.fixture(scope="module")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> QueueWorld:
    return build_world(tmp_path_factory.mktemp("queueworld"))


@pytest.fixture
def qworld(world_template: QueueWorld, tmp_path: Path) -> QueueWorld:
    root = tmp_path / "w"
    shutil.copytree(world_template.root, root, symlinks=True)
    return QueueWorld(
        root=root, linux=root / "linux", queue=root / "stable-queue", shas=world_template.shas
    )


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "postgresql":
        server = request.getfixturevalue("pg_server")
        url = str(server.create_database())
        yield url
        server.drop_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'tracker.db'}"


def rows(store: Store) -> dict[str, tuple[object, ...]]:
    with store.session() as s:
        return {
            f"{r.directory}/{r.filename}": (
                r.state,
                r.position,
                r.total,
                r.upstream_sha,
                r.link_rule,
                r.release,
                r.dropped_head,
                r.error,
            )
            for r in s.scalars(select(QueuePatch))
        }


def sync_all(cfg: Config, store: Store) -> list[SourceReport]:
    reports = usecases.sync_sources(cfg, store)
    usecases.sync(cfg, store)
    return reports


def plan_steps(cfg: Config, store: Store) -> dict[str, Step]:
    return {st.sha: st for st in usecases.plan(cfg, store, "linux-6.12.y").steps}


# ------------------------------------------------------------------------------------------
# The history of one queue, head by head


def test_queue_history(qworld: QueueWorld, db_url: str) -> None:
    w = qworld
    cfg = config(w, db_url)
    store = usecases.open_store(cfg)
    sh = w.shas
    mm_noref = REAL_MM.read_bytes().replace(f"commit {REAL_MM_SHA} upstream.\n\n".encode(), b"")
    assert mm_noref != REAL_MM.read_bytes()

    # 1. Patches added: two generated ones, the two real ones, and the real mm patch without
    #    its upstream line (found by patch-id); also a 6.6 release this config does not map.
    h1 = queue_commit(
        w,
        {
            "queue-6.12/series": series("f1.patch", "f2.patch", REAL_SPARC.name, "mm-noref.patch"),
            "queue-6.12/f1.patch": w.patch("f1"),
            "queue-6.12/f2.patch": w.patch("f2", style="sasha"),
            f"queue-6.12/{REAL_SPARC.name}": REAL_SPARC.read_bytes(),
            "queue-6.12/mm-noref.patch": mm_noref,
            "queue-6.12/not-in-series.patch": w.patch("f3"),
            f"releases/6.6.88/{REAL_MM.name}": REAL_MM.read_bytes(),
        },
        "6.12 patches added",
    )
    # Sources sync before git (as `tracker sync` does): the patch-id link waits for git.
    reports = usecases.sync_sources(cfg, store)
    assert reports[0].failed is None
    assert [e.split(":")[0] for e in reports[0].counts.errors] == ["queue-6.12/mm-noref.patch"]
    assert rows(store)["queue-6.12/mm-noref.patch"][3] is None
    usecases.sync(cfg, store)
    got = rows(store)
    assert got["queue-6.12/f1.patch"][:5] == ("queued", 1, 4, sh["f1"], "upstream-line")
    assert got["queue-6.12/f2.patch"][:5] == ("queued", 2, 4, sh["f2"], "upstream-line")
    assert got[f"queue-6.12/{REAL_SPARC.name}"][:5] == (
        "queued",
        3,
        4,
        REAL_SPARC_SHA,
        "upstream-line",
    )
    assert got["queue-6.12/mm-noref.patch"][:5] == ("queued", 4, 4, sh["mm"], "patch-id")
    # Only the series' files are queued, and only mapped series are read.
    assert set(got) == {
        "queue-6.12/f1.patch",
        "queue-6.12/f2.patch",
        f"queue-6.12/{REAL_SPARC.name}",
        "queue-6.12/mm-noref.patch",
    }
    steps = plan_steps(cfg, store)
    assert steps[sh["f1"]].status == "queued" and steps[sh["f1"]].position == 1
    assert steps[sh["f2"]].position == 2
    assert steps[sh["mm"]].position == 3  # the third queued fix tracker plans (4th in series)
    assert steps[sh["mm"]].queue is not None and steps[sh["mm"]].queue.position == 4
    assert steps[sh["f1"]].reason.startswith("queued for 6.12 (position 1 of 4)")
    assert steps[sh["f1"]].order_reason == "in queue order: patch 1 of 4 of queue-6.12/series"
    # The rest as before, after the queue: f4 (fix of the queued f1), f5, the sparc commit
    # (the real sparc patch names the real upstream commit, not this repository's).
    assert steps[sh["f3"]].status == "released"
    rest = sorted((st.position or 0, sha) for sha, st in steps.items() if st.status == "needed")
    assert [sha for _, sha in rest] == [sh["f4"], sh["f5"], sh["sparc"]]
    assert [p for p, _ in rest] == [4, 5, 6]

    # 2. Reordered, with the fix of a fix and a prerequisite queued.
    h2 = queue_commit(
        w,
        {
            "queue-6.12/series": series(
                "mm-noref.patch",
                REAL_SPARC.name,
                "f2.patch",
                "f1.patch",
                "f4.patch",
                "p5.patch",
                "f5.patch",
            ),
            "queue-6.12/f4.patch": w.patch("f4"),
            "queue-6.12/p5.patch": w.patch("p5", dep_of="f5"),
            "queue-6.12/f5.patch": w.patch("f5"),
        },
        "reordered",
    )
    sync_all(cfg, store)
    got = rows(store)
    assert got["queue-6.12/mm-noref.patch"][:3] == ("queued", 1, 7)
    assert got["queue-6.12/f1.patch"][:3] == ("queued", 4, 7)
    steps = plan_steps(cfg, store)
    order = sorted((st.position, sha) for sha, st in steps.items() if st.position)
    assert [sha for _, sha in order] == [
        sh["mm"],
        sh["f2"],
        sh["f1"],
        sh["f4"],
        sh["f5"],
        sh["sparc"],
    ]
    assert all(not st.flags for st in steps.values())

    # 3. Dropped: f1 (so its fix f4 loses what it fixes) and p5 (the Stable-dep-of of f5).
    h3 = queue_commit(
        w,
        {
            "queue-6.12/series": series(
                "mm-noref.patch", REAL_SPARC.name, "f2.patch", "f4.patch", "f5.patch"
            ),
            "queue-6.12/f1.patch": None,
        },
        "drop f1 and p5",
    )
    sync_all(cfg, store)
    got = rows(store)
    assert got["queue-6.12/f1.patch"][0] == "dropped" and got["queue-6.12/f1.patch"][6] == h3
    assert got["queue-6.12/p5.patch"][0] == "dropped"
    steps = plan_steps(cfg, store)
    f1 = steps[sh["f1"]]
    assert f1.status == "needed" and "dropped from the 6.12 queue at stable-queue" in f1.reason
    assert h3[:12] in f1.reason
    f4, f5 = steps[sh["f4"]], steps[sh["f5"]]
    assert f4.status == "queued" and len(f4.flags) == 1 and sh["f1"][:12] in f4.flags[0]
    assert "neither queued for 6.12 nor in linux-6.12.y" in f4.flags[0]
    assert "FLAG:" in f4.reason
    assert len(f5.flags) == 1 and sh["p5"][:12] in f5.flags[0] and "Stable-dep-of" in f5.flags[0]
    why = usecases.why(cfg, store, sh["f4"], "linux-6.12.y")
    assert any("neither queued" in e for e in why.chain[0].evidence)
    # The dropped f1 is planned again after the queue.
    assert f1.position is not None and f1.position > max(
        st.position or 0 for st in steps.values() if st.status == "queued"
    )

    # 4. Released: the queue moves to releases/6.12.2; f5 stays queued for the next release,
    #    with two bad entries: a file named in series that is not there, and a patch with
    #    neither an upstream line nor a known patch-id.
    moved = {
        f"queue-6.12/{n}": None
        for n in ("mm-noref.patch", REAL_SPARC.name, "f2.patch", "f4.patch", "series", "p5.patch")
    }
    orphan = (
        b"From: X <x@example.org>\nSubject: [PATCH] orphan\n\nNo reference.\n---\n"
        b"--- a/mm/z.c\n+++ b/mm/z.c\n@@ -1 +1 @@\n-old z\n+new z\n"
    )
    h4 = queue_commit(
        w,
        {
            **moved,
            "releases/6.12.2/series": series(
                "mm-noref.patch", REAL_SPARC.name, "f2.patch", "f4.patch"
            ),
            "releases/6.12.2/mm-noref.patch": mm_noref,
            f"releases/6.12.2/{REAL_SPARC.name}": REAL_SPARC.read_bytes(),
            "releases/6.12.2/f2.patch": w.patch("f2", style="sasha"),
            "releases/6.12.2/f4.patch": w.patch("f4"),
            "queue-6.12/series": series("f5.patch", "missing.patch", "orphan.patch"),
            "queue-6.12/orphan.patch": orphan,
        },
        "Linux 6.12.2",
    )
    reports = sync_all(cfg, store)
    assert reports[0].failed is None
    errors = reports[0].counts.errors
    assert any("missing.patch" in e and "not in the clone" in e for e in errors)
    assert any("orphan.patch" in e and "no mainline commit synced" in e for e in errors)
    got = rows(store)
    assert got["queue-6.12/f2.patch"][0] == "released" and got["queue-6.12/f2.patch"][5] == "6.12.2"
    assert got["releases/6.12.2/f4.patch"][0] == "released"
    assert got["queue-6.12/missing.patch"][:3] == ("queued", 2, 3)
    assert (
        got["queue-6.12/orphan.patch"][0] == "queued" and got["queue-6.12/orphan.patch"][3] is None
    )
    assert "not linked" in str(got["queue-6.12/orphan.patch"][7])
    assert got["queue-6.12/f5.patch"][:3] == ("queued", 1, 3)
    steps = plan_steps(cfg, store)
    f2 = steps[sh["f2"]]
    assert f2.status == "released" and f2.release == "6.12.2" and f2.stable_sha is None
    assert "no linux-6.12.y commit for it synced yet" in f2.reason
    assert steps[sh["mm"]].release == "6.12.2"
    assert steps[sh["f5"]].position == 1
    # f5's prerequisite p5 was dropped, never released: still flagged.
    assert steps[sh["f5"]].flags

    # Sync twice: the same head adds nothing and changes nothing.
    before = rows(store)
    again = usecases.sync_sources(cfg, store)
    assert again[0].counts.documents == 0 and again[0].counts.stable_events == 0
    assert rows(store) == before
    assert {sha: st.to_dict() for sha, st in plan_steps(cfg, store).items()} == {
        sha: st.to_dict() for sha, st in steps.items()
    }

    # reparse parses every queue file again from the clone: same rows.
    counts = usecases.reparse(cfg, store)
    assert counts.documents == 6  # the files at this head: releases/6.12.2/*, f5, orphan
    assert rows(store) == before

    # status: the queue position and the release, in text and JSON.
    rep = usecases.status(cfg, store, sh["f5"])
    row = rep.rows[0]
    assert row.step.status == "queued"
    assert row.step.reason.startswith("queued for 6.12 (position 1 of 3)")
    data = rep.to_dict()["branches"][0]  # type: ignore[index]
    assert data["queue"]["position"] == 1 and data["queue"]["total"] == 3
    assert data["queue"]["head"] == h2  # queued since the second head
    # A commit that is no topic fix but is queued (p5 had no Fixes:) says so too.
    p5 = usecases.status(cfg, store, sh["p5"]).rows[0].step
    assert p5.status == "absent" and "dropped from the 6.12 queue" in p5.reason
    del h1, h4
    store.close()


def test_real_queue_patch_ids_are_gits(qworld: QueueWorld) -> None:
    """The patch-id of each real queue file (fed to git on stdin, rewritten into git form) is
    the one git gives the mainline commit with the same change."""
    repo = GitRepo(qworld.linux)
    for name, real in (("mm", REAL_MM), ("sparc", REAL_SPARC)):
        diff = parse_queue_file(real.read_bytes(), with_diff=True).diff
        assert diff is not None
        [queue_id] = repo.stable_patch_ids([git_form(diff)])
        assert queue_id is not None
        assert queue_id == repo.patch_ids([qworld.shas[name]])[qworld.shas[name]]
        # Fed as it is, git sees no patch in Greg's plain form: hence the rewrite.
        assert repo.stable_patch_ids([real.read_bytes()]) == [None]


def test_mail_queued_then_queue_dropped(qworld: QueueWorld, tmp_path: Path) -> None:
    """The queue's own history wins over an older "added to the 6.12-stable tree" mail."""
    from tracker.decide import QueueSlot, StableEventInfo, World, decide
    from tracker.store.snapshot import load_branch, load_fixes, load_world

    w = qworld
    cfg = config(w, f"sqlite:///{tmp_path / 't.db'}")
    store = usecases.open_store(cfg)
    usecases.sync(cfg, store)
    with store.session() as s:
        view = load_branch(s, cfg.branches[0])
        fixes = load_fixes(s, view.base_index, ["all"])
        world = load_world(s, fixes)
    sha = w.shas["f1"]
    mail = StableEventInfo("queued", "6.12", "2026-01-01T00:00:00+00:00", "m@x", "f1.patch")
    dropped = QueueSlot(
        "6.12", "dropped", "queue-6.12/f1.patch", None, None, None, "a" * 40, "b" * 40
    )
    with_mail = World(commits=world.commits, stable_events={sha: (mail,)})
    assert {s.sha: s for s in decide(view, fixes, with_mail).steps}[sha].status == "queued"
    both = World(commits=world.commits, stable_events={sha: (mail,)}, queue={sha: (dropped,)})
    step = {s.sha: s for s in decide(view, fixes, both).steps}[sha]
    assert step.status == "needed" and "dropped from the 6.12 queue" in step.reason
    assert any("queued mail" in e for e in step.evidence)
    store.close()


def test_bad_sources_are_recorded_and_lose_nothing(qworld: QueueWorld, tmp_path: Path) -> None:
    w = qworld
    not_git = tmp_path / "not-a-clone"
    not_git.mkdir()
    (not_git / "queue-6.12").mkdir()
    cfg = parse_config(
        {
            "database": {"url": f"sqlite:///{tmp_path / 't.db'}"},
            "repositories": [{"name": "linux", "path": str(w.linux)}],
            "mainline": {"ref": "main"},
            "branches": [{"name": "linux-6.12.y", "base": "v6.12"}],
            "topics": [{"name": "all", "paths": ["*"]}],
            "sources": [
                {"name": "broken", "kind": "stable-queue", "path": str(not_git)},
                {"name": "queue", "kind": "stable-queue", "path": str(w.queue)},
                {"name": "empty", "kind": "stable-queue", "path": str(init_repo(tmp_path / "e"))},
                {"name": "gone", "kind": "stable-queue", "path": str(tmp_path / "nowhere")},
            ],
        },
        None,
    )
    queue_commit(
        w,
        {"queue-6.12/series": series("f2.patch"), "queue-6.12/f2.patch": w.patch("f2")},
        "one patch",
    )
    store = usecases.open_store(cfg)
    broken, good, empty, gone = usecases.sync_sources(cfg, store)
    assert empty.failed is not None and "cannot read HEAD" in empty.failed
    assert gone.failed is not None and "not a git repository" in gone.failed
    assert broken.failed is not None and "not a git repository" in broken.failed
    assert str(not_git) in broken.failed
    assert good.failed is None and good.counts.documents == 1
    with store.session() as s:
        runs = {r.source: (r.status, r.error) for r in s.scalars(select(SyncRun))}
    assert runs["broken"][0] == "failed" and "not a git repository" in str(runs["broken"][1])
    # The CLI says so in one line and exits 7 after syncing the others.
    from tracker.cli import main

    cfg_file = tmp_path / "tracker.toml"
    cfg_file.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n'
        f'[[repositories]]\nname = "linux"\npath = "{w.linux}"\n'
        '[mainline]\nref = "main"\n'
        '[[branches]]\nname = "linux-6.12.y"\nbase = "v6.12"\n'
        '[[topics]]\nname = "all"\npaths = ["*"]\n'
        f'[[sources]]\nname = "broken"\nkind = "stable-queue"\npath = "{not_git}"\n'
        f'[[sources]]\nname = "queue"\nkind = "stable-queue"\npath = "{w.queue}"\n'
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(cfg_file), "sync", "--quiet"])
    assert exit_info.value.code == 7
    cli_store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    with cli_store.session() as s:
        assert s.scalar(select(QueuePatch.filename)) == "f2.patch"
    cli_store.close()
    store.close()


def test_config_mapping(tmp_path: Path) -> None:
    from tracker.errors import ConfigError

    base = {
        "repositories": [{"name": "linux", "path": str(tmp_path)}],
        "branches": [
            {"name": "linux-6.12.y", "base": "v6.12"},
            {"name": "linux-6.1.y", "base": "v6.1"},
        ],
        "topics": [{"name": "all", "paths": ["*"]}],
    }
    src = {"name": "q", "kind": "stable-queue", "path": "sq"}
    cfg = parse_config({**base, "sources": [src]}, None)
    assert cfg.sources[0].queues == (("linux-6.12.y", "queue-6.12"), ("linux-6.1.y", "queue-6.1"))
    cfg = parse_config({**base, "sources": [{**src, "queues": {"linux-6.1.y": "q-6.1"}}]}, None)
    assert dict(cfg.sources[0].queues)["linux-6.1.y"] == "q-6.1"
    for bad in ({"linux-5.4.y": "queue-5.4"}, {"linux-6.1.y": "../x"}, {"linux-6.1.y": "-x"}):
        with pytest.raises(ConfigError, match="queues"):
            parse_config({**base, "sources": [{**src, "queues": bad}]}, None)
    with pytest.raises(ConfigError, match="path"):
        parse_config({**base, "sources": [{"name": "q", "kind": "stable-queue", "url": "x"}]}, None)
    other = {"name": "m", "kind": "mbox", "path": "x", "queues": {"linux-6.1.y": "q"}}
    assert parse_config({**base, "sources": [other]}, None).sources[0].queues == ()


# ------------------------------------------------------------------------------------------
# The review series from the queue


def _mail_context(cfg: Config, store: Store) -> MailContext:
    from datetime import UTC, datetime

    from tracker.report.email import MailSettings
    from tracker.report.render import Renderer

    n = iter(range(1, 1000))
    settings = MailSettings.from_config(
        cfg.email,
        clock=lambda: datetime(2026, 1, 28, 14, 53, tzinfo=UTC),
        make_id=lambda: f"<q.{next(n)}@tracker.test>",
    )
    return MailContext(cfg, store, Renderer(None), settings)


def test_review_series_from_the_queue(qworld: QueueWorld, tmp_path: Path) -> None:
    from tracker.errors import UnknownCommitError
    from tracker.report.email import MailError
    from tracker.report.mails import review_series

    w = qworld
    queue_commit(
        w,
        {
            "queue-6.12/series": series("f2.patch", REAL_SPARC.name, "f4.patch"),
            "queue-6.12/f2.patch": w.patch("f2", style="sasha"),
            f"queue-6.12/{REAL_SPARC.name}": REAL_SPARC.read_bytes(),
            "queue-6.12/f4.patch": w.patch("f4"),
        },
        "three queued",
    )
    cfg = config(w, f"sqlite:///{tmp_path / 't.db'}")
    store = usecases.open_store(cfg)
    sync_all(cfg, store)
    mails = review_series(_mail_context(cfg, store), "linux-6.12.y")
    subjects = [m.subject for m in mails]
    assert subjects == [
        "[PATCH 6.12 0/3] 6.12.2-rc1 review",
        "[PATCH 6.12 1/3] mm/c: fix f2",
        "[PATCH 6.12 2/3] sparc/mm: avoid calling arch_enter/leave_lazy_mmu() in set_ptes",
        "[PATCH 6.12 3/3] mm/b: fix the fix",
    ]
    cover, f2, sparc, _ = (m.as_bytes().decode() for m in mails)
    assert "arch/sparc/include/asm/pgtable_64.h" in cover and "mm/c.c" in cover
    assert "Ryan Roberts <ryan.roberts@arm.com>\n    sparc/mm: avoid" in cover
    assert f"[ Upstream commit {REAL_SPARC_SHA} ]" in sparc
    assert f"commit {REAL_SPARC_SHA} upstream." not in sparc
    assert "From: Ryan Roberts <ryan.roberts@arm.com>" in sparc
    assert "-\tarch_enter_lazy_mmu_mode();" in sparc and "Fixes: 1a10a44dfc1d" in sparc
    assert f2.count(f"[ Upstream commit {w.shas['f2']} ]") == 1
    # --from branch: the branch's commits after its latest release (none here).
    with pytest.raises(UnknownCommitError, match="nothing to review"):
        review_series(_mail_context(cfg, store), "linux-6.12.y", source="branch")
    # A series naming a file the clone lacks is refused, not sent short.
    queue_commit(w, {"queue-6.12/series": series("f2.patch", "gone.patch")}, "broken series")
    usecases.sync_sources(cfg, store)
    with pytest.raises(MailError, match=r"gone\.patch"):
        review_series(_mail_context(cfg, store), "linux-6.12.y", source="queue")
    store.close()


def test_dashboard_shows_the_queue(qworld: QueueWorld, tmp_path: Path) -> None:
    from tracker.usecases import write_dashboard

    w = qworld
    hostile = (
        b"From: X <x@example.org>\nSubject: [PATCH] <script>alert(1)</script>\n\nText.\n---\n"
        b"--- a/mm/z.c\n+++ b/mm/z.c\n@@ -1 +1 @@\n-old z\n+new z\n"
    )
    queue_commit(
        w,
        {
            "queue-6.12/series": series("f2.patch", "f1.patch", "odd.patch"),
            "queue-6.12/f2.patch": w.patch("f2"),
            "queue-6.12/f1.patch": w.patch("f1"),
            "queue-6.12/odd.patch": hostile,
        },
        "queued",
    )
    cfg = config(w, f"sqlite:///{tmp_path / 't.db'}")
    store = usecases.open_store(cfg)
    sync_all(cfg, store)
    out = tmp_path / "site"
    write_dashboard(cfg, store, out)
    page = (out / "queue.html").read_text()
    data = json.loads((out / "queue.json").read_text())
    [qu] = data["queues"]
    assert [e["filename"] for e in qu["queued"]] == ["f2.patch", "f1.patch", "odd.patch"]
    assert qu["unlinked"] == 1 and qu["branch"] == "linux-6.12.y"
    assert qu["queued"][0]["page"] == f"change-{w.shas['f2']}.html"
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="queue.html"' in (out / "index.html").read_text()
    branch = json.loads((out / "branch-linux-6.12.y.json").read_text())
    first = [(s["position"], s["sha"], s["status"]) for s in branch["ordered"][:2]]
    assert first == [(1, w.shas["f2"], "queued"), (2, w.shas["f1"], "queued")]
    change = json.loads((out / f"change-{w.shas['f1']}.json").read_text())
    [ev] = [e for e in change["timeline"] if e["kind"] == "queue-queued"]
    assert ev["text"] == "queued for 6.12 (position 2 of 3) as queue-6.12/f1.patch"
    store.close()


# ------------------------------------------------------------------------------------------
# Queue rules over plain values


def test_queue_rules_over_plain_values() -> None:
    from tracker.decide import (
        BranchView,
        CommitInfo,
        Fix,
        FixRef,
        Prerequisite,
        QueueSlot,
        World,
        decide,
    )

    old, new, fix, pre = "a" * 40, "b" * 40, "c" * 40, "d" * 40
    commits = {
        old: CommitInfo(old, "culprit old", True, "v6.1", 0, 1),
        new: CommitInfo(new, "culprit new", True, "v6.6", 1, 2),
        fix: CommitInfo(fix, "fix", True, None, None, 3),
        pre: CommitInfo(pre, "prep", True, None, None, 4),
    }
    view = BranchView("linux-6.1.y", "v6.1", 0, (6, 1), ())
    # Its culprit is newer than the branch: not needed, but the stable team queued it.
    f = Fix(commits[fix], ("t",), (FixRef(new[:12], new, "sha", "", False),))
    slot = QueueSlot("6.1", "queued", "queue-6.1/fix.patch", 2, 5, None, "e" * 40)
    [step] = decide(view, [f], World(commits=commits, queue={fix: (slot,)})).steps
    assert step.status == "queued" and step.position == 1
    assert any(
        e.startswith("tracker's own decision without the queue: not-needed") for e in step.evidence
    )
    # Another series' queue says nothing about this branch.
    other = QueueSlot("6.6", "queued", "queue-6.6/fix.patch", 1, 1, None, "e" * 40)
    [step] = decide(view, [f], World(commits=commits, queue={fix: (other,)})).steps
    assert step.status == "not-needed"
    # A needed fix whose prerequisite is queued: no prerequisite step, the queue goes first.
    needed = Fix(commits[fix], ("t",), (FixRef(old[:12], old, "sha", "", False),))
    pslot = QueueSlot("6.1", "queued", "queue-6.1/prep.patch", 1, 1, None, "e" * 40)
    p = decide(
        view,
        [needed],
        World(commits=commits, queue={pre: (pslot,)}),
        prerequisites=[Prerequisite(pre, fix, "verified")],
    )
    assert [(s.sha, s.status) for s in p.steps] == [(fix, "needed")]
    assert any("queued for 6.1 (position 1 of 1)" in e for e in p.steps[0].evidence)
    # Both queued, the prerequisite after the fix: flagged.
    late = QueueSlot("6.1", "queued", "queue-6.1/prep.patch", 3, 5, None, "e" * 40)
    p = decide(
        view,
        [needed],
        World(
            commits=commits,
            queue={fix: (slot,), pre: (late,)},
            stable_deps={fix: (Prerequisite(pre, fix, "Stable-dep-of"),)},
        ),
    )
    assert p.steps[0].flags and "queued after it (position 3, this is 2)" in p.steps[0].flags[0]
