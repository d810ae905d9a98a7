"""Every read of the SQL read model: campaigns, attempts (with cost), audit history.

This module is the only place that SELECTs from the `campaigns` and `attempts` tables; every query runs
under `translate_errors` (a database that goes away is a `StoreUnavailable`, not a traceback) and none
writes. The read model is brought up to the log by `fold.catch_up`, which the writers call after they
append and `tracker.open_store` calls once when a store is opened for reading. Values such as cost are
derived at read time from the versioned price table, so prices never get baked in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Select, case, func, select
from sqlalchemy.engine import RowMapping

from tracker.analysis.report_check import report_comparison
from tracker.domain import outcomes
from tracker.domain.events import RecordedEvent, decode
from tracker.domain.import_events import EvaluationReportObserved, FolderIdentified, FolderUnidentified, PlanCreated
from tracker.domain.pricing import PriceTable, billed_model, load_price_table
from tracker.domain.run_events import AttemptStarted
from tracker.domain.streams import attempts_prefix, campaign_stream
from tracker.errors import TrackerError, UnknownCampaign, UnknownValue
from tracker.eventstore.database import translate_errors
from tracker.eventstore.schema import attempts, campaigns, events
from tracker.eventstore.store import EventStore

ATTEMPT_COLUMNS = [
    "campaign", "repo", "item_id", "commit", "pre_commit", "run_path", "run_timestamp", "status", "failure_category",
    "outcome_level", "eval_status", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens",
    "cost_usd", "agent_reported_cost_usd", "usage_model", "patch_bytes", "patch_files", "lines_added", "lines_removed",
    "patch_generated", "patch_sha256", "speedup", "improvement", "eval_agent_status", "eval_error", "duration_s",
    "return_code", "rule_id", "rules_version", "model", "agent", "repo_raw", "model_raw", "commit_source",
    "incidents", "problems", "stream_id",
]


def _mappings(store: EventStore, query: Select[Any]) -> list[RowMapping]:
    """Run one read-model query, database errors translated."""
    with translate_errors(store.engine.url), store.engine.connect() as connection:
        return list(connection.execute(query).mappings())


def _tuples(store: EventStore, query: Select[Any]) -> list[Sequence[Any]]:
    with translate_errors(store.engine.url), store.engine.connect() as connection:
        return list(connection.execute(query).all())


def campaign_summaries(store: EventStore) -> list[dict[str, Any]]:
    """Every campaign's row with its attempt, commit and agent-level success counts (one SQL query)."""
    counts = (
        select(
            attempts.c.campaign,
            func.count().label("attempts"),
            func.count(attempts.c.commit.distinct()).label("commits"),
            func.sum(case((attempts.c.status == "success", 1), else_=0)).label("succeeded"),
        ).group_by(attempts.c.campaign).subquery()
    )
    query = (select(campaigns, counts.c.attempts, counts.c.commits, counts.c.succeeded)
             .select_from(campaigns.outerjoin(counts, counts.c.campaign == campaigns.c.name))
             .order_by(campaigns.c.created_at))
    rows = [dict(row) for row in _mappings(store, query)]
    for row in rows:
        for key in ("attempts", "commits", "succeeded"):
            row[key] = int(row[key] or 0)
        row["failed"] = row["attempts"] - row["succeeded"]
    return rows


def list_campaigns(store: EventStore, level: str = "agent") -> list[dict[str, Any]]:
    """Every campaign with its counts, its outcome funnel over attempts (`tracker.domain.outcomes`), its
    commits succeeded at `level` (`outcomes.commit_success`, as compare counts them), and the team's own
    evaluation report beside the recount where the campaign has one."""
    rows = campaign_summaries(store)
    attempt_rows = [dict(r) for r in _mappings(store, select(
        attempts.c.campaign, attempts.c.repo, attempts.c.commit, attempts.c.status, attempts.c.failure_category,
        attempts.c.patch_sha256, attempts.c.patch_bytes, attempts.c.patch_generated, attempts.c.eval_status,
        attempts.c.improvement, attempts.c.speedup, attempts.c.model_raw))]
    by_campaign: dict[str, list[dict[str, Any]]] = {}
    for attempt in attempt_rows:
        by_campaign.setdefault(attempt["campaign"], []).append(attempt)
    for row in rows:
        mine = by_campaign.get(row["name"], [])
        row["funnel"] = outcomes.funnel(mine)
        row["commit_success"] = outcomes.commit_success(mine, level)
        folders = sorted({a["model_raw"] for a in mine if a["model_raw"]})
        if len(folders) > 1:
            row["funnel_by_model_folder"] = {
                folder: outcomes.funnel([a for a in mine if a["model_raw"] == folder]) for folder in folders}
        row["evaluation_report"] = report_comparison(latest_report(store, row["name"]), row["funnel"])
    return rows


