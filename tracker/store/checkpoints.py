"""SQLite's write-ahead log copied into the database by a thread of its own while a sync writes.

A commit that finds the log past 1,000 pages checkpoints it before it returns: copies the pages
into the database file and waits for the disk to have them (fsync). On a first sync that was a
quarter of a second per 20,000 commits, and a tenth per stable branch, with the syncing process
idle. During a sync the connections leave it to a thread, whose passive checkpoints copy what
is committed so far while the sync goes on (a passive checkpoint blocks neither the writer nor
readers, and the thread waits for the disk with the GIL released).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator

from tracker.store.db import WAL_CHECKPOINT_PAGES, Store, sqlite_path

_INTERVAL = 0.05  # seconds between two checkpoints (one with nothing to copy costs microseconds)


@contextlib.contextmanager
def background_checkpoints(store: Store) -> Iterator[None]:
    """Checkpoint ``store``'s log from a thread until the block ends; the connections the store
    hands out meanwhile leave checkpoints to it. A no-op for other databases and read-only
    stores."""
    path = sqlite_path(store.engine.url.render_as_string(hide_password=False))
    if store.engine.dialect.name != "sqlite" or store.read_only or path is None:
        yield
        return
    try:
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        yield  # the commits checkpoint as usual; what went wrong is the sync's to meet
        return
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(_INTERVAL):
            # A busy database or a full disk is the sync's to report; this only tries again.
            with contextlib.suppress(sqlite3.Error):
                con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    thread = threading.Thread(target=run, name="wal-checkpoints", daemon=True)
    store.checkpoint_pages = 0
    thread.start()
    try:
        yield
    finally:
        store.checkpoint_pages = WAL_CHECKPOINT_PAGES
        stop.set()
        thread.join()
        con.close()
