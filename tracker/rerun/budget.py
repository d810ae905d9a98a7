"""The money side of `track run`: what attempts cost, and whether the next item still fits the budget.

Spent is what the campaign's earlier attempts cost (priced now) plus what this run's attempts cost;
every running item reserves its estimate until it ends. A new item starts only when spent + reserved
+ its own estimate stays within the budget.
"""

from __future__ import annotations

from tracker.domain.events import JsonDict
from tracker.domain.pricing import PriceTable
from tracker.eventstore.store import EventStore
from tracker.isobench import RunFacts
from tracker.projections.read_model.queries import measured_attempts
from tracker.rerun.planning import PlanItem


def spent_before(store: EventStore, campaign: str, prices: PriceTable) -> float:
    """What the campaign's attempts recorded so far cost (an attempt that cannot be priced counts 0)."""
    total = 0.0
    for attempt in measured_attempts(store, campaign):
        total += attempt.cost_usd(prices) or 0.0
    return total


def facts_cost(prices: PriceTable, model: str, facts: RunFacts) -> float:
    """What one attempt's tokens cost with `model` (0 when it cannot be priced)."""
    tokens = facts.tokens
    return prices.cost_usd(model, tokens.input_tokens, tokens.cached_input_tokens, tokens.output_tokens) or 0.0


class Budget:
    """Reservations of running items against an optional limit (the caller serialises access)."""

    def __init__(self, limit: float | None, estimate: JsonDict) -> None:
        self.limit = limit
        self.reserved = 0.0
        self._per_item: JsonDict = estimate.get("per_item", {})

    def item_cost(self, item: PlanItem) -> float:
        """The item's estimated cost (0 when the estimate does not know it)."""
        return float(self._per_item.get(item.commit, {}).get("cost_usd", 0.0))

    def refusal(self, spent: float, cost: float) -> str | None:
        """Why an item of estimated `cost` may not start after `spent` (None: it fits)."""
        if self.limit is not None and spent + self.reserved + cost > self.limit:
            return (f"spent ${spent:.2f} + running ${self.reserved:.2f} "
                    f"+ next item ${cost:.2f} would pass the budget ${self.limit:.2f}")
        return None

    def reserve(self, item: PlanItem) -> None:
        """Hold the item's estimate while it runs."""
        self.reserved += self.item_cost(item)

    def release(self, item: PlanItem) -> None:
        """The item ended: its estimate is no longer held (what it really cost is counted as spent)."""
        self.reserved -= self.item_cost(item)
