"""The events as JSON lines, every stored field as stored: the copy kept before a store is deleted.

Payload and metadata stay the canonical JSON text the chain hashed, so the export can be verified
(and re-chained) without any re-encoding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from tracker.eventstore.database import translate_errors

_FIELDS = ("position", "stream_id", "stream_version", "event_id", "event_type", "schema_version", "payload",
           "metadata", "recorded_at", "prev_hash", "hash")


def export_events(engine: Engine, path: Path, batch_size: int = 10_000) -> tuple[int, int, str | None]:
    """Write every event to `path` (a new file, fsynced); returns (events, last position, last hash)."""
    count, last, last_hash = 0, 0, None
    path.parent.mkdir(parents=True, exist_ok=True)
    with translate_errors(engine.url), engine.connect() as connection, path.open("xb") as out:
        while True:
            rows = _batch(connection, last, batch_size)
            for row in rows:
                out.write(orjson.dumps(dict(zip(_FIELDS, row, strict=True))) + b"\n")
            if rows:
                count, last, last_hash = count + len(rows), int(rows[-1][0]), str(rows[-1][10])
            if len(rows) < batch_size:
                break
        out.flush()
        os.fsync(out.fileno())
    return count, last, last_hash


def _batch(connection: Connection, after: int, size: int) -> list[tuple[Any, ...]]:
    cursor = connection.connection.cursor()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    cursor.execute(f"SELECT {', '.join(_FIELDS)} FROM events WHERE position > {mark} ORDER BY position "
                   f"LIMIT {int(size)}", (after,))
    rows = [tuple(row) for row in cursor.fetchall()]
    cursor.close()
    return rows
