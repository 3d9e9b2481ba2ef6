"""The dashboard of a thousand fixes: action first, the rest counted, every change on its page.

The world (tests/dashworld.py) is synced from a real repository into a real SQLite store once
per module; the pages are checked as HTML here and in a real headless Chromium.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
from sqlalchemy import event

from tests import dashworld
from tests.browser import browser, chromium, static_servers
from tracker.report.dashboard import PAGE_ROWS, TOP_ITEMS
from tracker.report.sections import SECTIONS
from tracker.usecases import write_dashboard

ACTION_TITLES = [s.title for s in SECTIONS if s.action]


@dataclass
class Site:
    world: dashworld.BigWorld
    out: Path
    statements: int  # SQL statements the write issued


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("big")
    world = dashworld.build(root)
    out = root / "site"
    seen: list[object] = []
    event.listen(world.store.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    write_dashboard(world.config, world.store, out)
    yield Site(world, out, len(seen))
    world.store.close()


class Page(HTMLParser):
    """The parts of a page these tests read, in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []  # (tag, text)
        self.hrefs: list[str] = []
        self.rows: dict[str, list[str]] = {}  # table id -> data-sha of its rows
        self.cells: dict[tuple[str, str], str] = {}  # (data-branch, data-section) -> text
        self.tables: list[dict[str, int]] = []  # per table: th with scope, th without, captions
        self._open: list[tuple[str, dict[str, str]]] = []
        self._heading: str | None = None
        self.feed(html)

    def _attr(self, tag: str, name: str) -> str | None:
        for t, a in reversed(self._open):
            if t == tag and name in a:
                return a[name]
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "table":
            self.tables.append({"scoped": 0, "unscoped": 0, "caption": 0})
        if tag == "th" and self.tables:
            self.tables[-1]["scoped" if "scope" in a else "unscoped"] += 1
        if tag == "caption" and self.tables:
            self.tables[-1]["caption"] += 1
        if tag == "tr" and "data-sha" in a:
            self.rows.setdefault(self._attr("table", "id") or "", []).append(a["data-sha"])
        if tag in ("h1", "h2", "h3"):
            self._heading = ""
        if tag not in ("meta", "link", "br", "img", "input"):
            self._open.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append((tag, " ".join(self._heading.split())))
            self._heading = None
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading += data
        branch, section = self._attr("tr", "data-branch"), self._attr("td", "data-section")
        if branch and section:
            key = (branch, section)
            self.cells[key] = (self.cells.get(key, "") + data).strip()


def _page(out: Path, name: str) -> Page:
    return Page((out / name).read_text(encoding="utf-8"))


def _section_rows(out: Path, branch: str, key: str) -> list[str]:
    """Every row of a section, following its pages in order."""
    shas: list[str] = []
    n = 1
    while True:
        suffix = "" if n == 1 else f"-{n}"
        f = out / f"status-{branch}-{key}{suffix}.html"
        if not f.exists():
            return shas
        shas += Page(f.read_text()).rows.get("items", [])
        n += 1


def _listed(index: Page, branch: str) -> set[str]:
    """The changes the overview lists for ``branch``."""
    return {sha for t, shas in index.rows.items() if t.startswith(f"top-{branch}-") for sha in shas}


def _branch_headings(page: Page, branch: str) -> list[str]:
    """The h3 headings of a branch's part of the overview, up to the next h2."""
    out: list[str] = []
    inside = False
    for tag, text in page.headings:
        if tag == "h2":
            inside = text.startswith(branch)
        elif tag == "h3" and inside:
            out.append(text)
    return out


def test_overview_lists_action_first_and_counts_the_rest(site: Site) -> None:
    w, out = site.world, site.out
    index = _page(out, "index.html")
    # linux-6.1.y: the failed, blocked and manual ones, then needed; nothing else is listed.
    heads = _branch_headings(index, "linux-6.1.y")
    assert heads == [
        "Failed in stable 2",
        "Blocked 4",
        "Manual backport 5",
        "Needed 286",
        "Counted",
    ]
    assert _branch_headings(index, "linux-6.5.y") == ["Needed 200", "Counted"]
    listed = {sha for shas in index.rows.values() for sha in shas}
    assert len(listed) <= TOP_ITEMS * len(ACTION_TITLES) * 2
    assert set(index.rows["top-linux-6.1.y-failed"]) == set(w.marked["failed"])
    assert set(index.rows["top-linux-6.1.y-blocked"]) == set(w.marked["blocked"])
    assert index.rows["top-linux-6.5.y-needed"] == w.needed_65[:TOP_ITEMS]
    assert not _listed(index, "linux-6.1.y") & {*w.released_61, *w.marked["already-present"]}
    assert not _listed(index, "linux-6.5.y") & set(w.in_base_65)
    # Counted, with the number linking to the section's page.
    assert index.cells[("linux-6.1.y", "released")] == "600"
    assert index.cells[("linux-6.1.y", "in-branch")] == "100"
    assert index.cells[("linux-6.1.y", "already-present")] == "3"
    assert index.cells[("linux-6.5.y", "in-base")] == "800"
    assert index.cells[("linux-6.5.y", "needed")] == "200"
    assert "status-linux-6.5.y-in-base.html" in index.hrefs
    data = json.loads((out / "index.json").read_text())
    counts = {b["branch"]: {k: v["n"] for k, v in b["counts"].items()} for b in data["branches"]}
    assert counts["linux-6.1.y"]["needed"] == dashworld.FIXES - dashworld.BACKPORTED - 14
    assert sum(counts["linux-6.5.y"].values()) == dashworld.FIXES


