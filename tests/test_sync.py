"""Git sync: idempotent, incremental, safe on rewritten refs and after a failure half way."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tests.conftest import Synced, edited_demo_config, missing_branch_ref
from tracker import usecases
from tracker.config import load_config
from tracker.errors import RepositoryError
from tracker.sampleworld.demo import write_demo_config
from tracker.store.models import Base, BranchCommit, Commit, CommitTopic, Edge, Source, SyncRun


def _counts(sy: Synced) -> dict[str, int]:
    with sy.store.session() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_second_sync_adds_nothing(synced: Synced) -> None:
    before = _counts(synced)
    assert before["commits"] > 40 and before["branch_commits"] > 15 and before["edges"] > 20
    stats = usecases.sync(synced.config, synced.store)
    after = _counts(synced)
    assert stats.total() == 0
    # Only the run log grows: one row per run.
    assert after.pop("sync_runs") == before.pop("sync_runs") + 1
    assert after == before


def test_incremental_sync_adds_only_new_commits(synced: Synced) -> None:
    repo = synced.world.path
    before = _counts(synced)
    _git(repo, "checkout", "-q", "master")
    (repo / "mm" / "util.c").write_text("int mm_util_version = 99;\n")
    _git(repo, "commit", "-qam", "mm/util: new mainline commit")
    _git(repo, "checkout", "-q", "linux-6.1.y")
    (repo / "mm" / "memory.c").write_text((repo / "mm" / "memory.c").read_text() + "/* x */\n")
    _git(repo, "commit", "-qam", "mm: a stable-only commit")
    _git(repo, "checkout", "-q", "master")
    stats = usecases.sync(synced.config, synced.store)
    assert stats.mainline_commits == 1
    assert stats.branch_commits == {"linux-6.12.y": 0, "linux-6.6.y": 0, "linux-6.1.y": 1}
    after = _counts(synced)
    assert after["commits"] == before["commits"] + 2
    assert after["branch_commits"] == before["branch_commits"] + 1


def test_rewritten_branch_is_resynced_not_duplicated(synced: Synced) -> None:
    repo = synced.world.path
    _git(repo, "checkout", "-q", "linux-6.12.y")
    old_head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "reset", "-q", "--hard", "HEAD~1")
    (repo / "mm" / "util.c").write_text("int mm_util_version = 7;\n")
    _git(repo, "commit", "-qam", "mm/util: replacement commit")
    new_head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "master")
    usecases.sync(synced.config, synced.store)
    with synced.store.session() as s:
        members = set(s.scalars(select(BranchCommit.sha)))
        assert new_head in members and old_head not in members
    # The dropped commit was the patch-id backport of H2: the plan sees it gone.
    p = usecases.plan(synced.config, synced.store, "linux-6.12.y")
    h2 = next(st for st in p.steps if st.sha == synced.world.shas["H2"])
    assert h2.status == "needed"
    counts = _counts(synced)
    usecases.sync(synced.config, synced.store)
    counts2 = _counts(synced)
    counts.pop("sync_runs"), counts2.pop("sync_runs")
    assert counts == counts2


def test_rewritten_mainline_ref(synced: Synced) -> None:
    repo = synced.world.path
    old = _git(repo, "rev-parse", "master")
    _git(repo, "commit", "-q", "--amend", "-m", "mm/hugetlb: rebuilt head commit")
    new = _git(repo, "rev-parse", "master")
    usecases.sync(synced.config, synced.store)
    with synced.store.session() as s:
        assert s.get(Commit, new) is not None and s.get(Commit, new).mainline  # type: ignore[union-attr]
        assert not s.get(Commit, old).mainline  # type: ignore[union-attr]


def test_failed_sync_leaves_store_consistent_and_next_run_finishes(
    world_dir: tuple[object, Path],
) -> None:
    cfg = edited_demo_config(world_dir[1], missing_branch_ref)
    store = usecases.open_store(cfg)
    with pytest.raises(RepositoryError, match="ref 'nope' not found"):
        usecases.sync(cfg, store)
    with store.session() as s:
        run = s.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
        assert run is not None and run.status == "failed" and "nope" in (run.error or "")
        assert (s.scalar(select(func.count()).select_from(Commit)) or 0) > 0
    cfg = load_config(write_demo_config(world_dir[1]))  # the branch fixed
    usecases.sync(cfg, store)
    p = usecases.plan(cfg, store, "linux-6.1.y")
    assert [s.status for s in p.ordered].count("needed") == 6


def test_derived_passes_rerun_after_dying_half_way(
    world_dir: tuple[object, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits stored, then git dies during the patch-id pass: the next (otherwise no-op)
    sync must still compute the patch-ids and find the backport known only by its patch-id."""
    from tracker.gitio import GitRepo

    world, root = world_dir
    cfg = load_config(write_demo_config(root))
    store = usecases.open_store(cfg)

    def dies(self: GitRepo, shas: list[str]) -> dict[str, str]:
        raise RepositoryError("git patch-id was killed")

    with monkeypatch.context() as m:
        m.setattr(GitRepo, "patch_ids", dies)
        with pytest.raises(RepositoryError, match="killed"):
            usecases.sync(cfg, store)
    stats = usecases.sync(cfg, store)
    assert stats.mainline_commits == 0 and stats.patch_ids > 0 and stats.patch_id_links == 1
    h2 = world.shas["H2"]  # type: ignore[attr-defined]
    p = usecases.plan(cfg, store, "linux-6.12.y")
    assert next(st for st in p.steps if st.sha == h2).status == "in-branch"
    # And now it is a no-op.
    again = usecases.sync(cfg, store)
    assert (again.patch_ids, again.patch_id_links, again.edges) == (0, 0, 0)


