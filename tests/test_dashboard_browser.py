"""The dashboard in a real headless Chromium (Debian's ``chromium``), served from 127.0.0.1.

Skipped only when chromium is absent outside CI; with CI=true a missing browser fails the run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.browser import Dom, browser, chromium, static_servers
from tests.conftest import Synced
from tracker import usecases
from tracker.usecases import write_dashboard

PAYLOAD = "<script>alert(1)</script><img src=x onerror=\"document.title='pwned'\">"
XSS_SUBJECT = f"mm/hugetlb: fix {PAYLOAD} race"


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
    usecases.sync(synced.config, synced.store)
    return sha


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    with static_servers() as start:
        yield start


@pytest.mark.slow
def test_dashboard_in_headless_chromium(
    synced: Synced, tmp_path: Path, serve: Callable[[Path], str]
) -> None:
    chrome = chromium()
    bad = _add_hostile_fix(synced)
    out = tmp_path / "site"
    write_dashboard(synced.config, synced.store, out)
    base = serve(out)
    profile = tmp_path / "profile"

    # The overview: one row per branch, one cell per topic, counts by status.
    index = Dom(browser(chrome, profile, "--dump-dom", f"{base}/index.html"))
    assert list(index.rows) == ["linux-6.12.y", "linux-6.6.y", "linux-6.1.y"]
    row = " ".join(" ".join(index.rows["linux-6.1.y"]).split())
    assert "9" in row.split()  # to backport: the sample world's 8 plus the hostile fix
    assert "1 prerequisite" in row and "6 needed" in row
    assert index.title == "tracker: backport status"
    assert index.tags.get("script", 0) == 0

    # The hostile change's page: the markup is text, no element came from it, nothing ran.
    page = f"{base}/change-{bad}.html"
    dom = Dom(browser(chrome, profile, "--dump-dom", page))
    assert dom.text["subject"] == XSS_SUBJECT
    assert dom.title == f"{bad[:12]} {XSS_SUBJECT} · tracker: backport status"
    assert dom.tags.get("script", 0) == 0 and dom.tags.get("img", 0) == 0
    assert "needed" in " ".join(dom.text["branches"].split())
    assert "fixes" in dom.text["graph"]

    shot = tmp_path / "change.png"
    browser(chrome, profile, f"--screenshot={shot}", "--window-size=1280,900", page)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    overview = tmp_path / "index.png"
    browser(chrome, profile, f"--screenshot={overview}", "--window-size=1280,900", base + "/")
    assert overview.stat().st_size > 20_000
