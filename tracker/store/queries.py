"""Dialect-aware bulk writes and the lookups other modules share."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Boolean, Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from tracker.store.models import Base, Commit

if TYPE_CHECKING:
    import psycopg

_CHUNK = 5000
T = TypeVar("T")


def insert_ignore(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, skipping any that collide with an existing key (idempotent re-syncs)."""
    if not rows:
        return
    table = model.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        _insert_ignore_pg(session, table, rows)
        return
    params = _sqlite_params(session, table, rows)
    if params is None:
        # Rows of different shapes rely on column defaults per row: the plain path keeps them.
        for i in range(0, len(rows), _CHUNK):
            chunk = rows[i : i + _CHUNK]
            session.execute(sqlite.insert(table).on_conflict_do_nothing(), chunk)
        return
    cols, values = params
    names = ", ".join(f'"{c}"' for c in cols)
    marks = ", ".join("?" for _ in cols)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING'
    # The driver's executemany over plain tuples: SQLAlchemy's own builds and type-processes
    # a parameter dict per row, which cost more than SQLite's inserting the rows (half of a
    # first sync's mainline phase).
    sqlite_executemany(session, sql, values)


def insert_ignore_tuples(
    session: Session, model: type[Base], cols: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """:func:`insert_ignore` of rows given as tuples in the order of ``cols``: a sync's bulk
    rows go to sqlite3 as they come, without a dict per row in between."""
    if not rows:
        return
    table = model.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite" or any(
        not isinstance(table.c[c].type, Boolean)
        and table.c[c].type._cached_bind_processor(dialect) is not None
        for c in cols
    ):
        insert_ignore(session, model, [dict(zip(cols, r, strict=True)) for r in rows])
        return
    names = ", ".join(f'"{c}"' for c in cols)
    marks = ", ".join("?" for _ in cols)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING'
    sqlite_executemany(session, sql, rows)


def on_sqlite(session: Session) -> bool:
    """Row-at-a-time writes go through sqlite3's executemany there (see sqlite_executemany);
    PostgreSQL keeps the chunked set-based statements, one round trip per chunk."""
    return session.get_bind().dialect.name == "sqlite"


def sqlite_executemany(session: Session, sql: str, params: Sequence[Sequence[Any]]) -> None:
    """Run one SQL statement (``?`` placeholders) per parameter tuple, in the session's
    transaction, through sqlite3 itself: for row-at-a-time writes of a sync, where
    SQLAlchemy's per-row parameter handling costs more than SQLite's work."""
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        cur.executemany(sql, params)
    finally:
        cur.close()


def _sqlite_params(
    session: Session, table: Table, rows: Sequence[dict[str, Any]]
) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """The rows' columns and their values as tuples, bind-processed as SQLAlchemy would;
    None when the rows do not all name the same columns."""
    cols = list(rows[0])
    if len(set(map(len, rows))) != 1:
        return None
    try:
        values: list[Any] = list(map(operator.itemgetter(*cols), rows))
    except KeyError:
        return None
    if len(cols) == 1:
        values = [(v,) for v in values]
    dialect = session.get_bind().dialect
    procs: list[tuple[int, Callable[[Any], Any]]] = []
    for i, c in enumerate(cols):
        ctype = table.c[c].type
        # sqlite3 binds True and False as the 1 and 0 SQLAlchemy's Boolean would send.
        proc = None if isinstance(ctype, Boolean) else ctype._cached_bind_processor(dialect)
        if proc is not None:
            procs.append((i, proc))
    if procs:
        values = [_processed(v, procs) for v in values]
    return cols, values


def _processed(
    row: tuple[Any, ...], procs: list[tuple[int, Callable[[Any], Any]]]
) -> tuple[Any, ...]:
    out = list(row)
    for i, proc in procs:
        out[i] = proc(out[i])
    return tuple(out)


def _insert_ignore_pg(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING.

    An executemany is a statement per row on the server (a first sync several times slower
    than SQLite), and a multi-row VALUES statement spends longer compiling its bind
    parameters than the server spends inserting.
    """
    cols = list(rows[0])
    if any(len(r) != len(cols) or any(c not in r for c in cols) for r in rows):
        # Rows of different shapes rely on column defaults per row: the plain path keeps them.
        from sqlalchemy.dialects import postgresql

        for i in range(0, len(rows), _CHUNK):
            session.execute(postgresql.insert(table).on_conflict_do_nothing(), rows[i : i + _CHUNK])
        return
    dbapi = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
    temp = f"tmp_ins_{table.name}"
    names = ", ".join(f'"{c}"' for c in cols)
    with dbapi.cursor() as cur:
        cur.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{temp}" '
            f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
        )
        cur.execute(f'TRUNCATE "{temp}"')
        with cur.copy(f'COPY "{temp}" ({names}) FROM STDIN') as copy:
            for r in rows:
                copy.write_row([_pg_value(r[c]) for c in cols])
        cur.execute(
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{temp}" '
            "ON CONFLICT DO NOTHING"
        )


def _pg_value(value: Any) -> Any:
    # Naive datetimes are UTC in tracker (see store/types.py); COPY would read them in the
    # session's zone.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


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


def chunked(items: Iterable[T], size: int = 500) -> Iterable[list[T]]:
    buf: list[T] = []
    for it in items:
        buf.append(it)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf
