"""Alembic environment: runs on the connection `tracker.eventstore.migrate` hands over (or on -x url=...)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tracker.eventstore.database import create_store_engine

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the store URL: alembic -x url=sqlite:///mlruns/events.db upgrade head")
    engine = create_store_engine(url)
    with engine.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; use `track db upgrade`")
run_migrations_online()
