"""Import an ISO-Bench checkout as an `original` campaign: every run folder becomes an attempt.

Readers turn files into facts, the classifier decides the failure category, and this module turns
both into events. It is idempotent by comparing with what the store already knows: a fact is
appended only when it differs from the latest one of its kind in that attempt's stream, so
importing the same tree twice adds nothing and importing after a file changed adds only what
changed. Event ids are derived from the stream, version and content, so a retried or concurrent
identical import is a no-op in the store as well.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.classifier import Classification, RuleTable, classify, load_rule_table
from tracker.domain import (
    AttemptObserved,
    CampaignCreated,
    EvaluationObserved,
    FailureClassified,
    ImportProblem,
    ImportProblemResolved,
    PatchObserved,
    UsageObserved,
    attempt_stream,
    campaign_stream,
    check_campaign_name,
)
from tracker.errors import TrackerError
from tracker.events import DomainEvent, JsonDict, NewEvent, RecordedEvent, default_metadata, deterministic_event_id
from tracker.hashing import canonical_json
from tracker.projections import read_model
from tracker.readers import Problem, RunFacts, normalise_model, read_tree
from tracker.store import NO_STREAM, EventStore

SINGLE_FACTS = ("attempt.observed", "usage.observed", "patch.observed", "evaluation.observed", "failure.classified")
"""Event types of which only the latest matters: a new one is appended only when it differs."""

Progress = Callable[[RunFacts], None]


@dataclass
class ImportSummary:
    campaign: str
    root: str
    runs: int = 0
    skipped: int = 0
    attempts_changed: int = 0
    events_appended: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_repo: Counter[str] = field(default_factory=Counter)
    problems: int = 0
    tree_problems: list[dict[str, str]] = field(default_factory=list)
    rules_version: str = ""
    seconds: float = 0.0

    def to_dict(self) -> JsonDict:
        return {
            "campaign": self.campaign, "root": self.root, "runs": self.runs, "skipped": self.skipped,
            "attempts_changed": self.attempts_changed, "events_appended": self.events_appended,
            "by_status": dict(sorted(self.by_status.items())), "by_category": dict(sorted(self.by_category.items())),
            "by_repo": dict(sorted(self.by_repo.items())), "problems": self.problems,
            "tree_problems": self.tree_problems, "rules_version": self.rules_version,
            "seconds": round(self.seconds, 3),
        }


def ensure_campaign(store: EventStore, created: CampaignCreated, metadata: JsonDict) -> None:
    """Create the campaign once; refuse to reuse a name for a campaign of another kind/agent/model
    (or, for a rerun, another agent fix commit or baseline: its attempts would be credited wrongly)."""
    stream = campaign_stream(created.name)
    existing = [e for e in store.read_stream(stream) if e.event_type == CampaignCreated.TYPE]
    if existing:
        old = existing[0].payload
        keys: tuple[str, ...] = ("kind", "agent", "model")
        if created.kind == "rerun":
            keys += ("agent_fix_commit", "baseline_campaign")
        for key in keys:
            if old.get(key) != getattr(created, key):
                raise TrackerError(
                    f"campaign {created.name!r} already exists with {key}={old.get(key)!r}, not "
                    f"{getattr(created, key)!r}: pick another --campaign name"
                )
        return
    event_id = deterministic_event_id(stream, 1, CampaignCreated.TYPE)
    store.append(stream, [created.to_new_event(event_id, metadata)], expected_version=NO_STREAM)


def import_tree(
    store: EventStore,
    root: Path,
    campaign: str,
    *,
    agent: str = "trae",
    model: str = "gpt-5",
    repo: str | None = None,
    rules: RuleTable | None = None,
    progress: Progress | None = None,
    kind: str = "original",
    agent_fix_commit: str | None = None,
    baseline_campaign: str | None = None,
) -> ImportSummary:
    """Record every run folder under ROOT/state/runs as an attempt of campaign CAMPAIGN.

    `kind="rerun"` (with the fix commit and baseline) records a rerun made outside `track run`.
    """
    started = time.perf_counter()
    check_campaign_name(campaign)
    root = Path(root)
    if not root.is_dir():
        raise TrackerError(f"{root} is not a folder: pass the ISO-Bench checkout (the folder holding state/runs)")
    table = rules or load_rule_table()
    metadata = default_metadata(correlation_id=str(uuid.uuid4()), command="import", root=str(root.resolve()))
    if kind not in ("original", "rerun"):
        raise TrackerError(f"campaign kind must be original or rerun, not {kind!r}")
    created = CampaignCreated(
        name=campaign, kind=kind, agent=agent, model=model, source=str(root.resolve()),
        agent_fix_commit=agent_fix_commit, baseline_campaign=baseline_campaign,
    )
    campaign_ready = False  # created with the first run, so a wrong or empty folder leaves no campaign behind
    known = _known_facts(store, campaign)
    summary = ImportSummary(campaign=campaign, root=str(root), rules_version=table.version)
    tree_problems: list[Problem] = []
    wanted_model = normalise_model(model)
    for facts in read_tree(root, tree_problems):
        folder = facts.folder
        if folder.agent != agent or folder.model != wanted_model or (repo and folder.repo != repo):
            summary.skipped += 1
            continue
        if progress:
            progress(facts)
        if not facts.commit:
            tree_problems.append(Problem(folder.run_path, "unexpected", "no commit sha found in any file: run skipped"))
            continue
        if not campaign_ready:
            ensure_campaign(store, created, metadata)
            campaign_ready = True
        stream = attempt_stream(campaign, folder.repo, facts.commit, folder.timestamp)
        classification, appended = record_attempt(store, campaign, facts, table, metadata, known.get(stream))
        summary.runs += 1
        summary.events_appended += appended
        summary.attempts_changed += 1 if appended else 0
        summary.by_status[facts.status] += 1
        summary.by_category[classification.category] += 1
        summary.by_repo[folder.repo] += 1
        summary.problems += len(facts.problems)
    summary.tree_problems = [{"file": p.file, "kind": p.kind, "detail": p.detail} for p in tree_problems]
    summary.problems += len(tree_problems)
    read_model.catch_up(store)
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass
class _StreamState:
    version: int = 0
    latest: dict[str, JsonDict] = field(default_factory=dict)
    problems: dict[tuple[str, str], JsonDict] = field(default_factory=dict)


def _known_facts(store: EventStore, campaign: str) -> dict[str, _StreamState]:
    """What the store already holds for this campaign's attempts: one range scan, not one per run."""
    states: dict[str, _StreamState] = {}
    for event in store.read_prefix(f"attempt:{campaign}:"):
        _fold(states.setdefault(event.stream_id, _StreamState()), event)
    return states


