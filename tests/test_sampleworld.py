"""The sample world's decisions, branch by branch, as its design (shared/facts.md) says."""

from __future__ import annotations

import pytest

from tests.conftest import Synced
from tracker import usecases
from tracker.decide import Plan, Step


def _plan(sy: Synced, branch: str) -> Plan:
    return usecases.plan(sy.config, sy.store, branch)


def _by_role(sy: Synced, p: Plan) -> dict[str, Step]:
    roles = {sha: role for role, sha in sy.world.shas.items()}
    return {roles[s.sha]: s for s in p.steps if s.sha in roles}


def _order(p: Plan, sy: Synced) -> list[str]:
    roles = {sha: role for role, sha in sy.world.shas.items()}
    return [roles[s.sha] for s in p.ordered]


def test_linux_6_12_y(synced_ro: Synced) -> None:
    p = _plan(synced_ro, "linux-6.12.y")
    st = _by_role(synced_ro, p)
    assert _order(p, synced_ro) == ["H3", "H4", "RF", "L7", "H5", "H6", "L8"]
    assert {r: st[r].status for r in ("H1", "L1", "L3", "L4")} == dict.fromkeys(
        ("H1", "L1", "L3", "L4"), "released"
    )
    assert st["H1"].release == "v6.12.9"
    assert st["L1"].release == "v6.12.24"
    assert st["VM_FIX"].status == "in-branch"
    # The backport that lost its upstream line is found by patch-id only.
    assert st["H2"].status == "in-branch"
    assert st["H2"].stable_sha == synced_ro.world.shas["S12_H2"]
    assert "patch-id" in st["H2"].evidence[0]
    assert st["L7"].status == "nominated"
    # A fix of a backport: its culprit is the 6.12.y commit, not a mainline one.
    assert st["H5"].status == "needed"
    assert synced_ro.world.shas["S12_H1"][:12] in st["H5"].reason
    # A fix of a fix is placed after the fix it fixes.
    assert st["H6"].after == (synced_ro.world.shas["H3"],)
    assert "H0" not in st and "RC" not in st  # in the base: not candidates


def test_linux_6_6_y(synced_ro: Synced) -> None:
    p = _plan(synced_ro, "linux-6.6.y")
    st = _by_role(synced_ro, p)
    assert _order(p, synced_ro) == ["L3", "VM_FIX", "H2", "H3", "H6", "L8"]
    # An "added to the 6.6-stable tree" mail: the stable team has it.
    assert st["H4"].status == "queued"
    assert "queue" in st["H4"].reason
    assert st["RC"].status == "reverted"
    assert st["RC"].stable_sha == synced_ro.world.shas["S66_RC_REVERT"]
    assert (st["H1"].status, st["H1"].release) == ("released", "v6.6.72")
    assert (st["L1"].status, st["L1"].release) == ("released", "v6.6.88")
    assert (st["L4"].status, st["L4"].release) == ("released", "v6.6.88")
    # Its culprit was backported and reverted on this branch: no longer needed.
    assert st["RF"].status == "not-needed"
    assert "reverted" in st["RF"].reason
    assert st["L7"].status == "not-needed"
    assert "6.12.x" in st["L7"].reason
    assert st["H5"].status == "not-needed"
    assert "linux-6.12.y commit" in st["H5"].reason


def test_linux_6_1_y(synced_ro: Synced) -> None:
    p = _plan(synced_ro, "linux-6.1.y")
    st = _by_role(synced_ro, p)
    assert _order(p, synced_ro) == ["VM_PREREQ", "H1", "VM_FIX", "H2", "H3", "H4", "H6", "L8"]
    # The Cc: stable # 6.1.x: <sha> annotation pulls its prerequisite in, before it.
    assert st["VM_PREREQ"].status == "prerequisite"
    assert st["L8"].after == (synced_ro.world.shas["VM_PREREQ"],)
    # The lazy-MMU fixes whose culprits are younger than v6.1 are not needed here.
    for role, culprit_release in (("L1", "v6.6"), ("L4", "v6.6")):
        assert st[role].status == "not-needed"
        assert f"first released in {culprit_release}, after the base v6.1" in st[role].reason
    assert (st["L3"].status, st["L3"].release) == ("released", "v6.1.130")
    assert st["RC"].status == "not-needed"
    assert "6.6.x" in st["RC"].reason
    assert st["RF"].status == "not-needed"
    assert st["H4"].after == (synced_ro.world.shas["H1"],)
    # The FAILED mail for 6.1-stable: still to do, and said so.
    assert st["VM_FIX"].status == "failed"
    assert "FAILED to apply to 6.1-stable" in st["VM_FIX"].reason
    assert st["H6"].after == (synced_ro.world.shas["H3"],)
    # Jann's posted series (v3 1/2 = H2, 2/2 = H3, linked to the commits by patch-id) orders
    # them, and the step says so.
    h2 = synced_ro.world.shas["H2"]
    assert st["H3"].order_reason == (
        f'after {h2[:12]}, patch 1/2 before this 2/2 of the series "mm/hugetlb: fixes for PMD '
        'table sharing v3"'
    )


