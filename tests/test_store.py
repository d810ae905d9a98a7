"""The event store's guarantees, one suite run on SQLite and on real PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from tests.conftest import run_track
from tests.support.events import read_all
from tests.support.store_workers import append_stream, tail
from tracker.domain.events import NewEvent
from tracker.errors import ConcurrencyError
from tracker.eventstore.store import ANY, NO_STREAM, EventStore


def ev(n: int, event_id: str | None = None) -> NewEvent:
    if event_id:
        return NewEvent("test.happened", {"n": n}, event_id=event_id)
    return NewEvent("test.happened", {"n": n})


@pytest.fixture
def store(store_url: str):
    with EventStore.open(store_url) as s:
        yield s


def test_append_and_read_back_in_order(store: EventStore) -> None:
    result = store.append("attempt-1", [ev(1), ev(2)], expected_version=NO_STREAM)
    assert result.stream_version == 2
    assert result.positions == [1, 2]
    store.append("attempt-2", [ev(3)], expected_version=NO_STREAM)
    store.append("attempt-1", [ev(4)], expected_version=2)
    stream = store.read_stream("attempt-1")
    assert [e.payload["n"] for e in stream] == [1, 2, 4]
    assert [e.stream_version for e in stream] == [1, 2, 3]
    everything = list(read_all(store))
    assert [e.position for e in everything] == [1, 2, 3, 4]
    assert [e.payload["n"] for e in read_all(store, from_position=2)] == [3, 4]
    assert everything[0].metadata == {}
    assert store.verify().ok


def test_conflict_exactly_one_of_two_writers_wins(store: EventStore) -> None:
    store.append("campaign-x", [ev(0)], expected_version=NO_STREAM)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def writer(n: int) -> None:
        barrier.wait()
        try:
            store.append("campaign-x", [ev(n)], expected_version=1)
            outcomes.append("won")
        except ConcurrencyError as exc:
            assert exc.expected == 1 and exc.actual == 2
            outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert store.stream_version("campaign-x") == 2


def test_new_stream_expectation_and_any(store: EventStore) -> None:
    store.append("s", [ev(1)], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError, match="version 1"):
        store.append("s", [ev(2)], expected_version=NO_STREAM)
    assert store.append("s", [ev(3)], expected_version=ANY).stream_version == 2


def test_idempotent_reappend_is_a_noop(store: EventStore) -> None:
    batch = [ev(1, "00000000-0000-4000-8000-000000000001"), ev(2, "00000000-0000-4000-8000-000000000002")]
    store.append("s", batch, expected_version=NO_STREAM)
    again = store.append("s", batch, expected_version=NO_STREAM)  # a retry after a lost reply
    assert again.positions == [] and again.stream_version == 2
    assert store.count() == 2
    with pytest.raises(ValueError, match="another stream"):
        store.append("other", [batch[0]], expected_version=NO_STREAM)


def test_atomic_batch_with_one_conflicting_event_writes_nothing(store: EventStore) -> None:
    store.append("a", [ev(1, "00000000-0000-4000-8000-0000000000aa")], expected_version=NO_STREAM)
    store.append("b", [ev(2)], expected_version=NO_STREAM)
    mixed = [ev(3), ev(4, "00000000-0000-4000-8000-0000000000aa"), ev(5)]  # middle one belongs to stream a
    with pytest.raises(ValueError):
        store.append("b", mixed, expected_version=1)
    with pytest.raises(ConcurrencyError):
        store.append("b", [ev(6), ev(7)], expected_version=0)
    assert store.count() == 2
    assert [e.payload["n"] for e in store.read_stream("b")] == [2]
    assert store.verify().ok


def test_database_refuses_update_and_delete(store: EventStore) -> None:
    store.append("s", [ev(1)], expected_version=NO_STREAM)
    for statement in ("UPDATE events SET payload = '{\"n\": 9}'", "DELETE FROM events"):
        with pytest.raises(DatabaseError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    assert store.read_stream("s")[0].payload == {"n": 1}


UPDATE_PAYLOAD = text("UPDATE events SET payload = :v WHERE position = :p")


def _tamper(store: EventStore, position: int) -> None:
    """Change a stored payload the way an attacker with database access would: triggers off."""
    with store.engine.begin() as connection:
        if store.is_postgres:
            connection.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
            connection.execute(UPDATE_PAYLOAD, {"p": position, "v": '{"n":999}'})
            connection.execute(text("ALTER TABLE events ENABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER events_refuse_update"))
            connection.execute(UPDATE_PAYLOAD, {"p": position, "v": '{"n":999}'})


def test_verify_names_the_first_tampered_event(store: EventStore, store_url: str) -> None:
    for n in range(5):
        store.append(f"s{n % 2}", [ev(n)])
    assert run_track("--db", store_url, "verify").returncode == 0
    _tamper(store, 3)
    report = store.verify()
    assert not report.ok and report.first_break is not None
    assert report.first_break.position == 3 and report.events_checked == 2
    tampered_id = list(read_all(store))[2].event_id
    result = run_track("--db", store_url, "verify")
    assert result.returncode == 1
    assert "position 3" in result.stdout and tampered_id in result.stdout
    as_json = run_track("--db", store_url, "verify", "--json")
    assert '"position": 3' in as_json.stdout and as_json.returncode == 1


def test_verify_finds_a_deleted_event(store: EventStore) -> None:
    for n in range(4):
        store.append("s", [ev(n)])
    with store.engine.begin() as connection:
        if store.is_postgres:
            connection.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
            connection.execute(text("DELETE FROM events WHERE position = 2"))
            connection.execute(text("ALTER TABLE events ENABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER events_refuse_delete"))
            connection.execute(text("DELETE FROM events WHERE position = 2"))
    report = store.verify()
    assert report.first_break is not None and report.first_break.position == 3
    assert "missing" in report.first_break.reason


def test_processes_append_concurrently_and_a_tailing_reader_skips_nothing(store_url: str, tmp_path: Path) -> None:
    EventStore.open(store_url).close()  # schema in place before the children start
    writers, batches, batch_size = 4, 25, 10
    total = writers * batches * batch_size
    ctx = multiprocessing.get_context("spawn")
    seen_file = tmp_path / "seen.txt"
    reader = ctx.Process(target=tail, args=(store_url, total, str(seen_file)))
    reader.start()
    procs = [ctx.Process(target=append_stream, args=(store_url, f"w{i}", batches, batch_size)) for i in range(writers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    reader.join(120)
    assert reader.exitcode == 0
    with EventStore.open(store_url) as store:
        everything = list(read_all(store))
        assert [e.position for e in everything] == list(range(1, total + 1))
        assert len({e.event_id for e in everything}) == total
        for i in range(writers):
            stream = store.read_stream(f"w{i}")
            assert [e.payload["n"] for e in stream] == list(range(batches * batch_size))
        assert store.verify().ok
    seen = [int(line) for line in seen_file.read_text().split()]
    assert seen == list(range(1, total + 1)), "the tailing reader skipped or repeated a position"


def test_checkpoints_round_trip(store: EventStore) -> None:
    assert store.checkpoint("mlflow") == 0
    store.save_checkpoint("mlflow", 42)
    store.save_checkpoint("mlflow", 43)
    assert store.checkpoint("mlflow") == 43


def test_append_survives_the_server_dropping_its_connection(pg_url: str) -> None:
    """PostgreSQL restarts or a proxy kills idle connections: the next append still lands, once."""
    with EventStore.open(pg_url) as store:
        store.append("s", [ev(1)], expected_version=NO_STREAM)
        with store.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            admin.commit()
        store.append("s", [ev(2)], expected_version=1)
        assert [e.payload["n"] for e in store.read_stream("s")] == [1, 2]


def test_unreachable_store_is_a_clear_error() -> None:
    from tracker.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="cannot reach the database"):
        EventStore.open("postgresql://nobody@127.0.0.1:1/none")


def _open_store(url: str) -> None:
    EventStore.open(url).close()


@pytest.mark.postgres
def test_processes_opening_a_brand_new_postgres_database_at_once_all_succeed(pg_url: str) -> None:
    """Schema creation is serialised (an advisory lock around migrations): none crashes on alembic_version."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_store, args=(pg_url,)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    with EventStore.open(pg_url) as store:
        assert store.count() == 0 and store.verify().ok


@pytest.mark.postgres
@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_appends_hold_whatever_isolation_the_database_defaults_to(pg_url: str, isolation: str) -> None:
    """A database defaulting to repeatable read or serializable: concurrent appends still just work."""
    from sqlalchemy import create_engine, text

    name = pg_url.rsplit("/", 1)[1]
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = '{isolation}'"))
    admin.dispose()
    EventStore.open(pg_url).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=append_stream, args=(pg_url, f"w{i}", 15, 5)) for i in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    with EventStore.open(pg_url) as store:
        assert store.count() == 3 * 15 * 5 and store.verify().ok
