"""The Alembic migrations and the models describe the same schema; SQLite is set up for cron."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from tracker.store.db import (
    PAGE_SIZE,
    SCHEMA_REVISION,
    Store,
    current_revision,
    head_revision,
)
from tracker.store.models import Base


def test_models_match_migrations(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 't.db'}")
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    assert current_revision(store.engine) == head_revision(store.engine)
    # Store() skips alembic when the database says SCHEMA_REVISION: it must be the head.
    assert head_revision(store.engine) == SCHEMA_REVISION


def test_older_database_is_upgraded_on_open(tmp_path: Path) -> None:
    from alembic import command

    from tracker.store.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0004")
    engine.dispose()
    store = Store(url)
    assert current_revision(store.engine) == SCHEMA_REVISION
    with store.engine.connect() as conn:
        names = set(
            conn.execute(text("SELECT name FROM sqlite_master WHERE type='index'")).scalars()
        )
    assert "ix_trailers_commit_sha_kind" in names and "ix_trailers_kind" not in names


def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_a_new_database_gets_large_pages_and_an_existing_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")  # made and migrated
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA page_size")).scalar() == PAGE_SIZE == 16384
    store.close()
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)  # made by an earlier tracker: SQLite's 4 KiB pages
    con.execute("CREATE TABLE t (x)")
    con.close()
    store = Store(f"sqlite:///{old}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA page_size")).scalar() == 4096
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert current_revision(store.engine) == head_revision(store.engine)
    store.close()


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    Store(url).close()
    store = Store(url)
    assert current_revision(store.engine) == head_revision(store.engine)
