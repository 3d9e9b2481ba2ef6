"""One tracker run at a time: an advisory ``flock`` on a lock file.

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
import os
from collections.abc import Iterator
from pathlib import Path

from tracker.config import Config, xdg_data_home
from tracker.errors import LockedError, StoreError


def lock_path(config: Config) -> Path:
    """Next to an SQLite database; else in ``$XDG_RUNTIME_DIR/tracker`` or the XDG data dir."""
    url = config.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        db = Path(url.removeprefix("sqlite:///")).expanduser()
        return db.with_name(db.name + ".lock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else xdg_data_home()
    return base / "tracker" / "tracker.lock"


@contextlib.contextmanager
def hold_lock(path: Path, what: str = "tracker") -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the block; LockedError if someone else holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open lock file {path}: {exc.strerror or exc}") from None
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


@contextlib.contextmanager
def run_lock(config: Config) -> Iterator[Path]:
    """The lock every cron-able command (sync, dashboard) holds while it runs."""
    with hold_lock(lock_path(config)) as p:
        yield p
