"""Events written by `track run`: the lifecycle of an attempt, the per-commit claim, campaign stops.

Attempt lifecycle events live in the attempt's stream (`attempt:<campaign>:<repo>:<commit>:<ts>`),
next to the facts `record_attempt` writes, so a run attempt reads exactly like an imported one plus
when it started, on which host, and how the runner saw it end. Claims live in their own stream per
campaign and commit (`claim:<campaign>:<commit>`): appending at an expected version is the lock that
keeps two hosts from running the same commit at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracker.domain.events import DomainEvent, domain_event


@domain_event
@dataclass(frozen=True)
class ClaimAcquired(DomainEvent):
    """A runner took the commit: nobody else starts it until the claim is released or its lease expires."""

    TYPE = "claim.acquired"
    campaign: str
    repo: str
    commit: str
    item_id: str
    token: str
    host: str
    pid: int
    process_start: str | None
    lease_until: float
    attempt_stream: str
    run_timestamp: str
    replaces: str | None = None
    """The token of an expired or dead holder's claim this one took over."""


@domain_event
@dataclass(frozen=True)
class ClaimRenewed(DomainEvent):
    """Heartbeat of a live holder: the lease runs on (and names the agent process once it runs)."""

    TYPE = "claim.renewed"
    token: str
    lease_until: float
    child_pid: int | None = None


@domain_event
@dataclass(frozen=True)
class ClaimReleased(DomainEvent):
    """The holder is done with this attempt; `outcome` succeeded means the commit is done for good."""

    TYPE = "claim.released"
    token: str
    outcome: str
    category: str | None = None


@domain_event
@dataclass(frozen=True)
class AttemptStarted(DomainEvent):
    """`track run` launched an agent on one commit (the read model shows the attempt as running)."""

    TYPE = "attempt.started"
    campaign: str
    repo: str
    agent: str
    model: str
    item_id: str
    commit: str
    pre_commit: str | None
    run_timestamp: str
    attempt_number: int
    host: str
    command: list[str]
    log_file: str
    claim_token: str


@domain_event
@dataclass(frozen=True)
class AttemptFinished(DomainEvent):
    """How the runner saw the agent process end (the run folder's facts come with it)."""

    TYPE = "attempt.finished"
    exit_code: int | None
    wall_time_s: float
    category: str
    run_folder: str | None
    killed: str | None = None
    """None, `timeout` (ran past --item-timeout-min) or `stopped` (campaign stopped)."""
    recovered: bool = False
    """True when recorded after the runner died: the run folder showed the agent had finished."""
    live: dict[str, Any] = field(default_factory=dict)
    """What the runner parsed from the output while it ran (status, tokens, last error)."""


@domain_event
@dataclass(frozen=True)
class AttemptAbandoned(DomainEvent):
    """The runner of this attempt died (kill -9, reboot) or its lease expired; the commit is free again."""

    TYPE = "attempt.abandoned"
    reason: str
    by_host: str
    by_pid: int


@domain_event
@dataclass(frozen=True)
class AttemptInterrupted(DomainEvent):
    """The runner stopped this attempt on purpose (SIGINT, campaign stopped); it will be run again."""

    TYPE = "attempt.interrupted"
    reason: str


@domain_event
@dataclass(frozen=True)
class CampaignStopped(DomainEvent):
    """The runner stopped the whole campaign: every further item would fail and cost (or budget/SIGINT)."""

    TYPE = "campaign.stopped"
    reason: str
    category: str | None
    detail: str
    host: str
    items_left: int


@domain_event
@dataclass(frozen=True)
class BudgetReserved(DomainEvent):
    """A runner holds an item's estimated cost against the campaign's budget before the item starts."""

    TYPE = "budget.reserved"
    token: str
    commit: str
    amount_usd: float
    host: str
    pid: int


@domain_event
@dataclass(frozen=True)
class BudgetSettled(DomainEvent):
    """A reservation ended with what the item really cost (`token` "before": what earlier runs spent)."""

    TYPE = "budget.settled"
    token: str
    cost_usd: float


@domain_event
@dataclass(frozen=True)
class ApiRequestMetered(DomainEvent):
    """One API request as the metering proxy saw it pass (or refused it): the API's own usage, never the key.

    Tokens are the API's counts (cached inside input, reasoning inside output, as OpenAI bills them);
    None where the answer carried no usage. Cost is derived from them by the price table, not stored.
    """

    TYPE = "api.request_metered"
    campaign: str
    attempt_id: str | None
    """The attempt the runner gave the agent in its base URL (`/a/<attempt_id>/v1`): its claim token."""
    method: str
    path: str
    route: str
    """`responses`, `chat` (Chat Completions) or `other` (passed through, not metered for usage)."""
    stream: bool
    status: int
    model: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    refused: str | None = None
    """Why the proxy answered itself instead of forwarding: `budget` or `stopped`; None when forwarded."""
    latency_ms: float | None = None
    """Request received to the upstream's response headers."""
    duration_ms: float | None = None
    """Request received to the last byte passed on."""
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage_source: str | None = None
    """`body`, `stream` (the final streamed event), or `stream_injected` (usage asked for by the proxy)."""
    started_at: float = 0.0
