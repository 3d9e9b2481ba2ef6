"""Engine creation and schema upgrades. The schema is owned by Alembic, never by create_all()."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tracker.errors import AccessDeniedError, StoreError, classify, from_os_error
from tracker.paths import MIGRATIONS_DIR

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

    from tracker.config import Config

# The newest migration. Opening a store compares it with the database's own revision in plain
# SQL, so that alembic (a fifth of a plan's start-up) is imported only when there is work for it;
# tests/test_migrations.py keeps it equal to alembic's head.
SCHEMA_REVISION = "0009s"
# SQLite's default: a commit that leaves the write-ahead log this many pages long checkpoints it.
WAL_CHECKPOINT_PAGES = 1000
PAGE_SIZE = 16384  # of a new SQLite database


def _sqlite_pragmas(busy_ms: int, read_only: bool, dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    if not read_only:
        # Takes effect only in a database still empty (before WAL is switched on): a first
        # sync writes each page to the log and again to the database, and with 16 KiB pages
        # that costs its process an eighth less CPU than with SQLite's 4 KiB.
        cur.execute(f"PRAGMA page_size={PAGE_SIZE:d}")
        # WAL lets the dashboard read while cron syncs; the busy timeout covers the overlap,
        # and past it the command stops with "database is locked" (exit 9), not forever.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cur.execute("PRAGMA foreign_keys=ON")
    # A plan reads scattered rows of a gigabyte-sized store: mapping the file spares a read()
    # system call per page (half of plan time at 1M commits), and a larger page cache keeps
    # what one command reads twice.
    cur.execute("PRAGMA mmap_size=8589934592")
    cur.execute("PRAGMA cache_size=-131072")
    cur.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory ones)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        return None
    return Path(url.removeprefix("sqlite:///").partition("?")[0]).expanduser()


def _read_only_file(path: Path) -> bool:
    """An existing database this process cannot write: a read-only directory or filesystem
    (SQLite needs to create the -wal and -shm files beside it), or a read-only file."""
    if not path.exists():
        return False
    return not (os.access(path.parent, os.W_OK) and os.access(path, os.W_OK))


def is_read_only(url: str) -> bool:
    path = sqlite_path(url)
    return path is not None and _read_only_file(path)


def make_engine(url: str, busy_timeout: float = 30.0, read_only: bool | None = None) -> Engine:
    path = sqlite_path(url)
    if read_only is None:
        read_only = is_read_only(url)
    if path is not None and read_only:
        # WAL needs a writable -shm beside the file; with none possible, read the file as it
        # is. A writer elsewhere would need this directory too, so none can be mid-commit.
        url = f"sqlite:///file:{path}?immutable=1&uri=true"
    elif path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise from_os_error(exc, f"cannot create {path.parent}") or StoreError(
                f"cannot create {path.parent}: {exc}"
            ) from None
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open database {url!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        pragmas = partial(_sqlite_pragmas, int(busy_timeout * 1000), read_only)
        event.listen(engine, "connect", pragmas)
    return engine


def alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser treats "%" as interpolation; URLs carry %-escapes (a socket path, a password).
    url = engine.url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def _at_schema_revision(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return False  # no version table yet: a new database
    return found == [SCHEMA_REVISION]


def upgrade(engine: Engine) -> None:
    from alembic import command

    try:
        if current_revision(engine) != head_revision(engine):
            command.upgrade(alembic_config(engine), "head")
    except SQLAlchemyError as exc:
        # A full disk or a lock held too long is not a broken database: say which it is.
        raise classify(exc) or StoreError(
            f"cannot migrate database {engine.url!r}: {exc}"
        ) from None


class Store:
    """An engine whose schema is at head, and a session factory."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        self.read_only = is_read_only(url)
        self.engine = make_engine(url, busy_timeout, self.read_only)
        if not _at_schema_revision(self.engine):
            if self.read_only:
                raise AccessDeniedError(
                    f"database {url} is read-only for this user and needs migrating: run "
                    "'tracker db upgrade' as a user who can write it"
                )
            upgrade(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # The log's size, in pages, at which a commit checkpoints it (see store.checkpoints).
        self.checkpoint_pages = WAL_CHECKPOINT_PAGES
        if self.engine.dialect.name == "sqlite" and not self.read_only:
            event.listen(self.engine, "checkout", self._connection_settings)

    def _connection_settings(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        """Each connection handed out checks foreign keys, whatever a bulk load turned off in
        it before (see bulkload.unchecked_references), and checkpoints at the store's
        threshold."""
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={self.checkpoint_pages:d}")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on any error."""
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def refresh_statistics(self) -> None:
        """Refresh the query planner's statistics after a sync that changed the store.

        Without them SQLite guesses, and with a list archive loaded it guessed wrong: the
        ``(kind, value)`` trailer index for "this message's Fixes:", walking every Fixes: of the
        history per posting. ``analysis_limit`` samples each index instead of reading it whole,
        so this costs milliseconds even at a million commits.
        """
        if self.engine.dialect.name == "sqlite":
            with self.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("ANALYZE")
        elif self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")

    def close(self) -> None:
        self.engine.dispose()


def open_store(config: Config) -> Store:
    """The store ``config`` names: its database URL and lock wait."""
    return Store(config.database_url, config.busy_timeout)
