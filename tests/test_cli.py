"""The CLI as a user runs it: a real process, one-line errors, documented exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Synced
from tracker.sampleworld.demo import write_demo_config
from tracker.store.db import SCHEMA_REVISION

TRACKER = [sys.executable, "-m", "tracker"]


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k != "TRACKER_CONFIG"}
    e.update(env or {})
    return subprocess.run(
        [*TRACKER, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=120, check=False
    )


def assert_one_line_error(p: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert needle in lines[0], lines[0]


def test_plan_json(synced_ro: Synced) -> None:
    cfg = str(synced_ro.root / "tracker.toml")
    p = run("--config", cfg, "plan", "linux-6.1.y", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["branch"] == "linux-6.1.y"
    for step in data["steps"]:
        assert {"sha", "subject", "topic", "status", "reason"} <= set(step)
    assert sum(1 for s in data["steps"] if s["status"] == "needed") == 5
    assert sum(1 for s in data["steps"] if s["status"] == "failed") == 1


def test_status_and_plan_text(synced_ro: Synced) -> None:
    cfg = str(synced_ro.root / "tracker.toml")
    p = run("status", synced_ro.world.shas["L4"][:12], env={"TRACKER_CONFIG": cfg})
    assert p.returncode == 0, p.stderr
    assert "linux-6.1.y" in p.stdout and "not-needed" in p.stdout
    p = run("plan", "linux-6.6.y", "--topic", "lazy-mmu", cwd=synced_ro.root)  # ./tracker.toml
    assert p.returncode == 0, p.stderr
    assert "sparc/mm: disable preemption in lazy mmu mode" in p.stdout
    assert "hugetlb" not in p.stdout.split("\n", 1)[1].replace("[lazy-mmu]", "")


def test_broken_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[database\nurl = 1\n")
    assert_one_line_error(run("--config", str(bad), "plan", "x"), 2, "not valid TOML")
    bad.write_text(
        '[[repositories]]\nname = "l"\npath = "."\n[[branches]]\nname = "b"\nbse = "v1"\n'
    )
    assert_one_line_error(run("--config", str(bad), "plan", "b"), 2, "branches[0].bse")
    bad.write_text('[[repositories]]\nname = "l"\npath = 7\n')
    assert_one_line_error(run("--config", str(bad), "sync"), 2, "repositories[0].path")
    assert_one_line_error(run("--config", str(tmp_path / "none.toml"), "sync"), 2, "not found")


def test_unknown_branch(synced_ro: Synced) -> None:
    cfg = str(synced_ro.root / "tracker.toml")
    assert_one_line_error(
        run("--config", cfg, "plan", "linux-4.19.y"), 4, "unknown branch 'linux-4.19.y'"
    )


def test_missing_repository_path(tmp_path: Path) -> None:
    cfg = write_demo_config(tmp_path)
    assert_one_line_error(run("--config", str(cfg), "sync"), 3, "path does not exist")


@pytest.mark.parametrize("sha", ["deadbeefdeadbeef", "--upload-pack=x", "HEAD~1"])
def test_unknown_or_hostile_sha(synced_ro: Synced, sha: str) -> None:
    cfg = str(synced_ro.root / "tracker.toml")
    assert_one_line_error(run("--config", cfg, "status", "--", sha), 5, "")


def test_init_writes_loadable_config(tmp_path: Path) -> None:
    target = tmp_path / "cfg" / "config.toml"
    p = run("init", str(target))
    assert p.returncode == 0, p.stderr
    assert target.exists()
    assert_one_line_error(run("init", str(target)), 2, "already exists")


def test_why_json(synced_ro: Synced) -> None:
    cfg = str(synced_ro.root / "tracker.toml")
    p = run("--config", cfg, "why", synced_ro.world.shas["RF"][:12], "linux-6.6.y", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["status"] == "not-needed" and data["chain"][0]["relation"] == "decision"


def test_db_upgrade(tmp_path: Path) -> None:
    cfg = write_demo_config(tmp_path)
    p = run("--config", str(cfg), "db", "upgrade")
    assert p.returncode == 0, p.stderr
    assert f"revision {SCHEMA_REVISION}" in p.stdout


def test_demo_prints_three_plans(tmp_path: Path) -> None:
    p = run("demo", "--dir", str(tmp_path / "d"))
    assert p.returncode == 0, p.stderr
    for b in ("linux-6.1.y", "linux-6.6.y", "linux-6.12.y"):
        assert f"{b} (base " in p.stdout
    # check --plan ran: H1's prerequisite (found by simulation) is in, and every step applies.
    assert "linux-6.1.y (base v6.1): 9 to backport" in p.stdout
    assert "simulation: clean; needs" in p.stdout
    assert "simulation: conflict" not in p.stdout
