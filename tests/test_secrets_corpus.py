"""Acceptance (issue 16): a planted corpus of every secret shape, in four forms and seven places, imported through the
real importer, stored by the runner's `attempt.started` and synced to MLflow, leaves no piece of any secret in the
event store, the MLflow store or any artifact file (every byte of each is read)."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path

from tests.conftest import FIXTURES
from tests.support.planted_secrets import FORMS, PLACES, SHAPES, corpus, leaked, plant, store_and_artifact_bytes
from tracker.domain.run_events import AttemptStarted
from tracker.domain.streams import attempt_stream
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.mlflow.runs import sync


def test_corpus_covers_every_shape_form_and_place() -> None:
    items = corpus()
    assert {i.shape for i in items} == set(SHAPES) and len(SHAPES) >= 19
    assert Counter(i.place for i in items).keys() == set(PLACES)
    assert {i.form for i in items} == set(FORMS)
    assert len({i.secret for i in items}) == len(items)  # each leak names its own shape, form and place


def test_planted_corpus_leaves_nothing_in_store_mlflow_or_artifacts(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "isobench-small-a", tree)
    items = corpus()
    commands = plant(tree, items)
    out = tmp_path / "out"
    (out / "mlruns").mkdir(parents=True)
    with EventStore.open(f"sqlite:///{out}/events.db") as store:
        summary = import_tree(store, tree, "orig")
        for n, command in enumerate(commands):  # what `track run` records: the agent's command line
            stamp = f"2026-01-01_00-00-{n:02d}"
            store.append(attempt_stream("orig", "vllm", "c" * 40, stamp), [AttemptStarted(
                campaign="orig", repo="vllm", agent="trae", model="gpt-5", item_id="vllm_core-0000", commit="c" * 40,
                pre_commit=None, run_timestamp=stamp, attempt_number=1, host="gpu-1", command=command,
                log_file="/tmp/agent.log", claim_token="t").to_new_event()])
        synced = sync(store, f"sqlite:///{out}/mlruns/mlflow.db")
    assert summary.runs > 0 and synced.runs_created > 0
    artifacts = [p for p in (out / "mlruns").rglob("*") if p.is_file() and p.name == "trajectory.json"]
    assert artifacts, "the trajectory (with the planted messages) was uploaded"
    with sqlite3.connect(out / "events.db") as db:  # and captured into the store, where it is scanned too
        assert db.execute("SELECT count(*) FROM evidence_blobs").fetchone()[0] >= summary.runs
    leaks = leaked(store_and_artifact_bytes(out), items)
    assert not leaks, f"{len(leaks)} of {len(items)} leaked: " + ", ".join(
        f"{i.shape}/{i.form}/{i.place}" for i in leaks[:20])
