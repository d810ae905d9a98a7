"""Engines for the event store: one code path for SQLite (one host) and PostgreSQL (many hosts).

SQLite runs in WAL mode with a busy timeout, and appends take the write lock up front
(`BEGIN IMMEDIATE`), so positions are handed out in commit order. PostgreSQL appends serialise on a
transaction-scoped advisory lock for the same reason (see `store.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from tracker.errors import StoreConfigError, StoreNotFound, StoreUnavailable

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_MAGIC = b"SQLite format 3\x00"


def parse_url(raw: str) -> URL:
    """Parse and normalise a store URL; `postgresql://` means the psycopg 3 driver."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreConfigError(
            f"not a database URL: {raw!r} (expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB)"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreConfigError(
            f"unsupported database {url.get_backend_name()!r} in {safe_url(url)}: use sqlite or postgresql"
        )
    return url


def safe_url(url: URL | str) -> str:
    """The URL with its password hidden, fit for messages and logs."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<unparseable URL>"
    return url.render_as_string(hide_password=True)


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names (None: in memory, or a `file:` URI left to SQLite)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _check_sqlite_path(url: URL, create: bool) -> None:
    """Create the folder of a new SQLite file (only if `create`); refuse a file that is not a SQLite database."""
    path = sqlite_file(url)
    if path is None:
        return
    if path.is_dir():
        raise StoreConfigError(f"{path} is a directory, not a SQLite database file")
    if path.exists():
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
        if head and head != SQLITE_MAGIC:
            raise StoreConfigError(f"{path} is not a SQLite database")
        if not create and not _sqlite_has_tables(path):
            raise StoreNotFound(f"no store at {path.absolute()}: the database has no track schema "
                                "(nothing was created)")
        return
    if not create:
        raise StoreNotFound(f"no store at {path.absolute()}: the file does not exist (nothing was created)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreConfigError(f"cannot create the folder for {path}: {exc.strerror}") from None


def _sqlite_has_tables(path: Path) -> bool:
    """Does the file hold any table? Asked read-only, before the engine's WAL pragma would write to a file
    that is no store (an empty file, another program's database). Unsure (locked, odd WAL state): yes."""
    if path.stat().st_size == 0:
        return False
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return True
    try:
        return connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return True
    finally:
        connection.close()


def _install_sqlite_hooks(engine: Engine) -> None:
    """Take over transaction control from pysqlite so appends can say BEGIN IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_store_engine(raw_url: str, *, create: bool = True) -> Engine:
    """An engine for the store URL, checked: reachable, and a database of the right kind. With
    `create=False` a SQLite file that does not exist is refused (StoreNotFound) and nothing is made."""
    url = parse_url(raw_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        _check_sqlite_path(url, create)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        # No pre-ping (a round trip per checkout); a dropped connection is retried by the store instead.
        kwargs["pool_recycle"] = 1800
        # Appends and projections are written for read committed (with their own locks): whatever the
        # database's default (repeatable read, serializable), every connection of the store runs at it.
        kwargs["isolation_level"] = "READ COMMITTED"
        # Custom plans: generic plans chosen while the table was small turn into seq scans as it grows.
        kwargs["connect_args"] = {"connect_timeout": 10, "options": "-c plan_cache_mode=force_custom_plan"}
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StoreConfigError(f"cannot use {safe_url(url)}: {exc}") from None
    if url.get_backend_name() == "sqlite":
        _install_sqlite_hooks(engine)
    with translate_errors(url), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        if url.get_backend_name() == "sqlite":
            connection.execute(text("SELECT count(*) FROM sqlite_master"))
    return engine


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


@contextmanager
def translate_errors(url: URL | str) -> Iterator[None]:
    """Turn driver errors about reaching the database into one-line, password-free messages."""
    try:
        yield
    except OperationalError as exc:
        detail = _first_line(exc)
        if "not a database" in detail or "file is encrypted" in detail:
            raise StoreConfigError(f"{safe_url(url)} is not a SQLite database: {detail}") from None
        raise StoreUnavailable(f"cannot reach the database at {safe_url(url)}: {detail}") from None
    except DBAPIError as exc:
        detail = _first_line(exc)
        if "not a database" in detail:
            raise StoreConfigError(f"{safe_url(url)} is not a SQLite database: {detail}") from None
        raise
