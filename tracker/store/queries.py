"""Dialect-aware bulk writes and the lookups other modules share."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from tracker.store.models import Base, Commit

if TYPE_CHECKING:
    import psycopg

_CHUNK = 5000


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
    cols = _uniform_columns(rows)
    if cols is None:
        # Rows of different shapes rely on column defaults per row: the plain path keeps them.
        for i in range(0, len(rows), _CHUNK):
            chunk = rows[i : i + _CHUNK]
            session.execute(sqlite.insert(table).on_conflict_do_nothing(), chunk)
        return
    _insert_ignore_sqlite(session, table, cols, rows)


def _uniform_columns(rows: Sequence[dict[str, Any]]) -> list[str] | None:
    """The columns every row names, when all rows name the same ones (else None)."""
    cols = list(rows[0])
    keys = rows[0].keys()
    if any(r.keys() != keys for r in rows):
        return None
    return cols


def _insert_ignore_sqlite(
    session: Session, table: Table, cols: list[str], rows: Sequence[dict[str, Any]]
) -> None:
    """One prepared statement run by the driver's executemany over plain tuples.

    SQLAlchemy's own executemany builds and type-processes a parameter dict per row, which
    cost more than SQLite's inserting the rows (half of a first sync's mainline phase). The
    columns' bind processors still apply (booleans, UTC datetimes), only once per value.
    """
    dialect = session.get_bind().dialect
    procs: list[tuple[int, Callable[[Any], Any]]] = []
    for i, c in enumerate(cols):
        proc = table.c[c].type._cached_bind_processor(dialect)
        if proc is not None:
            procs.append((i, proc))
    get = operator.itemgetter(*cols)
    names = ", ".join(f'"{c}"' for c in cols)
    marks = ", ".join("?" for _ in cols)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING'

    def params(r: dict[str, Any]) -> tuple[Any, ...]:
        values = get(r)
        if len(cols) == 1:
            values = (values,)
        if not procs:
            return cast("tuple[Any, ...]", values)
        out = list(values)
        for i, proc in procs:
            out[i] = proc(out[i])
        return tuple(out)

    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        cur.executemany(sql, [params(r) for r in rows])
    finally:
        cur.close()


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


def chunked(items: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    buf: list[str] = []
    for it in items:
        buf.append(it)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf
