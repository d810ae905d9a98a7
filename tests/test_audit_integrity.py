"""What an auditor would try on the store, each named by `track verify` (SQLite and PostgreSQL): a cut
tail, a deleted middle event, a rewritten prefix, a swapped store, an edited read-model row; writes
that are not appends refused; a downgrade that would delete the log refused; the read model replayed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from tests.conftest import run_track
from tests.support import real_shapes
from tracker.domain.events import NewEvent
from tracker.errors import LogWouldBeLost, ProjectionOutOfStep
from tracker.eventstore import anchors, migrate
from tracker.eventstore.hashing import GENESIS_HASH, event_hash
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.read_model import fold, queries


def ev(n: int) -> NewEvent:
    return NewEvent("test.happened", {"n": n})


@pytest.fixture
def store(store_url: str):
    with EventStore.open(store_url) as s:
        yield s


def _filled(store: EventStore, n: int = 6) -> EventStore:
    for i in range(n):
        store.append(f"s{i % 2}", [ev(i)])
    return store


def _raw(store: EventStore, *statements: str | tuple[str, dict[str, object]]) -> None:
    """Change the log as someone with database access would: the refusing triggers out of the way."""
    with store.engine.begin() as connection:
        if store.is_postgres:
            connection.execute(text("SET LOCAL session_replication_role = replica"))  # the documented bypass
        else:
            for trigger in ("events_refuse_update", "events_refuse_delete", "events_refuse_replace"):
                connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        for statement in statements:
            sql, params = (statement, {}) if isinstance(statement, str) else statement
            connection.execute(text(sql), params)


def _verify(url: str, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = run_track("--db", url, "verify", "--json", *extra)
    return result.returncode, json.loads(result.stdout)


def test_every_append_batch_anchors_the_head_outside_the_database(store: EventStore) -> None:
    _filled(store, 3)
    store.append("s9", [ev(7), ev(8)])
    assert store.anchor_path is not None and store.anchor_path.is_file()
    lines = anchors.read_anchors(store.anchor_path).anchors
    assert [a.position for a in lines] == [1, 2, 3, 5]
    assert {a.store_id for a in lines} == {store.store_id()} and store.store_id()
    assert lines[-1].hash == store.hash_at(5)
    store.append("s9", [ev(7)])  # an append of nothing new anchors nothing
    if not store.is_postgres:
        assert store.anchor_path.name == "events.db.anchor.jsonl"


def test_a_cut_tail_is_named_with_the_positions_missing(store: EventStore, store_url: str) -> None:
    _filled(store)
    assert _verify(store_url)[0] == 0
    _raw(store, "DELETE FROM events WHERE position > 4")
    assert store.verify().first_break is None  # the chain alone cannot see it
    code, report = _verify(store_url, "--no-read-model")
    assert code == 1 and not report["ok"]
    [problem] = report["anchors"]["problems"]
    assert problem["kind"] == "cut_tail" and problem["missing"] == [5, 6]
    human = run_track("--db", store_url, "verify").stdout
    assert "events 5..6 are missing" in human and "BROKEN (cut_tail)" in human


def test_a_deleted_middle_event_is_named(store: EventStore, store_url: str) -> None:
    _filled(store)
    _raw(store, "DELETE FROM events WHERE position = 3")
    code, report = _verify(store_url, "--no-read-model")
    assert code == 1
    assert report["first_break"]["position"] == 4
    assert "positions 3..3 are missing" in report["first_break"]["reason"]


def test_a_rewritten_prefix_with_a_valid_chain_is_named(store: EventStore, store_url: str) -> None:
    _filled(store)
    rows = store.engine.connect().execute(text("SELECT * FROM events ORDER BY position")).mappings().all()
    prev, statements = GENESIS_HASH, []  # type: ignore[var-annotated]
    for row in rows:  # rewrite event 2 and re-chain everything after it: the chain verifies again
        payload = '{"n":999}' if row["position"] == 2 else row["payload"]
        digest = event_hash(prev, position=row["position"], stream_id=row["stream_id"],
                            stream_version=row["stream_version"], event_id=row["event_id"],
                            event_type=row["event_type"], schema_version=row["schema_version"], payload=payload,
                            metadata=row["metadata"], recorded_at=row["recorded_at"])
        statements.append(("UPDATE events SET payload = :v, prev_hash = :prev, hash = :h WHERE position = :p",
                           {"v": payload, "prev": prev, "h": digest, "p": row["position"]}))
        prev = digest
    _raw(store, *statements)
    assert store.verify(anchor_set=anchors.AnchorSet(Path("none"), [])).first_break is None
    code, report = _verify(store_url, "--no-read-model")
    assert code == 1
    [problem] = report["anchors"]["problems"]
    assert problem["kind"] == "rewritten" and problem["missing"] == [2, 2]


def test_a_store_swapped_for_a_shorter_valid_copy_is_named(sqlite_url: str, tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    with EventStore.open(sqlite_url) as store:
        _filled(store, 3)
    shutil.copyfile(db, tmp_path / "snapshot.db")  # a valid store, same identity, three events
    with EventStore.open(sqlite_url) as store:
        _filled(store, 3)
    shutil.copyfile(tmp_path / "snapshot.db", db)
    for leftover in tmp_path.glob("events.db-*"):
        leftover.unlink()
    code, report = _verify(sqlite_url, "--no-read-model")
    assert code == 1 and report["anchors"]["problems"][0]["missing"] == [4, 6]


def test_another_store_in_place_is_named(sqlite_url: str, tmp_path: Path) -> None:
    """A store wiped and made again (or another one copied in): its own chain is valid, its identity is not
    the anchored one, and it does not hold the anchored log."""
    with EventStore.open(sqlite_url) as store:
        _filled(store, 4)
        first_id = store.store_id()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with EventStore.open(other) as store:
        _filled(store, 2)
    shutil.copyfile(tmp_path / "other.db", tmp_path / "events.db")
    code, report = _verify(sqlite_url, "--no-read-model")
    assert code == 1
    problem = next(p for p in report["anchors"]["problems"] if p["kind"] == "other_store")
    assert problem["store_id"] == first_id and problem["missing"] == [1, 4]


def test_verify_against_an_anchor_kept_elsewhere(store: EventStore, store_url: str, tmp_path: Path) -> None:
    """`--anchor` on PostgreSQL too: a colleague's copy, or the MLflow tag's `POSITION:HASH`."""
    _filled(store, 5)
    kept = tmp_path / "kept.anchor"
    kept.write_text(f"5:{store.hash_at(5)}\n")
    assert _verify(store_url, "--anchor", str(kept), "--no-read-model")[0] == 0
    _raw(store, "DELETE FROM events WHERE position = 5")
    assert store.anchor_path is not None
    store.anchor_path.unlink()  # the local anchors are gone as well: the kept copy still sees the cut
    code, report = _verify(store_url, "--anchor", str(kept), "--no-read-model")
    assert code == 1 and report["anchors"]["problems"][0]["missing"] == [5, 5]
    unanchored = run_track("--db", store_url, "verify", "--no-read-model")
    assert unanchored.returncode == 0 and "no anchor" in unanchored.stdout


def _imported(store: EventStore, tmp_path: Path) -> None:
    import_tree(store, real_shapes.build(tmp_path / "ISO-Bench"), "orig")
    fold.catch_up(store)


def test_an_edited_read_model_row_is_named(store: EventStore, store_url: str, tmp_path: Path) -> None:
    _imported(store, tmp_path)
    assert _verify(store_url)[0] == 0
    stream = queries.attempts_frame(store, "orig").query("failure_category == 'quota_exceeded'").iloc[0]["stream_id"]
    with store.engine.begin() as connection:  # the read model has no triggers: it is derived, and checked
        connection.execute(text("UPDATE attempts SET status = 'success', failure_category = 'none' "
                                "WHERE stream_id = :s"), {"s": stream})
    code, report = _verify(store_url)
    assert code == 3 and report["anchors"]["ok"] and report["first_break"] is None
    differences = {(d["table"], d["key"], d["column"]): (d["live"], d["rebuilt"])
                   for d in report["read_model"]["differences"]}
    assert differences[("attempts", stream, "failure_category")] == ("none", "quota_exceeded")
    assert differences[("attempts", stream, "status")][0] == "success"
    human = run_track("--db", store_url, "verify").stdout
    assert f"attempts {stream} failure_category: live 'none', rebuilt 'quota_exceeded'" in human


def test_rebuild_restores_a_wiped_read_model(store: EventStore, store_url: str, tmp_path: Path) -> None:
    _imported(store, tmp_path)
    before = queries.attempts_frame(store, "orig").sort_values("stream_id").reset_index(drop=True)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM attempts"))
    code, report = _verify(store_url)
    assert code == 3 and report["read_model"]["differences_total"] == len(before)
    result = run_track("--db", store_url, "db", "rebuild")
    assert result.returncode == 0 and "read model rebuilt" in result.stdout
    after = queries.attempts_frame(store, "orig").sort_values("stream_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)
    assert _verify(store_url)[0] == 0


def test_a_checkpoint_ahead_of_the_log_is_an_error(store: EventStore, store_url: str) -> None:
    _filled(store)
    fold.catch_up(store)
    store.save_checkpoint("mlflow:elsewhere", 6)
    _raw(store, "DELETE FROM events WHERE position > 4")
    with pytest.raises(ProjectionOutOfStep, match=r"events 5\.\.6"):
        fold.catch_up(store)
    code, report = _verify(store_url)
    assert code == 1  # the anchors see the cut tail too
    assert "events 5..6" in report["read_model"]["problem"]
    refused = run_track("--db", store_url, "campaigns")
    assert refused.returncode == 2 and "track db rebuild" in refused.stderr
    store.append("s7", [ev(70), ev(71)])  # new events reuse positions 5 and 6: still refused, never skipped
    with pytest.raises(ProjectionOutOfStep, match="rewritten under it"):
        fold.catch_up(store)
    rebuilt = run_track("--db", store_url, "db", "rebuild", "--json")
    assert rebuilt.returncode == 0 and json.loads(rebuilt.stdout)["projections_reset"] == ["mlflow:elsewhere"]
    assert fold.catch_up(store) == 0 and store.checkpoint("mlflow:elsewhere") == 0


def test_writes_that_are_not_appends_are_refused(store: EventStore) -> None:
    _filled(store, 2)
    columns = ("position, stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, "
               "recorded_at, prev_hash, hash")
    copy = f"SELECT {columns} FROM events WHERE position = 1"
    statements = ["UPDATE events SET payload = '{}'", "DELETE FROM events WHERE position = 2",
                  f"INSERT INTO events ({columns}) {copy} ON CONFLICT (position) DO UPDATE SET payload = '{{}}'",
                  "UPDATE store_identity SET store_id = 'x'", "DELETE FROM store_identity"]
    if store.is_postgres:
        statements += ["TRUNCATE events"]
    else:
        statements += [f"INSERT OR REPLACE INTO events ({columns}) {copy}", f"REPLACE INTO events ({columns}) {copy}",
                       f"INSERT OR IGNORE INTO events ({columns}) {copy}",
                       "INSERT INTO store_identity (store_id, created_at) VALUES ('x', 'now')"]
    for statement in statements:
        with pytest.raises(DatabaseError, match="append-only|identity is fixed"), store.engine.begin() as connection:
            connection.execute(text(statement))
    assert store.count() == 2 and store.verify().ok


def test_downgrade_past_the_log_is_refused_then_exported(store: EventStore, store_url: str, tmp_path: Path) -> None:
    _filled(store, 3)
    store.close()
    refused = run_track("--db", store_url, "db", "downgrade", "base")
    assert refused.returncode == 2 and "holds 3 events" in refused.stderr
    assert "--i-understand-this-deletes-the-log" in refused.stderr
    assert EventStore.open(store_url).count() == 3
    with pytest.raises(LogWouldBeLost):
        migrate.downgrade(EventStore.open(store_url).engine, "base")
    export = tmp_path / "export.jsonl"
    done = run_track("--db", store_url, "db", "downgrade", "base", "--i-understand-this-deletes-the-log",
                     "--export", str(export))
    assert done.returncode == 0, done.stderr
    assert f"exported 3 events (positions 1..3) to {export}" in done.stdout
    assert [json.loads(line)["position"] for line in export.read_text().splitlines()] == [1, 2, 3]
    with EventStore.open(store_url) as fresh:  # a new store: the retired one's anchors do not count against it
        fresh.append("s", [ev(1)])
        assert fresh.verify().ok


def test_downgrade_below_the_read_model_then_upgrade_replays_it(store: EventStore, store_url: str,
                                                                  tmp_path: Path) -> None:
    _imported(store, tmp_path)
    count = len(queries.attempts_frame(store, "orig"))
    store.close()
    assert run_track("--db", store_url, "db", "downgrade", "0001").returncode == 0
    assert run_track("--db", store_url, "db", "upgrade").returncode == 0
    with EventStore.open(store_url) as again:
        assert len(queries.attempts_frame(again, "orig")) == count
    code, report = _verify(store_url)
    assert code == 0, report  # the identity is new, but the anchored log is this one


def test_the_mlflow_summary_run_carries_the_head(sqlite_url: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from tests.support.mlflow_helpers import ORIGINAL_TREE
    from tracker.projections.mlflow.runs import sync

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with EventStore.open(sqlite_url) as store:
        import_tree(store, ORIGINAL_TREE, "orig")
        sync(store, uri)
        last, head = store.last_position(), store.hash_at(store.last_position())
        store_id = store.store_id()
    [summary] = MlflowClient(uri).search_runs(
        [e.experiment_id for e in MlflowClient(uri).search_experiments()], "tags.`track.campaign_summary` = 'orig'")
    assert summary.data.tags["track.log_head"] == f"{last}:{head}"
    assert summary.data.tags["track.store_id"] == store_id
    kept = tmp_path / "from-mlflow.anchor"
    kept.write_text(summary.data.tags["track.log_head"] + "\n")
    assert _verify(sqlite_url, "--anchor", str(kept), "--no-read-model")[0] == 0