@pytest.mark.parametrize("branch", ["linux-6.1.y", "linux-6.6.y", "linux-6.12.y"])
def test_every_step_explains_itself(synced_ro: Synced, branch: str) -> None:
    p = _plan(synced_ro, branch)
    for s in p.steps:
        assert s.reason and s.evidence
        if s.position is not None:
            assert s.order_reason


def test_topic_filter(synced_ro: Synced) -> None:
    p = usecases.plan(synced_ro.config, synced_ro.store, "linux-6.1.y", "lazy-mmu")
    assert p.steps and all("lazy-mmu" in s.topics for s in p.steps)
    roles = _by_role(synced_ro, p)
    assert "VM_FIX" in roles and "H1" not in roles


def test_status_one_row_per_branch(synced_ro: Synced) -> None:
    rep = usecases.status(synced_ro.config, synced_ro.store, synced_ro.world.shas["L1"][:12])
    got = {r.branch: r.step.status for r in rep.rows}
    assert got == {
        "linux-6.12.y": "released",
        "linux-6.6.y": "released",
        "linux-6.1.y": "not-needed",
    }
    # A stable sha resolves to the mainline change it backports.
    rep2 = usecases.status(synced_ro.config, synced_ro.store, synced_ro.world.shas["S66_L1"])
    assert rep2.sha == synced_ro.world.shas["L1"]
    # Subject text and Link: Message-IDs find the same change.
    rep3 = usecases.status(synced_ro.config, synced_ro.store, "fix lazy mmu docs and usage")
    assert rep3.sha == synced_ro.world.shas["L1"]
    rep4 = usecases.status(
        synced_ro.config, synced_ro.store, "<20250303141542.3371656-1-ryan@example.org>"
    )
    assert rep4.sha == synced_ro.world.shas["L1"]


def test_repaired_and_unresolved_fixes_tags(synced_ro: Synced) -> None:
    st = _by_role(synced_ro, _plan(synced_ro, "linux-6.12.y"))
    # RF's Fixes: has HX's sha but quotes RC's subject: repaired to RC, flagged in the reason.
    assert st["RF"].status == "needed"
    assert "repaired" in st["RF"].reason
    assert any(synced_ro.world.shas["RC"][:12] in e and "quotes" in e for e in st["RF"].evidence)
    # H7 names a commit tracker cannot know.
    assert st["H7"].status == "unresolved"
    assert "0123456789ab" in st["H7"].reason


def test_why_walks_the_chain(synced_ro: Synced) -> None:
    rep = usecases.why(synced_ro.config, synced_ro.store, synced_ro.world.shas["H6"], "linux-6.1.y")
    shas = [link.sha for link in rep.chain]
    w = synced_ro.world.shas
    # H6 -> Fixes H3 -> H3 is itself planned -> Fixes H0 (in v6.1)
    assert shas == [w["H6"], w["H3"], w["H3"], w["H0"]]
    assert rep.chain[-1].relation.startswith("Fixes:")


@pytest.mark.parametrize("branch", ["linux-6.1.y", "linux-6.6.y", "linux-6.12.y"])
def test_fix_still_in_mm_is_pending_upstream(synced_ro: Synced, branch: str) -> None:
    from tracker.sampleworld.mails import PENDING_FILE

    p = _plan(synced_ro, branch)
    pending = [s for s in p.steps if s.status == "pending-upstream"]
    # One entry: the -mm patch; its list posting (named by the -mm Link:) is the same fix.
    assert [s.sha for s in pending] == [PENDING_FILE]
    assert "mm-hotfixes-unstable" in pending[0].reason
    assert pending[0].topic == "hugetlb"


def test_every_status_occurs(synced_ro: Synced) -> None:
    seen = {
        s.status
        for b in ("linux-6.1.y", "linux-6.6.y", "linux-6.12.y")
        for s in _plan(synced_ro, b).steps
    }
    assert seen >= {
        "released",
        "in-branch",
        "queued",
        "failed",
        "needed",
        "nominated",
        "not-needed",
        "pending-upstream",
        "reverted",
        "unresolved",
        "prerequisite",
    }


def test_why_says_each_fact_once(synced_ro: Synced) -> None:
    w = synced_ro.world.shas
    for key in ("H6", "H3"):
        rep = usecases.why(synced_ro.config, synced_ro.store, w[key], "linux-6.1.y")
        for link in rep.chain:
            lines = list(link.evidence)
            for i, line in enumerate(lines):
                assert not any(line in other for j, other in enumerate(lines) if j != i), lines


def test_status_decides_as_each_branch_plan_does(synced_ro: Synced) -> None:
    """status reads what branches share once; every answer must still be that branch's plan."""
    cfg, store = synced_ro.config, synced_ro.store
    plans = {
        b.name: {st.sha: st for st in usecases.plan(cfg, store, b.name).steps} for b in cfg.branches
    }
    shas = sorted({sha for steps in plans.values() for sha in steps if len(sha) == 40})
    assert len(shas) > 10
    for sha in shas:
        for row in usecases.status(cfg, store, sha).rows:
            if sha in plans[row.branch]:
                assert row.step == plans[row.branch][sha], (sha, row.branch)
