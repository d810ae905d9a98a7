"""Build campaigns with known outcomes by appending domain events straight to a store.

Tests and benchmarks describe attempts as `Attempt(repo, commit, status, ...)`; this module writes
what an import would have written (AttemptObserved, UsageObserved, PatchObserved,
FailureClassified, EvaluationObserved when evaluated), one stream per attempt, and catches the
read model up, so a comparison reads exactly the outcomes the test chose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tracker.analysis.compare import UNFINISHED
from tracker.domain.events import DomainEvent, NewEvent, deterministic_event_id
from tracker.domain.import_events import (
    AttemptObserved,
    CampaignCreated,
    EvaluationObserved,
    FailureClassified,
    PatchObserved,
    PlanCreated,
    UsageObserved,
)
from tracker.domain.streams import attempt_stream, campaign_stream
from tracker.eventstore.store import EventStore
from tracker.projections.read_model import fold


def sha(label: object) -> str:
    """A stable 40-hex commit sha for a label (so tests can name commits `c1`, `c2`...)."""
    return hashlib.sha1(str(label).encode()).hexdigest()


@dataclass(frozen=True)
class Attempt:
    repo: str
    commit: str
    status: str = "error"
    category: str | None = None
    """Failure category; default `none` for a success, `other` for a failure."""
    timestamp: str = "2025-12-01_10-00-00"
    input_tokens: int | None = 100_000
    cached_input_tokens: int | None = 20_000
    output_tokens: int | None = 2_000
    speedup: float | None = None
    item_id: str | None = None
    model: str = "gpt-5"

    def events(self, campaign: str, agent: str) -> list[DomainEvent]:
        category = self.category or ("none" if self.status == "success" else "other")
        item = self.item_id or f"{self.repo}-{self.commit[:8]}"
        out: list[DomainEvent] = [
            AttemptObserved(
                campaign=campaign, repo=self.repo, repo_raw=self.repo, agent=agent, model=self.model,
                model_raw=self.model, item_id=item, commit=self.commit, pre_commit=None,
                run_path=f"state/runs/{self.repo}/{agent}/{self.model}/{self.timestamp}/{item}",
                run_timestamp=self.timestamp, status=self.status, status_source="journal", return_code=0,
                duration_s=600.0, time_budget_minutes=60.0,
            ),
            UsageObserved(input_tokens=self.input_tokens, cached_input_tokens=self.cached_input_tokens,
                          output_tokens=self.output_tokens, reasoning_tokens=None, llm_calls=10, source="test"),
            PatchObserved(sha256="ab" * 32 if self.status == "success" else None,
                          bytes=1200 if self.status == "success" else 0, files=1, lines_added=10, lines_removed=2),
        ]
        if self.status not in UNFINISHED:  # a running attempt is not classified yet
            out.append(FailureClassified(category=category, rule_id=f"test:{category}", table_version="test-1",
                                         evidence=[]))
        if self.speedup is not None:
            out.append(EvaluationObserved(status="passed", speedup=self.speedup, baseline_ms=100.0,
                                          patched_ms=100.0 / self.speedup, improvement=self.speedup > 1,
                                          error_message=None, file=None))
        return out


def _new(event: DomainEvent, stream: str, version: int) -> NewEvent:
    return event.to_new_event(deterministic_event_id(stream, version, event.TYPE), {"tool": "campaign_builders"})


def create_campaign(store: EventStore, name: str, kind: str = "original", *, agent: str = "trae",
                    model: str = "gpt-5", baseline: str | None = None, fix_commit: str | None = None) -> None:
    created = CampaignCreated(name=name, kind=kind, agent=agent, model=model, agent_fix_commit=fix_commit,
                              baseline_campaign=baseline, source="tests")
    stream = campaign_stream(name)
    store.append(stream, [_new(created, stream, 1)])


def record_plan(store: EventStore, campaign: str, estimate: dict[str, Any] | None, plan_id: str = "plan-1",
                items: list[dict[str, Any]] | None = None) -> None:
    """Append a `plan.created` with an estimate (and plan items) to the campaign's stream (as `track run` does)."""
    stream = campaign_stream(campaign)
    plan = PlanCreated(plan_id=plan_id, from_campaign="baseline", selection={"status": "failed"}, items=items or [],
                       estimate=estimate)
    store.append(stream, [_new(plan, stream, store.stream_version(stream) + 1)])


