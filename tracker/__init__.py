"""rerun tracker: an event-sourced audit and experiment tracker for coding-agent benchmark reruns.

The library. Every command of the `track` CLI is a thin call into this package, and the same API
is usable from a notebook::

    import tracker
    store = tracker.open_store("sqlite:///mlruns/events.db")   # read model brought up to the log
    tracker.import_tree(store, "ISO-Bench", "trae-gpt5", agent="trae", model="gpt-5")
    tracker.failure_table(store, "trae-gpt5")                      # runs affected / root cause
    tracker.list_campaigns(store)[0]["funnel"]                     # agent -> patch -> tests -> faster
    plan = tracker.select_commits(store, "trae-gpt5", policy="any-failed", scope="evaluated")
    tracker.compare_campaigns(store, "trae-gpt5", "trae-gpt5-a1c6d41", level="tests").summary

Names are loaded on first use, so `import tracker` stays cheap for the CLI's fast commands.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "open_store": "tracker.projections.read_model.fold:open_current",
    "catch_up": "tracker.projections.read_model.fold",
    "EventStore": "tracker.eventstore.store",
    "TrackerError": "tracker.errors",
    "import_tree": "tracker.ingest.importer",
    "list_campaigns": "tracker.projections.read_model.queries",
    "attempts_frame": "tracker.projections.read_model.queries",
    "commit_history": "tracker.projections.read_model.queries",
    "unidentified_folders": "tracker.projections.read_model.queries",
    "failure_table": "tracker.analysis.failures",
    "failure_evidence": "tracker.analysis.failures",
    "LEVELS": "tracker.domain.outcomes",
    "select_commits": "tracker.rerun.planning",
    "make_plan": "tracker.rerun.planning",
    "estimate_plan": "tracker.rerun.estimate",
    "run_campaign": "tracker.rerun.execution",
    "RunConfig": "tracker.rerun.execution",
    "campaign_status": "tracker.rerun.status",
    "MeteringProxy": "tracker.proxy.server",
    "cost_check": "tracker.analysis.cost_check",
    "sync": "tracker.projections.mlflow.runs",
    "compare_campaigns": "tracker.analysis.compare:compare",  # not `compare`: that is the name of the module
    "compare_many": "tracker.analysis.side_by_side",
    "load_price_table": "tracker.domain.pricing",
    "load_rule_table": "tracker.classify.rules",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    """The public names, imported from their modules on first use (PEP 562)."""
    target = _PUBLIC.get(name)
    if target is None:
        raise AttributeError(f"module 'tracker' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
