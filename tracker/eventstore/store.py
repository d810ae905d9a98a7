"""The append-only event store, on SQLAlchemy 2, one code path for SQLite and PostgreSQL.

Guarantees (tested once, run on both backends in `tests/test_store.py`):
- append-only: the database itself refuses UPDATE/DELETE (triggers from the migrations);
- optimistic concurrency: `append` names the stream version it expects;
- idempotent: re-appending stored event ids is a no-op;
- positions in commit order, gapless: appends are serialised (PostgreSQL: a transaction-scoped
  advisory lock; SQLite: `BEGIN IMMEDIATE`), and each takes `last position + 1`, so a reader tailing
  by position can never skip an event that commits late;
- tamper evidence: a global SHA-256 hash chain (see `hashing.py`), checked by `verify`, and the head of
  the log anchored outside the database after every append (see `anchors.py`), so a cut tail or a
  swapped store is seen too.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from tracker.domain.events import NewEvent, RecordedEvent
from tracker.errors import ConcurrencyError, SchemaOutdated, StoreNotFound, StoreUnavailable
from tracker.eventstore import anchors, blobs, migrate
from tracker.eventstore.anchors import Anchor, AnchorProblem, AnchorSet, AnchorTally, AnchorWriter
from tracker.eventstore.database import create_store_engine, safe_url, translate_errors
from tracker.eventstore.hashing import GENESIS_HASH, canonical_json, event_hash
from tracker.eventstore.schema import events, projection_checkpoints, store_identity
from tracker.settings import resolve_db_url


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""Pass as `expected_version` to append whatever the stream's version is."""

T = TypeVar("T")
NO_STREAM = 0
"""Pass as `expected_version` to require that the stream does not exist yet."""

APPEND_LOCK_KEY = 0x7472_6163_6B00  # "track" — the advisory lock id serialising PostgreSQL appends


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AppendResult:
    stream_version: int
    positions: list[int]
    """Positions of the events this call wrote (empty when every event was already stored)."""
    last_hash: str | None = None
    """The hash of the last event this call wrote: with its position, the head it anchored."""


@dataclass(frozen=True)
class ChainBreak:
    position: int
    event_id: str
    stream_id: str
    reason: str


@dataclass(frozen=True)
class VerifyReport:
    events_checked: int
    last_position: int
    first_break: ChainBreak | None
    anchor_file: str | None = None
    """The anchor file the chain was held against (None: there was none to read)."""
    anchors_read: int = 0
    anchor_problems: tuple[AnchorProblem, ...] = ()
    store_id: str | None = None
    evidence_checked: int = 0
    """Evidence blobs named by the log's `evidence.captured` events, each read back and hashed."""
    evidence_missing: tuple[str, ...] = ()
    evidence_corrupt: tuple[str, ...] = ()
    """Addresses whose blob is gone, or whose content no longer hashes to the address the log names."""

    @property
    def ok(self) -> bool:
        return self.first_break is None and not self.anchor_problems and not (
            self.evidence_missing or self.evidence_corrupt)

    @property
    def anchored(self) -> bool:
        return self.anchors_read > 0


def _row_to_event(row: Sequence[Any]) -> RecordedEvent:
    return RecordedEvent(
        position=row[0], stream_id=row[1], stream_version=row[2], event_id=row[3], event_type=row[4],
        schema_version=row[5], payload=orjson.loads(row[6]), metadata=orjson.loads(row[7]),
        recorded_at=row[8], prev_hash=row[9], hash=row[10],
    )


_COLUMNS = (
    events.c.position, events.c.stream_id, events.c.stream_version, events.c.event_id,
    events.c.event_type, events.c.schema_version, events.c.payload, events.c.metadata,
    events.c.recorded_at, events.c.prev_hash, events.c.hash,
)


_COLUMN_LIST = ", ".join(column.name for column in _COLUMNS)


class _RetryWithIdCheck(Exception):
    """The fast path cannot decide; redo the append checking which event ids are stored."""


