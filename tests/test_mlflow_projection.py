"""The MLflow projection against the embedded store (MLflow's SQLite backend): what a run holds,
idempotency, crash and kill recovery, failure history, pricing, and the CLI around it; and the pure
mapping from read-model rows to params, metrics and tags (no MLflow needed)."""

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
from tracker.domain.events import RecordedEvent
from tracker.domain.import_events import FailureClassified
from tracker.domain.pricing import ModelPrice, PriceTable, load_price_table
from tracker.eventstore.schema import attempts
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.mlflow import mapping
from tracker.projections.mlflow.client import checkpoint_name, run_route, ui_link
from tracker.projections.mlflow.runs import sync

RUNS_A = 40


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
    assert key_run.data.tags[mapping.CAMPAIGN_RUN_TAG] == parent.info.run_id
    assert "mlflow.parentRunId" not in key_run.data.tags  # at top level: a commit filter finds it
    assert "401" in key_run.data.tags["failure_evidence"] and "sk-[REDACTED]" in key_run.data.tags["failure_evidence"]
    params = key_run.data.params
    assert params["phase"] == "original" and params["agent_fix_commit"] == "none" and len(params["commit"]) == 40
    assert key_run.info.run_name == f"original · invalid_api_key · {params['repo']}@{params['commit'][:8]}"
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
    assert rerun.info.run_name == f"rerun · ok · sglang@{COMMIT[:8]}"
    assert rerun.data.params["agent_fix_commit"] == "a1c6d41" and rerun.data.params["phase"] == "rerun"
    assert rerun.data.tags["status"] == "success" and rerun.data.tags["failure_category"] == "none"
    assert rerun.info.status == "FINISHED"
    assert rerun.data.tags["track.baseline_run_id"] == latest.info.run_id
    # relative on an embedded store: it fits whatever port the UI is opened on
    assert rerun.data.tags["track.baseline_run_url"] == (
        f"/#/experiments/{latest.info.experiment_id}/runs/{latest.info.run_id}")
    experiment = MlflowClient(mlflow_uri).get_experiment(rerun.info.experiment_id)
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.commit-{COMMIT[:12]}"])  # commit of 2 campaigns
    assert view["searchFilter"] == f"params.commit = '{COMMIT}'"
    assert json.loads(experiment.tags["mlflow.sharedViewState.track"])["searchFilter"] == ""
    assert rerun.data.tags["track.baseline_failure_category"] == latest.data.tags["failure_category"] != "none"
    assert rerun.data.tags[mapping.CAMPAIGN_RUN_TAG] == runs["campaign:rerun1"].info.run_id
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


# -- the pure mapping: read-model rows -> MLflow values ----------------------------------------------

PRICES = PriceTable("unit-1", {"gpt-5": ModelPrice(input=1.0, cached_input=0.1, output=10.0)})
CAMPAIGN = {"name": "orig", "kind": "original", "agent": "trae", "model": "gpt-5", "benchmark": "iso-bench",
            "agent_fix_commit": None, "baseline_campaign": None, "source": None, "created_at": "2026-01-01T00:00:00"}
RERUN_CAMPAIGN = {**CAMPAIGN, "name": "rerun1", "kind": "rerun", "agent_fix_commit": "a1c6d41",
                  "baseline_campaign": "orig"}


def _row(**values: object) -> dict[str, object]:
    """A read-model attempt row: every column of the table, None unless given."""
    row: dict[str, object] = dict.fromkeys(attempts.columns.keys())
    row.update({"stream_id": "attempt:orig:vllm:x", "campaign": "orig", "repo": "vllm", "commit": "c" * 40,
                "status": "success", "problems": "[]", "last_position": 17})
    row.update(values)
    return row


def _classified(position: int, category: str, excerpt: str, recorded_at: str) -> RecordedEvent:
    payload = {"category": category, "rule_id": f"rule-{category}", "table_version": "t1",
               "evidence": [{"file": "trae_stderr.txt", "line": 3, "excerpt": excerpt},
                            {"file": "journal.json", "line": None, "excerpt": "second"},
                            {"file": "third.txt", "line": 1, "excerpt": "never shown"}]}
    return RecordedEvent(position, "attempt:orig:vllm:x", position, f"e{position}", "failure.classified", 1,
                         payload, {}, recorded_at, "", "")