def add_attempts(store: EventStore, campaign: str, attempts: Iterable[Attempt], *, agent: str = "trae",
                 catch_up: bool = True) -> int:
    """Append each attempt as its own stream; returns how many events were written."""
    written = 0
    for attempt in attempts:
        stream = attempt_stream(campaign, attempt.repo, attempt.commit, attempt.timestamp)
        events = [_new(event, stream, i + 1) for i, event in enumerate(attempt.events(campaign, agent))]
        written += len(store.append(stream, events).positions)
    if catch_up:
        fold.catch_up(store)
    return written


def build_pair(store: EventStore, baseline: list[Attempt], rerun: list[Attempt], *, names: tuple[str, str] = (
        "orig", "rerun"), estimate: dict[str, Any] | None = None) -> tuple[str, str]:
    """An original campaign and its rerun (fix commit a1c6d41), with the given attempts."""
    create_campaign(store, names[0], "original")
    create_campaign(store, names[1], "rerun", baseline=names[0], fix_commit="a1c6d41")
    if estimate is not None:
        record_plan(store, names[1], estimate)
    add_attempts(store, names[0], baseline, catch_up=False)
    add_attempts(store, names[1], rerun)
    return names


CATEGORY_MIX = (["tool_output_missing"] * 142 + ["quota_exceeded"] * 71 + ["invalid_api_key"] * 33
                + ["json_parse_error"] * 19 + ["aws_sso_expired"] + ["other"] * 22)
"""Failure categories in the proportions of the first TRAE + GPT-5 evaluation (DESIGN.md)."""


def seed_like(failed: dict[str, int] | None = None, succeeded: dict[str, int] | None = None,
              fixed_share: float = 0.72, attempts: int = 1, seed: int = 7) -> tuple[list[Attempt], list[Attempt]]:
    """A baseline and a rerun shaped like the real one: the rerun retries the baseline's failures.

    `failed`/`succeeded`: commits per repo in the baseline (default: the seed's 53 vLLM / 51 SGLang
    failures); about `fixed_share` of the rerun's commits succeed; `attempts` per commit per campaign
    (a commit's earlier attempts fail, its last one carries its outcome).
    """
    import random

    rng = random.Random(seed)
    failed = failed or {"vllm": 53, "sglang": 51}
    succeeded = succeeded or {"vllm": 10, "sglang": 12}
    baseline: list[Attempt] = []
    rerun: list[Attempt] = []
    for repo in sorted(failed):
        for i in range(failed[repo] + succeeded.get(repo, 0)):
            commit = sha(f"{repo}-{seed}-{i}")
            ok_before = i >= failed[repo]
            for a in range(attempts):
                last = a == attempts - 1
                tokens_in, tokens_out = rng.randint(50_000, 600_000), rng.randint(1_000, 20_000)
                status = "success" if ok_before and last else "error"
                baseline.append(Attempt(repo, commit, status, None if status == "success" else rng.choice(CATEGORY_MIX),
                                        f"2025-12-{1 + a:02d}_10-00-00", item_id=f"{repo}_core-{i:04d}",
                                        speedup=round(rng.uniform(0.9, 1.6), 3) if status == "success" else None,
                                        input_tokens=tokens_in, cached_input_tokens=tokens_in // 3,
                                        output_tokens=tokens_out))
                if ok_before:
                    continue
                ok_after = last and rng.random() < fixed_share
                rerun.append(Attempt(repo, commit, "success" if ok_after else "error",
                                     None if ok_after else rng.choice(["max_steps_exceeded", "timeout", "no_patch",
                                                                       "json_parse_error", "other"]),
                                     f"2026-01-{10 + a:02d}_09-00-00", item_id=f"{repo}_rerun_{commit[:8]}",
                                     speedup=round(rng.uniform(0.8, 2.5), 3) if ok_after else None,
                                     input_tokens=tokens_in, cached_input_tokens=tokens_in // 3,
                                     output_tokens=tokens_out))
    return baseline, rerun
