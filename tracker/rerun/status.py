"""Progress of a campaign from the store alone, so any machine that reaches the store can watch it.

Items come from the campaign's latest `plan.created`; an item is done when its claim was released
as succeeded, or when its latest attempt failed and nobody holds it now; running items are held by a
live lease. Tokens and cost come from the read model (cost priced now); the ETA divides the work
left by the pace of finished attempts and the number of items running at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from statistics import median

from tracker.analysis.cost_check import cost_check, cost_summary
from tracker.domain.events import JsonDict, RecordedEvent, decode
from tracker.domain.outcomes import COMMIT_SUCCESS_RULE
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.domain.run_events import CampaignStopped
from tracker.domain.streams import campaign_stream, claim_commit, claims_prefix
from tracker.domain.vocabulary import HARNESS
from tracker.eventstore.store import EventStore
from tracker.projections.read_model.queries import MeasuredAttempt, campaign_plan, campaign_row, measured_attempts
from tracker.rerun.claims import ClaimState, fold

NOT_FAILED = ("running", "abandoned", "interrupted", None)
"""Attempt statuses that are no verdict: an item whose latest attempt ended so is not counted failed."""


@dataclass(frozen=True)
class _Items:
    """The campaign's items by state (lists keep the plan's order; `pending` is what is left)."""

    succeeded: list[str]
    failed: list[str]
    running: list[str]
    pending: int

    @property
    def done(self) -> int:
        return len(self.succeeded) + len(self.failed)


def _latest_attempts(attempts: list[MeasuredAttempt]) -> dict[str, MeasuredAttempt]:
    """The latest attempt of each commit (by run timestamp; a tie goes to the later row)."""
    latest: dict[str, MeasuredAttempt] = {}
    for attempt in attempts:
        previous = latest.get(attempt.commit)
        if previous is None or (attempt.run_timestamp or "") >= (previous.run_timestamp or ""):
            latest[attempt.commit] = attempt
    return latest


def _claim_events(store: EventStore, campaign: str) -> dict[str, list[RecordedEvent]]:
    """The campaign's claim events grouped by commit (one claim stream per commit)."""
    claims: dict[str, list[RecordedEvent]] = {}
    for event in store.read_prefix(claims_prefix(campaign)):
        claims.setdefault(claim_commit(event.stream_id), []).append(event)
    return claims


def _is_running(state: ClaimState, now: float) -> bool:
    """Held by a live lease right now."""
    return state.holder is not None and state.holder.lease_until >= now


def _is_succeeded(state: ClaimState, any_success: bool) -> bool:
    """Released as succeeded, or one of its attempts succeeded (its best attempt: `COMMIT_SUCCESS_RULE`)."""
    return state.succeeded or any_success


def _has_failed(latest: MeasuredAttempt | None) -> bool:
    """The latest attempt ended with a verdict (and, as the item did not succeed, a failing one); a broken
    setup is no verdict on the model: such an item waits for a run."""
    return latest is not None and latest.status not in NOT_FAILED and latest.category != HARNESS


def _split_items(commits: list[str], states: dict[str, ClaimState], latest: dict[str, MeasuredAttempt],
                 ok: set[str], now: float) -> _Items:
    """Which items succeeded (`ok`: an attempt succeeded), failed (latest attempt failed, nobody holds it),
    run or wait."""
    running = [c for c, s in states.items() if _is_running(s, now)]
    succeeded = [c for c in commits if _is_succeeded(states[c], c in ok)]
    failed = [c for c in commits if c not in succeeded and c not in running and _has_failed(latest.get(c))]
    pending = len(commits) - len(succeeded) - len(failed) - len(running)
    return _Items(succeeded, failed, running, pending)


def _succeeded(attempts: list[MeasuredAttempt]) -> set[str]:
    """Commits one of whose attempts succeeded."""
    return {a.commit for a in attempts if a.status == "success"}


def _tokens(attempts: list[MeasuredAttempt]) -> JsonDict:
    return {"input": sum(a.input_tokens or 0 for a in attempts),
            "cached_input": sum(a.cached_input_tokens or 0 for a in attempts),
            "output": sum(a.output_tokens or 0 for a in attempts)}


def _cost(attempts: list[MeasuredAttempt], prices: PriceTable) -> float:
    """What the attempts cost at today's prices (an attempt that cannot be priced counts 0)."""
    return sum(a.cost_usd(prices) or 0.0 for a in attempts)


def _eta(attempts: list[MeasuredAttempt], items: _Items) -> float:
    """Seconds left: median attempt time x work left (a running item counts half) / items running at once."""
    durations = [a.duration_s for a in attempts if a.duration_s]
    parallel = max(1, len(items.running))
    left = items.pending + len(items.running) / 2
    return round(median(durations) * left / parallel, 1) if durations and left else 0.0


def _last_stop(store: EventStore, campaign: str) -> JsonDict | None:
    """The payload of the campaign's latest `campaign.stopped`, if it was ever stopped."""
    stops = [e for e in store.read_stream(campaign_stream(campaign)) if e.event_type == CampaignStopped.TYPE]
    return decode(stops[-1]).to_dict() if stops else None


def campaign_status(store: EventStore, campaign: str, price_table: str | None = None) -> JsonDict:
    """Counts, tokens, cost and ETA of `campaign` (see module docstring)."""
    info = campaign_row(store, campaign)
    stopped = _last_stop(store, campaign)
    plan_items, estimate = campaign_plan(store, campaign)
    claims = _claim_events(store, campaign)
    attempts = measured_attempts(store, campaign)
    prices = load_price_table(price_table)
    now = store.now()  # leases are on the database's clock
    latest = _latest_attempts(attempts)
    commits = [i["human"] for i in plan_items] or sorted(latest)
    items = _split_items(commits, {c: fold(claims.get(c, [])) for c in commits}, latest, _succeeded(attempts), now)
    return {
        "campaign": campaign, "kind": info["kind"], "agent_fix_commit": info["agent_fix_commit"],
        "baseline_campaign": info["baseline_campaign"], "items": len(commits), "done": items.done,
        "level": "agent", "success_rule": COMMIT_SUCCESS_RULE,
        "succeeded": len(items.succeeded), "failed": len(items.failed), "running": len(items.running),
        "pending": items.pending,
        "attempts": len(attempts),
        "by_status": dict(sorted(Counter(a.status or "unknown" for a in attempts).items())),
        "by_category": dict(sorted(Counter(latest[c].category for c in items.failed).items())),
        "harness_errors": sum(a.category == HARNESS for a in attempts),
        "tokens": _tokens(attempts),
        "cost_usd": round(_cost(attempts, prices), 4),
        "estimate_usd": (estimate or {}).get("cost_usd"),
        "eta_s": _eta(attempts, items), "running_items": sorted(items.running),
        "stopped": stopped,
        "price_table_version": prices.version,
        "costs": cost_summary(cost_check(store, campaign, prices)),
    }
