"""Read the small per-run JSON files beside the journal: `run_summary.json` and `prompt.json`.

`run_summary.json` (newer benches) repeats the journal's status and adds whether a patch was
generated with its line counts; some folders hold it without a journal. `prompt.json` is written
before the agent starts, so it is in every folder, interrupted ones included, and it names both
commits with full shas: the commit of a run that died before writing anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.isobench.common import Problem, as_dict, as_float, as_int, as_str, read_json_object

RUN_SUMMARY = "run_summary.json"
PROMPT = "prompt.json"


@dataclass(frozen=True)
class RunSummaryFacts:
    """The fields of `run_summary.json` the tracker uses; None when absent or ill-typed."""

    repo: str | None
    agent: str | None
    model: str | None
    model_full: str | None
    timestamp: str | None
    task_id: str | None
    item_id: str | None
    human_commit: str | None
    pre_commit: str | None
    status: str | None
    patch_generated: bool | None
    lines_added: int | None
    lines_removed: int | None
    files_changed: int | None
    duration_s: float | None


@dataclass(frozen=True)
class PromptFacts:
    """What the bench told the agent: the commits (full shas) and the task's name."""

    human_commit: str | None
    pre_commit: str | None


def read_small_json(run_dir: Path, name: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """A small optional JSON object file: (None, []) when absent, (None, [problem]) when unusable."""
    doc, problem, _present = read_json_object(run_dir / name, name)
    return doc, [problem] if problem else []


def read_run_summary(run_dir: Path) -> tuple[RunSummaryFacts | None, list[Problem]]:
    doc, problems = read_small_json(run_dir, RUN_SUMMARY)
    if doc is None:
        return None, problems
    meta, commits, agent = as_dict(doc.get("meta")), as_dict(doc.get("commits")), as_dict(doc.get("agent"))
    stats = as_dict(agent.get("patch_stats"))
    generated = agent.get("patch_generated")
    return RunSummaryFacts(
        repo=as_str(meta.get("repo")), agent=as_str(meta.get("agent")), model=as_str(meta.get("model")),
        model_full=as_str(meta.get("model_full")), timestamp=as_str(meta.get("timestamp")),
        task_id=as_str(meta.get("task_id")), item_id=as_str(meta.get("item_id")),
        human_commit=_sha(commits.get("human")), pre_commit=_sha(commits.get("pre")),
        status=as_str(agent.get("status")),
        patch_generated=generated if isinstance(generated, bool) else None,
        lines_added=as_int(stats.get("lines_added")), lines_removed=as_int(stats.get("lines_removed")),
        files_changed=as_int(stats.get("files_changed")), duration_s=as_float(agent.get("duration_s")),
    ), []


def read_prompt(run_dir: Path) -> tuple[PromptFacts | None, list[Problem]]:
    doc, problems = read_small_json(run_dir, PROMPT)
    if doc is None:
        return None, problems
    commits = as_dict(doc.get("commits"))
    return PromptFacts(human_commit=_sha(commits.get("human")), pre_commit=_sha(commits.get("pre"))), []


def _sha(value: Any) -> str | None:
    """A lowercased hex sha (7-40 characters), else None."""
    text = as_str(value)
    if not text:
        return None
    text = text.strip().lower()
    return text if 7 <= len(text) <= 40 and all(ch in "0123456789abcdef" for ch in text) else None
