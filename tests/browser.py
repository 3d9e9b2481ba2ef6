"""Headless Chromium (Debian's ``chromium``) and a static server on 127.0.0.1, for page tests.

A missing browser skips the test, except with CI=true, where it fails the run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def chromium() -> str:
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


@contextlib.contextmanager
def static_servers() -> Iterator[Callable[[Path], str]]:
    """Start static servers on 127.0.0.1 (one per directory given); all stop on exit."""
    servers: list[ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(directory))
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    try:
        yield start
    finally:
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


def browser(chromium: str, profile: Path, *args: str) -> str:
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
