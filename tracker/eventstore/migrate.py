"""Schema migrations, driven through Alembic's API (the CLI's `track db upgrade`).

A downgrade that would drop the event table of a store holding events is refused unless the caller
names a file to export the events to first: the audit log is never deleted by a mistyped revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

import migrations
from tracker.errors import LogWouldBeLost, StoreConfigError
from tracker.eventstore import anchors
from tracker.eventstore.database import safe_url
from tracker.eventstore.export import export_events

EVENT_TABLE_REVISION = "0001"
"""The revision that creates the `events` table: downgrading past it drops the log."""


def migrations_dir() -> Path:
    return Path(migrations.__file__).resolve().parent


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


@dataclass(frozen=True)
class LogExport:
    path: Path
    events: int
    last_position: int


def drops_event_log(engine: Engine, revision: str) -> bool:
    """Would downgrading to `revision` (an id, `base`, or `-N`) undo the migration that made `events`?"""
    current = current_revision(engine)
    if current is None:
        return False
    script = ScriptDirectory.from_config(_config())
    target = _resolve_relative(script, current, revision) if revision.startswith("-") else revision
    try:
        steps = [step.revision for step in script.iterate_revisions(current, target)]
    except Exception as exc:  # Alembic's own errors for an unknown or upward revision
        raise StoreConfigError(f"cannot downgrade {safe_url(engine.url)} to {revision!r}: {exc}") from None
    return EVENT_TABLE_REVISION in steps


def _resolve_relative(script: ScriptDirectory, current: str, revision: str) -> str:
    steps = int(revision[1:])
    target: str | None = current
    for _ in range(steps):
        found = script.get_revision(target) if target else None
        down = found.down_revision if found else None
        target = down if isinstance(down, str) else None
    return target or "base"


def event_count(engine: Engine) -> int:
    if "events" not in inspect(engine).get_table_names():
        return 0
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM events")).scalar_one())


def default_export_path(engine: Engine) -> Path:
    """Beside the SQLite file, else in the working folder: `<name>.export-<UTC time>.jsonl`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    database = engine.url.database or "events"
    if engine.dialect.name == "sqlite" and database != ":memory:":
        return Path(database).absolute().with_name(f"{Path(database).name}.export-{stamp}.jsonl")
    return Path.cwd() / f"track-events-{Path(database).name}.export-{stamp}.jsonl"


def downgrade(engine: Engine, revision: str, *, export_to: Path | None = None) -> LogExport | None:
    """Revert migrations down to `revision`. If that drops the event table of a store holding events,
    `export_to` must name a new file: the events are written there (and the store's anchors retired)
    before anything is dropped; without it the downgrade is refused."""
    export = None
    if drops_event_log(engine, revision):
        count = event_count(engine)
        if count and export_to is None:
            raise LogWouldBeLost(
                f"the store at {safe_url(engine.url)} holds {count} events; downgrading to {revision!r} drops the "
                "event table and every event with it: refused")
        if count and export_to is not None:
            export = _export_and_retire(engine, export_to)
    _run(engine, "downgrade", revision)
    return export


def _export_and_retire(engine: Engine, path: Path) -> LogExport:
    try:
        count, last, last_hash = export_events(engine, path)
    except FileExistsError:
        raise StoreConfigError(f"{path} exists already: name a new file for the export") from None
    store_id = _store_id(engine)
    if last_hash is not None:
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        anchors.retire(anchors.anchor_path(engine.url),
                       [anchors.Anchor(store_id, last, last_hash, at, retired=True, export=str(path))])
    return LogExport(path, count, last)


def _store_id(engine: Engine) -> str | None:
    if "store_identity" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as connection:
        value = connection.execute(text("SELECT store_id FROM store_identity")).scalar()
        return None if value is None else str(value)


MIGRATION_LOCK_KEY = 0x7472_6163_6B01  # "track" + 1: PostgreSQL advisory lock around schema changes


def _run(engine: Engine, action: str, revision: str) -> None:
    """Run an Alembic command; on PostgreSQL under a session advisory lock, so processes opening a new
    database at once migrate one after the other (the later one finds the schema already there)."""
    config = _config()
    with engine.connect() as connection:
        locked = connection.dialect.name == "postgresql"
        if locked:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
        try:
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
            connection.commit()
        finally:
            if locked:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()