def latest_report(store: EventStore, campaign: str) -> dict[str, Any] | None:
    """The campaign's latest `evaluation_report.observed` payload, if any."""
    found = None
    for event in store.read_stream(campaign_stream(campaign)):
        if event.event_type == EvaluationReportObserved.TYPE:
            found = decode(event).to_dict()
    return found


def unidentified_folders(store: EventStore, campaign: str) -> list[dict[str, Any]]:
    """Folders of the campaign recorded as unidentified and not identified since."""
    found: dict[str, dict[str, Any]] = {}
    for event in store.read_stream(campaign_stream(campaign)):
        if event.event_type not in (FolderUnidentified.TYPE, FolderIdentified.TYPE):
            continue
        folder = decode(event)
        if isinstance(folder, FolderUnidentified):
            found[folder.run_path] = {**folder.to_dict(), "recorded_at": event.recorded_at}
        elif isinstance(folder, FolderIdentified):
            found.pop(folder.run_path, None)
    return list(found.values())


def campaign_exists(store: EventStore, name: str) -> bool:
    return bool(_tuples(store, select(campaigns.c.name).where(campaigns.c.name == name)))


def campaign_repos(store: EventStore, names: Sequence[str]) -> list[str]:
    """The repos these campaigns have attempts in."""
    query = select(attempts.c.repo).where(attempts.c.campaign.in_(sorted(names))).distinct()
    return sorted(str(row[0]) for row in _tuples(store, query) if row[0])


def require_repos(store: EventStore, names: Sequence[str], repos: Sequence[str] | None) -> None:
    """Refuse a repo filter none of these campaigns has attempts in (UnknownValue lists the repos they have):
    a filter that matches nothing is a mistake, never an empty table."""
    held = campaign_repos(store, names)
    for repo in repos or ():
        if repo not in held:
            raise UnknownValue("repo", repo, held, f" in campaign {' or '.join(repr(n) for n in names)}")


def campaign_row(store: EventStore, name: str) -> dict[str, Any]:
    """The campaign's read-model row; `UnknownCampaign` when there is none."""
    rows = _mappings(store, select(campaigns).where(campaigns.c.name == name))
    if not rows:
        raise UnknownCampaign(name)
    return dict(rows[0])


def campaign_rows(store: EventStore) -> dict[str, dict[str, Any]]:
    """Every campaign's read-model row, by name."""
    return {row["name"]: dict(row) for row in _mappings(store, select(campaigns))}


