"""`track run --check`: prove the setup of the first item before anything is spent.

Each check is what the bench needs to give the model a run: the bench config, the task file, the bench
importable by its interpreter, the plan's repo checkout holding the commit, the agent program, and no
worktree of an earlier run in the item's way. Nothing is appended to the store, no agent starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tracker.rerun.bench_layout import (
    bench_item_id,
    bench_python,
    read_yaml,
    task_file,
    task_id,
    worktrees_dir,
)
from tracker.rerun.execution import RunConfig
from tracker.rerun.planning import PlanItem, plan_from_files


@dataclass(frozen=True)
class Check:
    """One thing the bench needs: `ok` True/False, or None when it could not be looked at."""

    name: str
    ok: bool | None
    detail: str
    cause: str = ""
    """The setup-problem cause a failure stands for (`harness.diagnose` names the same causes)."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "cause": self.cause}


def check_setup(plan_paths: list[Path], config: RunConfig, timeout_s: float = 8.0) -> list[Check]:
    """The checks for the plan's first item (the first of each repo for the task file)."""
    items = plan_from_files(plan_paths, config.baseline).items
    first = items[0]
    if config.template:
        return [_agent_program(config.template[0]), _repo_checkout(first, config.bench_root)]
    bench_cfg = _bench_config(config)
    return [
        bench_cfg[0],
        *[_task(config, item) for item in {i.repo: i for i in items}.values()],
        _bench_importable(config, timeout_s),
        _repo_checkout(first, config.bench_root),
        _agent_program(_agent_cli(bench_cfg[1])) if bench_cfg[1] is not None else
        Check("agent program", None, "not looked at: no readable bench config", "agent_program"),
        _worktree(config, first, bench_cfg[1]),
    ]


def _bench_config(config: RunConfig) -> tuple[Check, dict[str, Any] | None]:
    path = config.bench_root / config.bench_cfg
    try:
        doc = read_yaml(path)
    except OSError:
        return Check("bench config", False, f"{path} does not exist", "bench_config"), None
    except yaml.YAMLError as exc:
        return Check("bench config", False, f"{path} is not YAML: {exc}", "bench_config"), None
    missing = [key for key in ("paths", "agents") if not isinstance(doc, dict) or key not in doc]
    if missing:
        return Check("bench config", False, f"{path} has no {', '.join(missing)}", "bench_config"), None
    return Check("bench config", True, str(path)), doc


def _task(config: RunConfig, item: PlanItem) -> Check:
    task = task_file(config.task_yaml, item)
    path = config.bench_root / task
    if path.is_file():
        return Check(f"task file ({item.repo})", True, str(path))
    present = sorted(p.name for p in (config.bench_root / "tasks").glob("*.yaml"))
    return Check(f"task file ({item.repo})", False, f"{path} does not exist (tasks/ holds: "
                 f"{', '.join(present) or 'nothing'})", "task_file")


def _bench_importable(config: RunConfig, timeout_s: float) -> Check:
    python = bench_python(config.bench_root, config.python)
    try:
        done = subprocess.run([python, "-c", f"import {config.bench_module}"], cwd=config.bench_root,
                              capture_output=True, text=True, timeout=timeout_s)
    except OSError as exc:
        return Check("bench importable", False, f"{python}: {exc.strerror}", "bench_python")
    except subprocess.TimeoutExpired:
        return Check("bench importable", None, f"{python} took over {timeout_s:.0f}s to import {config.bench_module}")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("bench importable", False, f"{python} cannot import {config.bench_module}: {last}",
                     "bench_python")
    return Check("bench importable", True, f"{python} imports {config.bench_module}")


def _repo_checkout(item: PlanItem, bench_root: Path) -> Check:
    """The plan's repo as the bench sees it: a local checkout holding the commit (a URL is cloned)."""
    repo = item.repo_path or item.repo
    if "://" in repo or repo.startswith("git@"):
        return Check("repo checkout", True, f"{repo} (cloned by the bench)")
    path = Path(repo) if Path(repo).is_absolute() else bench_root / repo
    if not path.is_dir():
        return Check("repo checkout", False, f"{path} does not exist: the bench would run `git clone {repo}`",
                     "repo_checkout")
    if shutil.which("git") is None or _git(path, "rev-parse", "--git-dir") != 0:
        return Check("repo checkout", None, f"{path} exists, but git cannot read it here: commit not checked")
    if _git(path, "cat-file", "-e", f"{item.commit}^{{commit}}") != 0:
        return Check("repo checkout", False, f"{path} has no commit {item.commit}", "repo_checkout")
    return Check("repo checkout", True, f"{path} holds {item.commit[:12]}")


def _git(path: Path, *args: str) -> int:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True).returncode


def _agent_cli(doc: dict[str, Any]) -> str:
    agents = doc.get("agents") or {}
    default = str(agents.get("default") or "")
    return str((agents.get(default) or {}).get("cli") or "python")


def _agent_program(program: str) -> Check:
    found = shutil.which(program) if "/" not in program else (program if os.access(program, os.X_OK) else None)
    if found is None:
        return Check("agent program", False, f"{program} is not an executable program here", "agent_program")
    return Check("agent program", True, found)


def _worktree(config: RunConfig, item: PlanItem, doc: dict[str, Any] | None) -> Check:
    """Where the bench will put the item's worktree: a free one (an earlier run's is stepped around)."""
    task = task_id(config.bench_root, task_file(config.task_yaml, item), item)
    worktrees = worktrees_dir(config.bench_root, doc, task)
    free = bench_item_id(item, 1, worktrees)
    if free != item.item_id:
        return Check("fresh worktree", True, f"{worktrees / item.item_id} is an earlier run's: this run uses {free}")
    return Check("fresh worktree", True, f"{worktrees / free} is free")