def test_a_missing_object_skips_its_commit_names_it_and_the_sync_completes(
    synced: Synced,
) -> None:
    repo = synced.world.path
    _git(repo, "checkout", "-q", "master")
    # Two new hugetlb fixes whose patch-ids are wanted (each touches the paths of a stable
    # commit without an upstream line); the first one's new blob then disappears from the
    # clone, as in a damaged or partly copied repository.
    (repo / "mm" / "hugetlb.c").write_text(
        (repo / "mm" / "hugetlb.c").read_text() + "/* lost fix */\nint lost;\n"
    )
    _git(repo, "commit", "-qam", "mm/hugetlb: a fix whose blob goes missing")
    lost = _git(repo, "rev-parse", "HEAD")
    blob = _git(repo, "rev-parse", "HEAD:mm/hugetlb.c")
    # Another file: this fix's diff does not need the lost blob.
    (repo / "mm" / "hugetlb_extra.c").write_text("/* kept fix */\nint kept;\n")
    _git(repo, "add", "mm/hugetlb_extra.c")
    _git(repo, "commit", "-qm", "mm/hugetlb: a fix that stays readable")
    kept = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "linux-6.1.y")
    (repo / "mm" / "hugetlb_extra.c").write_text("/* a stable-only change */\n")
    _git(repo, "add", "mm/hugetlb_extra.c")
    _git(repo, "commit", "-qm", "mm/hugetlb: stable-only, no upstream line")
    _git(repo, "checkout", "-q", "master")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()

    stats = usecases.sync(synced.config, synced.store)

    assert stats.mainline_commits == 2
    assert stats.branch_commits["linux-6.1.y"] == 1
    assert [p.split(": ")[:2] for p in stats.problems] == [["patch-ids", lost]]
    assert "unable to read" in stats.problems[0] or "bad object" in stats.problems[0]
    with synced.store.session() as s:
        pids = dict(
            s.execute(select(Commit.sha, Commit.patch_id).where(Commit.sha.in_([lost, kept]))).all()
        )
        run = s.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
    assert pids[kept] and not pids[lost]
    assert run is not None and run.status == "ok" and run.error and lost in run.error


