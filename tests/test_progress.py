"""The progress display of sync and check: totals drawn as bars, quiet off a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.ptyrun import run_on_a_terminal
from tracker.progress import LineProgress, Reporter
from tracker.sampleworld.demo import write_demo_config
from tracker.sampleworld.history import SampleWorld


def test_a_known_total_is_a_bar_and_an_unknown_one_a_count() -> None:
    out = io.StringIO()
    p = LineProgress(out, show=True)
    assert isinstance(p, Reporter)
    p.expect("mainline", 4)
    p("mainline", 1)
    p("mainline", 3)
    p("release tags", 1)
    p("release tags", 1)
    p.done()
    text = out.getvalue()
    assert re.search(r"mainline  4/4  \[#{20}\]  100%  0:0\d", text)
    assert re.search(r"release tags  2  0:0\d", text)
    # The finished phase keeps its line; the display ends with a newline of its own.
    lines = text.split("\n")
    assert lines[0].rsplit("\r", 1)[-1].startswith("mainline  4/4") and text.endswith("\n")


def test_nothing_is_drawn_when_not_shown() -> None:
    out = io.StringIO()
    p = LineProgress(out, show=False)
    p.expect("mainline", 4)
    p("mainline", 4)
    p.done()
    assert out.getvalue() == ""


def _sync_on_a_terminal(config: Path, *extra: str) -> str:
    """`tracker sync` with stdout and stderr on one pseudo-terminal, as a maintainer sees it."""
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_CONFIG"}
    args = [sys.executable, "-m", "tracker", "--config", str(config), "sync", *extra]
    return run_on_a_terminal(args, env, stdout_too=True).replace("\r\n", "\n")


def test_sync_draws_totals_on_a_terminal_and_its_summary_survives(
    world_dir: tuple[SampleWorld, Path],
) -> None:
    _, root = world_dir
    config = write_demo_config(root)
    shown = _sync_on_a_terminal(config)
    # Commit counts come from git rev-list --count: a bar, and every commit accounted for.
    mainline = re.findall(r"\rmainline  (\d+)/(\d+)  \[([#.]+)\]", shown)
    assert mainline and mainline[-1][0] == mainline[-1][1] and "." not in mainline[-1][2]
    assert re.search(r"\rlinux-6\.1\.y  (\d+)/\1  \[#+\]  100%", shown)
    # The mbox source: its files are counted before they are read.
    assert re.search(r"\rdemo-mail  (\d+)/\1  \[#+\]", shown)
    # The summaries come after the last drawn line, each on a line of its own, and nothing
    # is drawn over them.
    tail = shown[shown.rindex("\r") :]
    assert "\ngit: " in tail and "\ndemo-mail: " in tail
    after = shown[shown.index("\ngit: ") :]
    assert "\r" not in after and "[#" not in after

    # Again, with nothing to do: quiet and non-terminal runs draw nothing.
    assert "\r" not in _sync_on_a_terminal(config, "--quiet")
    piped = subprocess.run(
        [sys.executable, "-m", "tracker", "--config", str(config), "sync"],
        capture_output=True,
        text=True,
    )
    assert piped.returncode == 0 and piped.stderr == "" and "git: " in piped.stdout
