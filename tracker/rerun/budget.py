"""The money side of `track run`: what attempts cost, and whether the next item still fits the budget.

Spent is what the campaign's earlier attempts cost (priced now) plus what its runs' attempts cost; every
running item reserves its estimate until it ends. A new item starts only when spent + reserved + its own
estimate stays within the budget. With a budget, the reservations live in the store (`SharedBudget`), so
several runners of one campaign draw on one budget.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field

from tracker.domain.events import DomainEvent, JsonDict, decode
from tracker.domain.pricing import PriceTable
from tracker.domain.run_events import BudgetReserved, BudgetSettled
from tracker.domain.streams import budget_stream
from tracker.errors import ConcurrencyError
from tracker.eventstore.store import ANY, NO_STREAM, EventStore
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
    """What each item of the plan is estimated to cost (what a reservation holds)."""

    def __init__(self, limit: float | None, estimate: JsonDict) -> None:
        self.limit = limit
        self._per_item: JsonDict = estimate.get("per_item", {})

    def item_cost(self, item: PlanItem) -> float:
        """The item's estimated cost (0 when the estimate does not know it)."""
        return float(self._per_item.get(item.commit, {}).get("cost_usd", 0.0))


@dataclass
class _Ledger:
    """The fold of a budget stream: what was spent, what is held, and the stream's version."""

    version: int = 0
    spent: float = 0.0
    held: dict[str, BudgetReserved] = field(default_factory=dict)

    @property
    def outstanding(self) -> float:
        return sum(r.amount_usd for r in self.held.values())


class SharedBudget:
    """The campaign's budget kept in the store, so every runner of the campaign draws on the same one.

    Before an item starts, its estimate is reserved by an append at the version just read: when two runners
    race, one retries on the new total, so together they never pass the limit by more than what was
    estimated. The item's end settles the reservation with its real cost; a dead runner's reservation is
    settled by whoever takes its commit over."""

    def __init__(self, store: EventStore, campaign: str, limit: float, host: str, pid: int,
                 metadata: JsonDict) -> None:
        self.store, self.stream, self.limit = store, budget_stream(campaign), limit
        self.host, self.pid, self.metadata = host, pid, metadata
        self._tokens: dict[str, str] = {}

    def ledger(self) -> _Ledger:
        ledger = _Ledger()
        for event in self.store.read_stream(self.stream):
            ledger.version = event.stream_version
            if event.event_type in (BudgetReserved.TYPE, BudgetSettled.TYPE):
                _apply(ledger, decode(event))
        return ledger

    def open(self, spent_before: float) -> None:
        """Start the ledger with what the campaign spent before it existed (once, whoever comes first)."""
        if self.ledger().version:
            return
        with contextlib.suppress(ConcurrencyError):
            self._append(BudgetSettled(token="before", cost_usd=round(spent_before, 6)), NO_STREAM)

    def reserve(self, commit: str, amount: float) -> str | None:
        """Hold `amount` for the item of `commit`; the refusal when it would pass the limit (None: held)."""
        for _ in range(50):
            ledger = self.ledger()
            if ledger.spent + ledger.outstanding + amount > self.limit:
                return (f"spent ${ledger.spent:.2f} + running ${ledger.outstanding:.2f} + next item "
                        f"${amount:.2f} would pass the budget ${self.limit:.2f}")
            token = str(uuid.uuid4())
            try:
                self._append(BudgetReserved(token=token, commit=commit, amount_usd=round(amount, 6), host=self.host,
                                            pid=self.pid), ledger.version)
            except ConcurrencyError:
                continue  # another runner reserved meanwhile: decide again on the new total
            self._tokens[commit] = token
            return None
        return "the budget is contended by too many runners at once: try fewer"

    def settle(self, commit: str, cost: float) -> None:
        """This runner's item of `commit` ended, having cost `cost`."""
        token = self._tokens.pop(commit, None)
        if token is not None:
            self._append(BudgetSettled(token=token, cost_usd=round(cost, 6)), ANY)

    def settle_dead(self, commit: str, host: str, pid: int, cost: float) -> None:
        """Settle what a dead runner held for `commit` (with what its attempt is known to have cost)."""
        for token, held in self.ledger().held.items():
            if held.commit == commit and (held.host, held.pid) == (host, pid):
                self._append(BudgetSettled(token=token, cost_usd=round(cost, 6)), ANY)

    def _append(self, event: DomainEvent, expected: object) -> None:
        self.store.append(self.stream, [event.to_new_event(metadata=self.metadata)], expected_version=expected)


def _apply(ledger: _Ledger, event: DomainEvent) -> None:
    if isinstance(event, BudgetReserved):
        ledger.held[event.token] = event
    elif isinstance(event, BudgetSettled):
        ledger.held.pop(event.token, None)
        ledger.spent += event.cost_usd
