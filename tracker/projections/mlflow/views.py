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
    ("tags", "failure_category"),
    ("tags", "outcome_level"),
    ("tags", "status"),
    ("metrics", "total_tokens"),
    ("metrics", "cost_usd"),
    ("metrics", "speedup"),
    ("params", "repo"),
    ("params", "agent_fix_commit"),
    ("attributes", "Duration"),
)
"""(kind, name) of each column shown, in this order after the run name (MLflow's column id: `kind.` + name in
backquotes)."""
RUN_NAME = ("attributes", "Run Name")
RUN_NAME_WIDTH = 340
"""Wide enough for `original · context_length_exceeded · sglang@08f60a17`."""


def column_key(kind: str, name: str) -> str:
    return f"{kind}.`{name}`"


def view_state(search_filter: str = "") -> str:
    """The tag value of a view: these columns, newest first, `search_filter` applied."""
    return json.dumps({
        "searchFilter": search_filter, "orderByKey": "attributes.start_time", "orderByAsc": False,
        "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [],
        "selectedColumns": [column_key(kind, name) for kind, name in COLUMNS],
        "columnOrder": [column_key(*RUN_NAME), *(column_key(kind, name) for kind, name in COLUMNS)],
        "columnWidths": {column_key(*RUN_NAME): RUN_NAME_WIDTH, column_key("tags", "failure_category"): 190},
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
    """The UI route (after the server's address) that opens the experiment's runs table on a saved view. The
    UI reads the key on the `/runs` route only, and opens an experiment holding traces in its GenAI mode
    (on an overview) unless told `workflowType=machine_learning`."""
    return f"/#/experiments/{experiment_id}/runs?viewStateShareKey={key}&workflowType=machine_learning"


def trace_route(experiment_id: str, trace_id: str) -> str:
    """The UI route that opens one trace. The experiment's Traces tab shows the last 7 days unless told
    `startTimeLabel=ALL`, and an imported attempt's trace carries the attempt's own (older) time."""
    return (f"/#/experiments/{experiment_id}/traces?workflowType=machine_learning&startTimeLabel=ALL"
            f"&selectedEvaluationId={trace_id}")
