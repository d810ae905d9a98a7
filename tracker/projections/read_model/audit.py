"""Is the read model what the log says? Rebuild it in a scratch database and compare, row by row.

The read model is what `attempts`, `campaigns`, `compare` and MLflow read, so an edited row there
(a failure turned into a success) changes every answer while the hash chain stays intact. The check
folds the log up to the read model's checkpoint into an in-memory SQLite database with the same code
`catch_up` runs, then names every row that differs (table, key, column, live vs rebuilt).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, create_engine, select

from tracker.errors import ProjectionOutOfStep
from tracker.eventstore.schema import attempts, campaigns, metadata
from tracker.eventstore.store import EventStore
from tracker.projections.read_model import fold

_TABLES: tuple[tuple[Table, str], ...] = ((campaigns, "name"), (attempts, "stream_id"))
_JSON_COLUMNS = {"problems", "incidents"}


@dataclass(frozen=True)
class RowDifference:
    """One difference; `column` None means the whole row is on one side only (the other is None)."""

    table: str
    key: str
    column: str | None
    live: Any
    rebuilt: Any


@dataclass
class ReadModelReport:
    checkpoint: int
    last_position: int
    rows_compared: int = 0
    differences: list[RowDifference] = field(default_factory=list)
    differences_total: int = 0
    problem: str | None = None
    """Why no comparison was possible (the checkpoint is not in the log)."""

    @property
    def ok(self) -> bool:
        return self.problem is None and self.differences_total == 0


def verify_read_model(store: EventStore, limit: int = 50, batch_size: int = 20_000) -> ReadModelReport:
    """Rebuild the read model from the log (up to its checkpoint) in memory; compare it with the live one.

    At most `limit` differences are kept; `differences_total` counts them all."""
    try:
        checkpoint, last = fold.check_checkpoint(store)
    except ProjectionOutOfStep as exc:
        return ReadModelReport(store.checkpoint(fold.NAME), store.last_position(), problem=str(exc))
    report = ReadModelReport(checkpoint, last)
    scratch = create_engine("sqlite://")
    try:
        metadata.create_all(scratch, tables=[campaigns, attempts])
        with scratch.begin() as rebuilt, store.engine.connect() as live:
            for batch in store.read_batches(0, batch_size, to_position=checkpoint):
                fold.apply_batch(rebuilt, batch)
            for table, key in _TABLES:
                _compare(report, table, key, _rows(live, table, key), _rows(rebuilt, table, key), limit)
    finally:
        scratch.dispose()
    return report


def _rows(connection: Connection, table: Table, key: str) -> dict[str, dict[str, Any]]:
    return {str(row[key]): dict(row) for row in connection.execute(select(table)).mappings()}


def _compare(report: ReadModelReport, table: Table, key: str, live: dict[str, dict[str, Any]],
             rebuilt: dict[str, dict[str, Any]], limit: int) -> None:
    for row_key in sorted(live.keys() | rebuilt.keys()):
        report.rows_compared += 1
        ours, truth = live.get(row_key), rebuilt.get(row_key)
        if ours is None or truth is None:
            _add(report, RowDifference(table.name, row_key, None, ours, truth), limit)
            continue
        for column in truth:
            if column != key and not _same(column, ours.get(column), truth[column]):
                _add(report, RowDifference(table.name, row_key, column, ours.get(column), truth[column]), limit)


def _add(report: ReadModelReport, difference: RowDifference, limit: int) -> None:
    report.differences_total += 1
    if len(report.differences) < limit:
        report.differences.append(difference)


def _same(column: str, live: Any, rebuilt: Any) -> bool:
    """Equal as values: JSON text by content, floats to their last bits' noise, booleans as 0/1 too."""
    if column in _JSON_COLUMNS:
        return _json(live) == _json(rebuilt)
    if isinstance(live, float) and isinstance(rebuilt, float):
        return math.isclose(live, rebuilt, rel_tol=1e-12, abs_tol=0.0) or (math.isnan(live) and math.isnan(rebuilt))
    return bool(live == rebuilt and type(live) is type(rebuilt)) or _loosely_equal(live, rebuilt)


def _loosely_equal(live: Any, rebuilt: Any) -> bool:
    """An int and a float of one value, or a bool stored as 0/1, are the same fact."""
    numeric = (int, float, bool)
    return isinstance(live, numeric) and isinstance(rebuilt, numeric) and float(live) == float(rebuilt)


def _json(value: Any) -> Any:
    if value is None or value == "":
        return []
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value
