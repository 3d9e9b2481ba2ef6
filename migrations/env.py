"""Alembic environment: tracker passes its engine in; batch mode keeps SQLite ALTERs possible."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from tracker.store.models import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    given = config.attributes.get("engine")
    if isinstance(given, Engine):
        return given
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url configured for migrations")
    return create_engine(url)


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
