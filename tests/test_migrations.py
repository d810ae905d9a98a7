"""Alembic migrations up and down on both backends; the store refuses an outdated schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from tests.conftest import run_track
from tests.support import real_shapes
from tracker.domain.events import NewEvent
from tracker.errors import SchemaOutdated
from tracker.eventstore import migrate
from tracker.eventstore.database import create_store_engine
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.read_model import queries


def test_upgrade_downgrade_upgrade(store_url: str) -> None:
    result = run_track("--db", store_url, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    engine = create_store_engine(store_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert {"events", "projection_checkpoints"} <= set(inspect(engine).get_table_names())
    assert run_track("--db", store_url, "db", "downgrade", "base").returncode == 0
    assert "events" not in inspect(engine).get_table_names()
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    store = EventStore(engine)
    store.append("s", [NewEvent("t", {"a": 1})])
    assert store.verify().ok
    engine.dispose()


def test_outdated_schema_is_refused_with_advice(store_url: str) -> None:
    engine = create_store_engine(store_url)
    migrate.upgrade(engine, "0001")
    head = migrate.head_revision()
    if head == "0001":
        # Simulate an older store by stamping a revision this track does not know as current.
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    engine.dispose()
    with pytest.raises(SchemaOutdated, match="must be upgraded"):
        EventStore.open(store_url)
    result = run_track("--db", store_url, "verify")
    assert result.returncode == 2
    assert "track db upgrade" in result.stderr and "Traceback" not in result.stderr


def test_a_store_written_by_0_1_upgrades_and_re_derives(store_url: str, tmp_path: Path) -> None:
    """Events of 0.1 (schema 0002, payload versions 1) stay as they are: `track db upgrade` replays
    them through the upcasters into the new read model, and a re-import adds only the new facts."""
    tree = real_shapes.build(tmp_path / "ISO-Bench")
    engine = create_store_engine(store_url)
    migrate.upgrade(engine, "0002")
    old = EventStore(engine)
    stream = f"attempt:orig:vllm:{real_shapes.SHA_QUOTA}:2025-11-06_03-26-11"
    old.append("campaign:orig", [NewEvent("campaign.created", {
        "name": "orig", "kind": "original", "agent": "trae", "model": "gpt-5", "benchmark": "iso-bench",
        "agent_fix_commit": None, "baseline_campaign": None, "source": str(tree)})])
    old.append(stream, [
        NewEvent("attempt.observed", {  # 0.1's v1 payload: no commit_source, no patch_generated
            "campaign": "orig", "repo": "vllm", "repo_raw": "vllm", "agent": "trae", "model": "gpt-5",
            "model_raw": "gpt-5", "item_id": "vllm_core-0011", "commit": real_shapes.SHA_QUOTA,
            "pre_commit": real_shapes.PRE, "run_path": "vllm/trae/gpt-5/2025-11-06_03-26-11/vllm_core-0011",
            "run_timestamp": "2025-11-06_03-26-11", "status": "error", "status_source": "journal",
            "return_code": 1, "duration_s": 812.4, "time_budget_minutes": 120.0}, schema_version=1),
        NewEvent("usage.observed", {"input_tokens": 10, "cached_input_tokens": None, "output_tokens": 2,
                                    "reasoning_tokens": None, "llm_calls": None, "source": "stdout"},
                 schema_version=1),
        NewEvent("failure.classified", {"category": "other", "rule_id": "other_unexplained",
                                        "table_version": "2025-12.1", "evidence": []}),
    ])
    engine.dispose()
    with pytest.raises(SchemaOutdated):
        EventStore.open(store_url)
    assert run_track("--db", store_url, "db", "upgrade").returncode == 0
    with EventStore.open(store_url) as store:
        [row] = queries.attempts_frame(store, "orig").to_dict(orient="records")
        assert (row["status"], row["input_tokens"], row["failure_category"]) == ("error", 10, "other")
        assert row["commit_source"] is None and row["agent_reported_cost_usd"] is None  # upcast defaults
        summary = import_tree(store, tree, "orig")
        assert summary.runs == real_shapes.TRUTH["trae_gpt5_attempts"]
        frame = queries.attempts_frame(store, "orig").set_index("item_id")
        assert frame.loc["vllm_core-0011", "failure_category"] == "quota_exceeded"
        assert frame.loc["vllm_core-0011", "commit_source"] == "journal"
        assert [i["category"] for i in frame.loc["vllm_core-0011", "incidents"]] == ["quota_exceeded"]
        history = [e.event_type for e in store.read_stream(stream)]
        assert history.count("failure.classified") == 2  # the old classification stays in the log
        assert import_tree(store, tree, "orig").events_appended == 0
        assert store.verify().ok
