"""Failures a user can cause or meet: one line on stderr and a documented exit code.

Each case is a real condition (a real SIGINT, a real write lock held by another process, a
device that is really full, a run log left behind by a killed process) and the real CLI run as
a new process.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Synced
from tests.loopback import LoopbackServer, Reply
from tracker import usecases
from tracker.config import load_config
from tracker.store.models import SyncRun


@pytest.fixture
def backend() -> str:
    """These cases are about SQLite files and local locks."""
    return "sqlite"


RUN = "import sys, tracker.cli as c; c.main(sys.argv[1:])"


def _start(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_DEBUG"}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", RUN, *args],
        stdout=kw.pop("stdout", subprocess.PIPE),
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def _run(*args: str, **kw: object) -> tuple[int, str, str]:
    p = _start(*args, **kw)
    out, err = p.communicate(timeout=300)
    return p.returncode, out or "", err


def _db(synced: Synced) -> Path:
    return Path(synced.config.database_url.removeprefix("sqlite:///"))


def _with_source(synced: Synced, extra: str) -> Path:
    assert synced.config.path is not None
    cfg = synced.config.path
    cfg.write_text(cfg.read_text() + extra)
    return cfg


def test_ctrl_c_is_one_line_and_130_and_the_run_log_says_so(
    synced: Synced, loopback_server: LoopbackServer
) -> None:
    msgid = "stall@example.org"
    path = f"/all/{msgid}/t.mbox.gz"
    loopback_server.route(path, Reply(body=b"", delay=60))
    cfg = _with_source(
        synced,
        f'\n[[sources]]\nname = "slow"\nkind = "lore-thread"\n'
        f'url = "{loopback_server.base_url}"\nquery = "{msgid}"\n',
    )
    p = _start("--config", str(cfg), "sync", "--source", "slow", "--quiet")
    deadline = time.monotonic() + 60
    while not loopback_server.requests_for(path) and loopback_server.inflight == 0:
        assert time.monotonic() < deadline, "the sync never reached the server"
        assert p.poll() is None, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130
    assert err == "tracker: interrupted\n"
    with synced.store.session() as s:
        runs = s.scalars(select(SyncRun).where(SyncRun.source == "slow")).all()
    assert [r.status for r in runs] == ["interrupted"]


def test_a_run_killed_before_it_could_record_is_marked_by_the_next(synced: Synced) -> None:
    with synced.store.session() as s:
        s.add(SyncRun(source="git", started_at=datetime.now(UTC), status="running", added=0))
    usecases.sync(synced.config, synced.store)
    with synced.store.session() as s:
        statuses = s.scalars(select(SyncRun.status).order_by(SyncRun.id)).all()
    assert "running" not in statuses
    assert statuses[-2:] == ["killed", "ok"]


def test_database_locked_past_the_bounded_wait_exits_9(synced: Synced) -> None:
    cfg = synced.config.path
    assert cfg is not None
    text = cfg.read_text().replace("[database]\n", "[database]\nbusy_timeout = 1\n")
    if "[database]" not in text:
        text = f"[database]\nbusy_timeout = 1\nurl = 'sqlite:///{_db(synced)}'\n" + text
    cfg.write_text(text)
    assert load_config(cfg).busy_timeout == 1.0
    holder = sqlite3.connect(_db(synced), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE sync_runs SET added = added")
        started = time.monotonic()
        code, _, err = _run("--config", str(cfg), "sync", "--quiet")
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 9, err
    assert err.startswith("tracker: error: database is locked") and err.count("\n") == 1
    assert waited < 30


def test_stdout_on_a_full_device_exits_10(synced_ro: Synced) -> None:
    assert synced_ro.config.path is not None
    with open("/dev/full", "w") as full:
        code, _, err = _run(
            "--config", str(synced_ro.config.path), "plan", "linux-6.1.y", "--json", stdout=full
        )
    assert code == 10, err
    assert "No space left on device" in err and err.count("\n") == 1


def _tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
    )
    return done.returncode == 0


def test_database_on_a_full_filesystem_exits_10(synced: Synced, tmp_path: Path) -> None:
    small = tmp_path / "small"
    if not _tmpfs(small, "64m"):
        pytest.skip("mounting a small tmpfs needs privileges this machine does not give")
    try:
        db = small / "tracker.db"
        synced.store.close()
        db.write_bytes(_db(synced).read_bytes())
        # Fill what is left, so the sync's first write meets a really full filesystem.
        with open(small / "filler", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        cfg = _with_source(synced, "")
        cfg.write_text(cfg.read_text().replace(str(_db(synced)), str(db)))
        code, _, err = _run("--config", str(cfg), "sync", "--quiet")
        assert code == 10, err
        assert err.startswith("tracker: error: ") and err.count("\n") == 1
        assert "full" in err or "No space" in err
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "etc" / "tracker.toml"
    conf.parent.mkdir()
    example = (Path(__file__).resolve().parents[1] / "config.example.toml").read_text()
    assert 'url = "sqlite:///tracker.db"' in example
    conf.write_text(example.replace("sqlite:///tracker.db", "sqlite:///data/tracker.db"))
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    cwd = Path.cwd()
    try:
        os.chdir(elsewhere)
        cfg = load_config(conf)
    finally:
        os.chdir(cwd)
    assert cfg.database_url == f"sqlite:///{tmp_path / 'etc' / 'data' / 'tracker.db'}"


def test_readers_work_on_a_read_only_database(synced: Synced, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    if not _tmpfs(ro, "64m"):
        pytest.skip("mounting a small tmpfs needs privileges this machine does not give")
    try:
        synced.store.close()
        db = ro / "tracker.db"
        db.write_bytes(_db(synced).read_bytes())
        cfg = _with_source(synced, "")
        cfg.write_text(cfg.read_text().replace(str(_db(synced)), str(db)))
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        shas = synced.world.shas
        sha = next(iter(v for k, v in shas.items() if k != "INIT"))
        for args in (
            ["plan", "linux-6.1.y"],
            ["status", sha[:12]],
            ["dashboard", "--out", str(tmp_path / "site")],
        ):
            code, out, err = _run("--config", str(cfg), *args)
            assert code in (0, 5), (args, err)  # 5: a sample sha that is not a topic commit
            assert "read-only" not in err and "migrate" not in err, (args, err)
        code, out, err = _run("--config", str(cfg), "plan", "linux-6.1.y")
        assert code == 0 and "linux-6.1.y" in out
        assert (tmp_path / "site" / "index.html").exists()
        code, _, err = _run("--config", str(cfg), "sync", "--quiet")
        assert code == 11, err
        assert err.startswith("tracker: error: ") and err.count("\n") == 1
    finally:
        subprocess.run(["umount", str(ro)], check=False)
