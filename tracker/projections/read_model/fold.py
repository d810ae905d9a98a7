"""The SQL read model (`campaigns`, `attempts` tables): the current state of every attempt.

It is a pure function of the log: `catch_up` applies the events after its checkpoint and moves the
checkpoint in the same transaction, so a crash leaves it consistent and a rerun continues where
it stopped; `rebuild` replays everything (e.g. after a projection bug fix). A checkpoint ahead of
the log, or at an event whose hash changed, is an error: skipping on would hide the events that later
take those positions (a cut tail refilled by new imports).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from tracker.domain.events import DomainEvent, RecordedEvent, decode, is_registered
from tracker.domain.import_events import (
    AttemptObserved,
    CampaignCreated,
    EvaluationObserved,
    FailureClassified,
    ImportProblem,
    ImportProblemResolved,
    IncidentsObserved,
    PatchObserved,
    UsageObserved,
)
from tracker.domain.run_events import AttemptAbandoned, AttemptInterrupted, AttemptStarted
from tracker.domain.streams import ATTEMPT_PREFIX, attempt_parts
from tracker.errors import ProjectionOutOfStep
from tracker.eventstore.schema import attempts, campaigns
from tracker.eventstore.store import EventStore

NAME = "read_model"
LOCK_KEY = zlib.crc32(b"track.read_model")

_ATTEMPT_FIELDS: dict[type[DomainEvent], dict[str, str]] = {
    AttemptObserved: {
        "campaign": "campaign", "repo": "repo", "repo_raw": "repo_raw", "agent": "agent", "model": "model",
        "model_raw": "model_raw", "item_id": "item_id", "commit": "commit", "pre_commit": "pre_commit",
        "run_path": "run_path", "run_timestamp": "run_timestamp", "status": "status", "return_code": "return_code",
        "duration_s": "duration_s", "commit_source": "commit_source", "patch_generated": "patch_generated",
    },
    UsageObserved: {
        "input_tokens": "input_tokens", "cached_input_tokens": "cached_input_tokens",
        "output_tokens": "output_tokens", "reasoning_tokens": "reasoning_tokens", "llm_calls": "llm_calls",
        "agent_reported_cost_usd": "agent_reported_cost_usd", "usage_model": "usage_model",
    },
    PatchObserved: {
        "bytes": "patch_bytes", "files": "patch_files", "lines_added": "lines_added",
        "lines_removed": "lines_removed", "sha256": "patch_sha256",
    },
    EvaluationObserved: {
        "status": "eval_status", "speedup": "speedup", "baseline_ms": "baseline_ms", "patched_ms": "patched_ms",
        "agent_status": "eval_agent_status", "improvement": "improvement", "error_message": "eval_error",
    },
    FailureClassified: {"category": "failure_category", "rule_id": "rule_id", "table_version": "rules_version"},
    AttemptStarted: {
        "campaign": "campaign", "repo": "repo", "agent": "agent", "model": "model", "item_id": "item_id",
        "commit": "commit", "pre_commit": "pre_commit", "run_timestamp": "run_timestamp",
    },
}
"""Which field of which typed event sets which column: later events of a type win."""


def _new_attempt_row(stream_id: str) -> dict[str, Any]:
    campaign, repo, commit, timestamp = attempt_parts(stream_id)
    row: dict[str, Any] = {column.name: None for column in attempts.columns}
    row.update(stream_id=stream_id, campaign=campaign, repo=repo, commit=commit, run_timestamp=timestamp,
               problems=[], incidents=[], last_position=0)
    return row


def _incidents(row: dict[str, Any], fact: DomainEvent) -> None:
    assert isinstance(fact, IncidentsObserved)
    row["incidents"] = list(fact.incidents)


def _problem(row: dict[str, Any], fact: DomainEvent) -> None:
    """A problem with a file replaces the earlier one of the same file and kind."""
    assert isinstance(fact, ImportProblem)
    row["problems"] = [p for p in row["problems"] if (p["file"], p["kind"]) != (fact.file, fact.kind)] + [
        {"file": fact.file, "kind": fact.kind, "detail": fact.detail}]


def _problem_resolved(row: dict[str, Any], fact: DomainEvent) -> None:
    assert isinstance(fact, ImportProblemResolved)
    row["problems"] = [p for p in row["problems"] if (p["file"], p["kind"]) != (fact.file, fact.kind)]


_FOLDS: dict[type[DomainEvent], Callable[[dict[str, Any], DomainEvent], None]] = {
    IncidentsObserved: _incidents, ImportProblem: _problem, ImportProblemResolved: _problem_resolved,
}
"""Facts that change a row other than by setting columns."""

_STATUS: dict[type[DomainEvent], str] = {
    AttemptStarted: "running", AttemptAbandoned: "abandoned", AttemptInterrupted: "interrupted",
}
"""Lifecycle facts of `track run` and the status they leave the attempt in."""


def apply(row: dict[str, Any], event: RecordedEvent) -> None:
    """Fold one attempt event into its row, through the typed decode (old versions are upcast);
    types the read model does not know are ignored by design."""
    if is_registered(event.event_type):
        fact = decode(event)
        for field, column in _ATTEMPT_FIELDS.get(type(fact), {}).items():
            row[column] = getattr(fact, field)
        if type(fact) in _STATUS:
            row["status"] = _STATUS[type(fact)]
        if type(fact) in _FOLDS:
            _FOLDS[type(fact)](row, fact)
    row["last_position"] = event.position


def _campaign_row(event: RecordedEvent) -> dict[str, Any]:
    created = decode(event)
    assert isinstance(created, CampaignCreated)
    return {"name": created.name, "kind": created.kind, "agent": created.agent, "model": created.model,
            "benchmark": created.benchmark, "agent_fix_commit": created.agent_fix_commit,
            "baseline_campaign": created.baseline_campaign, "source": created.source,
            "created_at": event.recorded_at}


def check_checkpoint(store: EventStore, name: str = NAME) -> tuple[int, int]:
    """The projection's checkpoint and the log's last position, refused if the checkpoint is not in the log."""
    position, recorded = store.checkpoint_state(name)
    last = store.last_position()
    if position > last:
        raise ProjectionOutOfStep(
            f"projection {name!r} is at position {position}, but the log ends at position {last}: events "
            f"{last + 1}..{position} it had seen are gone from the log (a cut tail or a swapped store); "
            "new events would reuse those positions unseen. Check the log, then replay the projection")
    if position and recorded and store.hash_at(position) != recorded:
        raise ProjectionOutOfStep(
            f"projection {name!r} is at position {position}, but the event there is not the one it saw "
            f"(hash {recorded[:12]}…): the log was rewritten under it. Check the log, then replay the projection")
    return position, last


def catch_up(store: EventStore, batch_size: int = 20_000) -> int:
    """Apply every event after the checkpoint; returns how many were applied."""
    position, last = check_checkpoint(store)
    if position >= last:
        return 0  # up to date: no write lock for read-only commands
    applied = 0
    with store.transaction(lock_key=LOCK_KEY) as connection:
        position = store.checkpoint(NAME, connection)
        for batch in store.read_batches(position, batch_size):
            apply_batch(connection, batch)
            applied += len(batch)
            position = batch[-1].position
        if applied:
            store.save_checkpoint(NAME, position, connection)
    return applied


def open_current(url: str | None = None, *, create: bool = False) -> EventStore:
    """Open the store and bring its read model up to the log: what a notebook reads from. A store that
    does not exist is refused (StoreNotFound) unless `create`: a mistyped path is no empty store."""
    store = EventStore.open(url, create=create)
    catch_up(store)
    return store


def rebuild(store: EventStore) -> int:
    """Forget the read model and replay the whole log into it (returns the events replayed)."""
    with store.transaction(lock_key=LOCK_KEY) as connection:
        connection.execute(delete(attempts))
        connection.execute(delete(campaigns))
        store.save_checkpoint(NAME, 0, connection)
    return catch_up(store)


def reset_out_of_step(store: EventStore) -> list[str]:
    """Send every other projection whose checkpoint is not in the log back to the start (they are
    idempotent: MLflow runs are found again by tag); returns their names."""
    reset = []
    for name in store.checkpoint_names():
        if name == NAME:
            continue
        try:
            check_checkpoint(store, name)
        except ProjectionOutOfStep:
            store.save_checkpoint(name, 0)
            reset.append(name)
    return reset


def apply_batch(connection: Connection, batch: Iterable[RecordedEvent]) -> None:
    """Fold a batch of events into the `campaigns` and `attempts` tables this connection sees."""
    touched: dict[str, list[RecordedEvent]] = {}
    for event in batch:
        if event.stream_id.startswith(ATTEMPT_PREFIX):
            touched.setdefault(event.stream_id, []).append(event)
        elif event.event_type == CampaignCreated.TYPE:
            row = _campaign_row(event)
            connection.execute(delete(campaigns).where(campaigns.c.name == row["name"]))
            connection.execute(insert(campaigns).values(row))
    if not touched:
        return
    rows = _load_rows(connection, list(touched))
    for stream_id, stream_events in touched.items():
        row = rows.setdefault(stream_id, _new_attempt_row(stream_id))
        for event in stream_events:
            apply(row, event)
    ids = list(touched)
    for start in range(0, len(ids), 500):
        connection.execute(delete(attempts).where(attempts.c.stream_id.in_(ids[start:start + 500])))
    connection.execute(insert(attempts), [{**rows[sid], "problems": json.dumps(rows[sid]["problems"]),
                                           "incidents": json.dumps(rows[sid]["incidents"])} for sid in ids])


def _load_rows(connection: Connection, stream_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(stream_ids), 500):
        chunk = stream_ids[start:start + 500]
        for found in connection.execute(select(attempts).where(attempts.c.stream_id.in_(chunk))).mappings():
            row = dict(found)
            row["problems"] = json.loads(row["problems"] or "[]")
            row["incidents"] = json.loads(row["incidents"] or "[]")
            rows[row["stream_id"]] = row
    return rows