_HEAD_QUERY = select(
    select(func.coalesce(func.max(events.c.stream_version), 0))
    .where(events.c.stream_id == bindparam("stream_id")).scalar_subquery(),
    select(events.c.position).order_by(events.c.position.desc()).limit(1).scalar_subquery(),
    select(events.c.hash).order_by(events.c.position.desc()).limit(1).scalar_subquery(),
)
"""The stream's version, and the log's last position and hash: one round trip under the lock."""


class EventStore:
    """Append and read events. Open with `EventStore.open(url)`; the schema must be current."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = safe_url(engine.url)
        self.is_postgres = engine.dialect.name == "postgresql"
        self.anchor_path = anchors.anchor_path(engine.url)
        self._anchor_writer = AnchorWriter(self.anchor_path) if self.anchor_path is not None else None
        self._store_id: str | None = None

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None, *, create: bool = True) -> EventStore:
        """Open the store; an old schema is refused. With `create` (writers) a missing SQLite file or a
        database without any schema is initialised; without it (readers) it is refused as StoreNotFound,
        and nothing (no folder, file or table) is made."""
        engine = create_store_engine(resolve_db_url(url), create=create)
        with translate_errors(engine.url):
            current = migrate.current_revision(engine)
            head = migrate.head_revision()
            if current is None and not create and not _has_events_table(engine):
                engine.dispose()
                raise StoreNotFound(f"no store at {safe_url(engine.url)}: the database has no track schema "
                                    "(nothing was created)")
            if current is None and create:
                # Under the migration lock: another process may be creating the schema right now (its tables
                # seen, its revision not yet); upgrading waits for it and then finds nothing to do.
                migrate.upgrade(engine)
                current = migrate.current_revision(engine)
            if current != head:
                engine.dispose()
                raise SchemaOutdated(
                    f"the store at {safe_url(engine.url)} has schema revision {current or 'none'}, "
                    f"this track needs {head}: the store must be upgraded to it"
                    + (" (the store is newer than this track: upgrade track)" if current and current > head else "")
                )
        return cls(engine)

    def close(self) -> None:
        if self._anchor_writer is not None:
            self._anchor_writer.close()
        self.engine.dispose()

    def store_id(self) -> str | None:
        """The random identity made with the schema (None on a schema older than 0004)."""
        if self._store_id is None:
            try:
                with self.engine.connect() as connection:
                    self._store_id = connection.execute(select(store_identity.c.store_id)).scalar()
            except SQLAlchemyError:
                return None
        return self._store_id

    def _anchored(self, result: AppendResult) -> AppendResult:
        """After the commit: write the new head outside the database."""
        if result.positions and result.last_hash and self._anchor_writer is not None:
            self._anchor_writer.write(Anchor(self.store_id(), result.positions[-1], result.last_hash, utc_now()))
        return result

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def append(self, stream_id: str, new_events: Sequence[NewEvent], expected_version: Any = ANY,
               evidence: Sequence[blobs.Blob] = ()) -> AppendResult:
        """Append a batch atomically to one stream.

        `expected_version`: the stream version the caller last saw (`NO_STREAM` for a new stream),
        or `ANY`. Events whose id is already stored are skipped (idempotent retry); if none is left,
        nothing is written and no version check applies. `evidence`: blobs the events name, stored in the
        same transaction (those already stored are skipped), so an event never names a missing blob.
        """
        if not new_events:
            return AppendResult(self.stream_version(stream_id), [])
        ids = [event.event_id for event in new_events]
        if len(set(ids)) != len(ids):
            raise ValueError("the batch holds the same event id twice")
        with translate_errors(self.engine.url):
            try:
                return self._append_once(stream_id, new_events, expected_version, ids, evidence)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # The server dropped the connection (restart, failover): retry once, appends are idempotent.
                return self._append_once(stream_id, new_events, expected_version, ids, evidence)

    def _append_once(self, stream_id: str, new_events: Sequence[NewEvent], expected_version: Any,
                     ids: list[str], evidence: Sequence[blobs.Blob]) -> AppendResult:
        try:
            # Fast path: assume the ids are new; the unique index tells us when they are not.
            with self._write_transaction() as connection:
                self._store_evidence(connection, evidence)
                result = self._append_locked(connection, stream_id, new_events, expected_version, None)
            return self._anchored(result)
        except (IntegrityError, _RetryWithIdCheck):
            pass
        with self._write_transaction() as connection:
            stored = dict(connection.execute(
                select(events.c.event_id, events.c.stream_id).where(events.c.event_id.in_(ids))
            ).all())
            foreign = {eid: sid for eid, sid in stored.items() if sid != stream_id}
            if foreign:
                eid, sid = next(iter(foreign.items()))
                raise ValueError(f"event {eid} is already stored in another stream ({sid})")
            self._store_evidence(connection, evidence)
            result = self._append_locked(connection, stream_id, new_events, expected_version, stored)
        return self._anchored(result)

    def _store_evidence(self, connection: Connection, evidence: Sequence[blobs.Blob]) -> None:
        if evidence:
            blobs.put_many(connection, evidence, stored_at=utc_now())

    def _write_transaction(self) -> Any:
        return self.transaction(lock_key=APPEND_LOCK_KEY)

    def transaction(self, lock_key: int | None = None) -> Any:
        """A write transaction (context manager giving a Connection), holding a lock while it runs.

        SQLite takes its single write lock up front (`BEGIN IMMEDIATE`); PostgreSQL takes the
        transaction-scoped advisory lock `lock_key` (appends and each projection have their own).
        """
        connection = self.engine.connect().execution_options(sqlite_begin="IMMEDIATE")
        return _Transaction(connection, self.is_postgres, lock_key)

    def _append_locked(
        self, connection: Connection, stream_id: str, new_events: Sequence[NewEvent], expected_version: Any,
        stored: dict[str, str] | None,
    ) -> AppendResult:
        """Under the append lock: check the version, chain the hashes, insert in one statement."""
        current, position, prev_hash = connection.execute(_HEAD_QUERY, {"stream_id": stream_id}).one()
        position, prev_hash = position or 0, prev_hash or GENESIS_HASH
        pending = [event for event in new_events if event.event_id not in (stored or {})]
        if not pending:
            return AppendResult(current, [])
        _check_expected(stream_id, expected_version, current, ids_checked=stored is not None)
        rows = _chained_rows(stream_id, pending, current, position, prev_hash)
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        connection.exec_driver_sql(
            f"INSERT INTO events ({_COLUMN_LIST}) VALUES ({', '.join([mark] * len(_COLUMNS))})", rows
        )
        return AppendResult(current + len(rows), [row[0] for row in rows], rows[-1][10])

    # -- reading ------------------------------------------------------------------------------

    def stream_version(self, stream_id: str) -> int:
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return int(connection.execute(
                select(func.coalesce(func.max(events.c.stream_version), 0)).where(events.c.stream_id == stream_id)
            ).scalar_one())

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        """Every event of one stream, in version order."""
        query = (select(*_COLUMNS).where(events.c.stream_id == stream_id, events.c.stream_version >= from_version)
                 .order_by(events.c.stream_version))
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return [_row_to_event(row) for row in connection.execute(query)]

    def read_batches(self, from_position: int = 0, batch_size: int = 5000,
                     to_position: int | None = None) -> Iterator[list[RecordedEvent]]:
        """All events after `from_position`, in position order, a batch at a time (keyset paging).

        Goes through the DBAPI cursor directly: projections replay millions of events, and
        SQLAlchemy's row objects would cost more than the database read itself.
        """
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        sql = f"SELECT {_COLUMN_LIST} FROM events WHERE position > {mark}"
        if to_position is not None:
            sql += f" AND position <= {int(to_position)}"
        sql += f" ORDER BY position LIMIT {int(batch_size)}"
        position = from_position
        while True:
            with translate_errors(self.engine.url), self.engine.connect() as connection:
                cursor = connection.connection.cursor()
                cursor.execute(sql, (position,))
                rows = cursor.fetchall()
                cursor.close()
            if not rows:
                return
            loads, make = orjson.loads, tuple.__new__
            batch: list[RecordedEvent] = [
                make(RecordedEvent, (r[0], r[1], r[2], r[3], r[4], r[5], loads(r[6]), loads(r[7]), r[8], r[9], r[10]))
                for r in rows
            ]
            yield batch
            position = batch[-1].position
            if len(batch) < batch_size:
                return

    def read_prefix(self, prefix: str) -> list[RecordedEvent]:
        """Every event of the streams whose id starts with `prefix`, by stream then version."""
        query = (select(*_COLUMNS).where(events.c.stream_id.startswith(prefix, autoescape=True))
                 .order_by(events.c.stream_id, events.c.stream_version))
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return [_row_to_event(row) for row in connection.execute(query)]

    def read_blobs(self, addresses: Iterable[str]) -> blobs.BlobRead:
        """Evidence blobs by address, each checked against it (missing and corrupt ones named)."""
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return blobs.get_many(connection, addresses)

    def now(self) -> float:
        """Seconds since the epoch on the database's clock: the one clock every host of a shared store agrees
        on, so a host whose own clock runs ahead cannot see a live lease as expired (SQLite: this host's)."""
        if not self.is_postgres:
            return time.time()
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return float(connection.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())

    def last_position(self) -> int:
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return int(connection.execute(select(func.coalesce(func.max(events.c.position), 0))).scalar_one())

    def stream_ids(self, prefix: str = "") -> list[str]:
        query = select(events.c.stream_id).distinct()
        if prefix:
            query = query.where(events.c.stream_id.startswith(prefix, autoescape=True))
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return sorted(connection.execute(query).scalars())

    def count(self) -> int:
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(events)).scalar_one())

    # -- projection checkpoints ---------------------------------------------------------------

    def checkpoint(self, name: str, connection: Connection | None = None) -> int:
        """How far a projection got (read inside the caller's transaction when one is given)."""
        return self.checkpoint_state(name, connection)[0]

    def checkpoint_state(self, name: str, connection: Connection | None = None) -> tuple[int, str | None]:
        """How far a projection got, and the hash of the event it got to (None if not recorded)."""
        if connection is None:
            with translate_errors(self.engine.url), self.engine.connect() as own:
                return self.checkpoint_state(name, own)
        row = connection.execute(
            select(projection_checkpoints.c.position, projection_checkpoints.c.hash)
            .where(projection_checkpoints.c.name == name)
        ).first()
        return (0, None) if row is None else (int(row[0]), row[1])

    def checkpoint_names(self) -> list[str]:
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            return sorted(connection.execute(select(projection_checkpoints.c.name)).scalars())

    def hash_at(self, position: int, connection: Connection | None = None) -> str | None:
        """The stored hash of the event at `position` (None if there is none)."""
        if connection is None:
            with translate_errors(self.engine.url), self.engine.connect() as own:
                return self.hash_at(position, own)
        value = connection.execute(select(events.c.hash).where(events.c.position == position)).scalar()
        return None if value is None else str(value)

    def save_checkpoint(self, name: str, position: int, connection: Connection | None = None) -> None:
        """Record how far a projection got, with the hash of that event, so a log that changes under the
        projection is noticed (inside the caller's transaction when one is given)."""
        if connection is None:
            with translate_errors(self.engine.url), self.engine.begin() as own:
                self.save_checkpoint(name, position, own)
            return
        values = {"position": position, "updated_at": utc_now(),
                  "hash": self.hash_at(position, connection) if position else None}
        updated = connection.execute(
            projection_checkpoints.update().where(projection_checkpoints.c.name == name).values(**values)
        ).rowcount
        if not updated:
            connection.execute(insert(projection_checkpoints).values(name=name, **values))

    # -- tamper evidence ----------------------------------------------------------------------

    def verify(self, batch_size: int = 10_000, anchor_set: AnchorSet | None = None) -> VerifyReport:
        """Recompute the hash chain from the first event, and hold it against the anchors (by default the
        store's own anchor file, when there is one): report the first broken event, and a cut tail, a
        rewritten prefix or a swapped store, with the positions missing."""
        if anchor_set is None and self.anchor_path is not None and self.anchor_path.is_file():
            anchor_set = anchors.read_anchors(self.anchor_path)
        walk = _ChainWalk(anchor_set)
        query = f"SELECT {_COLUMN_LIST} FROM events WHERE position > :p ORDER BY position LIMIT :n"
        position = 0
        while True:
            with translate_errors(self.engine.url), self.engine.connect() as connection:
                rows = connection.execute(text(query), {"p": position, "n": batch_size}).all()
            if not walk.feed(rows) or len(rows) < batch_size:
                break
            position = rows[-1][0]
        report = walk.report(self.store_id(), self.last_position() if walk.first_break else walk.last)
        return self._verify_evidence(report)

    def _verify_evidence(self, report: VerifyReport, batch: int = 200) -> VerifyReport:
        """Every blob an `evidence.captured` event names, read back and hashed (a batch of addresses at a time)."""
        query = text("SELECT payload FROM events WHERE event_type = 'evidence.captured'")
        with translate_errors(self.engine.url), self.engine.connect() as connection:
            named = sorted({entry["sha256"] for (payload,) in connection.execute(query)
                            for entry in orjson.loads(payload).get("files", [])})
        missing: list[str] = []
        corrupt: list[str] = []
        for offset in range(0, len(named), batch):
            read = self.read_blobs(named[offset:offset + batch])
            missing += read.missing
            corrupt += read.corrupt
        return dataclasses.replace(report, evidence_checked=len(named), evidence_missing=tuple(missing),
                                   evidence_corrupt=tuple(corrupt))


