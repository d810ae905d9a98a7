"""The MLflow projection against the embedded store (MLflow's SQLite backend): what a run holds,
idempotency, crash and kill recovery, failure history, pricing, and the CLI around it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import FIXTURES, run_track
from tests.support.mlflow_helpers import COMMIT, EXPERIMENT, ORIGINAL_TREE, free_port, rerun_tree, runs_by_stream
from tracker.domain.import_events import FailureClassified
from tracker.domain.pricing import load_price_table
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.mlflow.client import checkpoint_name
from tracker.projections.mlflow.runs import sync

RUNS_A = 40


@pytest.fixture(scope="module")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MLflow creates its schema in ~2 s; make it once and copy it per test."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(tmp_path: Path, empty_mlflow_db: Path) -> str:
    (tmp_path / "mlruns").mkdir()
    shutil.copyfile(empty_mlflow_db, tmp_path / "mlruns" / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


@pytest.fixture
def store(sqlite_url: str) -> EventStore:
    opened = EventStore.open(sqlite_url)
    yield opened
    opened.close()


def _import_pair(store: EventStore, tmp_path: Path) -> None:
    import_tree(store, ORIGINAL_TREE, "orig")
    import_tree(store, rerun_tree(tmp_path / "rerun-tree"), "rerun1", kind="rerun", agent_fix_commit="a1c6d41",
                baseline_campaign="orig")


def test_every_attempt_becomes_one_run_with_params_metrics_tags_artifacts(store_url: str, mlflow_uri: str) -> None:
    with EventStore.open(store_url) as store:
        import_tree(store, ORIGINAL_TREE, "orig")
        summary = sync(store, mlflow_uri)
    assert (summary.runs_created, summary.summary_runs, summary.experiments) == (RUNS_A, 1, [EXPERIMENT])
    runs = runs_by_stream(mlflow_uri)
    assert len(runs) == RUNS_A + 1
    parent = runs["campaign:orig"]
    assert parent.data.tags["track.campaign_summary"] == "orig"
    truth = json.loads((FIXTURES / "isobench-small-a.truth.json").read_text())
    assert parent.data.metrics["attempts"] == RUNS_A
    assert parent.data.metrics["succeeded"] == truth["status"]["success"]
    assert parent.data.metrics["failures.tool_output_missing"] == truth["category"]["tool_output_missing"]
    assert parent.data.metrics["cost_usd_total"] > 0 and "success_rate.vllm" in parent.data.metrics
    client = MlflowClient(mlflow_uri)
    key_run = next(r for r in runs.values() if r.data.tags.get("failure_category") == "invalid_api_key")
    assert key_run.info.status == "FAILED" and key_run.data.tags["status"] == "error"
    assert key_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert "401" in key_run.data.tags["failure_evidence"] and "sk-[REDACTED]" in key_run.data.tags["failure_evidence"]
    params = key_run.data.params
    assert params["phase"] == "original" and params["agent_fix_commit"] == "none" and len(params["commit"]) == 40
    assert key_run.info.run_name == f"{params['repo']}@{params['commit'][:8]} · original"
    assert {"input_tokens", "total_tokens", "cost_usd", "duration_s", "patch_lines"} <= set(key_run.data.metrics)
    assert key_run.data.tags["price_table_version"] == load_price_table().version
    local = Path(client.download_artifacts(key_run.info.run_id, ""))
    names = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert {"journal.json", "logs/trae_stderr.txt", "events.jsonl", "failure_history.json"} <= names
    everything = "".join(p.read_text() for p in local.rglob("*") if p.is_file())
    assert "sk-proj-" not in everything and "[REDACTED]" in everything  # the key quoted in stderr is gone
    events = [json.loads(line) for line in (local / "events.jsonl").read_text().splitlines()]
    assert {e["stream_id"] for e in events} == {key_run.data.tags["track.stream_id"]}


def test_original_and_rerun_of_one_commit_are_linked(store: EventStore, tmp_path: Path, mlflow_uri: str) -> None:
    _import_pair(store, tmp_path)
    sync(store, mlflow_uri)
    runs = runs_by_stream(mlflow_uri)
    rerun = next(r for s, r in runs.items() if s.startswith("attempt:rerun1:"))
    originals = [r for s, r in runs.items() if s.startswith("attempt:orig:") and r.data.params["commit"] == COMMIT]
    latest = max(originals, key=lambda r: r.data.params["run_timestamp"])
    assert rerun.info.run_name == f"sglang@{COMMIT[:8]} · rerun"
    assert rerun.data.params["agent_fix_commit"] == "a1c6d41" and rerun.data.params["phase"] == "rerun"
    assert rerun.data.tags["status"] == "success" and rerun.data.tags["failure_category"] == "none"
    assert rerun.info.status == "FINISHED"
    assert rerun.data.tags["track.baseline_run_id"] == latest.info.run_id
    assert latest.info.run_id in rerun.data.tags["track.baseline_run_url"]
    assert rerun.data.tags["track.baseline_failure_category"] == latest.data.tags["failure_category"] != "none"
    assert rerun.data.tags["mlflow.parentRunId"] == runs["campaign:rerun1"].info.run_id
    assert rerun.info.experiment_id == latest.info.experiment_id  # side by side in one experiment


def test_baseline_imported_after_the_rerun_still_gets_linked(store: EventStore, tmp_path: Path,
                                                              mlflow_uri: str) -> None:
    import_tree(store, rerun_tree(tmp_path / "rerun-tree"), "rerun1", kind="rerun", agent_fix_commit="a1c6d41",
                baseline_campaign="orig")
    sync(store, mlflow_uri)
    assert "track.baseline_run_id" not in next(iter(runs_by_stream(mlflow_uri).values())).data.tags
    import_tree(store, ORIGINAL_TREE, "orig")
    sync(store, mlflow_uri)
    rerun = next(r for s, r in runs_by_stream(mlflow_uri).items() if s.startswith("attempt:rerun1:"))
    assert rerun.data.tags["track.baseline_failure_category"] == "quota_exceeded"  # the commit's latest attempt


def test_sync_is_idempotent_and_fast_when_nothing_is_new(store: EventStore, mlflow_uri: str) -> None:
    import_tree(store, ORIGINAL_TREE, "orig")
    sync(store, mlflow_uri)
    started = time.perf_counter()
    again = sync(store, mlflow_uri)
    assert time.perf_counter() - started < 2
    assert (again.attempts_touched, again.runs_created) == (0, 0)
    store.save_checkpoint(checkpoint_name(mlflow_uri), 0)  # forget the checkpoint: runs are found by tag
    replay = sync(store, mlflow_uri)
    assert (replay.runs_created, replay.runs_updated, replay.runs_unchanged) == (0, 0, RUNS_A)
    assert len(runs_by_stream(mlflow_uri)) == RUNS_A + 1


def test_crash_mid_sync_resumes_without_duplicates(store: EventStore, mlflow_uri: str) -> None:
    import_tree(store, ORIGINAL_TREE, "orig")

    def crash(done: int, total: int) -> None:
        if done == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(store, mlflow_uri, progress=crash, chunk_size=5)
    name = checkpoint_name(mlflow_uri)
    assert 0 < store.checkpoint(name) < store.last_position()  # chunks before the crash are committed
    assert len(runs_by_stream(mlflow_uri)) == 13 + 1
    resumed = sync(store, mlflow_uri)
    runs = runs_by_stream(mlflow_uri)
    assert len(runs) == RUNS_A + 1 and resumed.runs_created == RUNS_A - 13
    assert store.checkpoint(name) == store.last_position()
    assert all("commit" in r.data.params and r.data.tags.get("track.synced_position") for s, r in runs.items()
               if s.startswith("attempt:"))


def test_killed_sync_process_resumes_without_duplicates(tmp_path: Path, mlflow_uri: str) -> None:
    db = f"sqlite:///{tmp_path / 'events.db'}"
    with EventStore.open(db) as store:
        for copy in range(3):
            import_tree(store, ORIGINAL_TREE, f"orig{copy}")
    mlflow_db = Path(mlflow_uri.removeprefix("sqlite:///"))
    process = subprocess.Popen([sys.executable, "-m", "runners.cli", "--db", db, "sync", "--mlflow-uri", mlflow_uri],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if mlflow_db.exists() and _run_count(mlflow_db) >= 10:
            break
        time.sleep(0.05)
    assert process.poll() is None, "sync finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 10 <= _run_count(mlflow_db) < 3 * RUNS_A
    result = run_track("--db", db, "sync", "--mlflow-uri", mlflow_uri, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = runs_by_stream(mlflow_uri)
    assert len(runs) == 3 * RUNS_A + 3
    assert all(r.data.tags.get("track.synced_position") and r.info.status != "RUNNING" for r in runs.values()
               if "track.campaign_summary" not in r.data.tags)


def _run_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_reclassification_shows_current_category_and_history(store: EventStore, mlflow_uri: str) -> None:
    import_tree(store, ORIGINAL_TREE, "orig")
    sync(store, mlflow_uri)
    stream = next(s for s, r in runs_by_stream(mlflow_uri).items()
                  if r.data.tags.get("failure_category") == "other")
    store.append(stream, [FailureClassified(category="quota_exceeded", rule_id="manual-review", table_version="x",
                                            evidence=[{"file": "DEEP_ANALYSIS.md", "line": 3,
                                                       "excerpt": "insufficient_quota"}]).to_new_event()])
    sync(store, mlflow_uri)
    run = runs_by_stream(mlflow_uri)[stream]
    assert run.data.tags["failure_category"] == "quota_exceeded"
    assert run.data.tags["failure_history"].count("Z ") == 2 and "other" in run.data.tags["failure_history"]
    local = Path(MlflowClient(mlflow_uri).download_artifacts(run.info.run_id, "failure_history.json"))
    history = json.loads(local.read_text())
    assert [h["category"] for h in history] == ["other", "quota_exceeded"]
    assert all(h["recorded_at"] for h in history)
    parent = runs_by_stream(mlflow_uri)["campaign:orig"]
    assert parent.data.metrics["failures.other"] == 1  # the truth has 2; one moved


def test_price_table_override_changes_cost_and_is_logged(store: EventStore, tmp_path: Path, mlflow_uri: str) -> None:
    import_tree(store, ORIGINAL_TREE, "orig")
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"version": "test-2x", "models": {
        "gpt-5": {"input": 2.5, "cached_input": 0.25, "output": 20.0}}}))
    sync(store, mlflow_uri, prices=load_price_table(table))
    default = load_price_table()
    for run in runs_by_stream(mlflow_uri).values():
        assert run.data.tags["price_table_version"] == "test-2x"
        if "cost_usd" in run.data.metrics:
            p = run.data.params
            assert p["model"] == "gpt-5"
    costs = [r for r in runs_by_stream(mlflow_uri).values() if "input_tokens" in r.data.metrics]
    run = costs[0]
    m = run.data.metrics
    expected = default.cost_usd("gpt-5", int(m["input_tokens"]), int(m.get("cached_input_tokens", 0)),
                                int(m["output_tokens"]))
    assert run.data.metrics["cost_usd"] == pytest.approx(2 * expected, rel=1e-4)


def test_cli_import_syncs_unless_told_not_to(tmp_path: Path) -> None:
    db, uri = f"sqlite:///{tmp_path / 'e.db'}", f"sqlite:///{tmp_path / 'm' / 'mlflow.db'}"
    skipped = run_track("--db", db, "import", str(ORIGINAL_TREE), "--campaign", "orig", "--no-mlflow", "--json",
                        "--mlflow-uri", uri, cwd=tmp_path)
    assert skipped.returncode == 0 and json.loads(skipped.stdout)["mlflow"] is None
    assert not (tmp_path / "m" / "mlflow.db").exists()
    synced = run_track("--db", db, "sync", "--json", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["runs_created"] == RUNS_A
    imported = run_track("--db", db, "import", str(rerun_tree(tmp_path / "rr")), "--campaign", "rerun1", "--kind",
                         "rerun", "--fix-commit", "a1c6d41", "--baseline", "orig", "--json", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    out = json.loads(imported.stdout)["mlflow"]  # the default: the embedded store under ./mlruns, its own checkpoint
    assert out["runs_created"] == RUNS_A + 1 and out["tracking_uri"].endswith("mlruns/mlflow.db")
    assert (tmp_path / "mlruns" / "mlflow.db").exists() and (tmp_path / "mlruns" / "artifacts").is_dir()


def test_unreachable_server_fails_clearly_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    uri = f"http://127.0.0.1:{free_port()}"
    with EventStore.open(db) as store:
        import_tree(store, ORIGINAL_TREE, "orig")
    started = time.monotonic()
    result = run_track("--db", db, "sync", "--mlflow-uri", uri, cwd=tmp_path)
    assert time.monotonic() - started < 60
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: MLflow at http://127.0.0.1") and "after 4 attempts" in lines[-1]
    assert "Traceback" not in result.stderr
    with EventStore.open(db) as store:
        assert store.checkpoint(checkpoint_name(uri)) == 0


def test_ui_refuses_a_server_uri(tmp_path: Path) -> None:
    result = run_track("ui", "--mlflow-uri", "http://127.0.0.1:5000", cwd=tmp_path)
    assert result.returncode == 2 and "not an embedded store" in result.stderr


if os.environ.get("TRACK_MLFLOW_DEBUG"):  # pragma: no cover
    print(EXPERIMENT)
