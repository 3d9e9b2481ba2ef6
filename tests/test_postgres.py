"""PostgreSQL as a first-class store: the same answers as SQLite, and a run lock across hosts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Synced, _use_url
from tests.pgserver import PostgresServer
from tracker import usecases
from tracker.config import Config, load_config
from tracker.sampleworld.demo import write_demo_config
from tracker.sampleworld.history import SampleWorld
from tracker.store.models import SyncRun

pytestmark = pytest.mark.postgres


def _world(world_template: SampleWorld, root: Path) -> Path:
    shutil.copytree(world_template.path.parent, root, symlinks=True)
    return write_demo_config(root)


def _answers(cfg: Config) -> str:
    store = usecases.open_store(cfg)
    try:
        usecases.sync(cfg, store)
        usecases.sync_sources(cfg, store)
        plans = [usecases.plan(cfg, store, b.name).to_dict() for b in cfg.branches]
        steps = [st for p in plans for st in p["steps"]]  # type: ignore[attr-defined]
        shas = {str(st["sha"]) for st in steps if len(str(st["sha"])) == 40}
        status = [usecases.status(cfg, store, sha[:12]).to_dict() for sha in sorted(shas)]
    finally:
        store.close()
    return json.dumps({"plans": plans, "status": status}, sort_keys=True, default=str)


def test_the_same_plans_and_status_on_sqlite_and_postgresql(
    world_template: SampleWorld, pg_server: PostgresServer, tmp_path: Path
) -> None:
    lite = load_config(_world(world_template, tmp_path / "lite"))
    pg = _use_url(_world(world_template, tmp_path / "pg"), pg_server.create_database())
    a, b = _answers(lite), _answers(pg)
    assert a.count('"position"') > 10
    assert a == b


def test_times_are_stored_as_moments_on_both_stores(synced_ro: Synced) -> None:
    store = usecases.open_store(synced_ro.config)
    late_west = datetime(2025, 12, 2, 23, 30, tzinfo=timezone(timedelta(hours=-8)))
    with store.session() as s:
        s.add(SyncRun(source="tz-probe", started_at=late_west, status="ok", added=0))
    with store.session() as s:
        got = s.scalars(select(SyncRun.started_at).where(SyncRun.source == "tz-probe")).one()
    store.close()
    assert got == late_west
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert got.date().isoformat() == "2025-12-03"
    assert got.astimezone(UTC).hour == 7


HOLD_AND_SYNC = """
import sys, time
import tracker.cli as cli
cli.main(sys.argv[1:])
"""


def test_two_hosts_on_one_database_cannot_sync_at_once(
    world_template: SampleWorld, pg_server: PostgresServer, tmp_path: Path
) -> None:
    """Two processes, each with its own lock directory (two hosts): the database decides."""
    url = pg_server.create_database()
    cfgs = []
    for host in ("a", "b"):
        cfg_path = _world(world_template, tmp_path / host)
        _use_url(cfg_path, url)
        cfgs.append(cfg_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(cfgs[0])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**_env(tmp_path / "a-runtime")},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-c", HOLD_AND_SYNC, "--config", str(cfgs[1]), "sync", "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(tmp_path / "b-runtime"),
        )
        assert second.returncode == 8, second.stderr
        assert "holds the database's run lock" in second.stderr
        assert second.stderr.count("\n") == 1
        assert time.monotonic() - started < 60
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    # Released with the holder's connection: host b syncs now.
    again = subprocess.run(
        [sys.executable, "-c", HOLD_AND_SYNC, "--config", str(cfgs[1]), "sync", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path / "b-runtime"),
    )
    assert again.returncode == 0, again.stderr


HOLD_LOCK = """
import sys
from tracker.config import load_config
from tracker.lock import run_lock
with run_lock(load_config(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def _env(runtime: Path) -> dict[str, str]:
    import os

    runtime.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env["XDG_RUNTIME_DIR"] = str(runtime)
    return env
