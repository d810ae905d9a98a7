"""Progress of a campaign from the store alone, so any machine that reaches the store can watch it.

Items come from the campaign's latest `plan.created`; an item is done when its claim was released
as succeeded, or when its latest attempt failed and nobody holds it now; running items are held by a
live lease. Tokens and cost come from the read model (cost priced now); the ETA divides the work
left by the pace of finished attempts and the number of items running at once.
"""

from __future__ import annotations

import time
from collections import Counter
from statistics import median
from typing import Any

from tracker.domain.events import JsonDict
from tracker.domain.pricing import load_price_table
from tracker.domain.run_events import CampaignStopped
from tracker.domain.streams import campaign_stream, claim_commit, claims_prefix
from tracker.eventstore.store import EventStore
from tracker.projections.read_model.queries import campaign_plan, campaign_row, measured_attempts
from tracker.rerun.claims import fold


def campaign_status(store: EventStore, campaign: str, price_table: str | None = None) -> JsonDict:
    """Counts, tokens, cost and ETA of `campaign` (see module docstring)."""
    info = campaign_row(store, campaign)
    events = store.read_stream(campaign_stream(campaign))
    stops = [e for e in events if e.event_type == CampaignStopped.TYPE]
    plan_items, estimate = campaign_plan(store, campaign)
    claims: dict[str, list[Any]] = {}
    for event in store.read_prefix(claims_prefix(campaign)):
        claims.setdefault(claim_commit(event.stream_id), []).append(event)
    attempts = measured_attempts(store, campaign)
    prices = load_price_table(price_table)
    now = time.time()
    latest: dict[str, Any] = {}
    for attempt in attempts:
        previous = latest.get(attempt.commit)
        if previous is None or (attempt.run_timestamp or "") >= (previous.run_timestamp or ""):
            latest[attempt.commit] = attempt
    commits = [i["human"] for i in plan_items] or sorted(latest)
    states = {c: fold(claims.get(c, [])) for c in commits}
    running = [c for c, s in states.items() if s.holder is not None and s.holder.lease_until >= now]
    succeeded = [c for c in commits if states[c].succeeded or (c in latest and latest[c].status == "success")]
    failed = [c for c in commits if c not in succeeded and c not in running and c in latest
              and latest[c].status not in ("running", "abandoned", "interrupted", None)]
    pending = len(commits) - len(succeeded) - len(failed) - len(running)
    cost = sum(prices.cost_usd(a.model, a.input_tokens, a.cached_input_tokens, a.output_tokens) or 0.0
               for a in attempts)
    durations = [a.duration_s for a in attempts if a.duration_s]
    parallel = max(1, len(running))
    left = pending + len(running) / 2
    eta = round(median(durations) * left / parallel, 1) if durations and left else 0.0
    return {
        "campaign": campaign, "kind": info["kind"], "agent_fix_commit": info["agent_fix_commit"],
        "baseline_campaign": info["baseline_campaign"], "items": len(commits), "done": len(succeeded) + len(failed),
        "level": "agent",
        "succeeded": len(succeeded), "failed": len(failed), "running": len(running), "pending": pending,
        "attempts": len(attempts),
        "by_status": dict(sorted(Counter(a.status or "unknown" for a in attempts).items())),
        "by_category": dict(sorted(Counter(latest[c].category for c in failed).items())),
        "tokens": {"input": sum(a.input_tokens or 0 for a in attempts),
                   "cached_input": sum(a.cached_input_tokens or 0 for a in attempts),
                   "output": sum(a.output_tokens or 0 for a in attempts)},
        "cost_usd": round(cost, 4),
        "estimate_usd": (estimate or {}).get("cost_usd"),
        "eta_s": eta, "running_items": sorted(running),
        "stopped": stops[-1].payload if stops else None,
        "price_table_version": prices.version,
    }
