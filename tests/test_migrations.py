"""Alembic migrations up and down on both backends; the store refuses an outdated schema."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from tests.conftest import run_track
from tracker import migrate
from tracker.database import create_store_engine
from tracker.errors import SchemaOutdated
from tracker.events import NewEvent
from tracker.store import EventStore


def test_upgrade_downgrade_upgrade(store_url: str) -> None:
    result = run_track("--db", store_url, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    engine = create_store_engine(store_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert {"events", "projection_checkpoints"} <= set(inspect(engine).get_table_names())
    assert run_track("--db", store_url, "db", "downgrade", "base").returncode == 0
    assert "events" not in inspect(engine).get_table_names()
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    store = EventStore(engine)
    store.append("s", [NewEvent("t", {"a": 1})])
    assert store.verify().ok
    engine.dispose()


def test_outdated_schema_is_refused_with_advice(store_url: str) -> None:
    engine = create_store_engine(store_url)
    migrate.upgrade(engine, "0001")
    head = migrate.head_revision()
    if head == "0001":
        # Simulate an older store by stamping a revision this track does not know as current.
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    engine.dispose()
    with pytest.raises(SchemaOutdated, match="track db upgrade"):
        EventStore.open(store_url)
    result = run_track("--db", store_url, "verify")
    assert result.returncode == 2
    assert "track db upgrade" in result.stderr and "Traceback" not in result.stderr