def test_a_thousand_change_pages_take_a_few_dozen_statements(site: Site) -> None:
    # Read per change, the pages took about 14 statements each; a cron run over a real store
    # (tens of thousands of changes) must read them in batches.
    assert len(list(site.out.glob("change-*.html"))) == dashworld.FIXES
    assert site.statements < 150


def test_section_pages_list_every_change_with_its_evidence(site: Site) -> None:
    w, out = site.world, site.out
    assert _section_rows(out, "linux-6.1.y", "released") == w.released_61
    assert _section_rows(out, "linux-6.5.y", "in-base") == w.in_base_65
    assert _section_rows(out, "linux-6.5.y", "needed") == w.needed_65
    assert _section_rows(out, "linux-6.1.y", "in-branch") == w.in_branch_61
    assert set(_section_rows(out, "linux-6.1.y", "manual")) == set(w.marked["manual"])
    assert _section_rows(out, "linux-6.5.y", "failed") == []  # empty, but it has its page
    assert (out / "status-linux-6.5.y-failed.html").exists()
    # 800 in base, at PAGE_ROWS a page; each row says why.
    first = json.loads((out / "status-linux-6.5.y-in-base.json").read_text())
    assert len(first["rows"]) == PAGE_ROWS and len(first["pages"]) == 2
    row = first["rows"][0]
    assert row["status"] == "in base" and row["reason"] == "in v6.5 already"
    assert row["evidence"] == [
        f'{w.fixes[0][:12]} ("mm/hugetlb: fix shared page table race number 0") is in v6.5 '
        "(first released in v6.2)"
    ]
    rel = json.loads((out / "status-linux-6.1.y-released-2.json").read_text())
    last = rel["rows"][-1]
    assert last["stable_sha"] == w.backports[599] and last["release"] == "v6.1.6"
    assert "is a backport (upstream reference)" in last["evidence"][0]
    html = (out / "status-linux-6.1.y-released-2.html").read_text()
    assert 'rel="prev" href="status-linux-6.1.y-released.html"' in html
    blocked = (out / "status-linux-6.1.y-blocked.html").read_text()
    assert "simulated as blocked" in blocked and 'class="badge v-blocked"' in blocked
    failed = json.loads((out / "status-linux-6.1.y-failed.json").read_text())
    assert "FAILED to apply to 6.1-stable" in failed["rows"][0]["reason"]


def test_pages_are_accessible_and_links_resolve(site: Site) -> None:
    out = site.out
    names = ["index.html", "branch-linux-6.1.y.html"]
    names += sorted(p.name for p in out.glob("status-*.html"))
    names.append(f"change-{site.world.fixes[0]}.html")
    for name in names:
        page = _page(out, name)
        assert [t for t, _ in page.headings].count("h1") == 1, name
        for table in page.tables:
            assert table["scoped"] > 0 and table["unscoped"] == 0, name
        for href in page.hrefs:
            assert (out / href).is_file(), f"{name} links to missing {href}"
        html = (out / name).read_text()
        assert "<script" not in html and "script-src 'none'" in html


def _fetch(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as resp:
        status: int = resp.status
        return status


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    with static_servers() as start:
        yield start


@pytest.mark.slow
def test_big_dashboard_in_headless_chromium(
    site: Site, tmp_path: Path, serve: Callable[[Path], str]
) -> None:
    chrome = chromium()
    w = site.world
    base = serve(site.out)
    profile = tmp_path / "profile"

    index = Page(browser(chrome, profile, "--dump-dom", f"{base}/index.html"))
    heads = _branch_headings(index, "linux-6.1.y")
    assert heads[: heads.index("Counted")] == [
        "Failed in stable 2",
        "Blocked 4",
        "Manual backport 5",
        "Needed 286",
    ]
    assert index.cells[("linux-6.1.y", "released")] == "600"
    assert index.cells[("linux-6.5.y", "in-base")] == "800"
    assert not _listed(index, "linux-6.1.y") & set(w.released_61)
    assert not _listed(index, "linux-6.5.y") & set(w.in_base_65)
    # Every link of the overview, as the browser resolved it, answers from the server.
    for href in sorted(set(index.hrefs)):
        assert _fetch(urljoin(f"{base}/index.html", href)) == 200, href

    # The released section, page by page as the browser renders it: all 600, in order.
    shas: list[str] = []
    url = f"{base}/status-linux-6.1.y-released.html"
    for n in (1, 2):
        page = Page(browser(chrome, profile, "--dump-dom", url))
        shas += page.rows["items"]
        assert page.headings[0] == ("h1", "linux-6.1.y: Released 600")
        nxt = [h for h in page.hrefs if h.endswith("released-2.html")]
        if n == 1:
            url = urljoin(url, nxt[0])
    assert shas == w.released_61

    shot = tmp_path / "index.png"
    browser(chrome, profile, f"--screenshot={shot}", "--window-size=1280,900", f"{base}/")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