def test_mapping_a_failed_attempt_carries_its_category_tokens_and_cost() -> None:
    row = _row(status="error", failure_category="quota_exceeded", rule_id="quota-429", rules_version="r7",
               model="gpt-5", input_tokens=1000, cached_input_tokens=200, output_tokens=100, reasoning_tokens=40,
               duration_s=12.5, llm_calls=3, lines_added=4, lines_removed=None)
    tags = mapping.attempt_tags(row, CAMPAIGN, [], price_table_version=PRICES.version)
    assert (tags["status"], tags["failure_category"], tags["failure_rule"]) == ("error", "quota_exceeded", "quota-429")
    assert tags["outcome_level"] == "none" and tags["eval_status"] == "not_evaluated"
    assert tags["price_table_version"] == "unit-1" and tags["rules_version"] == "r7"
    assert "failure category **quota_exceeded**" in tags[mapping.NOTE_TAG]
    assert mapping.run_status(row) == "FAILED"
    metrics = mapping.attempt_metrics(row, PRICES)
    assert metrics == {"input_tokens": 1000.0, "cached_input_tokens": 200.0, "output_tokens": 100.0,
                       "reasoning_tokens": 40.0, "total_tokens": 1100.0,
                       "cost_usd": pytest.approx((800 * 1.0 + 200 * 0.1 + 100 * 10.0) / 1e6),
                       "duration_s": 12.5, "llm_calls": 3.0, "patch_lines": 4.0, "success": 0.0}


def test_mapping_prices_the_usage_model_and_leaves_unknown_values_out() -> None:
    row = _row(model="some-fork", usage_model="gpt-5-2025-08-07", input_tokens=0, output_tokens=None)
    metrics = mapping.attempt_metrics(row, PRICES)
    assert metrics["input_tokens"] == 0.0 and metrics["total_tokens"] == 0.0  # zero is a value
    assert metrics["cost_usd"] == 0.0 and metrics["success"] == 1.0
    assert not {"output_tokens", "patch_lines", "duration_s", "speedup", "agent_reported_cost_usd"} & set(metrics)
    bare = mapping.attempt_metrics(_row(model="unpriced-model", input_tokens=5), PRICES)
    assert "cost_usd" not in bare and bare["total_tokens"] == 5.0
    assert set(mapping.attempt_metrics(_row(), PRICES)) == {"success"}


def test_mapping_never_turns_a_missing_value_into_the_string_none() -> None:
    row = _row(item_id=None, agent=None, model=None, run_timestamp=None, rule_id=None, rules_version=None)
    for campaign, phase in ((CAMPAIGN, "original"), ({**RERUN_CAMPAIGN, "agent_fix_commit": None}, "rerun")):
        params = mapping.attempt_params(row, campaign, phase)
        assert "None" not in params.values() and all(isinstance(v, str) for v in params.values())
        assert (params["item_id"], params["run_timestamp"], params["agent_fix_commit"]) == ("", "", "none")
        assert (params["agent"], params["model"], params["phase"]) == ("trae", "gpt-5", phase)
    tags = mapping.attempt_tags(_row(status=None), CAMPAIGN, [], price_table_version="v")
    assert "None" not in {v for k, v in tags.items() if k != mapping.NOTE_TAG}
    assert (tags["status"], tags["failure_category"], tags["failure_rule"]) == ("unknown", "unclassified", "")
    summary = mapping.summary_params("orig", CAMPAIGN)
    assert (summary["agent_fix_commit"], summary["baseline_campaign"]) == ("none", "none")