def _check_expected(stream_id: str, expected_version: Any, current: int, ids_checked: bool) -> None:
    """Refuse an append made against a stale version, unless it may be a retry not yet checked by id."""
    if expected_version is ANY or expected_version == current:
        return
    if not ids_checked:  # maybe a retry of a batch already stored: look at the ids first
        raise _RetryWithIdCheck
    raise ConcurrencyError(stream_id, expected_version, current)


def _chained_rows(stream_id: str, pending: Sequence[NewEvent], version: int, position: int,
                  prev_hash: str) -> list[tuple[Any, ...]]:
    """The rows to insert, each hashed over its stored text and chained to the one before."""
    recorded_at = utc_now()
    rows: list[tuple[Any, ...]] = []
    for event in pending:
        position += 1
        version += 1
        payload = canonical_json(event.payload)
        metadata = canonical_json(event.metadata)
        digest = event_hash(
            prev_hash, position=position, stream_id=stream_id, stream_version=version,
            event_id=event.event_id, event_type=event.event_type, schema_version=event.schema_version,
            payload=payload, metadata=metadata, recorded_at=recorded_at,
        )
        rows.append((position, stream_id, version, event.event_id, event.event_type, event.schema_version,
                     payload, metadata, recorded_at, prev_hash, digest))
        prev_hash = digest
    return rows


