"""status answers from the stored plans when nothing they read has changed, and decides anew
otherwise: the answer is the whole-plan answer either way."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from tests.conftest import Synced
from tests.gitutil import git, git_out
from tracker import usecases
from tracker.store.models import Branch, BranchState, Message


def _plan_every_branch(sy: Synced) -> None:
    for b in sy.config.branches:
        usecases.plan(sy.config, sy.store, b.name)


def _reusable(sy: Synced) -> bool:
    """Whether every branch's stored plan read what the store holds now."""
    with sy.store.session() as s:
        now = usecases.plan_inputs(s, sy.config)
        stored = set(s.scalars(select(Branch.plan_inputs)))
    return now is not None and stored == {now}


def _topic_shas(sy: Synced) -> list[str]:
    with sy.store.session() as s:
        return sorted({sha for sha in s.scalars(select(BranchState.sha)) if len(sha) == 40})


def test_status_from_stored_plans_equals_the_whole_plan_answer(synced: Synced) -> None:
    cfg, store = synced.config, synced.store
    _plan_every_branch(synced)
    shas = _topic_shas(synced)
    assert len(shas) > 10
    # Decided from scratch: no stored plan is reusable yet.
    with store.session() as s:
        for b in s.scalars(select(Branch)):
            b.plan_inputs = None
    assert not _reusable(synced)
    decided = {sha: usecases.status(cfg, store, sha).to_dict() for sha in shas}
    _plan_every_branch(synced)
    assert _reusable(synced)
    for sha in shas:
        assert usecases.status(cfg, store, sha).to_dict() == decided[sha], sha


def test_posting_status_from_stored_plans_equals_the_whole_plan_answer(synced: Synced) -> None:
    cfg, store = synced.config, synced.store
    with store.session() as s:
        linked = sorted(
            s.scalars(
                select(Message.message_id).where(
                    Message.kind == "patch", Message.change_id.is_not(None)
                )
            )
        )
    assert linked, "the sample world has postings merged into mainline"
    decided = {m: usecases.posting_status(cfg, store, f"<{m}>").to_dict() for m in linked}
    assert not _reusable(synced)
    _plan_every_branch(synced)
    assert _reusable(synced)
    for m in linked:
        assert usecases.posting_status(cfg, store, f"<{m}>").to_dict() == decided[m], m


def test_a_sync_in_between_is_never_answered_from_the_stored_plans(synced: Synced) -> None:
    cfg, store, world = synced.config, synced.store, synced.world
    _plan_every_branch(synced)
    branch = "linux-6.1.y"
    plan = usecases.plan(cfg, store, branch)
    needed = next(st for st in plan.steps if st.status == "needed" and len(st.sha) == 40)
    before = {r.branch: r.step for r in usecases.status(cfg, store, needed.sha).rows}
    assert before[branch].status == "needed"
    # The fix is backported to the branch (an empty pick saying where it came from), and the
    # branch is synced again: the stored plan no longer stands.
    repo = world.path
    tree = git_out(repo, "rev-parse", f"refs/heads/{branch}^{{tree}}")
    msg = f"{needed.subject}\n\ncommit {needed.sha} upstream.\n"
    pick = git_out(repo, "commit-tree", tree, "-p", f"refs/heads/{branch}", "-m", msg)
    git(repo, "update-ref", f"refs/heads/{branch}", pick)
    usecases.sync(cfg, store)
    assert not _reusable(synced)
    after = {r.branch: r.step for r in usecases.status(cfg, store, needed.sha).rows}
    assert after[branch].status == "in-branch"
    assert after[branch].stable_sha == pick
    # Once plan has run again, the stored answer is the new one.
    _plan_every_branch(synced)
    assert _reusable(synced)
    again = {r.branch: r.step for r in usecases.status(cfg, store, needed.sha).rows}
    assert again == after


def test_a_sync_stores_every_plan_so_status_is_a_lookup(synced: Synced) -> None:
    """`tracker sync` (a real process) ends by storing each branch's plan with the digest of
    what it read: the status after a cron sync reads them instead of deciding three plans."""
    cfg, store = synced.config, synced.store
    with store.session() as s:
        for b in s.scalars(select(Branch)):
            b.plan_inputs = None
    assert not _reusable(synced)
    p = subprocess.run(
        [sys.executable, "-m", "tracker", "sync", "--config", str(synced.root / "tracker.toml")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert _reusable(synced)
    shas = _topic_shas(synced)
    stored = {sha: usecases.status(cfg, store, sha).to_dict() for sha in shas}
    with store.session() as s:
        for b in s.scalars(select(Branch)):
            b.plan_inputs = None
    for sha in shas:
        assert usecases.status(cfg, store, sha).to_dict() == stored[sha], sha


def test_check_plan_leaves_every_plan_reusable(synced: Synced) -> None:
    from tracker.usecases import check_plan

    cfg, store = synced.config, synced.store
    usecases.store_plans(cfg, store)
    assert _reusable(synced)
    check_plan(cfg, store, cfg.branches[0].name)
    assert _reusable(synced)
