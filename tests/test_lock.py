"""The run lock: one tracker run at a time; an overlapping cron run exits 8 with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Synced
from tracker.errors import LockedError
from tracker.lock import hold_lock, lock_path
from tracker.paths import PROJECT_ROOT


@pytest.fixture
def backend() -> str:
    """These cases are about SQLite files and local locks."""
    return "sqlite"


# What tracker.cli does with register(app); guarded so it also works after that.
RUN_CLI = """
import sys
import tracker.cli as cli
from tracker.cli.reports import register
if not any(c.name == "dashboard" for c in cli.app.registered_commands):
    register(cli.app)
cli.main(sys.argv[1:])
"""

HOLD = """
import sys
from pathlib import Path
from tracker.lock import hold_lock
with hold_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_second_holder_gets_locked_error(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with hold_lock(path):
        with pytest.raises(LockedError, match="holds the lock") as info, hold_lock(path):
            pass
        assert info.value.exit_code == 8
    with hold_lock(path):  # released when the block ended
        pass


def test_lock_lives_next_to_the_database(synced: Synced) -> None:
    db = Path(synced.config.database_url.removeprefix("sqlite:///"))
    assert lock_path(synced.config) == db.with_name("tracker.db.lock")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_overlapping_runs(synced: Synced, tmp_path: Path) -> None:
    """A second process finds the lock held: exit code 8, one line, nothing written."""
    cfg = str(synced.config.path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_path(synced.config))],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        res = _cli("--config", cfg, "dashboard", "--out", str(tmp_path / "site"))
        assert res.returncode == 8, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"tracker: error: another tracker run (pid {holder.pid})")
        assert not (tmp_path / "site").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    res = _cli("--config", cfg, "dashboard", "--out", str(tmp_path / "site"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "site" / "index.html").is_file()
