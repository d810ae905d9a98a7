"""Read-side views for people and notebooks: campaigns, attempts (with cost), audit history.

Views read the SQL read model (kept current by `projections.fold.catch_up`) and derive
values such as cost at read time from the versioned price table, so prices never get baked in.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select

from tracker.analysis.report_check import report_comparison
from tracker.domain import outcomes
from tracker.domain.events import RecordedEvent, decode
from tracker.domain.import_events import EvaluationReportObserved, FolderIdentified, FolderUnidentified
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.domain.streams import campaign_stream
from tracker.errors import TrackerError, UnknownCampaign
from tracker.eventstore.schema import attempts, campaigns
from tracker.eventstore.store import EventStore
from tracker.projections.read_model import fold

ATTEMPT_COLUMNS = [
    "campaign", "repo", "item_id", "commit", "pre_commit", "run_path", "run_timestamp", "status", "failure_category",
    "outcome_level", "eval_status", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens",
    "cost_usd", "agent_reported_cost_usd", "usage_model", "patch_bytes", "patch_files", "lines_added", "lines_removed",
    "patch_generated", "patch_sha256", "speedup", "improvement", "eval_agent_status", "eval_error", "duration_s",
    "return_code", "rule_id", "rules_version", "model", "agent", "repo_raw", "model_raw", "commit_source",
    "incidents", "problems", "stream_id",
]


def campaign_summaries(store: EventStore) -> list[dict[str, Any]]:
    """Every campaign's row with its attempt, commit and agent-level success counts (one SQL query)."""
    fold.catch_up(store)
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
    with store.engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        for key in ("attempts", "commits", "succeeded"):
            row[key] = int(row[key] or 0)
        row["failed"] = row["attempts"] - row["succeeded"]
    return rows


def list_campaigns(store: EventStore) -> list[dict[str, Any]]:
    """Every campaign with its counts, its outcome funnel (`tracker.domain.outcomes`), and the team's own
    evaluation report beside the recount where the campaign has one."""
    rows = campaign_summaries(store)
    with store.engine.connect() as connection:
        attempt_rows = [dict(r) for r in connection.execute(select(
            attempts.c.campaign, attempts.c.status, attempts.c.patch_sha256, attempts.c.patch_bytes,
            attempts.c.patch_generated, attempts.c.eval_status, attempts.c.improvement, attempts.c.speedup,
            attempts.c.model_raw)).mappings()]
    by_campaign: dict[str, list[dict[str, Any]]] = {}
    for attempt in attempt_rows:
        by_campaign.setdefault(attempt["campaign"], []).append(attempt)
    for row in rows:
        mine = by_campaign.get(row["name"], [])
        row["funnel"] = outcomes.funnel(mine)
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
        if event.event_type == FolderUnidentified.TYPE:
            found[event.payload["run_path"]] = {**decode(event).to_dict(), "recorded_at": event.recorded_at}
        elif event.event_type == FolderIdentified.TYPE:
            found.pop(event.payload["run_path"], None)
    return list(found.values())


def campaign_exists(store: EventStore, name: str) -> bool:
    fold.catch_up(store)
    with store.engine.connect() as connection:
        return connection.execute(select(campaigns.c.name).where(campaigns.c.name == name)).first() is not None


def attempts_frame(store: EventStore, campaign: str | None = None, *, repo: str | None = None,
                   status: str | None = None, category: str | None = None,
                   prices: PriceTable | None = None) -> pd.DataFrame:
    """One row per attempt, with `cost_usd` priced now and `problems` as a list."""
    fold.catch_up(store)
    if campaign is not None and not campaign_exists(store, campaign):
        raise UnknownCampaign(campaign)
    query = select(attempts)
    for column, value in (("campaign", campaign), ("repo", repo), ("status", status), ("failure_category", category)):
        if value is not None:
            query = query.where(attempts.c[column] == value)
    query = query.order_by(attempts.c.campaign, attempts.c.repo, attempts.c.commit, attempts.c.run_timestamp)
    with store.engine.connect() as connection:
        frame = pd.read_sql(query, connection)
    prices = prices or load_price_table()
    frame["cost_usd"] = [
        prices.cost_usd(used if isinstance(used, str) and used else model, _int(i), _int(c), _int(o))
        for model, used, i, c, o in zip(frame["model"], frame["usage_model"], frame["input_tokens"],
                                        frame["cached_input_tokens"], frame["output_tokens"], strict=True)
    ]
    frame["problems"] = [json.loads(p or "[]") for p in frame["problems"]]
    frame["incidents"] = [json.loads(p or "[]") for p in frame["incidents"]]
    frame["failure_category"] = frame["failure_category"].fillna("none")
    frame["outcome_level"] = [outcomes.highest_level(row) for row in frame.to_dict(orient="records")]
    return frame[ATTEMPT_COLUMNS]


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


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
        if event.event_type != "plan.created":
            continue
        for item in event.payload.get("items", []):
            items[item["human"]] = item
        estimate = event.payload.get("estimate")
        if isinstance(estimate, dict):
            latest = estimate
            per_item.update(estimate.get("per_item") or {})
    if latest is None or not per_item:
        return list(items.values()), latest
    merged = dict(latest)
    costs = {commit: float(value.get("cost_usd") or 0.0) for commit, value in per_item.items() if commit in items}
    per_repo: dict[str, dict[str, Any]] = {}
    for commit, cost in costs.items():
        repo = per_repo.setdefault(str(items[commit].get("repo", "")), {"items": 0, "cost_usd": 0.0})
        repo["items"] += 1
        repo["cost_usd"] = round(repo["cost_usd"] + cost, 4)
    total = round(sum(costs.values()), 4)
    buffer = float(latest.get("buffer") or 0.0)
    merged.update(items=len(costs), cost_usd=total, buffer_usd=round(total * buffer, 4),
                  cost_usd_with_buffer=round(total * (1 + buffer), 4), per_repo=per_repo,
                  per_item={commit: per_item[commit] for commit in costs})
    return list(items.values()), merged
