"""Evidence captured once: the store keeps each attempt's files (redacted, by content hash), MLflow is rebuilt
from the store alone, and a missing, vanished or altered file is named, never a silent gap."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from tests.conftest import run_track
from tests.support.mlflow_helpers import ORIGINAL_TREE, runs_by_stream
from tracker.domain.events import NewEvent
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.mlflow.artifacts import MISSING_FILE
from tracker.projections.mlflow.runs import sync
from tracker.projections.mlflow.traces import read_transcript

RUN_FILES = ("model_patch.diff", "trae_stdout.txt", "trae_stderr.txt", "trajectory.json", "journal.json")


def _artifacts(uri: str, run_id: str, tmp: Path) -> dict[str, bytes]:
    local = Path(MlflowClient(uri).download_artifacts(run_id, "", dst_path=str(tmp)))
    return {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()}


def _blob_count(store: EventStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM evidence_blobs")).scalar_one())


def _run_paths(store: EventStore) -> dict[str, str]:
    """Stream id -> the run folder the attempt was imported from."""
    return {e.stream_id: e.payload["run_path"] for batch in store.read_batches(0) for e in batch
            if e.event_type == "attempt.observed"}


def _run_folders(tree: Path) -> dict[str, Path]:
    return {folder.relative_to(tree / "state/runs").as_posix(): folder
            for folder in (tree / "state/runs").glob("*/*/*/*/*") if folder.is_dir()}


def test_sync_after_the_tree_is_deleted_still_logs_every_attempts_patch_and_logs(
        store_url: str, tmp_path: Path, mlflow_uri: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ORIGINAL_TREE, tree)
    before = {path: {name: (folder / name).read_bytes() for name in RUN_FILES if (folder / name).is_file()}
              for path, folder in _run_folders(tree).items()}
    transcripts = sum(read_transcript(folder / "trajectory.json") is not None for folder in _run_folders(tree).values())
    with EventStore.open(store_url) as store:
        imported = import_tree(store, tree, "orig")
        run_paths = _run_paths(store)
        shutil.rmtree(tree)
        synced = sync(store, mlflow_uri, traces=True)
    assert (synced.evidence_gaps, synced.evidence_from_disk) == (0, 0)
    runs = [run for sid, run in runs_by_stream(mlflow_uri).items() if sid.startswith("attempt:")]
    assert len(runs) == imported.runs
    for n, run in enumerate(runs):
        files = _artifacts(mlflow_uri, run.info.run_id, tmp_path / f"a{n}")
        source = before[run_paths[run.data.tags["track.stream_id"]]]
        patch = source.get("model_patch.diff", b"")
        if patch.strip():  # the patch, byte for byte (it holds no secret), previewable as .txt
            assert files["model_patch.diff.txt"] == patch
        for log in ("trae_stdout.txt", "trae_stderr.txt"):
            assert (f"logs/{log}" in files) == (log in source)
        assert ("trajectory.json" in files) == ("trajectory.json" in source)
        assert MISSING_FILE not in files
    assert synced.traces == transcripts > 0  # traces are built from the store's copy too


def test_the_evaluation_result_is_captured_with_the_attempt(sqlite_url: str, tmp_path: Path,
                                                           mlflow_uri: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ORIGINAL_TREE, tree)
    with EventStore.open(sqlite_url) as store:
        import_tree(store, tree, "orig")
        shutil.rmtree(tree)
        sync(store, mlflow_uri)
    evaluated = [run for run in runs_by_stream(mlflow_uri).values() if "speedup" in run.data.metrics]
    assert evaluated
    files = _artifacts(mlflow_uri, evaluated[0].info.run_id, tmp_path / "a")
    assert b"speedup" in files["evaluation/test_results.json"]


def test_reimport_reads_but_stores_nothing_new_and_a_vanished_file_keeps_its_capture(
        sqlite_url: str, tmp_path: Path, mlflow_uri: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ORIGINAL_TREE, tree)
    trajectory = next(tree.glob("state/runs/*/*/*/*/*/trajectory.json"))
    with EventStore.open(sqlite_url) as store:
        import_tree(store, tree, "orig")
        events, blobs = store.count(), _blob_count(store)
        assert import_tree(store, tree, "orig").events_appended == 0 and _blob_count(store) == blobs
        kept = trajectory.read_bytes()
        trajectory.unlink()
        gone = import_tree(store, tree, "orig")
        new = [e for e in store.read_batches(events)][0]
        captured = next(e for e in new if e.event_type == "evidence.captured")
        assert captured.payload["missing"] == ["trajectory.json"]
        entry = next(f for f in captured.payload["files"] if f["artifact"] == "trajectory.json")
        assert entry["source_sha256"] == hashlib.sha256(kept).hexdigest()  # the earlier capture stays named
        assert gone.events_appended >= 1 and import_tree(store, tree, "orig").events_appended == 0
        synced = sync(store, mlflow_uri)
    assert (synced.evidence_gaps, synced.evidence_vanished) == (0, 1)  # shown from its capture, and named
    run = runs_by_stream(mlflow_uri)[captured.stream_id]
    files = _artifacts(mlflow_uri, run.info.run_id, tmp_path / "a")
    assert "trajectory.json" in files  # nothing good is lost
    assert b"trajectory.json: its source file is gone since it was captured" in files[MISSING_FILE]


def test_a_blob_altered_in_the_database_is_named_not_logged(sqlite_url: str, tmp_path: Path,
                                                            mlflow_uri: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ORIGINAL_TREE, tree)
    patch = next(p for p in tree.glob("state/runs/*/*/*/*/*/model_patch.diff") if p.read_text().strip())
    with EventStore.open(sqlite_url) as store:
        import_tree(store, tree, "orig")
        clean = store.verify()
        assert clean.ok and clean.evidence_checked == _blob_count(store)
        sha = hashlib.sha256(patch.read_bytes()).hexdigest()  # no secret in it: stored as read
        with store.engine.begin() as connection:  # someone with write access to the database file
            connection.execute(text("DROP TRIGGER evidence_refuse_update"))
            connection.execute(text("UPDATE evidence_blobs SET content = :c WHERE sha256 = :s"),
                               {"c": b"x\x9c\x03\x00\x00\x00\x00\x01", "s": sha})
        synced = sync(store, mlflow_uri)
        run_paths = _run_paths(store)
        report = store.verify()
    assert not report.ok and report.evidence_corrupt == (sha,) and report.first_break is None
    verified = run_track("--db", sqlite_url, "verify")
    assert verified.returncode != 0 and f"blob {sha} no longer matches its hash" in verified.stdout
    assert synced.evidence_gaps >= 1
    run_path = patch.parent.relative_to(tree / "state/runs").as_posix()
    stream = next(sid for sid, path in run_paths.items() if path == run_path)
    run = runs_by_stream(mlflow_uri)[stream]
    files = _artifacts(mlflow_uri, run.info.run_id, tmp_path / "a")
    assert "model_patch.diff.txt" not in files
    assert f"captured as {sha[:12]}".encode() in files[MISSING_FILE]
    assert b"no longer matches its hash" in files[MISSING_FILE]


def test_evidence_blobs_are_insert_only(store_url: str, tmp_path: Path) -> None:
    with EventStore.open(store_url) as store:
        import_tree(store, ORIGINAL_TREE, "orig")
        stored = _blob_count(store)
        assert stored > 0
        for statement in ("UPDATE evidence_blobs SET bytes = 0", "DELETE FROM evidence_blobs"):
            with pytest.raises(DatabaseError, match="insert-only"), store.engine.begin() as connection:
                connection.execute(text(statement))
        assert _blob_count(store) == stored


def test_an_attempt_imported_before_capture_falls_back_to_its_folder_and_says_so(
        sqlite_url: str, tmp_path: Path, mlflow_uri: str) -> None:
    """A store written before evidence was captured (its events without `evidence.captured`)."""
    with EventStore.open(f"sqlite:///{tmp_path / 'new.db'}") as new:
        import_tree(new, ORIGINAL_TREE, "orig")
        old_events = [e for batch in new.read_batches(0) for e in batch if e.event_type != "evidence.captured"]
    with EventStore.open(sqlite_url) as store:
        for event in old_events:
            store.append(event.stream_id, [NewEvent(event.event_type, event.payload, event.schema_version,
                                                    metadata=event.metadata)])
        synced = sync(store, mlflow_uri)
    assert synced.evidence_from_disk == synced.attempts_touched > 0 and synced.evidence_gaps == 0
    run = next(r for r in runs_by_stream(mlflow_uri).values() if r.data.tags.get("failure_category") == "none")
    assert "model_patch.diff.txt" in _artifacts(mlflow_uri, run.info.run_id, tmp_path / "a")


def test_a_downgrade_keeps_the_evidence_and_an_upgrade_finds_it(store_url: str) -> None:
    with EventStore.open(store_url) as store:
        import_tree(store, ORIGINAL_TREE, "orig")
        stored = _blob_count(store)
    assert run_track("--db", store_url, "db", "downgrade", "0004").returncode == 0
    assert run_track("--db", store_url, "db", "upgrade").returncode == 0
    with EventStore.open(store_url) as store:
        assert _blob_count(store) == stored
        report = store.verify()
        assert report.ok and report.evidence_checked == stored
        with pytest.raises(DatabaseError, match="insert-only"), store.engine.begin() as connection:
            connection.execute(text("DELETE FROM evidence_blobs"))  # the triggers are back
