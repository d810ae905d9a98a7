"""What a run folder's own small files say about where it belongs (repo, agent, model).

Used for folders whose path is not the standard `<repo>/<agent>/<model>/<ts>/<item>`. Only small
files are opened (journal, run summary, the first line of the prediction) and only the header of the
trajectory is streamed, so this costs little even for a large tree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ijson

from tracker.isobench.common import PARSE_CHUNK, as_dict, as_str, int_or_text, open_regular
from tracker.isobench.journal import AGENT_BLOCKS
from tracker.isobench.summary import read_small_json

_INSTANCE_REPO = re.compile(r"(?:^|/)(?:[\w.-]+__)?([A-Za-z][\w.]*)-[0-9a-f]{7,40}$")
_KNOWN_REPO_WORDS = ("vllm", "sglang", "sglan")


def layout_hints(run_dir: Path) -> dict[str, str]:
    """`{"repo", "agent", "model"}` as far as the files tell (missing keys: not told)."""
    journal, _ = read_small_json(run_dir, "journal.json")
    summary, _ = read_small_json(run_dir, "run_summary.json")
    hints = _metadata_hints(journal, summary)
    fallbacks: tuple[tuple[str, Callable[[], str | None]], ...] = (
        ("agent", lambda: _journal_agent_block(journal)),
        ("repo", lambda: _repo_from_prediction(run_dir) or _repo_from_task(as_str((journal or {}).get("task_id")))),
        ("model", lambda: _trajectory_model(run_dir / "trajectory.json")),
    )
    for key, guess in fallbacks:  # each guess opens files only when its key is still unknown
        if key not in hints and (value := guess()):
            hints[key] = value
    return hints


def _metadata_hints(journal: dict[str, Any] | None, summary: dict[str, Any] | None) -> dict[str, str]:
    """What the journal's `run_metadata`, then the run summary's `meta`, state outright (first one wins)."""
    hints: dict[str, str] = {}
    for meta in (as_dict((journal or {}).get("run_metadata")), as_dict((summary or {}).get("meta"))):
        for key in ("repo", "agent", "model"):
            value = as_str(meta.get(key))
            if value and key not in hints:
                hints[key] = value
    return hints


def _journal_agent_block(journal: dict[str, Any] | None) -> str | None:
    """The agent whose result block (`trae`, `claude_code`, …) the journal carries."""
    if not journal:
        return None
    return next((key for key in AGENT_BLOCKS if isinstance(journal.get(key), dict)), None)


def _repo_from_prediction(run_dir: Path) -> str | None:
    """`"instance_id": "…/vllm-project__vllm-89ac266"` names the repo the patch is for."""
    try:
        with open_regular(run_dir / "prediction.jsonl") as fh:
            line = fh.readline(1 << 20)
        doc = json.loads(line, parse_int=int_or_text)
    except (OSError, ValueError, RecursionError):
        return None
    instance = as_str(doc.get("instance_id")) if isinstance(doc, dict) else None
    match = _INSTANCE_REPO.search(instance or "")
    if match and match.group(1).lower() in _KNOWN_REPO_WORDS:
        return match.group(1).lower()
    return None


def _repo_from_task(task_id: str | None) -> str | None:
    head = (task_id or "").split("_", 1)[0].lower()
    return head if head in _KNOWN_REPO_WORDS else None


def _trajectory_model(path: Path) -> str | None:
    """The trajectory's top-level `model`, read from its first events only."""
    try:
        with open_regular(path) as fh:
            for count, (prefix, event, value) in enumerate(ijson.parse(fh, buf_size=PARSE_CHUNK)):
                if prefix == "model" and event == "string":
                    return str(value)
                if prefix in ("llm_interactions", "agent_steps") or count > 200:
                    return None
    except (OSError, ijson.JSONError, ValueError):
        return None
    return None