class _ChainWalk:
    """The chain recomputed batch by batch, each stored hash also held against the anchors at its position."""

    def __init__(self, anchor_set: AnchorSet | None) -> None:
        self.anchor_set = anchor_set
        self.tallies: dict[str | None, AnchorTally] = anchors.tallies(anchor_set) if anchor_set else {}
        self.at_position = anchor_set.by_position() if anchor_set else {}
        self.prev_hash, self.last, self.checked = GENESIS_HASH, 0, 0
        self.first_break: ChainBreak | None = None

    def feed(self, rows: Sequence[Sequence[Any]]) -> bool:
        """Check these rows; False once the chain is broken (nothing after a break can be trusted)."""
        for row in rows:
            brk = _check_row(row, self.prev_hash, self.last + 1)
            if brk:
                self.first_break = brk
                return False
            for anchor in self.at_position.get(row[0], ()):
                self.tallies[anchor.store_id].see(anchor, row[10])
            self.prev_hash, self.last, self.checked = row[10], row[0], self.checked + 1
        return True

    def report(self, store_id: str | None, last_position: int) -> VerifyReport:
        problems = anchors.judge(self.tallies, store_id, last_position)
        return VerifyReport(
            self.checked, self.first_break.position if self.first_break else self.last, self.first_break,
            str(self.anchor_set.path) if self.anchor_set else None,
            len(self.anchor_set.anchors) if self.anchor_set else 0, tuple(problems), store_id)


