"""The static dashboard: pages and JSON, stored simulation verdicts, the atomic swap."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Synced
from tracker import usecases
from tracker.report.render import Renderer, TemplateError
from tracker.report.sections import SECTIONS
from tracker.store.models import Branch, BranchState
from tracker.usecases import write_dashboard

CLOCK = datetime(2026, 1, 28, 14, 53, tzinfo=UTC)


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_pages_and_json(synced_ro: Synced, tmp_path: Path) -> None:
    out = tmp_path / "site"
    rep = write_dashboard(synced_ro.config, synced_ro.store, out, clock=lambda: CLOCK)
    sections = sorted(p.name for p in out.glob("status-linux-6.1.y-*.html"))
    assert len(sections) == len(SECTIONS)  # one page each; none has over PAGE_ROWS changes
    assert (rep.branches, rep.pages) == (3, 4 + rep.changes + 3 * len(SECTIONS))
    index = json.loads((out / "index.json").read_text())
    assert [r["branch"] for r in index["rows"]] == ["linux-6.12.y", "linux-6.6.y", "linux-6.1.y"]
    row61 = index["rows"][2]
    assert row61["todo"] == 8
    lazy = next(c for c in row61["cells"] if c["topic"] == "lazy-mmu")
    assert {c["status"]: c["n"] for c in lazy["counts"]}["prerequisite"] == 1
    branch = json.loads((out / "branch-linux-6.1.y.json").read_text())
    assert [st["position"] for st in branch["ordered"]] == list(range(1, 9))
    assert all(st["simulation"] is None for st in branch["ordered"])
    assert "not simulated" in (out / "branch-linux-6.1.y.html").read_text()
    # No scripts and nothing from elsewhere on any page.
    for page in out.glob("*.html"):
        html = page.read_text()
        assert "<script" not in html.lower()
        assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
        assert "script-src 'none'" in html


def test_change_page_timeline_and_graph(synced_ro: Synced, tmp_path: Path) -> None:
    s = synced_ro.world.shas
    out = tmp_path / "site"
    write_dashboard(synced_ro.config, synced_ro.store, out, clock=lambda: CLOCK)
    page = json.loads((out / f"change-{s['H1']}.json").read_text())
    kinds = [e["kind"] for e in page["timeline"]]
    assert kinds[:3] == ["authored", "mainline", "release"]
    assert kinds.count("backport") == 2 and kinds.count("stable-release") == 2
    nodes = {n["sha"]: n["kind"] for n in page["graph"]["nodes"]}
    assert nodes[s["H1"]] == "change"
    assert nodes[s["H0"]] == "culprit"
    assert nodes[s["H4"]] == "fix"  # fixes the change
    assert nodes[s["H5"]] == "fix"  # fixes the 6.12.y backport
    assert nodes[s["S12_H1"]] == "backport" and nodes[s["S66_H1"]] == "backport"
    assert nodes[s["HX"]] == "prerequisite"  # 6.6.y pulled it in with Stable-dep-of:
    edges = {(e["src"], e["dst"], e["relation"]) for e in page["graph"]["edges"]}
    assert (s["H5"], s["S12_H1"], "fixes") in edges
    html = (out / f"change-{s['H1']}.html").read_text()
    assert "<svg" in html and f'href="change-{s["H4"]}.html"' in html
    rows = {b["branch"]: b["status"] for b in page["branches"]}
    assert rows == {"linux-6.12.y": "released", "linux-6.6.y": "released", "linux-6.1.y": "needed"}


def test_stored_simulation_is_shown(synced: Synced, tmp_path: Path) -> None:
    s = synced.world.shas
    usecases.plan(synced.config, synced.store, "linux-6.1.y")
    verdict = {
        "index": 3,
        "commit": s["VM_FIX"],
        "verdict": "conflict",
        "conflicts": [{"path": "mm/vmalloc.c", "kind": "content", "hunks": []}],
        "prerequisites": {"found": True, "commits": [s["VM_PREREQ"]]},
        "detail": "<b>not bold</b>",
    }
    with synced.store.session() as sess:
        bid = sess.scalar(select(Branch.id).where(Branch.name == "linux-6.1.y"))
        row = sess.get(BranchState, (bid, s["VM_FIX"]))
        assert row is not None
        row.simulation = json.dumps(verdict)
    out = tmp_path / "site"
    write_dashboard(synced.config, synced.store, out, clock=lambda: CLOCK)
    branch = json.loads((out / "branch-linux-6.1.y.json").read_text())
    step = next(st for st in branch["ordered"] if st["sha"] == s["VM_FIX"])
    assert step["simulation"] == verdict
    html = (out / "branch-linux-6.1.y.html").read_text()
    assert 'class="badge v-conflict">conflict<' in html
    assert "<code>mm/vmalloc.c</code>" in html and f"<code>{s['VM_PREREQ'][:12]}</code>" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold" not in html


def test_failing_run_keeps_the_previous_dashboard(synced_ro: Synced, tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_dashboard(synced_ro.config, synced_ro.store, out, clock=lambda: CLOCK)
    before = _snapshot(out)
    # A user override with a typo: StrictUndefined fails on the first change page, after the
    # overview and the branch pages were already rendered into the staging directory.
    user = tmp_path / "my-templates" / "dashboard"
    user.mkdir(parents=True)
    (user / "change.html.j2").write_text("<h1>{{ page.subjet }}</h1>\n")
    cfg = dataclasses.replace(synced_ro.config, templates_dir=user.parent)
    with pytest.raises(TemplateError, match=r"my-templates/dashboard/change\.html\.j2") as info:
        write_dashboard(cfg, synced_ro.store, out, clock=lambda: datetime.now(UTC))
    assert info.value.exit_code == 2
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-templates", "site"]


def test_rerun_replaces_the_site_whole(synced_ro: Synced, tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_dashboard(synced_ro.config, synced_ro.store, out, clock=lambda: CLOCK)
    (out / "stale.html").write_text("from an older tracker")
    cfg = dataclasses.replace(
        synced_ro.config,
        dashboard=dataclasses.replace(synced_ro.config.dashboard, title="Stable <&> board"),
    )
    write_dashboard(cfg, synced_ro.store, out, clock=lambda: CLOCK)
    assert not (out / "stale.html").exists()
    assert "<title>Stable &lt;&amp;&gt; board</title>" in (out / "index.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_user_template_overrides_one_page(synced_ro: Synced, tmp_path: Path) -> None:
    user = tmp_path / "tpl" / "dashboard"
    user.mkdir(parents=True)
    (user / "index.html.j2").write_text(
        "<p>{{ page.rows|length }} branches: {{ page.title }}</p>\n"
    )
    cfg = dataclasses.replace(synced_ro.config, templates_dir=user.parent)
    out = tmp_path / "site"
    write_dashboard(cfg, synced_ro.store, out, renderer=Renderer(user.parent))
    assert (out / "index.html").read_text() == "<p>3 branches: tracker: backport status</p>\n"
    assert "<svg" in next(out.glob("change-*.html")).read_text()  # the rest are built-in


def test_change_pages_read_in_set_based_queries(
    synced_ro: Synced, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timelines and graph neighbours of every change come from a fixed number of statements,
    and the same as one change at a time, also when the changes span several chunks."""
    from sqlalchemy import event

    from tracker.report import queries as q
    from tracker.store.models import Commit

    store = synced_ro.store
    with store.session() as s:
        shas = sorted(s.scalars(select(Commit.sha)))
        shas.append("0" * 40)  # no such commit: an empty timeline, a bare node
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(store.engine, "before_cursor_execute", count)
        try:
            timelines = q.timelines(s, shas)
            graphs = q.neighbours_of(s, shas)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        # One statement per kind of row (9 for timelines, 5 for neighbours), however many changes.
        assert len(shas) > 40 and len(statements) <= 14, statements
        kinds = {e.kind for t in timelines.values() for e in t}
        assert {"posted", "stable-failed", "backport", "stable-release", "release"} <= kinds
        assert any(n.prerequisites for n in graphs.values())
        assert any(n.backport_fixes for n in graphs.values())
        assert timelines["0" * 40] == [] and graphs["0" * 40].change == q.Node("0" * 40, "")
        for sha in shas:
            assert q.timeline(s, sha) == timelines[sha], sha
            assert q.neighbours(s, sha) == graphs[sha], sha
        # Chunks of 3: rows of one change never land on another's page.
        monkeypatch.setattr(q, "CHUNK", 3)
        assert q.timelines(s, shas) == timelines
        assert q.neighbours_of(s, shas) == graphs
