"""The dashboard in a real headless Chromium (Debian's ``chromium``), served from 127.0.0.1.

Skipped only when chromium is absent outside CI; with CI=true a missing browser fails the run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Synced
from tracker import service
from tracker.report.dashboard import write_dashboard

PAYLOAD = "<script>alert(1)</script><img src=x onerror=\"document.title='pwned'\">"
XSS_SUBJECT = f"mm/hugetlb: fix {PAYLOAD} race"


def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed in CI (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI=true fails instead")
    return found


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[functools.partial[str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(directory))
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield functools.partial(start)
    for srv in servers:
        srv.shutdown()
        srv.server_close()


class Dom(HTMLParser):
    """Just enough of the DOM: tag counts, the title, texts by id, rows by data attribute."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {}
        self.rows: dict[str, list[str]] = {}
        self.title = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag in ("meta", "link", "img", "br", "input", "path", "rect", "polyline"):
            return
        self.stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag not in (t for t, _ in self.stack):  # a void element serialised with an end tag
            return
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        tags = [t for t, _ in self.stack]
        if tags[-1:] == ["title"] and "head" in tags:  # not the <title>s inside the SVG
            self.title += data
        for t, a in self.stack:
            if "id" in a:
                self.text[a["id"]] = self.text.get(a["id"], "") + data
            if t == "tr" and "data-branch" in a:
                self.rows.setdefault(a["data-branch"], []).append(data)


def _browser(chromium: str, profile: Path, *args: str) -> str:
    res = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _add_hostile_fix(synced: Synced) -> str:
    """A mainline fix whose subject carries markup, as a hostile or careless mail could."""
    repo = synced.world.path
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Mallory <b>",
        "GIT_AUTHOR_EMAIL": "mallory@example.org",
        "GIT_COMMITTER_NAME": "Lin Torvalds",
        "GIT_COMMITTER_EMAIL": "lin@example.org",
        "GIT_AUTHOR_DATE": "2030-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2030-01-01T00:00:00Z",
    }
    f = repo / "mm" / "hugetlb.c"
    f.write_text(f.read_text() + "/* a hostile subject's fix */\n")
    h0 = synced.world.shas["H0"]
    msg = (
        f"{XSS_SUBJECT}\n\nBody with {PAYLOAD} too.\n\n"
        f'Fixes: {h0[:12]} ("[PATCH] shared page table for hugetlb page")\n'
        "Cc: <stable@vger.kernel.org>\n"
    )
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-am", msg], env=env, check=True)
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    service.sync(synced.config, synced.store)
    return sha


@pytest.mark.slow
def test_dashboard_in_headless_chromium(
    synced: Synced, tmp_path: Path, serve: functools.partial[str]
) -> None:
    chromium = _chromium()
    bad = _add_hostile_fix(synced)
    out = tmp_path / "site"
    write_dashboard(synced.config, synced.store, out)
    base = serve(out)
    profile = tmp_path / "profile"

    # The overview: one row per branch, one cell per topic, counts by status.
    index = Dom(_browser(chromium, profile, "--dump-dom", f"{base}/index.html"))
    assert list(index.rows) == ["linux-6.12.y", "linux-6.6.y", "linux-6.1.y"]
    row = " ".join(" ".join(index.rows["linux-6.1.y"]).split())
    assert "9" in row.split()  # to backport: the sample world's 8 plus the hostile fix
    assert "1 prerequisite" in row and "6 needed" in row
    assert index.title == "tracker: backport status"
    assert index.tags.get("script", 0) == 0

    # The hostile change's page: the markup is text, no element came from it, nothing ran.
    page = f"{base}/change-{bad}.html"
    dom = Dom(_browser(chromium, profile, "--dump-dom", page))
    assert dom.text["subject"] == XSS_SUBJECT
    assert dom.title == f"{bad[:12]} {XSS_SUBJECT} · tracker: backport status"
    assert dom.tags.get("script", 0) == 0 and dom.tags.get("img", 0) == 0
    assert "needed" in " ".join(dom.text["branches"].split())
    assert "fixes" in dom.text["graph"]

    shot = tmp_path / "change.png"
    _browser(chromium, profile, f"--screenshot={shot}", "--window-size=1280,900", page)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    overview = tmp_path / "index.png"
    _browser(chromium, profile, f"--screenshot={overview}", "--window-size=1280,900", base + "/")
    assert overview.stat().st_size > 20_000