def attempt_rows(store: EventStore, campaign_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Every column of every attempt of these campaigns, by stream id (what the MLflow projection maps)."""
    query = select(attempts).where(attempts.c.campaign.in_(sorted(campaign_names)))
    return {row["stream_id"]: dict(row) for row in _mappings(store, query)}


def attempt_columns(store: EventStore, campaign: str, columns: Sequence[str],
                    repo: str | None = None) -> list[tuple[Any, ...]]:
    """The named columns of a campaign's attempts as column tuples, oldest run first.

    Column-wise from plain tuples: building a frame from SQLAlchemy rows one by one costs seconds at
    20,000 attempts, which is what keeps a comparison under its 2 s budget.
    """
    query = (select(*(attempts.c[name] for name in columns)).where(attempts.c.campaign == campaign)
             .order_by(func.coalesce(attempts.c.run_timestamp, ""), attempts.c.stream_id))
    if repo is not None:
        query = query.where(attempts.c.repo == repo)
    rows = _tuples(store, query)
    return list(zip(*rows, strict=True)) if rows else [() for _ in columns]


def rerun_run_paths(store: EventStore) -> dict[str, str]:
    """The run folders (path under `state/runs`) that rerun campaigns recorded, and which campaign each."""
    query = (select(attempts.c.run_path, attempts.c.campaign)
             .select_from(attempts.join(campaigns, campaigns.c.name == attempts.c.campaign))
             .where(campaigns.c.kind == "rerun", attempts.c.run_path.is_not(None)))
    return {str(path): str(campaign) for path, campaign in _tuples(store, query)}


@dataclass(frozen=True)
class MeasuredAttempt:
    """One attempt of a campaign as the read model holds it (what estimates and status need)."""

    repo: str
    item_id: str | None
    commit: str
    pre_commit: str | None
    run_timestamp: str | None
    status: str | None
    category: str
    model: str | None
    input_tokens: int | None
    cached_input_tokens: int | None
    output_tokens: int | None
    duration_s: float | None
    usage_model: str | None = None

    @property
    def billed_model(self) -> str | None:
        """The model its tokens are priced by (`pricing.billed_model`)."""
        return billed_model(self.model, self.usage_model)

    def cost_usd(self, prices: PriceTable) -> float | None:
        return prices.cost_usd(self.billed_model, self.input_tokens, self.cached_input_tokens, self.output_tokens)


def measured_attempts(store: EventStore, campaign: str) -> list[MeasuredAttempt]:
    """Every attempt of `campaign` (the campaign must exist), ordered by repo, commit, timestamp."""
    campaign_row(store, campaign)
    c = attempts.c
    query = (select(c.repo, c.item_id, c.commit, c.pre_commit, c.run_timestamp, c.status, c.failure_category,
                    c.model, c.input_tokens, c.cached_input_tokens, c.output_tokens, c.duration_s, c.usage_model)
             .where(c.campaign == campaign).order_by(c.repo, c.commit, c.run_timestamp))
    return [MeasuredAttempt(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "none", r[7], r[8], r[9], r[10], r[11],
                            r[12]) for r in _tuples(store, query)]


def attempts_frame(store: EventStore, campaign: str | None = None, *, repo: str | None = None,
                   status: str | None = None, category: str | None = None,
                   prices: PriceTable | None = None) -> pd.DataFrame:
    """One row per attempt, with `cost_usd` priced now and `problems` as a list."""
    if campaign is not None:
        _require_campaign(store, campaign, repo)
    query = _filtered(select(attempts), campaign=campaign, repo=repo, status=status, failure_category=category)
    query = query.order_by(attempts.c.campaign, attempts.c.repo, attempts.c.commit, attempts.c.run_timestamp)
    with translate_errors(store.engine.url), store.engine.connect() as connection:
        frame = pd.read_sql(query, connection)
    frame["cost_usd"] = (prices or load_price_table()).cost_column(frame)
    frame["problems"] = [json.loads(p or "[]") for p in frame["problems"]]
    frame["incidents"] = [json.loads(p or "[]") for p in frame["incidents"]]
    frame["failure_category"] = frame["failure_category"].fillna("none")
    frame["outcome_level"] = [outcomes.highest_level(row) for row in frame.to_dict(orient="records")]
    return frame[ATTEMPT_COLUMNS]


def _require_campaign(store: EventStore, campaign: str, repo: str | None) -> None:
    if not campaign_exists(store, campaign):
        raise UnknownCampaign(campaign)
    if repo is not None:
        require_repos(store, [campaign], [repo])


def _filtered(query: Select[Any], **equal: str | None) -> Select[Any]:
    """The query restricted to rows whose columns equal the given values (None: no restriction)."""
    for column, value in equal.items():
        if value is not None:
            query = query.where(attempts.c[column] == value)
    return query


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN becomes null, numpy numbers become Python numbers."""
    return [{key: _plain(value) for key, value in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    """A JSON-ready Python value, exact (no float rounding through a JSON encoder)."""
    if value is None or isinstance(value, str | list | dict | bool):
        return value
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def commit_history(store: EventStore, campaign: str, commit: str) -> list[RecordedEvent]:
    """Every event of every attempt of one commit in one campaign (the audit trail), in log order."""
    frame = attempts_frame(store, campaign)
    matches = frame[frame["commit"].str.startswith(commit.lower())]
    if matches.empty:
        raise TrackerError(f"campaign {campaign!r} has no attempt on commit {commit}")
    if matches["commit"].nunique() > 1:
        raise TrackerError(f"{commit} matches several commits; give more of the sha")
    history: list[RecordedEvent] = []
    for stream_id in matches["stream_id"]:
        history.extend(store.read_stream(stream_id))
    return sorted(history, key=lambda event: event.position)



def campaign_plan(store: EventStore, campaign: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Everything a campaign was planned to cover: the union of its `plan.created` events.

    A campaign resumed with fewer plan files records a smaller plan; the items and per-item estimates
    of earlier plans still count (the latest wins per commit), and the totals are re-summed from them.
    """
    items: dict[str, dict[str, Any]] = {}
    per_item: dict[str, dict[str, Any]] = {}
    latest: dict[str, Any] | None = None
    for event in store.read_stream(campaign_stream(campaign)):
        if event.event_type != PlanCreated.TYPE:
            continue
        plan = decode(event)
        assert isinstance(plan, PlanCreated)
        items.update((item["human"], item) for item in plan.items)
        if isinstance(plan.estimate, dict):
            latest = plan.estimate
            per_item.update(plan.estimate.get("per_item") or {})
    if latest is None or not per_item:
        return list(items.values()), latest
    return list(items.values()), _resummed(latest, items, per_item)


def _resummed(latest: dict[str, Any], items: dict[str, dict[str, Any]],
              per_item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The latest estimate with its totals summed again over every planned item."""
    costs = {commit: float(value.get("cost_usd") or 0.0) for commit, value in per_item.items() if commit in items}
    per_repo: dict[str, dict[str, Any]] = {}
    for commit, cost in costs.items():
        repo = per_repo.setdefault(str(items[commit].get("repo", "")), {"items": 0, "cost_usd": 0.0})
        repo["items"] += 1
        repo["cost_usd"] = round(repo["cost_usd"] + cost, 4)
    total = round(sum(costs.values()), 4)
    buffer = float(latest.get("buffer") or 0.0)
    return {**latest, "items": len(costs), "cost_usd": total, "buffer_usd": round(total * buffer, 4),
            "cost_usd_with_buffer": round(total * (1 + buffer), 4), "per_repo": per_repo,
            "per_item": {commit: per_item[commit] for commit in costs}}


def rules_versions(store: EventStore, campaign: str) -> list[str]:
    """The rule-table versions that classified the campaign's attempts (imports made at different times
    can differ), sorted; an attempt not classified yet adds none."""
    query = (select(attempts.c.rules_version).where(attempts.c.campaign == campaign)
             .where(attempts.c.rules_version.is_not(None)).distinct())
    return sorted(str(row[0]) for row in _tuples(store, query))


def campaign_hosts(store: EventStore, campaign: str) -> list[str]:
    """The hosts that ran the campaign's attempts (`attempt.started` names its runner's host), sorted; empty
    for a campaign imported from files, whose runs the log did not see start."""
    prefix = attempts_prefix(campaign)
    query = (select(events.c.payload).where(events.c.stream_id >= prefix)
             .where(events.c.stream_id < prefix[:-1] + chr(ord(prefix[-1]) + 1))
             .where(events.c.event_type == AttemptStarted.TYPE))
    hosts = {json.loads(row[0]).get("host") for row in _tuples(store, query)}
    return sorted(str(host) for host in hosts if host)


def bench_commit(store: EventStore, campaign: str) -> str | None:
    """The bench checkout's commit, when a plan of the campaign recorded one in its selection (else None)."""
    found = None
    for event in store.read_stream(campaign_stream(campaign)):
        if event.event_type == PlanCreated.TYPE:
            plan = decode(event)
            assert isinstance(plan, PlanCreated)
            found = plan.selection.get("bench_commit") or found
    return str(found) if found else None
