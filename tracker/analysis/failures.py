"""The team's failure table: per category, runs affected (any incident), runs failed with it as
root cause, commits and models; and the evidence behind every count.

"Affected" counts every run in which the signature occurred, whatever its outcome (the team's
way: a run that succeeded can still have hit the tool-output bug). "Root cause" counts the runs
that failed (agent level) and whose classification chose this category by precedence.
"""

from __future__ import annotations

from typing import Any

from tracker.classify.rules import CATEGORIES
from tracker.eventstore.store import EventStore
from tracker.projections.read_model.queries import attempts_frame


def failure_table(store: EventStore, campaign: str) -> list[dict[str, Any]]:
    """One row per category seen: `{category, affected_runs, root_cause_runs, commits, models}`."""
    frame = attempts_frame(store, campaign)
    table: dict[str, dict[str, Any]] = {}

    def entry(category: str) -> dict[str, Any]:
        return table.setdefault(category, {"category": category, "affected_runs": 0, "root_cause_runs": 0,
                                           "occurrences": 0, "_commits": set(), "_models": set()})

    for row in frame.to_dict(orient="records"):
        for incident in row["incidents"]:
            e = entry(incident["category"])
            e["affected_runs"] += 1
            e["occurrences"] += int(incident.get("count") or 0)
            e["_commits"].add(row["commit"])
            e["_models"].add(row["model_raw"] or row["model"])
        category = row["failure_category"]
        if category != "none" and row["status"] != "success":
            e = entry(category)
            e["root_cause_runs"] += 1
            e["_commits"].add(row["commit"])
            e["_models"].add(row["model_raw"] or row["model"])
    order = {category: i for i, category in enumerate(CATEGORIES)}
    rows = []
    for category in sorted(table, key=lambda c: order.get(c, len(order))):
        e = table[category]
        rows.append({"category": category, "affected_runs": e["affected_runs"],
                     "root_cause_runs": e["root_cause_runs"], "commits": len(e["_commits"]),
                     "occurrences": e["occurrences"], "models": sorted(m for m in e["_models"] if m)})
    return rows


def failure_evidence(store: EventStore, campaign: str, category: str) -> list[dict[str, Any]]:
    """Every run behind a category's counts, with where the signature was seen and a redacted excerpt."""
    frame = attempts_frame(store, campaign)
    found: list[dict[str, Any]] = []
    for row in frame.to_dict(orient="records"):
        incident = next((i for i in row["incidents"] if i["category"] == category), None)
        root = row["failure_category"] == category and row["status"] != "success"
        if incident is None and not root:
            continue
        found.append({
            "run_path": row["run_path"], "commit": row["commit"], "status": row["status"],
            "root_cause": root, "count": incident["count"] if incident else 0,
            "first": incident["first"] if incident else None, "last": incident["last"] if incident else None,
            "files": incident["files"] if incident else {},
            "excerpt": incident["excerpt"] if incident else None, "rule_id": row["rule_id"],
        })
    return found
