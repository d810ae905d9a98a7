"""`track run` against the real ISO-Bench bench (`bench/` of a local snapshot, unchanged) on a CPU machine.

Usage: python benchmarks/bench_real_bench.py SNAPSHOT/ISO-Bench [--bench-python PY] [--baseline CHECKOUT]
       (or ISOBENCH_SNAPSHOT=...; without either it says so and exits 0, for `make bench`)

The snapshot's `bench/` and `tasks/` are copied into a temporary ISO-Bench checkout (nothing of them is in
this repository), beside a small git repository of vllm-shaped commits and a stand-in TRAE written here
(`trae_agent.cli run ...`: it edits a file, writes the patch and a trajectory). PY is an interpreter with the
bench's own dependencies (typer, PyYAML); without `--bench-python` a venv is made with pip. Then, for each
setup the issue names, it runs `track run` as the README writes it and prints the exit code, what was
recorded, the attempts used, and `track run --check`'s verdict and time. With `--baseline` (another checkout
of this repository) the same scenarios are run by that code, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

STANDIN_TRAE = '''
"""A stand-in TRAE for a CPU machine: `python -m trae_agent.cli run --file F --working-dir W ...`."""
import argparse, json, pathlib, subprocess, sys
parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="cmd")
run = sub.add_parser("run")
for flag in ("--file", "--working-dir", "--patch-path", "--trajectory-file", "--config-file", "--max-steps"):
    run.add_argument(flag)
run.add_argument("--must-patch", action="store_true")
args = parser.parse_args()
work = pathlib.Path(args.working_dir)
target = work / "README.md"  # a tracked file: the bench finds the change in the patch
target.write_text(target.read_text() + "faster\\n")
diff = subprocess.run(["git", "diff"], cwd=work, capture_output=True, text=True).stdout
pathlib.Path(args.patch_path).write_text(diff)
usage = {"input_tokens": 120000, "output_tokens": 9000, "cache_read_input_tokens": 40000}
pathlib.Path(args.trajectory_file).write_text(json.dumps({
    "task": "stand-in", "provider": "openai", "model": "gpt-5", "max_steps": 50,
    "llm_interactions": [{"response": {"content": "done", "usage": usage}}], "agent_steps": [],
    "success": True, "final_result": "patched", "execution_time": 1.0}))
print("Task completed: patched README.md")
'''


BASELINE_CAMPAIGN = """
try:  # this layout, else the flat one of earlier checkouts
    from tracker.eventstore.store import EventStore
    from tracker.ingest.importer import ensure_campaign
    from tracker.domain.import_events import CampaignCreated
except ImportError:
    from tracker.store import EventStore
    from tracker.importer import ensure_campaign
    from tracker.domain import CampaignCreated
store = EventStore.open({db!r})
ensure_campaign(store, CampaignCreated(name="orig", kind="original", agent="trae", model="gpt-5"), {{}})
"""


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@local", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def lay_out(snapshot: Path, work: Path, bench_python: str, agent_cli: str | None = None) -> tuple[Path, list[str]]:
    """A checkout like the real one: bench/, tasks/, bench.yaml, a vllm repository, the stand-in TRAE."""
    root = work / "ISO-Bench"
    for part in ("bench", "tasks"):
        shutil.copytree(snapshot / part, root / part, dirs_exist_ok=True)
    trae = work / "third-party" / "trae-agent" / "trae_agent"
    trae.mkdir(parents=True, exist_ok=True)
    (trae / "__init__.py").write_text("")
    (trae / "cli.py").write_text(STANDIN_TRAE)
    (root / "bench.yaml").write_text(json.dumps({
        "paths": {"state_root": "state", "work_root": ".work"},
        "agents": {"default": "trae", "trae": {"cli": agent_cli or bench_python, "time_budget_minutes": 5,
                                                 "args": {"max_steps": 5}}}}, indent=2))
    repo = work / "repos" / "vllm"
    if not repo.exists():
        repo.mkdir(parents=True)
        _git(repo, "init", "-q")
        (repo / "README.md").write_text("vllm\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "base")
    commits = []
    for i in range(3):
        (repo / f"perf_{i}.py").write_text(f"x = {i}\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"perf {i}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    return root, commits


def write_plan(path: Path, repo: str, commits: list[str], prefix: str) -> None:
    items = [{"item_id": f"{prefix}{c[:8]}", "human": c, "pre": "", "pre_parent_index": 1} for c in commits]
    path.write_text(json.dumps({"repo": repo, "task_id": "vllm_trae_gpt5_rerun", "items": items}))


def bench_venv(work: Path) -> str:
    """An interpreter with the real bench's own dependencies."""
    path = work / "bench-venv"
    venv.create(path, with_pip=True)
    python = str(path / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "typer", "pyyaml"], check=True, capture_output=True)
    return python


def track(code: Path, db: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(code), "LLM_MODEL": "gpt-5", **(env or {})}  # the bench's model folder
    return subprocess.run([sys.executable, "-m", "runners.cli", "--db", db, *args], cwd=code, env=full,
                          capture_output=True, text=True, timeout=600)


