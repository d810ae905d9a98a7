"""The domain's events: what can be known about a campaign and about an attempt.

Streams: `campaign:<name>` holds the campaign's own facts; `attempt:<campaign>:<repo>:<commit>:<ts>`
holds one agent run on one commit in one campaign. Payloads are facts as observed; derived values
(cost, success, best attempt) are computed by projections, so a new price table or classifier
re-derives history without rewriting it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracker.domain.events import DomainEvent, JsonDict, domain_event, upcaster


@domain_event
@dataclass(frozen=True)
class CampaignCreated(DomainEvent):
    """An evaluation (kind `original`) or a rerun (kind `rerun`) of one agent and model."""

    TYPE = "campaign.created"
    name: str
    kind: str
    agent: str
    model: str
    benchmark: str = "iso-bench"
    agent_fix_commit: str | None = None
    baseline_campaign: str | None = None
    source: str | None = None


@domain_event
@dataclass(frozen=True)
class PlanCreated(DomainEvent):
    """What a rerun was planned to cover, and why those commits were selected."""

    TYPE = "plan.created"
    plan_id: str
    from_campaign: str
    selection: dict[str, Any]
    items: list[dict[str, Any]]
    files: list[str] = field(default_factory=list)
    estimate: dict[str, Any] | None = None


@domain_event
@dataclass(frozen=True)
class AttemptObserved(DomainEvent):
    """One agent run on one commit: who, what, where, and how it ended (as the files say)."""

    TYPE = "attempt.observed"
    VERSION = 2
    campaign: str
    repo: str
    repo_raw: str
    agent: str
    model: str
    model_raw: str
    item_id: str
    commit: str
    pre_commit: str | None
    run_path: str
    run_timestamp: str
    status: str
    status_source: str | None
    return_code: int | None
    duration_s: float | None
    time_budget_minutes: float | None
    journal_error: str | None = None
    journal_error_type: str | None = None
    commit_source: str | None = None
    patch_generated: bool | None = None
    """v2: which file named the commit; the run summary's `patch_generated` (for runs without a diff)."""


@upcaster(AttemptObserved.TYPE, 1)
def _attempt_v1_to_v2(payload: JsonDict) -> JsonDict:
    """0.1 did not record where the commit came from nor the run summary's patch flag."""
    return {**payload, "commit_source": None, "patch_generated": None}


@domain_event
@dataclass(frozen=True)
class UsageObserved(DomainEvent):
    """Token buckets of one attempt (cached inside input, reasoning inside output: OpenAI's way)."""

    TYPE = "usage.observed"
    VERSION = 2
    input_tokens: int | None
    cached_input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    llm_calls: int | None
    source: str | None
    agent_reported_cost_usd: float | None = None
    usage_model: str | None = None
    """v2: the cost the agent printed itself (Claude Code's `total_cost_usd`), kept beside the priced one,
    and the model the tokens were spent on when the agent names it (a `default` model folder does not)."""


@upcaster(UsageObserved.TYPE, 1)
def _usage_v1_to_v2(payload: JsonDict) -> JsonDict:
    return {**payload, "agent_reported_cost_usd": None, "usage_model": None}


@domain_event
@dataclass(frozen=True)
class PatchObserved(DomainEvent):
    """The patch an attempt produced (empty means no patch)."""

    TYPE = "patch.observed"
    sha256: str | None
    bytes: int
    files: int
    lines_added: int
    lines_removed: int


@domain_event
@dataclass(frozen=True)
class EvaluationObserved(DomainEvent):
    """The performance test of an attempt's patch (eval_results_v2 test_results.json)."""

    TYPE = "evaluation.observed"
    VERSION = 2
    status: str | None
    speedup: float | None
    baseline_ms: float | None
    patched_ms: float | None
    improvement: bool | None
    error_message: str | None
    file: str | None
    agent_status: str | None = None
    """v2: the agent status the evaluation harness saw (its `metadata.agent_status`)."""


@upcaster(EvaluationObserved.TYPE, 1)
def _evaluation_v1_to_v2(payload: JsonDict) -> JsonDict:
    return {**payload, "agent_status": None}


@domain_event
@dataclass(frozen=True)
class FailureClassified(DomainEvent):
    """Why an attempt failed (`none` when it succeeded), by which rule of which table, on what evidence."""

    TYPE = "failure.classified"
    category: str
    rule_id: str
    table_version: str
    evidence: list[dict[str, Any]]


@domain_event
@dataclass(frozen=True)
class ImportProblem(DomainEvent):
    """A file of the attempt that is missing, truncated or unreadable (the rest was still imported)."""

    TYPE = "import.problem"
    file: str
    kind: str
    detail: str


@domain_event
@dataclass(frozen=True)
class ImportProblemResolved(DomainEvent):
    """A file reported as a problem earlier reads fine now."""

    TYPE = "import.problem_resolved"
    file: str
    kind: str


@domain_event
@dataclass(frozen=True)
class IncidentsObserved(DomainEvent):
    """Every error signature seen during a run, whatever its outcome (a run that succeeded can still
    have hit the tool-output bug forty times). One entry per category: `count` occurrences (in the
    file that shows most of them, so a line echoed in two files is not counted twice), `files`
    (occurrences per file), `first` / `last` (`{"file", "line"}`), a redacted `excerpt`, `rule_id`."""

    TYPE = "incidents.observed"
    incidents: list[dict[str, Any]]
    table_version: str


@domain_event
@dataclass(frozen=True)
class EvaluationReportObserved(DomainEvent):
    """The team's own aggregate for this campaign (`evaluation_report.json` `runs[<agent>/<model>]`),
    kept verbatim so a recount from the per-item results can be shown beside it."""

    TYPE = "evaluation_report.observed"
    file: str
    run_key: str
    generated_at: str | None
    figures: dict[str, Any]


@domain_event
@dataclass(frozen=True)
class FolderUnidentified(DomainEvent):
    """A run folder of this campaign that cannot become an attempt (no file names its commit):
    kept as a visible record with the reason and what could still be recovered."""

    TYPE = "folder.unidentified"
    run_path: str
    reason: str
    commit_hint: str | None
    files: list[str]


@domain_event
@dataclass(frozen=True)
class FolderIdentified(DomainEvent):
    """A folder reported unidentified earlier became an attempt (a file naming its commit appeared)."""

    TYPE = "folder.identified"
    run_path: str
    commit: str



@domain_event
@dataclass(frozen=True)
class EvidenceCaptured(DomainEvent):
    """The attempt's files as captured into the store: redacted, stored by content hash (`evidence_blobs`),
    so MLflow is rebuilt from the store alone. `files`: `{artifact, source, source_sha256, sha256, bytes}`
    (`source_sha256` of the file as read, `sha256` and `bytes` of the redacted content stored). `missing`:
    artifacts whose source file has gone since it was captured (the earlier capture stays in `files`);
    `oversize`: `{artifact, source, bytes}` of files too large to keep."""

    TYPE = "evidence.captured"
    files: list[dict[str, Any]]
    missing: list[str] = field(default_factory=list)
    oversize: list[dict[str, Any]] = field(default_factory=list)
