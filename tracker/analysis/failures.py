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
    for row in frame.to_dict(orient="records"):
        _tally(table, row)
    order = {category: i for i, category in enumerate(CATEGORIES)}
    return [_table_row(table[category]) for category in sorted(table, key=lambda c: order.get(c, len(order)))]


def _entry(table: dict[str, dict[str, Any]], category: str) -> dict[str, Any]:
    """The category's running counts, started at zero the first time the category is seen."""
    return table.setdefault(category, {"category": category, "affected_runs": 0, "root_cause_runs": 0,
                                       "occurrences": 0, "_commits": set(), "_models": set()})


def _seen_in(entry: dict[str, Any], row: dict[str, Any]) -> None:
    """Count the run's commit and model for the category (sets: a commit or model counts once)."""
    entry["_commits"].add(row["commit"])
    entry["_models"].add(row["model_raw"] or row["model"])


def _tally(table: dict[str, dict[str, Any]], row: dict[str, Any]) -> None:
    """Add one run: every incident's category is affected, and a failed run's category is its root cause."""
    for incident in row["incidents"]:
        entry = _entry(table, incident["category"])
        entry["affected_runs"] += 1
        entry["occurrences"] += int(incident.get("count") or 0)
        _seen_in(entry, row)
    category = row["failure_category"]
    if category != "none" and row["status"] != "success":
        entry = _entry(table, category)
        entry["root_cause_runs"] += 1
        _seen_in(entry, row)


def _table_row(entry: dict[str, Any]) -> dict[str, Any]:
    """A category's running counts as a row of the table (the sets become counts and a sorted list)."""
    return {"category": entry["category"], "affected_runs": entry["affected_runs"],
            "root_cause_runs": entry["root_cause_runs"], "commits": len(entry["_commits"]),
            "occurrences": entry["occurrences"], "models": sorted(m for m in entry["_models"] if m)}


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
            "root_cause": root, **_incident_evidence(incident), "rule_id": row["rule_id"],
        })
    return found


_INCIDENT_FIELDS = ("count", "first", "last", "files", "excerpt")


def _incident_evidence(incident: dict[str, Any] | None) -> dict[str, Any]:
    """Where and how often the signature was seen; a run that is only a root cause has no sighting."""
    if not incident:
        return {"count": 0, "first": None, "last": None, "files": {}, "excerpt": None}
    return {key: incident[key] for key in _INCIDENT_FIELDS}