def test_mapping_a_rerun_names_its_fix_commit_and_the_run() -> None:
    row = _row(campaign="rerun1", commit="2265d0bf976f7deb", agent="trae", model="gpt-5")
    assert mapping.attempt_params(row, RERUN_CAMPAIGN, "rerun")["agent_fix_commit"] == "a1c6d41"
    assert mapping.attempt_params(row, CAMPAIGN, "original")["agent_fix_commit"] == "none"
    assert mapping.run_name(row, "rerun") == "rerun · ok · vllm@2265d0bf"
    assert mapping.run_name(_row(commit="2265d0bf976f7deb", status="error", failure_category="quota_exceeded"),
                            "original") == "original · quota_exceeded · vllm@2265d0bf"
    assert mapping.experiment_name(RERUN_CAMPAIGN) == "iso-bench/trae/gpt-5"
    assert mapping.summary_run_name("rerun1", RERUN_CAMPAIGN) == "rerun1 · rerun summary"
    assert [mapping.run_status(_row(status=s)) for s in ("success", "running", "abandoned", "timeout")] == [
        "FINISHED", "RUNNING", "KILLED", "FAILED"]


def test_mapping_failure_evidence_is_the_latest_classification_redacted() -> None:
    events = [_classified(3, "other", "first try", "2026-01-02T03:04:05.678+00:00"),
              _classified(9, "invalid_api_key", "401 key sk-proj-557fe9da6293008dc081bd204fc0638ee9eb100d",
                          "2026-01-03T00:00:00+00:00")]
    row = _row(status="error", failure_category="invalid_api_key")
    tags = mapping.attempt_tags(row, CAMPAIGN, events, price_table_version="v")
    assert tags["failure_evidence"] == "trae_stderr.txt: 401 key sk-[REDACTED]; journal.json: second"
    assert "557fe9da" not in tags[mapping.NOTE_TAG] and "Why: `trae_stderr.txt: 401" in tags[mapping.NOTE_TAG]
    assert tags["failure_history"] == ("2026-01-02T03:04:05Z other (rule-other) | "
                                       "2026-01-03T00:00:00Z invalid_api_key (rule-invalid_api_key)")
    assert tags["track.event_count"] == "2"
    # a success shows no evidence, whatever was classified before
    cleared = mapping.attempt_tags(_row(), CAMPAIGN, events, price_table_version="v")
    assert cleared["failure_category"] == "none" and cleared["failure_evidence"] == ""
    assert "Why:" not in cleared[mapping.NOTE_TAG]


def test_mapping_tags_list_incidents_problems_and_cut_long_values() -> None:
    row = _row(incidents=json.dumps([{"category": "rate_limited", "count": 3}]),
               problems=[{"file": "journal.json", "kind": "unreadable"}] * 1000)
    tags = mapping.attempt_tags(row, CAMPAIGN, [], price_table_version="v")
    assert tags["incidents"] == "rate_limited x3"
    assert len(tags["track.problems"]) == mapping.MAX_TAG and tags["track.problems"].endswith("…")
    assert tags["track.problems"].startswith("journal.json: unreadable, journal.json: unreadable")
    assert all(len(v) <= mapping.MAX_TAG for v in tags.values())


def test_mapping_links_parent_and_baseline_and_writes_the_synced_tag_last() -> None:
    baseline = _row(stream_id="attempt:orig:vllm:b", status="error", failure_category=None)
    link = mapping.BaselineLink(baseline, "run-b", "http://mlflow/#/experiments/1/runs/run-b")
    tags = mapping.attempt_tags(_row(campaign="rerun1", last_position=42), RERUN_CAMPAIGN, [],
                                price_table_version="v", parent_run_id="run-parent", baseline=link)
    assert tags[mapping.CAMPAIGN_RUN_TAG] == "run-parent" and mapping.PARENT_TAG not in tags
    assert (tags["track.baseline_run_id"], tags["track.baseline_run_url"]) == ("run-b", link.run_url)
    assert (tags["track.baseline_status"], tags["track.baseline_failure_category"]) == ("error", "none")
    assert list(tags)[-1] == mapping.SYNCED_TAG and tags[mapping.SYNCED_TAG] == "42"
    alone = mapping.attempt_tags(_row(), CAMPAIGN, [], price_table_version="v")
    assert not {mapping.CAMPAIGN_RUN_TAG, "track.baseline_run_id"} & set(alone)


