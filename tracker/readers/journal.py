"""Read `journal.json`, the bench's own record of how an agent run ended.

The journal is the one file a run folder is expected to have, so its absence is a problem. A
truncated, non-JSON or binary journal gives no facts at all (a half-read sha is worse than none);
the run's status and commit are then recovered from the pipeline log by `read_run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.readers.common import MAX_SMALL_JSON_BYTES, Problem, file_size, looks_binary, os_problem
from tracker.redaction import redact

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
    path = run_dir / JOURNAL
    size = file_size(path)
    if size is None:
        return None, [Problem(JOURNAL, "missing", "run folder has no journal.json")]
    if size > MAX_SMALL_JSON_BYTES:
        return None, [Problem(JOURNAL, "too_large", f"{size} bytes; a journal is a few KB")]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [os_problem(JOURNAL, exc)]
    doc, problem = parse_json_document(raw, JOURNAL)
    if problem is not None:
        return None, [problem]
    if not isinstance(doc, dict):
        return None, [Problem(JOURNAL, "invalid_json", f"top level is {type(doc).__name__}, not an object")]
    return journal_facts(doc), []


def parse_json_document(raw: bytes, rel: str) -> tuple[Any, Problem | None]:
    """Decode a whole small JSON file, telling truncated from otherwise invalid from binary."""
    if looks_binary(raw[:8192]):
        return None, Problem(rel, "binary", "NUL bytes where JSON text was expected")
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        kind = "truncated" if _stops_early(text, exc) else "invalid_json"
        return None, Problem(rel, kind, f"{exc.msg} at line {exc.lineno} column {exc.colno}")


def _stops_early(text: str, exc: json.JSONDecodeError) -> bool:
    """A JSON document cut short: it starts like JSON, and fails at its end or lacks its closing bracket."""
    stripped = text.strip()
    if stripped[:1] not in ("{", "["):
        return not stripped
    if exc.pos >= len(text.rstrip()) - 1:
        return True
    return stripped[-1] not in "}]" and not exc.msg.startswith("Extra data")


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


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
