"""Import an ISO-Bench checkout as `original` campaigns: every run folder is accounted for.

A folder is an attempt of its campaign, left out by a named filter (another agent, model or repo),
or a visible `folder.unidentified` record with its reason: nothing is dropped silently. One import
can fill one campaign (`--agent trae --model gpt-5`) or one campaign per agent/model, named from a
pattern (`{agent}-{model}`).

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

from tracker.classify.classifier import Classification, Incident, classify_lines, evidence_lines, find_incidents
from tracker.classify.rules import RuleTable, load_rule_table
from tracker.domain.events import (
    DomainEvent,
    JsonDict,
    NewEvent,
    RecordedEvent,
    decode,
    default_metadata,
    deterministic_event_id,
)
from tracker.domain.import_events import (
    AttemptObserved,
    CampaignCreated,
    EvaluationObserved,
    EvaluationReportObserved,
    EvidenceCaptured,
    FailureClassified,
    FolderIdentified,
    FolderUnidentified,
    ImportProblem,
    ImportProblemResolved,
    IncidentsObserved,
    PatchObserved,
    UsageObserved,
)
from tracker.domain.streams import attempt_stream, attempts_prefix, campaign_stream, check_campaign_name
from tracker.errors import TrackerError
from tracker.eventstore.hashing import canonical_json
from tracker.eventstore.store import ANY, NO_STREAM, EventStore
from tracker.ingest.evidence import capture
from tracker.isobench import (
    EvaluationIndex,
    PipelineLogIndex,
    Problem,
    RunFacts,
    RunFolder,
    discover_runs,
    index_evaluations,
    index_pipeline_logs,
    normalise_model,
    read_run,
)
from tracker.isobench.discovery import UNKNOWN, identify_folder
from tracker.isobench.evaluation import EvaluationReport
from tracker.projections.read_model import fold, queries

SINGLE_FACTS = ("attempt.observed", "usage.observed", "patch.observed", "evaluation.observed", "failure.classified",
                "incidents.observed", "evidence.captured")
ALL = "*"
"""`--agent '*'` / `--model '*'`: every agent or model of the tree (with a campaign name pattern)."""
"""Event types of which only the latest matters: a new one is appended only when it differs."""

Progress = Callable[[RunFolder], None]
"""Called once per run folder seen (attempt, filtered or unidentified alike)."""


@dataclass
class ImportSummary:
    """What one import did. `folders_seen` = `runs` + sum(`filtered`) + len(`unidentified`)."""

    campaign: str
    root: str
    runs: int = 0
    skipped: int = 0
    attempts_changed: int = 0
    events_appended: int = 0
    folders_seen: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    unidentified: list[dict[str, Any]] = field(default_factory=list)
    campaigns: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_repo: Counter[str] = field(default_factory=Counter)
    incidents: Counter[str] = field(default_factory=Counter)
    problems: int = 0
    tree_problems: list[dict[str, str]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    rules_version: str = ""
    seconds: float = 0.0

    @property
    def accounted(self) -> bool:
        return self.folders_seen == self.runs + sum(self.filtered.values()) + len(self.unidentified)

    def to_dict(self) -> JsonDict:
        return {
            "campaign": self.campaign, "root": self.root, "runs": self.runs, "skipped": self.skipped,
            "attempts_changed": self.attempts_changed, "events_appended": self.events_appended,
            "folders": {"seen": self.folders_seen, "attempts": self.runs, "filtered": dict(self.filtered),
                        "unidentified": len(self.unidentified), "accounted": self.accounted},
            "unidentified": self.unidentified, "campaigns": dict(sorted(self.campaigns.items())),
            "by_status": dict(sorted(self.by_status.items())), "by_category": dict(sorted(self.by_category.items())),
            "by_repo": dict(sorted(self.by_repo.items())), "incidents": dict(self.incidents.most_common()),
            "problems": self.problems, "tree_problems": self.tree_problems, "evaluation_reports": self.reports,
            "rules_version": self.rules_version, "seconds": round(self.seconds, 3),
        }


def ensure_campaign(store: EventStore, created: CampaignCreated, metadata: JsonDict) -> None:
    """Create the campaign once; refuse to reuse a name for a campaign of another kind/agent/model
    (or, for a rerun, another agent fix commit or baseline: its attempts would be credited wrongly)."""
    stream = campaign_stream(created.name)
    existing = [e for e in store.read_stream(stream) if e.event_type == CampaignCreated.TYPE]
    if existing:
        old = decode(existing[0])
        keys: tuple[str, ...] = ("kind", "agent", "model")
        if created.kind == "rerun":
            keys += ("agent_fix_commit", "baseline_campaign")
        for key in keys:
            if getattr(old, key) != getattr(created, key):
                raise TrackerError(
                    f"campaign {created.name!r} already exists with {key}={getattr(old, key)!r}, not "
                    f"{getattr(created, key)!r}: pick another campaign name"
                )
        return
    event_id = deterministic_event_id(stream, 1, CampaignCreated.TYPE)
    store.append(stream, [created.to_new_event(event_id, metadata)], expected_version=NO_STREAM)
    fold.catch_up(store)  # a writer leaves the read model current


def campaign_name_for(pattern: str, folder: RunFolder) -> str:
    """The campaign a folder belongs to: `pattern` with `{agent}`, `{model}`, `{repo}` filled in."""
    if "{" not in pattern:
        return pattern
    model = folder.model.replace("/", "-")
    return pattern.format(agent=folder.agent, model=model, repo=folder.repo)


def _filter_reason(folder: RunFolder, agent: str, model: str, repo: str | None) -> str | None:
    """Why a folder is not part of this import (the filter's name), or None when it is."""
    if agent != ALL and folder.agent != agent:
        return f"agent {folder.agent} (importing {agent})"
    if model != ALL and folder.model != model:
        return f"model {folder.model} (importing {model})"
    if repo and folder.repo != repo:
        return f"repo {folder.repo} (importing {repo})"
    return None


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
    """Record every run folder under ROOT/state/runs as an attempt, a named filter, or an unidentified record.

    `campaign` is a name, or a pattern with `{agent}` / `{model}` / `{repo}` (then `agent` and `model`
    may be `*`). `kind="rerun"` (with the fix commit and baseline) records a rerun made outside `track run`.
    """
    started = time.perf_counter()
    if "{" not in campaign and ALL in (agent, model):
        raise TrackerError("importing every agent or model needs a campaign pattern such as '{agent}-{model}'")
    root = Path(root)
    if not root.is_dir():
        raise TrackerError(f"{root} is not a folder: pass the ISO-Bench checkout (the folder holding state/runs)")
    table = rules or load_rule_table()
    if kind not in ("original", "rerun"):
        raise TrackerError(f"campaign kind must be original or rerun, not {kind!r}")
    wanted_model = model if model == ALL else normalise_model(model)
    session = _ImportSession(store, root, table, kind, agent_fix_commit, baseline_campaign, agent, wanted_model)
    summary = ImportSummary(campaign=campaign, root=str(root), rules_version=table.version)
    tree_problems: list[Problem] = []
    logs = index_pipeline_logs(root)
    evals = index_evaluations(root)
    tree_problems += logs.problems + evals.problems
    for folder in discover_runs(root, tree_problems):
        summary.folders_seen += 1
        if progress:
            progress(folder)
        _account(session, summary, identify_folder(folder), campaign, (agent, wanted_model, repo), logs, evals)
    summary.events_appended += session.finish(evals)
    summary.reports = session.reports
    summary.tree_problems = [{"file": p.file, "kind": p.kind, "detail": p.detail} for p in tree_problems]
    summary.problems += len(tree_problems)
    fold.catch_up(store)
    summary.seconds = time.perf_counter() - started
    return summary


def _account(session: _ImportSession, summary: ImportSummary, folder: RunFolder, campaign: str,
             wanted: tuple[str, str, str | None], logs: PipelineLogIndex, evals: EvaluationIndex) -> None:
    """One run folder: an attempt, a named filter, or an unidentified record, added to `summary`."""
    unknown = _unknown_parts(folder)
    reason = None if unknown else _filter_reason(folder, *wanted) or session.owned_elsewhere(folder, campaign)
    if reason is not None:
        summary.filtered[reason] += 1
        summary.skipped += 1
        return
    name = check_campaign_name(campaign_name_for(campaign, folder))
    facts = read_run(folder, logs, evals)
    why = _unidentified_why(unknown, facts)
    if why is not None:
        summary.unidentified.append(session.unidentified(name, facts, why))
        return
    _count_attempt(summary, name, folder, facts, session.record(name, facts))


def _unknown_parts(folder: RunFolder) -> list[str]:
    """Which of agent and model neither the folder layout nor its files tell."""
    return [what for what, value in (("agent", folder.agent), ("model", folder.model)) if value == UNKNOWN]


def _unidentified_why(unknown: list[str], facts: RunFacts) -> str | None:
    """Why the folder cannot be an attempt (its agent/model, else its commit is unknown), or None when it can."""
    if unknown:
        return f"neither the layout nor any file says the {' or '.join(unknown)}"
    if not facts.commit:
        return "no file names the commit"
    return None


def _count_attempt(summary: ImportSummary, name: str, folder: RunFolder, facts: RunFacts,
                   recorded: tuple[Classification, tuple[Incident, ...], int]) -> None:
    """Add one attempt, as `_ImportSession.record` recorded it, to the import's counts."""
    classification, incidents, appended = recorded
    summary.runs += 1
    summary.campaigns[name] += 1
    summary.events_appended += appended
    summary.attempts_changed += 1 if appended else 0
    summary.by_status[facts.status] += 1
    summary.by_category[classification.category] += 1
    summary.by_repo[folder.repo] += 1
    summary.incidents.update(i.category for i in incidents)
    summary.problems += len(facts.problems)


class _ImportSession:
    """The campaigns one import writes to: created on their first run folder, with what each knew."""

    def __init__(self, store: EventStore, root: Path, table: RuleTable, kind: str, fix: str | None,
                 baseline: str | None, agent: str, model: str) -> None:
        self.store, self.root, self.table = store, root, table
        self.rerun_folders = queries.rerun_run_paths(store)
        """Run folders that belong to a rerun campaign (`track run` wrote them into this tree)."""
        self.agent, self.model = agent, model
        self.kind, self.fix, self.baseline = kind, fix, baseline
        self.metadata = default_metadata(correlation_id=str(uuid.uuid4()), command="import",
                                         root=str(root.resolve()))
        self.known: dict[str, dict[str, _StreamState]] = {}
        self.agents: dict[str, tuple[str, str]] = {}
        self.unidentified_before: dict[str, set[str]] = {}
        self.unidentified_now: dict[str, set[str]] = {}
        self.identified: dict[str, list[tuple[str, str]]] = {}
        self.reports: list[dict[str, Any]] = []
        self.claimed: dict[str, str] = {}

    def owned_elsewhere(self, folder: RunFolder, pattern: str) -> str | None:
        """Why a folder a rerun campaign recorded (its `track run` wrote it here) is no attempt of this one."""
        owner = self.rerun_folders.get(folder.run_path)
        if owner is None or owner == campaign_name_for(pattern, folder):
            return None
        return f"recorded by rerun campaign {owner}"
    def _ready(self, name: str, facts: RunFacts) -> dict[str, _StreamState]:
        if name not in self.known:
            agent = self.agent if self.agent != ALL else facts.folder.agent
            model = self.model if self.model != ALL else facts.folder.model
            created = CampaignCreated(
                name=name, kind=self.kind, agent=agent, model=model,
                source=str(self.root.resolve()), agent_fix_commit=self.fix, baseline_campaign=self.baseline,
            )
            ensure_campaign(self.store, created, self.metadata)
            self.known[name] = _known_facts(self.store, name)
            self.agents[name] = (agent, model)
            self.unidentified_before[name] = _unidentified_paths(self.store, name)
            self.unidentified_now[name] = set()
        return self.known[name]

    def record(self, name: str, facts: RunFacts) -> tuple[Classification, tuple[Incident, ...], int]:
        known = self._ready(name, facts)
        stream = self._stream_for(name, facts, known)
        # the campaign's streams were all read at its start: a stream not among them is new
        classification, incidents, appended = record_attempt(
            self.store, name, facts, self.table, self.metadata, known.get(stream) or _StreamState(), stream=stream,
            root=self.root)
        if facts.folder.run_path in self.unidentified_before[name]:
            self.identified.setdefault(name, []).append((facts.folder.run_path, facts.commit or ""))
        return classification, incidents, appended

    def _stream_for(self, name: str, facts: RunFacts, known: dict[str, _StreamState]) -> str:
        """The attempt's stream. Two folders of one run batch can hold the same commit under two item
        ids (the real trees do); the folder that claimed the plain id first keeps it, and the other
        gets `~<item_id>` appended, so neither overwrites the other."""
        stream = attempt_stream(name, facts.folder.repo, facts.commit or "", facts.folder.timestamp)
        owner = self.claimed.get(stream)
        if owner is None and stream in known:
            owner = (known[stream].latest.get(AttemptObserved.TYPE) or {}).get("run_path")
        if owner is not None and owner != facts.folder.run_path:
            stream = f"{stream}~{facts.folder.item_id}"
        self.claimed[stream] = facts.folder.run_path
        return stream

    def unidentified(self, name: str, facts: RunFacts, why: str = "no file names the commit") -> dict[str, Any]:
        self._ready(name, facts)
        files = sorted(p.name for p in _safe_listdir(facts.folder.path))
        reasons = [f"{p.file}: {p.kind} ({p.detail})" for p in facts.problems if p.kind != "guessed"]
        record = FolderUnidentified(
            run_path=facts.folder.run_path,
            reason=why + (f"; {'; '.join(reasons[:4])}" if reasons else ""),
            commit_hint=facts.commit, files=files,
        )
        self.unidentified_now[name].add(facts.folder.run_path)
        if facts.folder.run_path not in self.unidentified_before[name]:
            stream = campaign_stream(name)
            event_id = deterministic_event_id(stream, FolderUnidentified.TYPE, canonical_json(record.to_payload()))
            self.store.append(stream, [record.to_new_event(event_id, self.metadata)], expected_version=ANY)
        return record.to_payload()

    def finish(self, evals: EvaluationIndex) -> int:
        """Close the import: folders identified since last time, and each campaign's evaluation report."""
        appended = 0
        for name, found in self.identified.items():
            events = [FolderIdentified(run_path=path, commit=commit).to_new_event(
                deterministic_event_id(campaign_stream(name), FolderIdentified.TYPE, path, commit), self.metadata)
                for path, commit in found]
            appended += len(self.store.append(campaign_stream(name), events, expected_version=ANY).positions)
        for name, (agent, model) in self.agents.items():
            for report in evals.reports:
                appended += self._record_report(name, agent, model, report)
        return appended

    def _record_report(self, name: str, agent: str, model: str, report: EvaluationReport) -> int:
        key = next((k for k in report.runs if "/" in k and k.split("/", 1)[0] == agent
                    and normalise_model(k.split("/", 1)[1]) == model), None)
        if key is None:
            return 0
        event = EvaluationReportObserved(file=report.file, run_key=key, generated_at=report.generated_at,
                                         figures=report.runs[key])
        self.reports.append({"campaign": name, **event.to_payload()})
        stream = campaign_stream(name)
        event_id = deterministic_event_id(stream, event.TYPE, canonical_json(event.to_payload()))
        return len(self.store.append(stream, [event.to_new_event(event_id, self.metadata)],
                                     expected_version=ANY).positions)


def _safe_listdir(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_file()]
    except OSError:
        return []


def _unidentified_paths(store: EventStore, name: str) -> set[str]:
    """Run paths recorded unidentified and not identified since."""
    return {folder["run_path"] for folder in queries.unidentified_folders(store, name)}


@dataclass
class _StreamState:
    version: int = 0
    latest: dict[str, JsonDict] = field(default_factory=dict)
    problems: dict[tuple[str, str], JsonDict] = field(default_factory=dict)


def _known_facts(store: EventStore, campaign: str) -> dict[str, _StreamState]:
    """What the store already holds for this campaign's attempts: one range scan, not one per run."""
    states: dict[str, _StreamState] = {}
    for event in store.read_prefix(attempts_prefix(campaign)):
        _fold(states.setdefault(event.stream_id, _StreamState()), event)
    return states


def _fold(state: _StreamState, event: RecordedEvent) -> None:
    state.version = event.stream_version
    if event.event_type in SINGLE_FACTS:
        # compared at the current schema: an event written by 0.1 that says the same is not re-appended
        state.latest[event.event_type] = decode(event).to_dict()
    elif event.event_type in (ImportProblem.TYPE, ImportProblemResolved.TYPE):
        problem = decode(event).to_dict()
        key = (problem["file"], problem["kind"])
        if event.event_type == ImportProblem.TYPE:
            state.problems[key] = problem
        else:
            state.problems.pop(key, None)


def attempt_facts(campaign: str, facts: RunFacts, classification: Classification,
                  incidents: tuple[Incident, ...] = ()) -> list[DomainEvent]:
    """The single-valued facts of one run folder, as domain events."""
    events: list[DomainEvent] = [
        _attempt_observed(campaign, facts),
        _usage_observed(facts),
        _patch_observed(facts),
        _failure_classified(classification),
        IncidentsObserved(incidents=[i.to_dict() for i in incidents], table_version=classification.table_version),
    ]
    evaluation = _evaluation_observed(facts)
    if evaluation is not None:
        events.append(evaluation)
    return events


def _attempt_observed(campaign: str, facts: RunFacts) -> AttemptObserved:
    """Which attempt the folder is (campaign, repo, commit, run) and how it ended, as the files say."""
    folder, journal = facts.folder, facts.journal
    return AttemptObserved(
        campaign=campaign, repo=folder.repo, repo_raw=folder.repo_raw, agent=folder.agent, model=folder.model,
        model_raw=folder.model_raw, item_id=folder.item_id, commit=facts.commit or "",
        pre_commit=facts.pre_commit, run_path=folder.run_path, run_timestamp=folder.timestamp,
        status=facts.status, status_source=facts.status_source, return_code=facts.return_code,
        duration_s=facts.duration_s, time_budget_minutes=facts.time_budget_minutes,
        journal_error=journal.error if journal else None,
        journal_error_type=journal.error_type if journal else None,
        commit_source=facts.commit_source,
        patch_generated=facts.run_summary.patch_generated if facts.run_summary else None,
    )


def _usage_observed(facts: RunFacts) -> UsageObserved:
    """The tokens the attempt spent, and the cost and model the agent itself reported (when it did)."""
    tokens, result = facts.tokens, facts.agent_result
    return UsageObserved(
        input_tokens=tokens.input_tokens, cached_input_tokens=tokens.cached_input_tokens,
        output_tokens=tokens.output_tokens, reasoning_tokens=tokens.reasoning_tokens,
        llm_calls=tokens.interactions, source=tokens.source,
        agent_reported_cost_usd=result.cost_usd if result else None,
        usage_model=normalise_model(result.models[0]) if result and result.models else None,
    )


def _patch_observed(facts: RunFacts) -> PatchObserved:
    """The patch's size and content hash (no hash for a blank diff: it is no patch)."""
    patch = facts.patch
    return PatchObserved(
        sha256=patch.sha256 if patch.has_patch else None, bytes=patch.bytes, files=patch.files_changed,
        lines_added=patch.lines_added, lines_removed=patch.lines_removed,
    )


def _failure_classified(classification: Classification) -> FailureClassified:
    """The classifier's verdict with the evidence lines it rests on."""
    return FailureClassified(
        category=classification.category, rule_id=classification.rule_id,
        table_version=classification.table_version,
        evidence=[{"file": e.file, "line": e.line, "excerpt": e.excerpt} for e in classification.evidence],
    )


def _evaluation_observed(facts: RunFacts) -> EvaluationObserved | None:
    """The evaluation's result for this attempt, or None when it has not been evaluated."""
    ev = facts.evaluation
    if ev is None:
        return None
    return EvaluationObserved(
        status=ev.status, speedup=ev.speedup, baseline_ms=ev.baseline_ms, patched_ms=ev.patched_ms,
        improvement=ev.improvement,
        error_message=ev.error_message, file=ev.file, agent_status=ev.agent_status,
    )


def record_attempt(store: EventStore, campaign: str, facts: RunFacts, table: RuleTable, metadata: JsonDict,
                   state: _StreamState | None = None,
                   extra: list[DomainEvent] | Callable[[Classification], list[DomainEvent]] | None = None,
                   stream: str | None = None, root: Path | None = None,
                   ) -> tuple[Classification, tuple[Incident, ...], int]:
    """Classify one run folder's facts, capture its evidence files and append what is new about its attempt.

    Used by `import` and by `track run`, which passes `extra` lifecycle events, or a function giving
    them from the classification (so a run is classified once). Without `state`, the attempt's stream
    is read first. `root` (the bench tree) lets the evaluation result be captured too. Returns the
    classification, the incidents and how many events were written.
    """
    lines = evidence_lines(facts, table)
    classification = classify_lines(facts, lines, table)
    if callable(extra):
        extra = extra(classification)
    incidents = find_incidents(lines, table)
    stream = stream or attempt_stream(campaign, facts.folder.repo, facts.commit or "", facts.folder.timestamp)
    if state is None:
        state = _StreamState()
        for recorded in store.read_stream(stream):
            _fold(state, recorded)
    evidence = capture(facts, root, state.latest.get(EvidenceCaptured.TYPE))
    changes = _changes(campaign, facts, classification, incidents, state, extra or [], evidence.event)
    if not changes:
        return classification, incidents, 0
    new_events = [
        NewEvent(event.TYPE, payload, event.VERSION,
                 deterministic_event_id(stream, state.version + i + 1, event.TYPE, text), metadata)
        for i, (event, payload, text) in enumerate(changes)
    ]
    result = store.append(stream, new_events, expected_version=state.version, evidence=evidence.blobs)
    return classification, incidents, len(result.positions)


def _changes(campaign: str, facts: RunFacts, classification: Classification, incidents: tuple[Incident, ...],
             state: _StreamState, extra: list[DomainEvent],
             evidence: EvidenceCaptured) -> list[tuple[DomainEvent, JsonDict, str]]:
    """What is new about an attempt, as (event, payload, canonical text). Each payload is built (and
    redacted) once; its text serves both the comparison with the store and the event id."""
    changes: list[tuple[DomainEvent, JsonDict, str]] = []
    for event in [*attempt_facts(campaign, facts, classification, incidents), evidence]:
        payload = event.to_payload()
        text = canonical_json(payload)
        if _normalised(state.latest.get(event.TYPE)) != text:
            changes.append((event, payload, text))
    seen = {(p.file, p.kind): p for p in facts.problems}
    others: list[DomainEvent] = [ImportProblem(file=p.file, kind=p.kind, detail=p.detail)
                                 for key, p in seen.items() if key not in state.problems]
    others += [ImportProblemResolved(file=file, kind=kind)
               for (file, kind) in state.problems if (file, kind) not in seen]
    for event in others + extra:
        payload = event.to_payload()
        changes.append((event, payload, canonical_json(payload)))
    return changes


def _normalised(payload: Any) -> Any:
    """Compare payloads as stored (JSON round trip: tuples become lists, etc.)."""
    return None if payload is None else canonical_json(payload)
