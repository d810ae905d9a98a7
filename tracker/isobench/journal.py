"""Read `journal.json`, the bench's own record of how an agent run ended.

The journal is the one file a run folder is expected to have, so its absence is a problem. A
truncated, non-JSON or binary journal gives no facts at all (a half-read sha is worse than none);
the run's status and commit are then recovered from the pipeline log by `read_run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.classify.redaction import redact
from tracker.isobench.common import Problem, as_dict, as_float, as_int, as_str, read_json_object

JOURNAL = "journal.json"


@dataclass(frozen=True)
class JournalFacts:
    """The parts of a journal the tracker uses; every field is None when absent or ill-typed."""

    status: str | None
    task_id: str | None
    pre_commit: str | None
    human_commit: str | None
    agent_branch: str | None
    error: str | None
    error_type: str | None
    returncode: int | None
    duration_s: float | None
    time_budget_minutes: float | None
    written_at: float | None
    run_metadata: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def read_journal(run_dir: Path) -> tuple[JournalFacts | None, list[Problem]]:
    """Parse the run's journal; never raises."""
    doc, problem, present = read_json_object(run_dir / JOURNAL, JOURNAL)
    if not present:
        return None, [Problem(JOURNAL, "missing", "run folder has no journal.json")]
    if doc is None:
        return None, [problem] if problem else []
    return journal_facts(doc), []


def journal_facts(doc: dict[str, Any]) -> JournalFacts:
    """Pick typed fields out of a parsed journal, tolerating every variant seen in the wild."""
    commits = as_dict(doc.get("commits"))
    trae = agent_block(doc)
    timestamps = as_dict(doc.get("timestamps"))
    return JournalFacts(
        status=as_str(doc.get("status")),
        task_id=as_str(doc.get("task_id")),
        pre_commit=as_str(commits.get("pre")) or None,
        human_commit=as_str(commits.get("human")) or None,
        agent_branch=as_str(doc.get("agent_branch")),
        error=redact(as_str(doc.get("error")) or "") or None,
        error_type=as_str(doc.get("error_type")),
        returncode=as_int(trae.get("returncode")),
        duration_s=as_float(trae.get("duration_s")),
        time_budget_minutes=as_float(trae.get("time_budget_minutes")),
        written_at=as_float(timestamps.get("written")),
        run_metadata=as_dict(doc.get("run_metadata")),
        metrics=as_dict(doc.get("metrics")),
    )


AGENT_BLOCKS = ("trae", "claude_code", "codex", "codex_cli", "openhands")
"""Each agent writes its process facts (cli, time budget, return code, duration) under its own key."""


def agent_block(doc: dict[str, Any]) -> dict[str, Any]:
    """The agent's process block of a journal, whichever agent wrote it."""
    for key in AGENT_BLOCKS:
        if isinstance(doc.get(key), dict):
            return dict(doc[key])
    return {}