def test_mapping_baseline_is_the_latest_attempt_of_the_same_commit() -> None:
    rerun = _row(campaign="rerun1", commit="c1")
    rows = [_row(stream_id="old", commit="c1", run_timestamp="2025-12-01_09-00-00"),
            _row(stream_id="new", commit="c1", run_timestamp="2025-12-02_09-00-00"),
            _row(stream_id="untimed", commit="c1", run_timestamp=None),
            _row(stream_id="other-commit", commit="c2", run_timestamp="2026-01-01_00-00-00"),
            _row(stream_id="other-campaign", campaign="x", commit="c1", run_timestamp="2026-01-01_00-00-00")]
    campaigns = {"orig": CAMPAIGN, "rerun1": RERUN_CAMPAIGN}
    chosen = mapping.baseline_attempt(rerun, RERUN_CAMPAIGN, campaigns, rows)
    assert chosen is not None and chosen["stream_id"] == "new"
    assert mapping.baseline_attempt(rerun, RERUN_CAMPAIGN, {"rerun1": RERUN_CAMPAIGN}, rows) is None
    assert mapping.baseline_attempt(rerun, CAMPAIGN, campaigns, rows) is None
    assert mapping.baseline_attempt(_row(commit="c3"), RERUN_CAMPAIGN, campaigns, rows) is None


def test_mapping_campaign_summary_counts_rates_failures_and_totals() -> None:
    rows = [_row(repo="vllm", commit="a", status="success", model="gpt-5", input_tokens=1000, output_tokens=10),
            _row(repo="vllm", commit="a", status="error", failure_category="quota_exceeded", model="gpt-5",
                 input_tokens=500, cached_input_tokens=100, output_tokens=None),
            _row(repo="vllm", commit="b", status="error", failure_category=None, model="unpriced"),
            _row(repo="sglang", commit="d", status="timeout", failure_category="quota_exceeded", model="gpt-5",
                 reasoning_tokens=7)]
    metrics = mapping.campaign_metrics(rows, PRICES)
    assert (metrics["attempts"], metrics["succeeded"], metrics["success_rate"]) == (4.0, 1.0, 0.25)
    assert (metrics["commits"], metrics["commits_succeeded"], metrics["commit_success_rate"]) == (3.0, 1.0, 1 / 3)
    assert (metrics["attempts.vllm"], metrics["success_rate.vllm"], metrics["commit_success_rate.vllm"]) == (
        3.0, 1 / 3, 0.5)
    assert (metrics["attempts.sglang"], metrics["success_rate.sglang"]) == (1.0, 0.0)
    assert (metrics["failures.quota_exceeded"], metrics["failures.unclassified"]) == (2.0, 1.0)
    assert not any(k.startswith("failures.none") for k in metrics)
    assert (metrics["input_tokens_total"], metrics["cached_input_tokens_total"], metrics["output_tokens_total"],
            metrics["reasoning_tokens_total"], metrics["total_tokens_total"]) == (1500.0, 100.0, 10.0, 7.0, 1510.0)
    assert metrics["cost_usd_total"] == pytest.approx((1000 + 100 + 400 + 10) / 1e6)
    assert metrics["attempts_priced"] == 2.0
    assert all(isinstance(v, float) for v in metrics.values())
    note = mapping.summary_tags("orig", CAMPAIGN, metrics, "unit-1")[mapping.NOTE_TAG]
    assert note == ("Campaign **orig** (original, trae/gpt-5): 1/4 attempts succeeded (25.0%), 1/3 commits; "
                    "cost $0.00. Failures: quota_exceeded 2, unclassified 1.")


def test_mapping_summary_zeroes_failure_categories_no_attempt_has_any_more() -> None:
    metrics = mapping.campaign_metrics([_row(status="error", failure_category="other")], PRICES)
    logged = {"failures.other": 2.0, "failures.quota_exceeded": 1.0, "attempts": 1.0}
    updated = mapping.with_vanished_failures(metrics, logged)
    assert (updated["failures.other"], updated["failures.quota_exceeded"]) == (1.0, 0.0)
    assert {k: v for k, v in updated.items() if k != "failures.quota_exceeded"} == metrics
    empty = mapping.campaign_metrics([], PRICES)
    assert (empty["attempts"], empty["success_rate"], empty["cost_usd_total"], empty["attempts_priced"]) == (
        0.0, 0.0, 0.0, 0.0)
    assert "Failures: none." in mapping.summary_note("orig", CAMPAIGN, empty)


