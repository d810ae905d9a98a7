"""The MLflow projection against a real `mlflow server` process (PostgreSQL backend, artifacts proxied,
loopback): artifacts reach the server's store, a killed sync resumes, a server outage is survived."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, require_postgres, run_track
from tests.support.mlflow_helpers import ORIGINAL_TREE, free_port, runs_by_stream, start_mlflow_server, stop
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.mlflow.client import checkpoint_name

RUNS_A = 40


@dataclass
class Server:
    backend: str
    artifacts: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start_mlflow_server(self.backend, self.artifacts, self.port, self.log)

    def kill(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def run_count(self) -> int:
        engine = create_engine(self.backend)
        try:
            with engine.connect() as connection:
                return int(connection.execute(text("SELECT count(*) FROM runs")).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh PostgreSQL database (like conftest's pg_url) behind one `mlflow server` for the module."""
    require_postgres()
    name = f"track_mlflow_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    folder = tmp_path_factory.mktemp("mlflow-server")
    srv = Server(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, folder / "artifacts", free_port(), folder / "server.log")
    try:
        srv.start()
        yield srv
    finally:
        srv.kill()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_sync_into_server_with_proxied_artifacts(server: Server, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    result = run_track("--db", db, "import", str(ORIGINAL_TREE), "--campaign", "srv-a", "--mlflow-uri", server.uri,
                       "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mlflow"]["runs_created"] == RUNS_A
    runs = {s: r for s, r in runs_by_stream(server.uri).items() if r.data.tags.get("track.campaign") == "srv-a"}
    assert len(runs) == RUNS_A + 1
    run = next(r for r in runs.values() if r.data.tags.get("failure_category") == "tool_output_missing")
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied through the server
    local = Path(MlflowClient(server.uri).download_artifacts(run.info.run_id, "journal.json", str(tmp_path)))
    assert json.loads(local.read_text())["commits"]["human"] == run.data.params["commit"]
    on_server = list(server.artifacts.rglob(f"{run.info.run_id}/artifacts/journal.json"))
    assert len(on_server) == 1
    again = run_track("--db", db, "sync", "--mlflow-uri", server.uri, "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["attempts_touched"] == 0
    traced = [r for r in runs.values() if "track.trace_id" in r.data.tags]
    assert traced, "traces go through the server too (spans over OTLP, info over REST)"
    trace = MlflowClient(server.uri).get_trace(traced[0].data.tags["track.trace_id"])
    assert trace.info.request_metadata["mlflow.sourceRun"] == traced[0].info.run_id
    assert trace.info.token_usage["input_tokens"] == traced[0].data.metrics["input_tokens"]
    assert {"AGENT", "CHAT_MODEL"} <= {span.span_type for span in trace.data.spans}


def test_killed_sync_resumes_against_server(server: Server, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    with EventStore.open(db) as store:
        import_tree(store, ORIGINAL_TREE, "srv-k1")
        import_tree(store, ORIGINAL_TREE, "srv-k2")
    before = server.run_count()
    process = subprocess.Popen([sys.executable, "-m", "runners.cli", "--db", db, "sync", "--mlflow-uri", server.uri],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and server.run_count() < before + 10:
        time.sleep(0.05)
    assert process.poll() is None, "sync finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert server.run_count() < before + 2 * RUNS_A + 2
    result = run_track("--db", db, "sync", "--mlflow-uri", server.uri, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    mine = [r for r in runs_by_stream(server.uri).values() if r.data.tags["track.campaign"] in ("srv-k1", "srv-k2")]
    assert len(mine) == 2 * RUNS_A + 2  # runs_by_stream already failed on any duplicate
    assert server.run_count() == before + 2 * RUNS_A + 2
    experiments = sorted({r.info.experiment_id for r in mine})
    traces = MlflowClient(server.uri).search_traces(locations=experiments, max_results=500, include_spans=False)
    streams = [t.info.tags["track.stream_id"] for t in traces if t.info.tags["track.stream_id"].startswith(
        ("attempt:srv-k1:", "attempt:srv-k2:"))]
    assert len(streams) == len(set(streams)) > 0  # a trace written before the kill was not written twice
    assert {r.data.tags["track.stream_id"] for r in mine if "track.trace_id" in r.data.tags} == set(streams)


def test_server_down_then_back_catches_up(server: Server, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    with EventStore.open(db) as store:
        import_tree(store, ORIGINAL_TREE, "srv-d1")
    assert run_track("--db", db, "sync", "--mlflow-uri", server.uri, cwd=tmp_path).returncode == 0
    with EventStore.open(db) as store:
        synced_to = store.checkpoint(checkpoint_name(server.uri))
        import_tree(store, ORIGINAL_TREE, "srv-d2")
    server.kill()
    started = time.monotonic()
    down = run_track("--db", db, "sync", "--mlflow-uri", server.uri, cwd=tmp_path)
    assert time.monotonic() - started < 60
    assert down.returncode == 2 and "after 4 attempts" in down.stderr and "run `track sync` again" in down.stderr
    with EventStore.open(db) as store:
        assert store.checkpoint(checkpoint_name(server.uri)) == synced_to
    server.start()
    back = run_track("--db", db, "sync", "--mlflow-uri", server.uri, "--json", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["runs_created"] == RUNS_A
    mine = [r for r in runs_by_stream(server.uri).values() if r.data.tags["track.campaign"] in ("srv-d1", "srv-d2")]
    assert len(mine) == 2 * RUNS_A + 2
