"""Fault trials of `track run`: kill -9 of the runner mid-run, then a rerun, repeated; sampled process table.

Usage: python benchmarks/bench_faults.py [--trials N] [--baseline CHECKOUT]

Each trial runs 6 items (stand-in bench, 1.5 s each, 2 workers, lease 5 s), kills the runner with SIGKILL
while agents run, starts `track run` again at once, and lets it finish. A sampler reads /proc every 20 ms
and counts the agent processes of each commit. Printed per trial: the most agents seen at once on one
commit (must be 1), finished run folders the store never recorded (must be 0), the last run's exit code
and items left pending (must be 0). With `--baseline` (another checkout of this repository) the same trials
are run with that code, side by side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_real_bench import BASELINE_CAMPAIGN  # noqa: E402
from tracker.demo.standin_bench import lay_out_bench_root  # noqa: E402

KILL_TIMES = (0.35, 0.6, 0.9, 1.3, 1.8, 2.2, 2.7, 0.5, 1.1, 1.6)
"""When each trial kills the runner (seconds after it started): the same schedule for every checkout."""


def _standin_module(code: Path) -> str:
    return "tracker.demo.standin_bench" if (code / "tracker" / "demo" / "standin_bench.py").exists() \
        else "runners.standin_bench"


def _agents_by_item(marker: str) -> Counter[str]:
    """Live agent processes (the stand-in bench) of this trial, by the item id in their plan path."""
    found: Counter[str] = Counter()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in argv]
        if "prepare" in text and "--from-plan" in text and marker in " ".join(text) and "supervise" not in text[1]:
            plan = Path(text[text.index("--from-plan") + 1])
            found[plan.parent.parent.name] += 1
    return found


class Sampler(threading.Thread):
    def __init__(self, marker: str) -> None:
        super().__init__(daemon=True)
        self.marker, self.most, self.running = marker, 0, True

    def run(self) -> None:
        while self.running:
            self.most = max([self.most, *_agents_by_item(self.marker).values()])
            time.sleep(0.02)


def trial(code: Path, work: Path, kill_at: float) -> dict[str, object]:
    bench = work / "bench"
    lay_out_bench_root(bench)
    db = work / "events.db"
    env = {**os.environ, "PYTHONPATH": str(code), "STANDIN_SLEEP": "1.5"}
    subprocess.run([sys.executable, "-c", BASELINE_CAMPAIGN.format(db=f"sqlite:///{db}")], env=env, cwd=code,
                   check=True)
    items = [{"item_id": f"vllm_core-{i:04d}", "human": hashlib.sha1(f"{work}{i}".encode()).hexdigest(), "pre": None}
             for i in range(6)]
    plan = work / "plan.json"
    plan.write_text(json.dumps({"repo": "repos/vllm", "task_id": "vllm_core", "items": items}))
    args = [sys.executable, "-m", "runners.cli", "--db", f"sqlite:///{db}", "run", str(plan), "--campaign", "rerun",
            "--baseline", "orig", "--fix-commit", "a1c6d41", "--bench-root", str(bench), "--bench-module",
            _standin_module(code), "--log-dir", str(work / "logs"), "--no-sync", "--json", "--workers", "2",
            "--lease", "5"]
    sampler = Sampler(str(work))
    sampler.start()
    first = subprocess.Popen(args, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(kill_at)  # early (before an agent's pid is on its claim) to late (agents mid-item)
    first.send_signal(signal.SIGKILL)
    first.wait()
    again = subprocess.run(args, cwd=code, env=env, capture_output=True, text=True, timeout=300)
    time.sleep(0.5)
    sampler.running = False
    sampler.join()
    folders = {p.parent.relative_to(bench / "state" / "runs").as_posix()
               for p in (bench / "state" / "runs").rglob("journal.json")}
    with sqlite3.connect(db) as connection:
        recorded = {row[0] for row in connection.execute("SELECT run_path FROM attempts WHERE campaign = 'rerun'")}
        statuses = Counter(row[0] for row in connection.execute("SELECT status FROM attempts WHERE campaign = 'rerun'"))
    pending = json.loads(again.stdout).get("skipped", 0) if again.stdout.strip().startswith("{") else None
    return {"most_agents_on_one_commit": sampler.most, "unrecorded_folders": len(folders - recorded),
            "rc": again.returncode, "pending_or_skipped": pending, "statuses": dict(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args()
    codes = [("track", REPO)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    for label, code in codes:
        results = []
        for n in range(args.trials):
            with tempfile.TemporaryDirectory(prefix="track-faults-") as tmp:
                results.append(trial(code, Path(tmp), KILL_TIMES[n % len(KILL_TIMES)]))
            print(f"[{label:8}] trial {n + 1} (kill -9 at {KILL_TIMES[n % len(KILL_TIMES)]}s): {results[-1]}",
                  flush=True)
        worst = max(int(r["most_agents_on_one_commit"]) for r in results)  # type: ignore[call-overload]
        lost = sum(int(r["unrecorded_folders"]) for r in results)  # type: ignore[call-overload]
        print(f"[{label:8}] {args.trials} kill -9 trials: most agents at once on one commit {worst} (must be 1); "
              f"finished folders never recorded {lost} (must be 0); final exit codes "
              f"{Counter(r['rc'] for r in results)}")


if __name__ == "__main__":
    main()
