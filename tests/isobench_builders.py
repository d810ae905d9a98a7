"""Build small ISO-Bench trees in tmp folders for reader and classifier tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SHA = "8319002d3167d53e5753dc98fa36a1009aecac22"
PRE = "ae386fb856967b282e2a7c91a5a97a327707c282"


def fixtures_dir() -> Path | None:
    """The shared ISO-Bench sample trees: $TRACK_FIXTURES, tests/fixtures, or /work/shared/fixtures."""
    for candidate in (os.environ.get("TRACK_FIXTURES"), REPO_ROOT / "tests" / "fixtures", "/work/shared/fixtures"):
        if candidate and (Path(candidate) / "isobench-small-a").is_dir():
            return Path(candidate)
    return None


def journal(status: str = "error", human: str = SHA, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "task_id": "vllm_core",
        "commits": {"pre": PRE, "human": human},
        "agent_branch": "agent/vllm_core/83190024",
        "status": status,
        "metrics": {"changed_files_count": 0},
        "trae": {"cli": "python", "time_budget_minutes": 120, "returncode": 1, "duration_s": 200.0},
        "timestamps": {"written": 1764921682.0},
    }
    doc.update(extra)
    return doc


def trajectory(usages: list[tuple[int, int, int]], step_errors: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """A TRAE trajectory with one interaction per (input, cached, output) triple."""
    return {
        "task": "t", "start_time": "2025-12-14T14:51:00+00:00", "end_time": "2025-12-14T14:59:30+00:00",
        "provider": "openai", "model": "gpt-5", "max_steps": 120,
        "llm_interactions": [
            {"response": {"content": "", "usage": {"input_tokens": i, "output_tokens": o,
                                                   "cache_creation_input_tokens": 0,
                                                   "cache_read_input_tokens": c, "reasoning_tokens": 1}}}
            for i, c, o in usages
        ],
        "agent_steps": [{"step_number": n, "error": e, "llm_response": {"usage": {"input_tokens": 10**9}}}
                        for n, e in enumerate(step_errors)],
        "success": False, "final_result": "done", "execution_time": 10.0,
    }


def make_run(
    root: Path,
    item: str = "vllm_core-0003",
    ts: str = "2025-12-03_17-40-02",
    repo: str = "vllm",
    model: str = "gpt-5",
    files: dict[str, str | bytes | dict[str, Any]] | None = None,
) -> Path:
    """Create one run folder with the given files (dicts are written as JSON)."""
    folder = root / "state" / "runs" / repo / "trae" / model / ts / item
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        path = folder / name
        if isinstance(content, dict):
            path.write_text(json.dumps(content))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def pipeline_block(item: str, status: str, rc: int = 1, human: str = SHA, extra: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    """The lines the bench writes for one item."""
    p = "2025-12-03 17:40:02,006 - bench.prepare - INFO - "
    w = "2025-12-03 17:40:02,006 - bench.prepare - WARNING - "
    return [
        p + f"Starting task processing: {item}",
        p + f"Task configuration - Human commit: {human}, Pre commit: {PRE}",
        p + "TRAE STDOUT: Input: 1000 Output: 50",
        *[w + f"TRAE STDERR: {x}" for x in extra],
        p + "TRAE agent execution completed in 207.5 seconds",
        p + f"Process return code: {rc}",
        p + f"Task status determined as: {status}",
        p + f"Writing journal with final status: {status}",
    ]


def write_log(root: Path, name: str, lines: list[str]) -> Path:
    path = root / name
    path.write_text("\n".join(lines) + "\n")
    return path
