"""Secondary indexes built once after a first sync's bulk load instead of row by row (SQLite).

A first sync inserts every commit of a history, with its trailers and topics, into tables with
ten secondary indexes; SQLite keeps each up to date per row, for five of them in random key order
(shas, subjects, path keys, trailer values). Built afterwards from the loaded table, these five
cost a fraction of that.

The dropped indexes' own ``CREATE INDEX`` statements are kept in a ``sources`` row, committed
with the drop: a sync killed before it rebuilt them leaves that row behind, and the next sync
rebuilds them first. The schema after a first sync is then exactly the migrated one.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tracker.store.db import Store
from tracker.store.models import Commit, Source
from tracker.store.queries import on_sqlite

MARK = "store:deferred-indexes"
_TABLES = ("commits", "trailers", "commit_topics")
# Kept through the load: their keys arrive in order (mainline order), are NULL until a later
# phase (change and patch ids, a commit trailer's Message-ID) or are one of a few topic names,
# so SQLite appends to them; kept, they cost the load nothing measurable, and rebuilt after it
# they cost 0.18 s of a 45,000-commit first sync.
_KEPT = frozenset(
    {
        "ix_commits_mainline_order",
        "ix_commits_change_id",
        "ix_commits_patch_id",
        "ix_trailers_message_id",
        "ix_commit_topics_topic",
    }
)


def defer_indexes(store: Store) -> bool:
    """Drop the bulk tables' secondary indexes if this is a first load into SQLite (the commits
    table empty); True when they were dropped. Unique keys stay: inserts rely on them."""
    if store.engine.dialect.name != "sqlite":
        return False
    with store.session() as s:
        if s.scalar(select(func.count()).select_from(Source).where(Source.name == MARK)):
            return True  # dropped by a run that died: still to be rebuilt
        if s.scalar(select(Commit.sha).limit(1)) is not None:
            return False
        marks = ", ".join("?" for _ in _TABLES)
        found = s.connection().exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks}) ORDER BY name",
            _TABLES,
        )
        indexes = [(str(name), str(sql)) for name, sql in found if name not in _KEPT]
        if not indexes:
            return False
        s.add(Source(name=MARK, kind="store", cursor=json.dumps([sql for _, sql in indexes])))
        for name, _ in indexes:
            s.connection().exec_driver_sql(f'DROP INDEX "{name}"')
    return True


def restore_indexes(store: Store) -> None:
    """Create the indexes :func:`defer_indexes` dropped, if any are still to be created."""
    if store.engine.dialect.name != "sqlite":
        return
    with store.session() as s:
        saved = s.scalar(select(Source.cursor).where(Source.name == MARK))
        if saved is None:
            return
        for sql in json.loads(saved):
            s.connection().exec_driver_sql(str(sql))
        s.execute(delete(Source).where(Source.name == MARK))


@contextlib.contextmanager
def restored_beside(store: Store) -> Iterator[None]:
    """:func:`restore_indexes` in a thread of its own while the block runs; the block must
    only read (the rebuild holds SQLite's write lock). Its failure is raised at the end."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            restore_indexes(store)
        except BaseException as exc:  # raised in the syncing thread, below
            failed.append(exc)

    builder = threading.Thread(target=run, name="restore-indexes", daemon=True)
    builder.start()
    try:
        yield
    finally:
        builder.join()
    if failed:
        raise failed[0]


def unchecked_references(s: Session) -> None:
    """Stop SQLite checking foreign keys in ``s`` (until its connection is next handed out,
    see ``Store``), if ``s`` has written nothing yet (SQLite ignores the switch inside a
    transaction).

    For a first load whose rows reference only rows inserted just before them (a commit's
    trailers and topics follow the commit): the check is then a lookup per row that cannot
    fail, a tenth of the load's time."""
    if not on_sqlite(s):
        return
    dbapi = s.connection().connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        dbapi.execute("PRAGMA foreign_keys=OFF")