if os.environ.get("TRACK_MLFLOW_DEBUG"):  # pragma: no cover
    print(EXPERIMENT)


def test_traces_hold_each_trajectory_with_the_attempts_token_counts(store: EventStore, mlflow_uri: str) -> None:
    import mlflow

    import_tree(store, ORIGINAL_TREE, "orig")
    summary = sync(store, mlflow_uri, traces=True)
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.tags[mapping.EXPERIMENT_KIND_TAG] == mapping.EXPERIMENT_KIND  # opens on the runs table
    with_trajectory = list(ORIGINAL_TREE.rglob("trajectory.json"))
    mlflow.set_tracking_uri(mlflow_uri)
    found = mlflow.search_traces(locations=[experiment.experiment_id], return_type="list", max_results=500)
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id], max_results=500)}
    assert summary.traces == len(found) > 0
    assert len(found) <= len(with_trajectory)
    for trace in found:
        run = runs[trace.info.request_metadata["mlflow.sourceRun"]]
        assert run.data.tags[mapping.TRACE_TAG] == trace.info.trace_id
        usage = trace.info.token_usage
        assert (usage["input_tokens"], usage["output_tokens"]) == (
            run.data.metrics["input_tokens"], run.data.metrics["output_tokens"])
    detailed = client.get_trace(found[0].info.trace_id)
    kinds = {span.span_type for span in detailed.data.spans}
    assert {"AGENT", "CHAT_MODEL"} <= kinds
    assert "sk-proj-" not in json.dumps(detailed.to_dict())
    again = sync(store, mlflow_uri, traces=True)  # nothing new: no second trace
    assert again.traces == 0


def test_a_sync_killed_after_writing_a_trace_writes_the_same_trace_again(store: EventStore, mlflow_uri: str) -> None:
    """Killed between the trace and the run's tags, the next sync upserts the trace by its derived id."""
    import_tree(store, ORIGINAL_TREE, "orig")
    first = sync(store, mlflow_uri)
    client = MlflowClient(mlflow_uri)
    runs = [r for r in runs_by_stream(mlflow_uri).values() if mapping.TRACE_TAG in r.data.tags]
    assert first.traces == len(runs) > 0
    spans = {r.data.tags[mapping.TRACE_TAG]: len(client.get_trace(r.data.tags[mapping.TRACE_TAG]).data.spans)
             for r in runs}
    for run in runs:  # as if the process died before the tags and the checkpoint were written
        client.delete_tag(run.info.run_id, mapping.TRACE_TAG)
    store.save_checkpoint(checkpoint_name(mlflow_uri), 0)
    again = sync(store, mlflow_uri)
    assert again.traces == first.traces
    found = client.search_traces(locations=[runs[0].info.experiment_id], max_results=500, include_spans=False)
    assert len(found) == first.traces  # upserted, not duplicated
    by_run = {r.info.run_id: r for r in runs_by_stream(mlflow_uri).values()}
    for trace in found:
        run = by_run[trace.info.request_metadata["mlflow.sourceRun"]]
        assert run.data.tags[mapping.TRACE_TAG] == trace.info.trace_id
        assert len(client.get_trace(trace.info.trace_id).data.spans) == spans[trace.info.trace_id] >= 2


def test_summary_runs_last_as_long_as_their_campaign(store: EventStore, mlflow_uri: str) -> None:
    import_tree(store, ORIGINAL_TREE, "orig")
    sync(store, mlflow_uri)
    runs = runs_by_stream(mlflow_uri)
    attempts = [r for s, r in runs.items() if s.startswith("attempt:orig:")]
    parent = runs["campaign:orig"]
    assert parent.info.start_time == min(r.info.start_time for r in attempts)
    assert parent.info.end_time == max(r.info.end_time for r in attempts)


