"""Dialect-aware bulk writes and the lookups other modules share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from tracker.store.models import Base, Commit

_CHUNK = 5000


def insert_ignore(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, skipping any that collide with an existing key (idempotent re-syncs)."""
    if not rows:
        return
    table = model.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    for i in range(0, len(rows), _CHUNK):
        chunk = rows[i : i + _CHUNK]
        if dialect == "postgresql":
            # Imported here: the PostgreSQL dialect costs every command start-up 30 ms.
            from sqlalchemy.dialects import postgresql

            session.execute(postgresql.insert(table).on_conflict_do_nothing(), chunk)
        else:
            session.execute(sqlite.insert(table).on_conflict_do_nothing(), chunk)


def commits_by_prefix(session: Session, prefix: str, limit: int = 3) -> list[Commit]:
    """Commits whose sha starts with ``prefix`` (an index range scan, not LIKE)."""
    prefix = prefix.lower()
    if len(prefix) >= 40:
        c = session.get(Commit, prefix)
        return [c] if c else []
    hi = prefix + "g"  # 'g' sorts after every hex digit
    stmt = select(Commit).where(Commit.sha >= prefix, Commit.sha < hi).limit(limit)
    return list(session.scalars(stmt))


def commits_by_subject(session: Session, subject: str, limit: int = 3) -> list[Commit]:
    stmt = select(Commit).where(Commit.subject == subject).limit(limit)
    return list(session.scalars(stmt))


def chunked(items: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    buf: list[str] = []
    for it in items:
        buf.append(it)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf
