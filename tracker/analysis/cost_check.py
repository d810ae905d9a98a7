"""Three-way cost of each attempt: what the proxy measured, what the trajectory says, what the agent reported.

The proxy's figure comes from the API's own usage (`api.request_metered`, joined to its attempt by the
claim token in `attempt.started`); the trajectory's is the attempt's tokens in the read model; the agent's
is the cost it wrote itself, where it writes one. All are priced by one price table. Two figures that
differ by more than the threshold (a share of the larger, and at least a cent) are named, so a trajectory
that lost calls, or an agent that under-reports, shows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tracker.domain.events import JsonDict
from tracker.domain.pricing import PriceTable, billed_model
from tracker.domain.run_events import ApiRequestMetered, AttemptStarted
from tracker.domain.streams import attempts_prefix, meter_stream
from tracker.eventstore.store import EventStore
from tracker.projections.read_model.queries import attempts_frame

DISAGREE_SHARE = 0.05
DISAGREE_MIN_USD = 0.01
SOURCES = ("proxy", "trajectory", "agent")


@dataclass
class Metered:
    """What the proxy passed for one attempt id: requests, their cost, and errors by code."""

    requests: int = 0
    cost_usd: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


def fact_cost(prices: PriceTable, fact: JsonDict) -> float:
    """One metered request's cost (0 when it carried no usage or its model has no price)."""
    return prices.cost_usd(fact.get("model"), fact.get("input_tokens"), fact.get("cached_input_tokens"),
                           fact.get("output_tokens")) or 0.0


def metered_by_attempt(store: EventStore, campaign: str, prices: PriceTable) -> dict[str | None, Metered]:
    """The campaign's metered requests by attempt id (None: requests made without an attempt prefix)."""
    found: dict[str | None, Metered] = {}
    for event in store.read_stream(meter_stream(campaign)):
        if event.event_type != ApiRequestMetered.TYPE:
            continue
        fact = event.payload
        entry = found.setdefault(fact.get("attempt_id"), Metered())
        entry.requests += 1
        entry.cost_usd += fact_cost(prices, fact)
        if fact.get("error_code") or fact.get("error_type"):
            code = str(fact.get("error_code") or fact.get("error_type"))
            entry.errors[code] = entry.errors.get(code, 0) + 1
    return found


def metered_total(store: EventStore, campaign: str, prices: PriceTable) -> float:
    """What every metered request of the campaign cost."""
    return sum(m.cost_usd for m in metered_by_attempt(store, campaign, prices).values())


def _tokens_by_stream(store: EventStore, campaign: str) -> dict[str, str]:
    """Claim token -> attempt stream, from the campaign's `attempt.started` events."""
    return {str(e.payload.get("claim_token")): e.stream_id for e in store.read_prefix(attempts_prefix(campaign))
            if e.event_type == AttemptStarted.TYPE}


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def disagreement(costs: dict[str, float | None], share: float = DISAGREE_SHARE) -> str | None:
    """The pairs of figures that differ past the threshold, named (None: they agree, or fewer than two known)."""
    known = [(name, costs[name]) for name in SOURCES if costs.get(name) is not None]
    found = []
    for i, (a, x) in enumerate(known):
        for b, y in known[i + 1:]:
            assert x is not None and y is not None
            gap = abs(x - y)
            if gap > max(DISAGREE_MIN_USD, share * max(x, y)):
                found.append(f"{a} ${x:.4f} vs {b} ${y:.4f} ({(x - y) / max(y, 1e-9):+.0%})")
    return "; ".join(found) or None


@dataclass
class AttemptCosts:
    stream_id: str
    commit: str
    run_timestamp: str | None
    requests: int
    proxy_usd: float | None
    trajectory_usd: float | None
    agent_usd: float | None
    disagreement: str | None


def _attempt_costs(row: dict[str, Any], meter: Metered | None, prices: PriceTable, share: float) -> AttemptCosts:
    """One read-model attempt row with what the proxy metered for it."""
    trajectory = prices.cost_usd(billed_model(row["model"], row.get("usage_model")), row["input_tokens"],
                                 row["cached_input_tokens"], row["output_tokens"])
    costs = {"proxy": round(meter.cost_usd, 6) if meter else None, "trajectory": _number(trajectory),
             "agent": _number(row.get("agent_reported_cost_usd"))}
    return AttemptCosts(row["stream_id"], row["commit"], row["run_timestamp"], meter.requests if meter else 0,
                        costs["proxy"], costs["trajectory"], costs["agent"], disagreement(costs, share))


def _total(rows: list[AttemptCosts], name: str) -> float:
    return round(sum(getattr(r, f"{name}_usd") or 0.0 for r in rows), 4)


def cost_check(store: EventStore, campaign: str, prices: PriceTable, share: float = DISAGREE_SHARE) -> JsonDict:
    """Every attempt's three costs, the totals, and the disagreements named (see module docstring)."""
    metered = metered_by_attempt(store, campaign, prices)
    by_stream, unattributed = _attributed(metered, _tokens_by_stream(store, campaign))
    rows = [_attempt_costs(row, by_stream.get(row["stream_id"]), prices, share)
            for row in attempts_frame(store, campaign, prices=prices).to_dict("records")]
    return {
        "threshold_share": share, "threshold_min_usd": DISAGREE_MIN_USD, "price_table_version": prices.version,
        "totals": {f"{name}_usd": _total(rows, name) for name in SOURCES},
        "metered_attempts": sum(r.proxy_usd is not None for r in rows),
        "unattributed_proxy_usd": round(unattributed, 4),
        "requests": sum(m.requests for m in metered.values()),
        "errors": _errors(metered),
        "disagreements": [asdict(r) for r in rows if r.disagreement],
        "attempts": [asdict(r) for r in rows],
    }


def _attributed(metered: dict[str | None, Metered], streams: dict[str, str]) -> tuple[dict[str, Metered], float]:
    """What was metered by attempt stream, and the cost of requests whose attempt is not known."""
    by_stream, unattributed = {}, 0.0
    for token, entry in metered.items():
        if token in streams:
            by_stream[streams[token]] = entry
        else:
            unattributed += entry.cost_usd
    return by_stream, unattributed


def cost_summary(check: JsonDict) -> JsonDict:
    """The three-way cost without the per-attempt list (the disagreements stay, each named)."""
    return {key: value for key, value in check.items() if key != "attempts"}


def _errors(metered: dict[str | None, Metered]) -> dict[str, int]:
    total: dict[str, int] = {}
    for entry in metered.values():
        for code, count in entry.errors.items():
            total[code] = total.get(code, 0) + count
    return dict(sorted(total.items()))
