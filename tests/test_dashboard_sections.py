"""Which section of the dashboard each change lands in, and in what order sections come."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Synced
from tracker.report.sections import SECTIONS, Item, Section, group, status_is
from tracker.usecases import write_dashboard


def _keys(items: list[Item], sections: tuple[Section, ...] = SECTIONS) -> dict[str, list[str]]:
    return {g.section.key: [it.sha for it in g.items] for g in group(items, sections) if g.items}


def test_first_matching_section_wins_and_action_comes_first() -> None:
    items = [
        Item("a", "", "released", "r"),
        Item("b", "", "needed", "r", verdict="blocked"),
        Item("c", "", "needed", "r", verdict="already-present"),
        Item("d", "", "failed", "r", verdict="manual"),  # the stable team's word first
        Item("e", "", "prerequisite", "r", verdict="conflict"),
        Item("f", "", "needed", "r", verdict="clean"),
        Item("g", "", "in base", "r"),
    ]
    got = _keys(items)
    assert got == {
        "failed": ["d"],
        "blocked": ["b"],
        "manual": ["e"],
        "needed": ["f"],
        "already-present": ["c"],
        "released": ["a"],
        "in-base": ["g"],
    }
    assert list(got) == [
        "failed",
        "blocked",
        "manual",
        "needed",
        "already-present",
        "released",
        "in-base",
    ]
    # Every known section is there, empty or not: its page exists whatever the counts.
    assert [g.section.key for g in group([])] == [
        *(s.key for s in SECTIONS if s.action),
        *(s.key for s in SECTIONS if not s.action),
    ]


def test_an_unknown_status_is_counted_not_dropped() -> None:
    groups = group([Item("x", "", "new-status", "r"), Item("y", "", "new-status", "r")])
    last = groups[-1]
    assert (last.section.key, last.section.action, [i.sha for i in last.items]) == (
        "other-new-status",
        False,
        ["x", "y"],
    )


def test_a_new_section_is_one_entry() -> None:
    # As a stable-queue source would: listed on the overview, right after the failed ones.
    queued = Section("queued", "Queued", "In the stable queue.", True, status_is("queued"))
    rest = tuple(s for s in SECTIONS if s.key != "queued")
    sections = (rest[0], queued, *rest[1:])
    items = [
        Item("q", "", "queued", "r"),
        Item("n", "", "needed", "r"),
        Item("f", "", "failed", "r"),
    ]
    groups = group(items, sections)
    assert [g.section.key for g in groups if g.items] == ["failed", "queued", "needed"]
    assert [g.section.key for g in groups if g.section.action][:3] == [
        "failed",
        "queued",
        "blocked",
    ]


def test_sample_world_overview(synced_ro: Synced, tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_dashboard(synced_ro.config, synced_ro.store, out)
    index = json.loads((out / "index.json").read_text())
    b612 = next(b for b in index["branches"] if b["branch"] == "linux-6.12.y")
    listed = {s["key"]: len(s["top"]) for s in b612["action"] if s["n"]}
    assert listed == {"needed": 7, "pending-upstream": 1, "unresolved": 1}
    assert {s["key"]: s["n"] for s in b612["counted"] if s["n"]} == {
        "in-branch": 2,
        "released": 4,
        "in-base": 2,
    }
    assert all("top" not in s for s in b612["counted"])
    html = (out / "index.html").read_text()
    # Action sections are listed before anything is counted, on every branch.
    for b in index["branches"]:
        name = b["branch"]
        counted = html.index(f'id="{name}-counted"')
        for s in b["action"]:
            if s["n"]:
                assert html.index(f'id="{name}-{s["key"]}"') < counted
    pending = json.loads((out / "status-linux-6.12.y-pending-upstream.json").read_text())
    assert pending["rows"][0]["status"] == "pending-upstream"
    assert "pending upstream" in pending["rows"][0]["reason"]
