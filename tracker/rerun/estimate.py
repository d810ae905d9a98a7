"""Estimate a plan's tokens, cost and wall time from what the baseline campaign actually measured.

Per commit: the median of its baseline attempts; a commit without history gets the median of its
repo (then of the whole baseline). Cost comes from the versioned price table, never a guess, and the
safety buffer is reported beside the estimate, not folded into it. Wall time is the makespan of the
items on `workers` parallel workers (longest first onto the least loaded worker).
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from statistics import median

from tracker.domain.events import JsonDict
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.eventstore.store import EventStore
from tracker.projections.read_model.queries import MeasuredAttempt, measured_attempts
from tracker.rerun.planning import PlanItem


@dataclass(frozen=True)
class ItemEstimate:
    """The expected consumption of one plan item, and where the figure came from."""

    commit: str
    repo: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_s: float
    basis: str
    """`commit` (its own history), `repo_median`, `baseline_median`, or `none` (no data at all)."""


@dataclass(frozen=True)
class _Measure:
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_s: float


def _measure(attempt: MeasuredAttempt, prices: PriceTable) -> _Measure | None:
    if attempt.input_tokens is None and attempt.output_tokens is None:
        return None
    cost = attempt.cost_usd(prices)
    return _Measure(attempt.input_tokens or 0, attempt.cached_input_tokens or 0, attempt.output_tokens or 0,
                    cost or 0.0, attempt.duration_s or 0.0)


def _median(measures: list[_Measure]) -> _Measure:
    return _Measure(int(median(m.input_tokens for m in measures)), int(median(m.cached_input_tokens for m in measures)),
                    int(median(m.output_tokens for m in measures)), float(median(m.cost_usd for m in measures)),
                    float(median(m.duration_s for m in measures)))


def estimate_items(items: list[PlanItem], baseline: list[MeasuredAttempt], prices: PriceTable) -> list[ItemEstimate]:
    """One estimate per plan item (same order)."""
    by_commit: dict[str, list[_Measure]] = {}
    by_repo: dict[str, list[_Measure]] = {}
    everything: list[_Measure] = []
    for attempt in baseline:
        m = _measure(attempt, prices)
        if m is None:
            continue
        by_commit.setdefault(attempt.commit, []).append(m)
        by_repo.setdefault(attempt.repo, []).append(m)
        everything.append(m)
    repo_median = {repo: _median(ms) for repo, ms in by_repo.items()}
    overall = _median(everything) if everything else None
    out: list[ItemEstimate] = []
    for item in items:
        if item.commit in by_commit:
            m, basis = _median(by_commit[item.commit]), "commit"
        elif item.repo in repo_median:
            m, basis = repo_median[item.repo], "repo_median"
        elif overall is not None:
            m, basis = overall, "baseline_median"
        else:
            m, basis = _Measure(0, 0, 0, 0.0, 0.0), "none"
        out.append(ItemEstimate(item.commit, item.repo, m.input_tokens, m.cached_input_tokens, m.output_tokens,
                                round(m.cost_usd, 6), m.duration_s, basis))
    return out


def makespan(durations: list[float], workers: int) -> float:
    """Wall time of running `durations` on `workers` workers, longest first onto the least loaded."""
    loads = [0.0] * max(1, workers)
    heapq.heapify(loads)
    for d in sorted(durations, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + d)
    return max(loads) if durations else 0.0


def _tokens(estimates: list[ItemEstimate]) -> JsonDict:
    return {"input": sum(e.input_tokens for e in estimates),
            "cached_input": sum(e.cached_input_tokens for e in estimates),
            "output": sum(e.output_tokens for e in estimates)}


def _repo_summary(mine: list[ItemEstimate]) -> JsonDict:
    """Items, cost, tokens and agent time of one repo's estimates, and how many rest on which basis."""
    return {
        "items": len(mine), "cost_usd": round(sum(e.cost_usd for e in mine), 4), "tokens": _tokens(mine),
        "agent_time_s": round(sum(e.duration_s for e in mine), 1),
        "basis": dict(sorted(Counter(e.basis for e in mine).items())),
    }


def _per_repo(estimates: list[ItemEstimate]) -> JsonDict:
    """`_repo_summary` of every repo, by repo name."""
    by_repo: dict[str, list[ItemEstimate]] = {}
    for e in estimates:
        by_repo.setdefault(e.repo, []).append(e)
    return {repo: _repo_summary(by_repo[repo]) for repo in sorted(by_repo)}


def _per_item(estimates: list[ItemEstimate]) -> JsonDict:
    return {e.commit: {"cost_usd": e.cost_usd, "duration_s": round(e.duration_s, 1), "basis": e.basis}
            for e in estimates}


def summarise(estimates: list[ItemEstimate], *, buffer: float, workers: int, price_version: str,
              baseline: str) -> JsonDict:
    """The `plan.created` estimate dict: totals, buffer beside them, per repo, per item."""
    cost = round(sum(e.cost_usd for e in estimates), 4)
    return {
        "baseline_campaign": baseline, "items": len(estimates), "cost_usd": cost, "buffer": buffer,
        "buffer_usd": round(cost * buffer, 4), "cost_usd_with_buffer": round(cost * (1 + buffer), 4),
        "tokens": _tokens(estimates), "workers": workers,
        "agent_time_s": round(sum(e.duration_s for e in estimates), 1),
        "wall_time_s": round(makespan([e.duration_s for e in estimates], workers), 1),
        "per_repo": _per_repo(estimates), "price_table_version": price_version,
        "per_item": _per_item(estimates),
    }


def estimate_plan(store: EventStore, items: list[PlanItem], baseline: str, *, price_table: str | None = None,
                  buffer: float = 0.2, workers: int = 1) -> JsonDict:
    """`track estimate`: the estimate dict of `items` against the `baseline` campaign's measurements."""
    prices = load_price_table(price_table)
    estimates = estimate_items(items, measured_attempts(store, baseline), prices)
    return summarise(estimates, buffer=buffer, workers=workers, price_version=prices.version, baseline=baseline)