def _check_row(row: Sequence[Any], prev_hash: str, expected_position: int) -> ChainBreak | None:
    (position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at,
     stored_prev, stored_hash) = row
    if position != expected_position:
        reason = (f"missing event(s): expected position {expected_position}, found {position} "
                  f"(positions {expected_position}..{position - 1} are missing)")
        return ChainBreak(position, event_id, stream_id, reason)
    if stored_prev != prev_hash:
        return ChainBreak(position, event_id, stream_id, "prev_hash does not match the previous event's hash")
    actual = event_hash(prev_hash, position=position, stream_id=stream_id, stream_version=version, event_id=event_id,
                        event_type=event_type, schema_version=schema_version, payload=payload, metadata=metadata,
                        recorded_at=recorded_at)
    if actual != stored_hash:
        return ChainBreak(position, event_id, stream_id, "content changed: stored hash does not match its fields")
    return None


def _has_events_table(engine: Engine) -> bool:
    from sqlalchemy import inspect

    return "events" in inspect(engine).get_table_names()


class _Transaction:
    """A write transaction that holds the append lock (advisory lock on PostgreSQL)."""

    def __init__(self, connection: Connection, is_postgres: bool, lock_key: int | None) -> None:
        self.connection = connection
        self.is_postgres = is_postgres
        self.lock_key = lock_key

    def __enter__(self) -> Connection:
        self._tx = self.connection.begin()
        if self.is_postgres and self.lock_key is not None:
            self.connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.lock_key})
        return self.connection

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            self.connection.close()


