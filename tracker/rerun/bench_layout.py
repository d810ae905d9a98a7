"""The ISO-Bench checkout as the bench sees it: its config, task files, interpreter and worktrees.

The runner and `track run --check` both need these facts, read the way the real bench reads them: the
bench config with `${VAR}` / `${VAR:-default}` expanded (unset is empty), the task file's `id` (the
bench names worktrees `<work_root>/worktrees/<task id>/<item id>` by it), and the interpreter.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from tracker.rerun.planning import PlanItem
from tracker.safe_names import checked

_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_vars(text: str) -> str:
    """`${VAR}` and `${VAR:-default}` as the bench expands them (an unset variable is empty)."""
    return _VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), text)


def read_yaml(path: Path) -> Any:
    """A bench YAML file, variables expanded; OSError or yaml.YAMLError when it cannot be read."""
    return yaml.safe_load(expand_vars(path.read_text(encoding="utf-8")))


def bench_config(bench_root: Path, name: str) -> dict[str, Any] | None:
    """The bench config, or None when it is missing or not a mapping (the check says which)."""
    try:
        doc = read_yaml(bench_root / name)
    except (OSError, yaml.YAMLError):
        return None
    return doc if isinstance(doc, dict) else None


def task_file(task_pattern: str, item: PlanItem) -> str:
    """The bench task file for an item (`tasks/{repo}.yaml` by default, as the real bench names them)."""
    return task_pattern.format(task_id=item.task_id or f"{item.repo}_core", repo=item.repo)


def task_id(bench_root: Path, task_path: str, item: PlanItem) -> str:
    """The task's `id` (what the bench names worktrees by), else the plan's task id."""
    try:
        doc = read_yaml(bench_root / task_path)
    except (OSError, yaml.YAMLError):
        doc = None
    fallback = item.task_id or f"{item.repo}_core"
    found = str(doc.get("id") or fallback) if isinstance(doc, dict) else fallback
    return checked(found, f"task id (in {task_path})")


def worktrees_dir(bench_root: Path, config: dict[str, Any] | None, task: str) -> Path:
    """`<work_root>/worktrees/<task id>` of the bench (work_root from the config, `.work` by default)."""
    work_root = str(((config or {}).get("paths") or {}).get("work_root") or ".work")
    return bench_root / work_root / "worktrees" / checked(task, "task id")


def bench_item_id(item: PlanItem, attempt_number: int, worktrees: Path | None = None) -> str:
    """The item id the bench gets for this attempt: the plan's for the first, `<id>-a<n>` after that,
    and the next free one where a worktree of that id is already there.

    The bench keeps a worktree per (task id, item id) and cannot reuse one (it crashes on the `.git` it
    left), so every attempt, retries and other campaigns in the same checkout included, gets its own."""
    number = max(1, attempt_number)
    while True:
        candidate = item.item_id if number == 1 else f"{item.item_id}-a{number}"
        if worktrees is None or not (worktrees / candidate).exists():
            return candidate
        number += 1


def bench_python(bench_root: Path, explicit: str | None) -> str:
    """The bench's interpreter: the one given, else the checkout's own venv, else $TRAE_PYTHON, else this one."""
    if explicit:
        return explicit
    for venv in (".venv", "venv"):
        candidate = bench_root / venv / "bin" / "python"
        if candidate.exists():
            return str(candidate)
    return os.environ.get("TRAE_PYTHON") or sys.executable
