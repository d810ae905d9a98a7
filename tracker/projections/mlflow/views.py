"""Saved views of an experiment's runs table: the columns that answer "what happened to this commit?".

MLflow's UI loads a view from the experiment tag `mlflow.sharedViewState.<key>` (a JSON of the search facets
and the table's UI state) when the page is opened with `?viewStateShareKey=<key>`. The sync writes one
default view (`track`: phase, repo, status, failure category, outcome level, tokens, cost, speedup) and one
per commit attempted by more than one campaign (the same columns, filtered to that commit), so a link opens
the runs table already answering the question instead of on MLflow's default Source/Models/Dataset columns.
Only what the UI reads is written: its own defaults fill in the rest.
"""

from __future__ import annotations

import json

VIEW_TAG_PREFIX = "mlflow.sharedViewState."
DEFAULT_VIEW = "track"

COLUMNS = (
    ("attributes", "Duration"),
    ("params", "phase"),
    ("params", "repo"),
    ("tags", "status"),
    ("tags", "failure_category"),
    ("tags", "outcome_level"),
    ("metrics", "total_tokens"),
    ("metrics", "cost_usd"),
    ("metrics", "speedup"),
    ("params", "agent_fix_commit"),
)
"""(kind, name) of each column shown, in order: MLflow names a column `<kind>.\\`<name>\\``."""


def column_key(kind: str, name: str) -> str:
    return f"{kind}.`{name}`"


def view_state(search_filter: str = "") -> str:
    """The tag value of a view: these columns, newest first, `search_filter` applied."""
    return json.dumps({
        "searchFilter": search_filter, "orderByKey": "attributes.start_time", "orderByAsc": False,
        "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [],
        "selectedColumns": [column_key(kind, name) for kind, name in COLUMNS],
        "runsHiddenMode": "SHOW_ALL",
    }, separators=(",", ":"))


def commit_view_key(commit: str) -> str:
    return f"commit-{commit[:12]}"


def commit_filter(commit: str) -> str:
    return f"params.commit = '{commit}'"


def view_tags(commits: list[str]) -> dict[str, str]:
    """Experiment tags of the default view and of one view per commit."""
    tags = {VIEW_TAG_PREFIX + DEFAULT_VIEW: view_state()}
    tags.update({VIEW_TAG_PREFIX + commit_view_key(c): view_state(commit_filter(c)) for c in commits})
    return tags


def view_route(experiment_id: str, key: str = DEFAULT_VIEW) -> str:
    """The UI route (after the server's address) that opens the experiment on a saved view."""
    return f"/#/experiments/{experiment_id}?viewStateShareKey={key}"
