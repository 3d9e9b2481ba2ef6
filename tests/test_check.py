"""``tracker check`` on the real sample world: verdicts, prerequisites with evidence, storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import Synced
from tracker import usecases
from tracker.cli.check import register
from tracker.cli.text import simulation_text
from tracker.decide import PREREQUISITE
from tracker.errors import InvalidRevisionError, UnknownCommitError
from tracker.report.queries import simulated_prerequisites
from tracker.report.queries import simulations as stored_simulations
from tracker.sampleworld.mails import PENDING_MSGID
from tracker.simulate import apply_mail_patch
from tracker.store.models import BranchPrerequisite
from tracker.usecases import simulation_view

B61 = "linux-6.1.y"


def _evidence_ok(texts: tuple[str, ...], path: str, culprit: str) -> None:
    assert texts
    for t in texts:
        assert t.startswith("lines ") or t.startswith(f"simulation on {B61}: lines "), t
        assert f" of {path} last changed by {culprit[:12]} " in t, t


# -- check SHA... -----------------------------------------------------------------------------


def test_vmalloc_fix_alone_conflicts_and_names_its_prerequisite(synced_ro: Synced) -> None:
    s = synced_ro.world.shas
    rep = usecases.check_commits(synced_ro.config, synced_ro.store, B61, [s["VM_FIX"][:12]])
    assert rep.mode == "commits" and not rep.clean
    (step,) = rep.steps
    assert (step.position, step.sha, step.verdict) == (1, s["VM_FIX"], "conflict")
    assert step.files == ("mm/vmalloc.c",)
    (pre,) = step.prerequisites
    assert pre.sha == s["VM_PREREQ"]
    assert pre.subject == "mm/vmalloc: use ptep_get() and check pfn validity when mapping pages"
    _evidence_ok(pre.evidence, "mm/vmalloc.c", s["VM_PREREQ"])
    assert step.search is not None and "verified by re-simulation" in step.search


def test_shared_count_fix_alone_conflicts_and_names_its_prerequisite(synced_ro: Synced) -> None:
    s = synced_ro.world.shas
    rep = usecases.check_commits(synced_ro.config, synced_ro.store, B61, [s["H1"]])
    (step,) = rep.steps
    assert step.verdict == "conflict" and step.files == ("mm/hugetlb.c",)
    assert [p.sha for p in step.prerequisites] == [s["HX"]]
    _evidence_ok(step.prerequisites[0].evidence, "mm/hugetlb.c", s["HX"])


def test_given_order_is_simulated_and_later_steps_stay_candidates(synced_ro: Synced) -> None:
    s, cfg, store = synced_ro.world.shas, synced_ro.config, synced_ro.store
    good = usecases.check_commits(cfg, store, B61, [s["HX"], s["H1"], s["VM_PREREQ"], s["VM_FIX"]])
    assert good.clean and [st.verdict for st in good.steps] == ["clean"] * 4
    assert all(not st.prerequisites and st.search is None for st in good.steps)
    # HX after H1 is not "already in the branch" for H1: the search still finds it.
    bad = usecases.check_commits(cfg, store, B61, [s["H1"], s["HX"]])
    assert [st.verdict for st in bad.steps] == ["conflict", "clean"]
    assert [p.sha for p in bad.steps[0].prerequisites] == [s["HX"]]
    assert bad.counts() == {
        "clean": 1,
        "conflict": 1,
        "already-present": 0,
        "blocked": 0,
        "manual": 0,
    }


def test_every_sha_is_validated_before_simulating(synced_ro: Synced) -> None:
    s, cfg, store = synced_ro.world.shas, synced_ro.config, synced_ro.store
    with pytest.raises(InvalidRevisionError):
        usecases.check_commits(cfg, store, B61, [s["VM_FIX"], "not-a-sha"])
    with pytest.raises(UnknownCommitError, match="deadbeef00"):
        usecases.check_commits(cfg, store, B61, [s["VM_FIX"], "deadbeef00"])
    with pytest.raises(UnknownCommitError):
        usecases.check_commits(cfg, store, B61, [])


# -- check --plan ------------------------------------------------------------------------------


def test_plan_inserts_the_prerequisite_and_then_simulates_clean(synced: Synced) -> None:
    s, cfg, store = synced.world.shas, synced.config, synced.store
    before = usecases.plan(cfg, store, B61)
    pos = {st.sha: st.position or 0 for st in before.ordered}
    # The Cc: stable # 6.1.x annotation already orders VM_PREREQ first; HX is not planned.
    assert pos[s["VM_PREREQ"]] < pos[s["VM_FIX"]] and s["HX"] not in pos

    rep = usecases.check_plan(cfg, store, B61)
    assert (rep.mode, rep.rounds, rep.converged, rep.clean) == ("plan", 2, True, True)
    added = {(a.fix, a.prerequisite): a.evidence for a in rep.added}
    # H1 conflicts in the plan; VM_FIX has a FAILED mail, so it is also simulated on its own.
    assert set(added) == {(s["H1"], s["HX"]), (s["VM_FIX"], s["VM_PREREQ"])}
    _evidence_ok((added[(s["H1"], s["HX"])],), "mm/hugetlb.c", s["HX"])
    _evidence_ok((added[(s["VM_FIX"], s["VM_PREREQ"])],), "mm/vmalloc.c", s["VM_PREREQ"])
    assert all(st.verdict == "clean" for st in rep.steps)

    steps = {st.sha: st for st in rep.steps}
    assert steps[s["HX"]].position < steps[s["H1"]].position
    assert steps[s["HX"]].status == PREREQUISITE
    assert [p.sha for p in steps[s["H1"]].prerequisites] == [s["HX"]]
    # In the plan VM_FIX applies (VM_PREREQ is an earlier step); its result names it anyway.
    assert [p.sha for p in steps[s["VM_FIX"]].prerequisites] == [s["VM_PREREQ"]]

    after = usecases.plan(cfg, store, B61)
    hx = next(st for st in after.steps if st.sha == s["HX"])
    assert hx.status == PREREQUISITE and s["H1"][:12] in hx.reason
    assert [st.sha for st in after.ordered] == [st.sha for st in rep.steps]
    with store.session() as ses:
        rows = list(ses.scalars(select(BranchPrerequisite)))
        assert {(r.fix_sha, r.prerequisite_sha) for r in rows} == {
            (s["H1"], s["HX"]),
            (s["VM_FIX"], s["VM_PREREQ"]),
        }
        # The contract the dashboard and the mails read (StepResult JSON) is kept.
        stored = stored_simulations(ses, B61)
        assert {sha for sha in stored} == {st.sha for st in after.ordered}
        assert stored[s["H1"]]["verdict"] == "clean"
        assert simulated_prerequisites(ses, B61, s["H1"]) == [s["HX"]]
        assert simulated_prerequisites(ses, B61, s["VM_FIX"]) == [s["VM_PREREQ"]]

    again = usecases.check_plan(cfg, store, B61)
    assert (again.rounds, again.added, again.clean) == (1, (), True)


def test_one_round_reports_the_conflict_and_stores_no_prerequisite(synced: Synced) -> None:
    s, cfg, store = synced.world.shas, synced.config, synced.store
    rep = usecases.check_plan(cfg, store, B61, max_rounds=1)
    assert (rep.rounds, rep.converged, rep.clean, rep.added) == (1, False, False, ())
    h1 = next(st for st in rep.steps if st.sha == s["H1"])
    assert h1.verdict == "conflict" and h1.files == ("mm/hugetlb.c",)
    assert [p.sha for p in h1.prerequisites] == [s["HX"]]
    with store.session() as ses:
        assert list(ses.scalars(select(BranchPrerequisite))) == []
        stored = stored_simulations(ses, B61)[s["H1"]]
    conflicts = stored["conflicts"]
    assert isinstance(conflicts, list) and conflicts[0]["path"] == "mm/hugetlb.c"
    pre = stored["prerequisites"]
    assert isinstance(pre, dict) and pre["found"] is True and pre["commits"] == [s["HX"]]


def test_plan_and_status_show_stored_simulations(synced: Synced) -> None:
    s, cfg, store = synced.world.shas, synced.config, synced.store
    usecases.check_plan(cfg, store, B61)
    p = usecases.plan(cfg, store, B61)  # a plain re-plan rewrites states but keeps simulations
    sims = usecases.plan_simulations(store, p)
    assert set(sims) == {st.sha for st in p.ordered}
    h1 = sims[s["H1"]]
    assert (h1.verdict, h1.files, h1.prerequisites, h1.stale) == ("clean", (), (s["HX"],), False)
    steps = usecases.plan_dict(p, sims)["steps"]
    assert isinstance(steps, list)
    by_sha = {st["sha"]: st for st in steps}
    assert by_sha[s["H1"]]["simulation"]["prerequisites"] == [s["HX"]]
    assert all(st["simulation"] is None for st in by_sha.values() if st["position"] is None)
    assert simulation_text(h1) == f"simulation: clean; needs {s['HX'][:12]}"
    topical = usecases.plan(cfg, store, B61, "hugetlb")
    assert not any(x.stale for x in usecases.plan_simulations(store, topical).values())

    rep = usecases.status(cfg, store, s["H1"])
    st_sims = usecases.status_simulations(store, rep)
    assert set(st_sims) == {B61}  # the other branches were never checked
    rows = usecases.status_dict(rep, st_sims)["branches"]
    assert isinstance(rows, list)
    assert [r["simulation"] is not None for r in rows] == [r["branch"] == B61 for r in rows]


def test_summary_reads_bare_step_results_and_flags_staleness() -> None:
    bare = {
        "verdict": "conflict",
        "conflicts": [{"path": "b.c"}, {"path": "a.c"}, {"path": "a.c"}],
        "prerequisites": {"found": False, "commits": []},
        "detail": "2 conflicts: a.c, b.c",
    }
    sim = simulation_view.summarize(bare)
    assert (sim.verdict, sim.files, sim.prerequisites, sim.stale) == (
        "conflict",
        ("a.c", "b.c"),
        (),
        False,
    )
    assert simulation_view.summarize({**bare, "head": "a" * 40, "position": 2}, head="b" * 40).stale
    assert simulation_view.summarize({**bare, "head": "a" * 40, "position": 2}, position=3).stale
    assert simulation_text(sim) == "simulation: conflict in a.c, b.c"
    assert simulation_text(None) is None


# -- check --series ----------------------------------------------------------------------------

_COVER = "20260101000000.0-0-ada@example.org"
_P1 = "20260101000000.1-1-ada@example.org"
_P2 = "20260101000000.2-2-ada@example.org"
_SOB = "Signed-off-by: Ada <ada@example.org>"
_HEAD = "diff --git a/mm/hugetlb.c b/mm/hugetlb.c\n--- a/mm/hugetlb.c\n+++ b/mm/hugetlb.c\n"
_DIFF1 = (
    f"{_HEAD}@@ -1,3 +1,4 @@\n // SPDX-License-Identifier: GPL-2.0-only\n+/* one */\n /*\n"
    "  * Generic hugetlb support.\n"
)
# Its context is patch 1's line: it applies only on the tree patch 1 produced.
_DIFF2 = (
    f"{_HEAD}@@ -1,3 +1,4 @@\n // SPDX-License-Identifier: GPL-2.0-only\n /* one */\n"
    "+/* two */\n /*\n"
)


def _series_mbox() -> str:
    def mail(msgid: str, subject: str, body: str, reply: str | None) -> str:
        head = (
            f"From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: Ada <ada@example.org>\n"
            f"To: linux-mm@kvack.org\nSubject: {subject}\n"
            f"Date: Thu, 1 Jan 2026 00:00:0{msgid[16]} +0000\nMessage-ID: <{msgid}>\n"
        )
        if reply:
            head += f"In-Reply-To: <{reply}>\nReferences: <{reply}>\n"
        return head + "\n" + body + "\n"

    p1 = f"Say what the comment is for.\n\n{_SOB}\n---\n{_DIFF1}"
    p2 = f"Then the second comment.\n\n{_SOB}\n---\n{_DIFF2}"
    return (
        mail(_COVER, "[PATCH 0/2] mm/hugetlb: comments", "Two comments.\n", None)
        + mail(_P2, "[PATCH 2/2] mm/hugetlb: second comment", p2, _COVER)
        + mail(_P1, "[PATCH 1/2] mm/hugetlb: first comment", p1, _COVER)
    )


@pytest.fixture
def with_series(synced: Synced) -> Synced:
    (synced.root / "mail" / "series.mbox").write_text(_series_mbox())
    reports = usecases.sync_sources(synced.config, synced.store)
    assert all(r.failed is None and not r.counts.errors for r in reports), reports
    return synced


@pytest.mark.parametrize("msgid", [_COVER, f"<{_P2}>", _P1])
def test_series_applies_in_order_on_chained_trees(with_series: Synced, msgid: str) -> None:
    rep = usecases.check_series(with_series.config, with_series.store, B61, msgid)
    assert (rep.mode, rep.message_id, rep.clean) == ("series", msgid.strip("<>"), True)
    assert [(st.position, st.message_id, st.verdict) for st in rep.steps] == [
        (1, _P1, "clean"),
        (2, _P2, "clean"),
    ]
    assert [st.subject for st in rep.steps] == [
        "mm/hugetlb: first comment",
        "mm/hugetlb: second comment",
    ]


def test_series_second_patch_alone_does_not_apply(with_series: Synced) -> None:
    """What makes the chaining above meaningful."""
    rep = usecases.check_series(with_series.config, with_series.store, B61, _P1)
    assert apply_mail_patch(with_series.world.path, rep.head, _DIFF2).verdict.value == "conflict"


def test_sample_posting_and_unknown_message_ids(synced: Synced) -> None:
    cfg, store = synced.config, synced.store
    usecases.sync_sources(cfg, store)
    rep = usecases.check_series(cfg, store, B61, f"<{PENDING_MSGID}>")
    assert [(st.message_id, st.verdict) for st in rep.steps] == [(PENDING_MSGID, "clean")]
    assert rep.steps[0].subject == "mm/hugetlb: fix PMD unshare refcount underflow"
    with pytest.raises(UnknownCommitError, match=r"nobody@example\.org"):
        usecases.check_series(cfg, store, B61, "<nobody@example.org>")


# -- CLI -----------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """A root with a callback, so ``check`` stays a subcommand as it is in tracker.cli."""

    register(app)
    return app


def test_cli_text_and_json(synced: Synced) -> None:
    s, cfg = synced.world.shas, str(synced.root / "tracker.toml")
    runner = CliRunner()
    res = runner.invoke(_app(), ["check", B61, s["VM_FIX"][:12], "--config", cfg])
    assert res.exit_code == 0, res.output
    header, stats, line = res.output.splitlines()
    assert (
        stats.startswith("  time: ") and "blame calls" in stats and "prerequisites bounded" in stats
    )
    assert header.startswith(f"{B61} at ") and "1 conflict" in header
    assert line.startswith(f"  1. {s['VM_FIX'][:12]} conflict ")
    assert "files: mm/vmalloc.c" in line and f"needs {s['VM_PREREQ'][:12]}: lines " in line

    res = runner.invoke(_app(), ["check", B61, "--plan", "--json", "--config", cfg])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {"branch", "mode", "head", "clean", "counts", "rounds", "converged"} <= set(data)
    assert data["clean"] is True and data["prerequisites_added"][0]["prerequisite"] == s["HX"]
    for st in data["steps"]:
        assert {"position", "sha", "status", "verdict", "files", "prerequisites"} <= set(st)
        assert st["simulation"]["verdict"] == st["verdict"] == "clean"


def test_cli_usage_error(synced_ro: Synced) -> None:
    cfg = str(synced_ro.root / "tracker.toml")
    res = CliRunner().invoke(_app(), ["check", B61, "--plan", "abcdef12", "--config", cfg])
    assert res.exit_code == 2


def test_cli_unknown_sha_is_one_line_exit_5(synced_ro: Synced) -> None:
    """Through cli.main's error handler, in its own process (registering there is harmless)."""
    code = (
        "from tracker import cli\n"
        "from tracker.cli.check import register\n"
        "if not any(c.name == 'check' for c in cli.app.registered_commands):\n"
        "    register(cli.app)\n"
        "cli.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_CONFIG"}
    cfg = str(synced_ro.root / "tracker.toml")
    args = [sys.executable, "-c", code, "--config", cfg, "check", B61, "0123456789ab"]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 5, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown commit '0123456789ab'" in lines[0], p.stderr