class PatientStore(EventStore):
    """The store as a long `track run` needs it: a call that meets an outage waits and tries again.

    A database that blinks (a restart, a failover, a dropped network for seconds) must not end a run of
    hours: each read or append that cannot reach the store is retried with backoff, in the order it was
    made, while the agents keep running, and gives up only after `outage_s` of failing. Appends are
    idempotent by event id, so a retry of an append that did land adds nothing."""

    def __init__(self, engine: Engine, outage_s: float = 120.0,
                 on_wait: Callable[[str], None] | None = None) -> None:
        super().__init__(engine)
        self.outage_s = outage_s
        self.on_wait = on_wait

    @classmethod
    def around(cls, store: EventStore, outage_s: float, on_wait: Callable[[str], None] | None = None) -> PatientStore:
        """The same database, patiently (its engine and connection pool shared)."""
        return cls(store.engine, outage_s, on_wait)

    def _patiently(self, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.outage_s
        wait = 0.2
        while True:
            try:
                return call()
            except StoreUnavailable as exc:
                if time.monotonic() + wait > deadline:
                    raise StoreUnavailable(f"{exc} (unreachable for over {self.outage_s:.0f}s)") from None
                if self.on_wait is not None:
                    self.on_wait(f"store unreachable, retrying in {wait:.1f}s: {exc}")
                time.sleep(wait)
                wait = min(wait * 2, 5.0)

    def append(self, stream_id: str, new_events: Sequence[NewEvent], expected_version: Any = ANY,
               evidence: Sequence[blobs.Blob] = ()) -> AppendResult:
        return self._patiently(lambda: super(PatientStore, self).append(stream_id, new_events, expected_version,
                                                                          evidence))

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        return self._patiently(lambda: super(PatientStore, self).read_stream(stream_id, from_version))

    def read_prefix(self, prefix: str) -> list[RecordedEvent]:
        return self._patiently(lambda: super(PatientStore, self).read_prefix(prefix))

    def stream_version(self, stream_id: str) -> int:
        return self._patiently(lambda: super(PatientStore, self).stream_version(stream_id))

    def now(self) -> float:
        return self._patiently(lambda: super(PatientStore, self).now())

    def read_blobs(self, addresses: Iterable[str]) -> blobs.BlobRead:
        wanted = list(addresses)
        return self._patiently(lambda: super(PatientStore, self).read_blobs(wanted))