def recorded(db: Path, campaign: str) -> list[tuple[str, str]]:
    """(status, failure category) of each attempt of the campaign, from the read model."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        try:
            return list(connection.execute("SELECT status, failure_category FROM attempts WHERE campaign = ? "
                                           "ORDER BY run_timestamp", (campaign,)))
        except sqlite3.Error:
            return []


def scenarios(snapshot: Path, work: Path, python: str) -> list[tuple[str, dict[str, object]]]:
    """Each setup: (name, what to change). The runner gets `--python python` unless the scenario drops it."""
    return [
        ("good setup", {}),
        ("task file default of 0.1 (tasks/{task_id}.yaml)", {"args": ["--task", "tasks/{task_id}.yaml"]}),
        ("no --python (track's own interpreter)", {"python": None}),
        ("plan repo 'vllm', not a checkout path", {"plan_repo": "vllm"}),
        ("agent program missing", {"agent_cli": "/nonexistent/trae-agent"}),
        ("reused item ids (an earlier run's worktrees)", {"reuse": True}),
        ("8-character shas in the plan (as real plans write them)", {"short": True}),
    ]


def run_scenario(code: Path, snapshot: Path, work: Path, python: str, name: str, change: dict[str, object],
                 check: bool) -> dict[str, object]:
    case = work / name.split(" ")[0].replace("'", "") / ("check" if check else "run") / code.name
    case.mkdir(parents=True)
    root, commits = lay_out(snapshot, case, python, change.get("agent_cli"))  # type: ignore[arg-type]
    db_file = case / "events.db"
    db = f"sqlite:///{db_file}"
    subprocess.run([sys.executable, "-c", BASELINE_CAMPAIGN.format(db=db)], env={**os.environ, "PYTHONPATH": str(code)},
                   check=True, cwd=code)
    plan = case / "plan.json"
    shas = [c[:8] for c in commits] if change.get("short") else commits
    write_plan(plan, str(change.get("plan_repo") or case / "repos" / "vllm"), shas, "vllm_core-")
    if change.get("reuse"):  # an earlier evaluation ran these item ids in this checkout
        for commit in commits:
            (root / ".work" / "worktrees" / "vllm_core" / f"vllm_core-{commit[:8]}" / ".git").mkdir(parents=True)
    args = ["run", str(plan), "--campaign", "rerun", "--baseline", "orig", "--fix-commit", "a1c6d41",
            "--bench-root", str(root), "--log-dir", str(case / "logs"), "--no-sync", "--max-attempts", "1",
            "--retry-wait", "0.1", *change.get("args", [])]  # type: ignore[list-item]
    if change.get("python", python) is not None:
        args += ["--python", python]
    if check:
        args.append("--check")
    started = time.perf_counter()
    done = track(code, db, *args)
    seconds = time.perf_counter() - started
    rows = recorded(db_file, "rerun")
    last = (done.stderr.strip().splitlines() or [""])[-1]
    track(code, db, "import", str(root), "--campaign", "orig", "--no-sync", "--json")  # the rerun wrote into it
    return {"rc": done.returncode, "seconds": seconds, "attempts": len(rows),
            "reimported": len(recorded(db_file, "orig")),
            "categories": sorted({category or "none" for _, category in rows}), "last": last[:150],
            "fails": [line.split()[1:3] for line in done.stdout.splitlines() if line.startswith("FAIL")]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshot", nargs="?", default=os.environ.get("ISOBENCH_SNAPSHOT"))
    parser.add_argument("--bench-python")
    parser.add_argument("--baseline", type=Path, help="another checkout of this repository, run side by side")
    args = parser.parse_args()
    if not args.snapshot or not (Path(args.snapshot) / "bench" / "cli.py").exists():
        print("no ISO-Bench snapshot given (SNAPSHOT/ISO-Bench with bench/cli.py): nothing to measure")
        return
    snapshot = Path(args.snapshot).resolve()
    codes = [("track", REPO)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    with tempfile.TemporaryDirectory(prefix="track-real-bench-") as tmp:
        work = Path(tmp)
        python = args.bench_python or bench_venv(work)
        for name, change in scenarios(snapshot, work, python):
            print(f"== {name}")
            for label, code in codes:
                ran = run_scenario(code, snapshot, work, python, name, change, check=False)
                print(f"  [{label:8}] run   rc {ran['rc']}  attempts {ran['attempts']}  recorded {ran['categories']}"
                      f"  {ran['seconds']:.1f}s  re-import adds {ran['reimported']} to the baseline | {ran['last']}")
                if label == "track":
                    checked = run_scenario(code, snapshot, work, python, name, change, check=True)
                    print(f"  [{label:8}] check rc {checked['rc']}  {checked['seconds']:.1f}s  failed: "
                          f"{checked['fails'] or 'none'}")


if __name__ == "__main__":
    main()
