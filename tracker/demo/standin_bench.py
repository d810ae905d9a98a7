"""A stand-in for ISO-Bench's `python -m bench.cli prepare`: same arguments, same files, same log lines.

Tests, benchmarks and the demo drive `track run` with it instead of a GPU and an API key:

    python -m tracker.demo.standin_bench prepare TASK.yaml --from-plan PLAN --bench-cfg B --max-workers 1 --resume

It reads the plan and, per item, writes `state/runs/<repo>/trae/gpt-5-2025-08-07/<ts>/<item_id>/`
under the current folder (the bench root) in the real formats (via `tracker.demo.sample_tree`), prints the
real pipeline-log lines and appends them to `pipeline_run_<ts>.log`. What happens to each item:

- `STANDIN_OUTCOMES`: JSON (inline, or a path to a JSON file) mapping an item id or commit to an
  outcome, a list of outcomes (the n-th attempt of that item gets the n-th, the last repeats), or an
  object `{"outcome": ..., "sleep": s, "input_tokens": n, ...}`; anything else gets `STANDIN_DEFAULT`
  (default `success`). Outcomes: `success`, every failure category, `hang` (never ends), `crash`
  (a traceback and exit code 1 before the journal is written).
- `STANDIN_SLEEP`: seconds each item takes (default 0); `STANDIN_LINES`: extra TRAE stdout lines to
  print per item (to load the runner's log parsing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from tracker.demo.sample_tree import RunSpec, write_run_folder
from tracker.isobench.discovery import normalise_repo

MODEL_DIR = os.environ.get("STANDIN_MODEL_DIR", "gpt-5-2025-08-07")


def _outcomes() -> dict[str, Any]:
    raw = os.environ.get("STANDIN_OUTCOMES", "").strip()
    if not raw:
        return {}
    if not raw.startswith("{"):
        raw = Path(raw).read_text()
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


def _spec_for(item: dict[str, Any], attempt: int, table: dict[str, Any]) -> dict[str, Any]:
    choice = table.get(item["item_id"], table.get(item["human"], os.environ.get("STANDIN_DEFAULT", "success")))
    if isinstance(choice, list):
        choice = choice[min(attempt, len(choice) - 1)] if choice else "success"
    spec = dict(choice) if isinstance(choice, dict) else {"outcome": str(choice)}
    spec.setdefault("sleep", float(os.environ.get("STANDIN_SLEEP", "0") or 0))
    return spec


def _log(log_path: Path, message: str, level: str = "INFO") -> None:
    line = f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S,%f')[:23]} - bench.prepare - {level} - {message}"
    print(line, flush=True)
    with open(log_path, "a") as fh:
        fh.write(line + "\n")


def _tokens(commit: str) -> dict[str, int]:
    """Deterministic but varied token counts per commit."""
    h = int(hashlib.sha1(commit.encode()).hexdigest()[:8], 16)
    input_tokens = 150_000 + h % 600_000
    return {"input_tokens": input_tokens, "cached_input_tokens": input_tokens // 2,
            "output_tokens": 5_000 + h % 25_000, "reasoning_tokens": 2_000 + h % 9_000}


def run_item(root: Path, repo: str, item: dict[str, Any], table: dict[str, Any], log_path: Path) -> None:
    """One plan item as bench.prepare runs it: skipped when an earlier run succeeded, else one run folder
    written for its outcome (or a hang, or a crash that exits)."""
    item_id, commit = item["item_id"], item["human"].lower()
    pre = item.get("pre") or hashlib.sha1(commit.encode()).hexdigest()
    model_root = root / "state" / "runs" / repo / "trae" / MODEL_DIR
    earlier = sorted(model_root.glob(f"*/{item_id}")) if model_root.is_dir() else []
    if any(_succeeded(folder) for folder in earlier):
        _log(log_path, f"Skipping {item_id} - task already completed successfully")
        return
    spec = _spec_for(item, len(earlier), table)
    outcome = spec.pop("outcome")
    sleep = float(spec.pop("sleep"))
    ts = _free_timestamp(model_root, item_id)
    _log(log_path, f"Starting task processing: {item_id}")
    _log(log_path, f"Task configuration - Human commit: {commit}, Pre commit: {pre}")
    _print_chatter()
    if outcome == "hang":
        time.sleep(10**6)
    time.sleep(sleep)
    run_dir = model_root / ts / item_id
    if outcome == "crash":
        _crash(run_dir)
    run_spec = RunSpec(repo=repo, item_id=item_id, commit=commit, pre_commit=pre, outcome=outcome, run_timestamp=ts,
                       model_raw=MODEL_DIR, **_usage(commit, sleep, spec))
    messages = write_run_folder(run_dir, run_spec)
    for message in messages[2:]:
        _log(log_path, message, "WARNING" if "STDERR" in message else "INFO")


def _usage(commit: str, sleep: float, spec: dict[str, Any]) -> dict[str, Any]:
    """The run's tokens, calls and duration: varied per commit, each overridable by the item's outcome object."""
    values: dict[str, Any] = {**_tokens(commit), "llm_calls": 4, "duration_s": max(sleep, 0.1)}
    values.update({k: v for k, v in spec.items() if k in values})
    return values


def _succeeded(folder: Path) -> bool:
    """Did this earlier run folder end in success? (`--resume` skips such items; an unreadable journal is no.)"""
    try:
        return bool(json.loads((folder / "journal.json").read_text()).get("status") == "success")
    except (OSError, ValueError):
        return False


def _free_timestamp(model_root: Path, item_id: str) -> str:
    """The run folder's timestamp: now, or the next second not yet taken by this item."""
    started = datetime.now().replace(microsecond=0)
    while (model_root / started.strftime("%Y-%m-%d_%H-%M-%S") / item_id).exists():
        started += timedelta(seconds=1)
    return started.strftime("%Y-%m-%d_%H-%M-%S")


def _print_chatter() -> None:
    """`STANDIN_LINES` lines of TRAE stdout, to load the runner's log parsing."""
    for i in range(int(os.environ.get("STANDIN_LINES", "0") or 0)):
        print(f"TRAE STDOUT: step {i}: running bash tool in the sandbox, nothing to see here", flush=False)


def _crash(run_dir: Path) -> NoReturn:
    """The `crash` outcome: a traceback in the folder and on stderr, and exit code 1 before any journal."""
    run_dir.mkdir(parents=True, exist_ok=True)
    trace = ["Traceback (most recent call last):", '  File "bench/prepare.py", line 812, in run_task',
             "RuntimeError: CUDA error: an illegal memory access was encountered"]
    (run_dir / "trae_stderr.txt").write_text("\n".join(trace) + "\n")
    for line in trace:
        print(line, file=sys.stderr, flush=True)
    sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="standin_bench")
    sub = parser.add_subparsers(dest="command", required=True)
    prepare = sub.add_parser("prepare")
    prepare.add_argument("task")
    prepare.add_argument("--from-plan", required=True)
    prepare.add_argument("--bench-cfg", required=True)
    prepare.add_argument("--max-workers", type=int, default=1)
    prepare.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    plan = json.loads(Path(args.from_plan).read_text())
    repo = normalise_repo(Path(plan.get("repo") or "").name or str(plan.get("task_id", "")).split("_", 1)[0])
    root = Path.cwd()
    log_path = root / f"pipeline_run_{datetime.now().strftime('%Y%m%d_%H%M%S')}.log"
    table = _outcomes()
    for item in plan["items"]:
        run_item(root, repo, item, table, log_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
