"""One tracker run at a time: an advisory ``flock`` on a lock file (and, on PostgreSQL, the
database's advisory lock).

cron can start a run while the previous one is still going (a slow fetch, a big sync). Two runs
writing the database and the dashboard together would interleave; the second one instead stops at
once with :class:`~tracker.errors.LockedError` (exit code 8) and a one-line message.

``flock`` locks belong to the open file: the kernel drops them when the process exits, however
it exits, so a crashed run never leaves a stale lock behind. The file itself is never removed
(removing it would let a third run lock a new inode while the second still holds the old one).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from tracker.config import Config, xdg_data_home
from tracker.errors import LockedError, StoreError, from_os_error
from tracker.store.db import sqlite_path


def lock_path(config: Config) -> Path:
    """Next to an SQLite database; else in ``$XDG_RUNTIME_DIR/tracker`` or the XDG data dir."""
    url = config.database_url
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = (Path(runtime) if runtime else xdg_data_home()) / "tracker"
    db = sqlite_path(url)
    if db is not None:
        if not db.parent.exists() or os.access(db.parent, os.W_OK):
            return db.with_name(db.name + ".lock")
        # A database this user can only read (a dashboard from someone else's store): nothing
        # this user runs can write it, so a lock of this user's own is enough.
        digest = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:16]
        return base / f"readonly-{digest}.lock"
    return base / "tracker.lock"


@contextlib.contextmanager
def hold_lock(path: Path, what: str = "tracker") -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the block; LockedError if someone else holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        what = f"cannot open lock file {path}"
        raise from_os_error(exc, what) or StoreError(f"{what}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise LockedError(
                f"another {what} run{holder} holds the lock {path}; not starting a second one"
            ) from None
        # Who holds it, for the message the next run prints; informative only.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


# pg_try_advisory_lock takes a bigint; this one is "tracker" in ASCII, fixed so that every
# host's tracker agrees on it.
_ADVISORY_KEY = 0x747261636B6572


@contextlib.contextmanager
def database_lock(url: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock: held by the connection, so it spans hosts and is
    released by the server when the holder's connection ends, however the process dies."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url, poolclass=_null_pool())
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database for the run lock: {exc}") from None
        with conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
            if not got.scalar():
                holder = conn.execute(
                    text(
                        "SELECT a.client_addr, a.pid FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted "
                        "AND l.objid = (:k & 4294967295) LIMIT 1"
                    ),
                    {"k": _ADVISORY_KEY},
                ).first()
                who = f" (server pid {holder.pid})" if holder else ""
                raise LockedError(
                    f"another tracker run{who} holds the database's run lock; "
                    "not starting a second one"
                )
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                conn.commit()
    finally:
        engine.dispose()


def _null_pool() -> type:
    from sqlalchemy.pool import NullPool

    return NullPool


@contextlib.contextmanager
def run_lock(config: Config) -> Iterator[Path]:
    """The lock every cron-able command (sync, dashboard) holds while it runs.

    A shared PostgreSQL database may be synced from several hosts, whose lock files cannot see
    each other: there the database's advisory lock is taken too.
    """
    with hold_lock(lock_path(config)) as p:
        if config.database_url.startswith("postgresql"):
            with database_lock(config.database_url):
                yield p
        else:
            yield p