def test_ui_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_track("ui", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr and "--port" in result.stderr


def test_a_fresh_tracking_store_at_a_known_address_gets_everything_again(store: EventStore, mlflow_uri: str,
                                                                          empty_mlflow_db: Path) -> None:
    import_tree(store, ORIGINAL_TREE, "orig")
    first = sync(store, mlflow_uri)
    assert first.runs_created == RUNS_A
    db = Path(mlflow_uri.removeprefix("sqlite:///"))
    shutil.copyfile(empty_mlflow_db, db)  # the MLflow database wiped, the address the same
    again = sync(store, mlflow_uri)
    assert (again.from_position, again.runs_created, again.summary_runs) == (0, RUNS_A, 1)
    assert sync(store, mlflow_uri).runs_created == 0  # and then it is up to date again


def test_links_fit_the_server_actually_used() -> None:
    route = run_route("1", "abc")
    assert ui_link("http://mlflow.lab:8080/", route) == "http://mlflow.lab:8080/#/experiments/1/runs/abc"
    assert ui_link("sqlite:////x/mlruns/mlflow.db", route) == "/#/experiments/1/runs/abc"  # any port `track ui` uses
    assert ui_link("sqlite:////x/mlruns/mlflow.db", route, 5001) == "http://127.0.0.1:5001/#/experiments/1/runs/abc"


def test_a_moved_mlruns_reads_and_writes_its_own_artifacts(store: EventStore, tmp_path: Path, mlflow_uri: str) -> None:
    import_tree(store, ORIGINAL_TREE, "orig")
    sync(store, mlflow_uri)
    moved = tmp_path / "elsewhere" / "mlruns"
    shutil.copytree(tmp_path / "mlruns", moved)
    shutil.rmtree(tmp_path / "mlruns")
    uri = f"sqlite:///{moved / 'mlflow.db'}"
    import_tree(store, rerun_tree(tmp_path / "rerun-tree"), "rerun1", kind="rerun", agent_fix_commit="a1c6d41",
                baseline_campaign="orig")
    synced = sync(store, uri)
    assert (synced.runs_created, synced.summary_runs) == (1, 1)  # the rerun attempt, its campaign run
    assert not (tmp_path / "mlruns").exists(), "nothing was written into the folder the store came from"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.artifact_location.startswith(moved.as_uri())
    runs = runs_by_stream(uri)
    old = next(r for s, r in runs.items() if s.startswith("attempt:orig:"))
    assert old.info.artifact_uri.startswith(moved.as_uri())
    local = Path(client.download_artifacts(old.info.run_id, "events.jsonl", str(tmp_path / "dl")))
    assert old.data.tags["track.stream_id"] in local.read_text()  # an artifact logged before the move
    new = next(r for s, r in runs.items() if s.startswith("attempt:rerun1:"))
    assert list((moved / "artifacts").rglob(f"{new.info.run_id}/artifacts/events.jsonl"))


def test_a_trace_covers_every_call_even_when_the_trajectory_ends_before_its_last_stamp(tmp_path: Path) -> None:
    """The stand-in bench (and a clock that jumps) can stamp calls after the trajectory's own end_time."""
    from tracker.projections.mlflow.traces import build_trace, read_transcript

    call = {"response": {"content": "ok", "usage": {"input_tokens": 10, "output_tokens": 2},
                         "tool_calls": [{"call_id": "c1", "name": "bash", "arguments": {"cmd": "ls"}}]},
            "input_messages": [{"role": "user", "content": "go"}]}
    doc = {"task": "t", "start_time": "2026-01-10T10:00:00", "end_time": "2026-01-10T10:00:00.100000",
           "llm_interactions": [{**call, "timestamp": "2026-01-10T10:00:00"},
                                {**call, "timestamp": "2026-01-10T10:00:30"}],
           "agent_steps": [], "final_result": "Task completed"}
    path = tmp_path / "trajectory.json"
    path.write_text(json.dumps(doc))
    transcript = read_transcript(path)
    assert transcript is not None
    built = build_trace(transcript, experiment_id="1", run_id="r", name="n", stream_id="s", succeeded=True)
    root = next(s for s in built.spans if s.parent_id is None)
    calls = [s for s in built.spans if s.span_type == "CHAT_MODEL"]
    assert all(c.end_time_ns > c.start_time_ns for c in calls)
    assert root.start_time_ns <= min(c.start_time_ns for c in calls)
    assert root.end_time_ns >= max(c.end_time_ns for c in built.spans)
    assert json.loads(built.info.trace_metadata["mlflow.trace.tokenUsage"])["total_tokens"] == 24