def _fold(state: _StreamState, event: RecordedEvent) -> None:
    state.version = event.stream_version
    if event.event_type in SINGLE_FACTS:
        state.latest[event.event_type] = event.payload
    elif event.event_type == ImportProblem.TYPE:
        state.problems[(event.payload["file"], event.payload["kind"])] = event.payload
    elif event.event_type == ImportProblemResolved.TYPE:
        state.problems.pop((event.payload["file"], event.payload["kind"]), None)


def attempt_facts(campaign: str, facts: RunFacts, classification: Classification) -> list[DomainEvent]:
    """The single-valued facts of one run folder, as domain events."""
    folder, journal, tokens, patch = facts.folder, facts.journal, facts.tokens, facts.patch
    events: list[DomainEvent] = [
        AttemptObserved(
            campaign=campaign, repo=folder.repo, repo_raw=folder.repo_raw, agent=folder.agent, model=folder.model,
            model_raw=folder.model_raw, item_id=folder.item_id, commit=facts.commit or "",
            pre_commit=facts.pre_commit, run_path=folder.run_path, run_timestamp=folder.timestamp,
            status=facts.status, status_source=facts.status_source, return_code=facts.return_code,
            duration_s=facts.duration_s, time_budget_minutes=facts.time_budget_minutes,
            journal_error=journal.error if journal else None,
            journal_error_type=journal.error_type if journal else None,
        ),
        UsageObserved(
            input_tokens=tokens.input_tokens, cached_input_tokens=tokens.cached_input_tokens,
            output_tokens=tokens.output_tokens, reasoning_tokens=tokens.reasoning_tokens,
            llm_calls=tokens.interactions, source=tokens.source,
        ),
        PatchObserved(
            sha256=patch.sha256 if patch.has_patch else None, bytes=patch.bytes, files=patch.files_changed,
            lines_added=patch.lines_added, lines_removed=patch.lines_removed,
        ),
        FailureClassified(
            category=classification.category, rule_id=classification.rule_id,
            table_version=classification.table_version,
            evidence=[{"file": e.file, "line": e.line, "excerpt": e.excerpt} for e in classification.evidence],
        ),
    ]
    ev = facts.evaluation
    if ev is not None:
        events.append(EvaluationObserved(
            status=ev.status, speedup=ev.speedup, baseline_ms=ev.baseline_ms, patched_ms=ev.patched_ms,
            improvement=ev.improvement,
            error_message=ev.error_message, file=ev.file,
        ))
    return events


def record_attempt(store: EventStore, campaign: str, facts: RunFacts, table: RuleTable, metadata: JsonDict,
                   state: _StreamState | None = None, extra: list[DomainEvent] | None = None,
                   ) -> tuple[Classification, int]:
    """Classify one run folder's facts and append what is new about its attempt.

    Used by `import` and by `track run` (which passes `extra` lifecycle events). Without `state`,
    the attempt's stream is read first. Returns the classification and how many events were written.
    """
    classification = classify(facts, table)
    stream = attempt_stream(campaign, facts.folder.repo, facts.commit or "", facts.folder.timestamp)
    if state is None:
        state = _StreamState()
        for event in store.read_stream(stream):
            _fold(state, event)
    changes: list[DomainEvent] = [
        event for event in attempt_facts(campaign, facts, classification)
        if _normalised(state.latest.get(event.TYPE)) != _normalised(event.to_payload())
    ]
    seen = {(p.file, p.kind): p for p in facts.problems}
    changes += [ImportProblem(file=p.file, kind=p.kind, detail=p.detail)
                for key, p in seen.items() if key not in state.problems]
    changes += [ImportProblemResolved(file=file, kind=kind)
                for (file, kind) in state.problems if (file, kind) not in seen]
    changes += extra or []
    if not changes:
        return classification, 0
    new_events = [_identified(event, stream, state.version + i + 1, metadata) for i, event in enumerate(changes)]
    result = store.append(stream, new_events, expected_version=state.version)
    return classification, len(result.positions)


def _identified(event: DomainEvent, stream: str, version: int, metadata: JsonDict) -> NewEvent:
    payload = event.to_payload()
    event_id = deterministic_event_id(stream, version, event.TYPE, canonical_json(payload))
    return event.to_new_event(event_id, metadata)


def _normalised(payload: Any) -> Any:
    """Compare payloads as stored (JSON round trip: tuples become lists, etc.)."""
    return None if payload is None else canonical_json(payload)