def test_malformed_fixes_tag_resolves_flagged_with_how(synced: Synced) -> None:
    repo = synced.world.path
    _git(repo, "checkout", "-q", "master")
    culprit = _git(repo, "rev-parse", "HEAD~3")
    subject = _git(repo, "log", "-1", "--format=%s", culprit)
    (repo / "mm" / "util.c").write_text("int mm_util_version = 98;\n")
    # Quotes without parentheses, as in real mail (sparclinux archive, issue 11).
    _git(repo, "commit", "-qam", f'mm/util: fix it\n\nFixes: {culprit[:12]} "{subject}"\n')
    fix = _git(repo, "rev-parse", "HEAD")
    usecases.sync(synced.config, synced.store)
    with synced.store.session() as s:
        edge = s.scalar(select(Edge).where(Edge.kind == "fixes", Edge.src == fix))
        if s.get_bind().dialect.name == "sqlite":
            analysed = s.scalar(select(func.count()).select_from(text("sqlite_stat1")))
        else:
            analysed = s.scalar(
                text("SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
            )
    assert edge is not None and edge.dst == culprit
    assert edge.flagged
    assert "repaired (quoted subject without parentheses)" in edge.evidence
    # The sync that changed the store left planner statistics behind.
    assert analysed


def test_a_fix_whose_diff_touches_a_topic_symbol_joins_the_topic(synced: Synced) -> None:
    repo = synced.world.path
    culprit = _git(repo, "rev-parse", "master~3")
    _git(repo, "checkout", "-q", "master")
    (repo / "drivers").mkdir(exist_ok=True)
    (repo / "drivers" / "pager.c").write_text("void pager(void) { arch_enter_lazy_mmu_mode(); }\n")
    _git(repo, "add", "drivers/pager.c")
    # Neither its path nor its subject is the lazy MMU topic's: only its diff names the symbol.
    _git(repo, "commit", "-qm", f'drivers: pager batching\n\nFixes: {culprit[:12]} ("x")')
    plain = repo / "drivers" / "plain.c"
    plain.write_text("void plain(void) { arch_enter_lazy_mmu_mode(); }\n")
    _git(repo, "add", "drivers/plain.c")
    _git(repo, "commit", "-qm", "drivers: plain change")  # no Fixes: or Cc: stable, not looked at
    usecases.sync(synced.config, synced.store)
    fix, other = _git(repo, "rev-parse", "HEAD~1"), _git(repo, "rev-parse", "HEAD")
    with synced.store.session() as s:
        rules = dict(
            s.execute(
                select(CommitTopic.sha, CommitTopic.rule).where(
                    CommitTopic.topic == "lazy-mmu", CommitTopic.sha.in_((fix, other))
                )
            ).all()
        )
        order = s.scalar(select(Commit.mainline_order).where(Commit.sha == fix))
        cursor = s.scalar(select(Source.cursor).where(Source.name == "topics:symbols"))
    assert rules == {fix: "diff touches a symbol"}
    assert cursor == str(order)  # the last candidate looked at


def test_without_topic_symbols_the_symbol_pass_only_moves_its_cursor(
    world_dir: tuple[object, Path],
) -> None:
    cfg = edited_demo_config(
        world_dir[1],
        lambda t: t[: t.index("[[topics]]")] + '[[topics]]\nname = "all"\npaths = ["*"]\n',
    )
    store = usecases.open_store(cfg)
    usecases.sync(cfg, store)
    with store.session() as s:
        top = s.scalar(select(func.max(Commit.mainline_order)))
        cursor = s.scalar(select(Source.cursor).where(Source.name == "topics:symbols"))
        rules = set(s.scalars(select(CommitTopic.rule).where(CommitTopic.topic == "all")))
    store.close()
    assert top and cursor == str(top)
    assert rules and not any("symbol" in r for r in rules)
