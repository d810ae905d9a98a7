"""The team's own numbers from a local snapshot of the public ISO-Bench repository, beside `track`'s.

Usage: python benchmarks/bench_team_numbers.py [SNAPSHOT/ISO-Bench] [--baseline CHECKOUT] [--workdir DIR]
       (or ISOBENCH_SNAPSHOT=SNAPSHOT/ISO-Bench; without either it says so and exits 0, for `make bench`)

SNAPSHOT is a checkout of `ISO-Bench/ISO-Bench` (nothing of it is in this repository). The script
imports it as `trae-gpt5` (`--agent trae --model gpt-5`), then prints, each beside its reference:

- the evaluation report's headline and `track campaigns`' recount from the per-item results;
- runs affected per failure category (`track failures`) beside the team's hand count and the number of
  run folders in which a plain substring search finds the signature;
- the team's rerun list (`archive/logs/TRAE_GPT5_*_FAILED.txt`) against `track plan` with the team's policy;
- every run folder under `state/runs` accounted for;
- import time.
With `--baseline` (another checkout of this repository) the same questions are put to that code too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CAMPAIGN = "trae-gpt5"
HAND_COUNTS = {"tool_output_missing": 137, "quota_exceeded": 67, "invalid_api_key": 32, "json_parse_error": 19}
"""The team's hand count for gpt-5 (AGENT_FAILURE_ROOT_CAUSES.md in the snapshot)."""
GREP = {
    "tool_output_missing": (b"No tool output found",),
    "quota_exceeded": (b"insufficient_quota", b"You exceeded your current quota"),
    "invalid_api_key": (b"invalid_api_key", b"Incorrect API key provided"),
    "json_parse_error": (b"JSONDecodeError", b"Unterminated string", b"Expecting value", b"Expecting ',' delimiter"),
}


def track(code: Path | None, db: Path, *args: str, missing_ok: bool = False) -> tuple[float, Any]:
    # `python -m` puts the working directory first on sys.path: run in the checkout whose code is measured
    env = {**os.environ, "PYTHONPATH": str(code or REPO)}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "runners.cli", "--db", f"sqlite:///{db}", *args],
                         capture_output=True, text=True, env=env, cwd=code or REPO)
    seconds = time.perf_counter() - start
    if missing_ok and "No such command" in out.stderr:
        return seconds, None
    if out.returncode not in (0, 1):
        raise SystemExit(f"track {' '.join(args)} exited {out.returncode}: {out.stderr.strip()[-400:]}")
    try:
        return seconds, json.loads(out.stdout)
    except ValueError:
        return seconds, out.stdout


def grep_folders(root: Path) -> dict[str, int]:
    """Run folders of trae/gpt-5* in which any file contains the signature (a plain substring search)."""
    found = dict.fromkeys(GREP, 0)
    for model_dir in sorted((root / "state" / "runs").glob("*/trae/*gpt-5*")):
        for item in model_dir.glob("*/*"):
            blobs = [f.read_bytes() for f in item.iterdir() if f.is_file()]
            for category, needles in GREP.items():
                if any(n in b for b in blobs for n in needles):
                    found[category] += 1
    return found


def team_list(root: Path, repo: str) -> set[str]:
    path = root / "archive" / "logs" / f"TRAE_GPT5_{repo.upper()}_FAILED.txt"
    return set(path.read_text().split()) if path.is_file() else set()


def measure(label: str, code: Path | None, root: Path, work: Path) -> dict[str, Any]:
    db = work / f"{label}.db"
    seconds, summary = track(code, db, "import", str(root), "--campaign", CAMPAIGN, "--agent", "trae",
                             "--model", "gpt-5", "--no-sync", "--json")
    _, campaigns = track(code, db, "campaigns", "--json")
    row = next(c for c in campaigns if c["name"] == CAMPAIGN)
    _, failures = track(code, db, "failures", CAMPAIGN, "--json", missing_ok=True)
    if not isinstance(failures, list):  # a checkout without `track failures`: count root causes
        failures = [{"category": k, "affected_runs": v} for k, v in summary.get("by_category", {}).items()]
    plan_args = ["plan", "--from", CAMPAIGN, "--out", str(work / f"plans-{label}"), "--json"]
    if label == "track":  # the team's policy; the baseline knows one policy only
        plan_args += ["--select", "any-failed", "--scope", "evaluated"]
    _, plan = track(code, db, *plan_args)
    planned: dict[str, set[str]] = {}
    for item in plan["items"]:
        planned.setdefault(item["repo"], set()).add(item["human"])
    return {"seconds": seconds, "summary": summary, "campaign": row,
            "affected": {f["category"]: f["affected_runs"] for f in failures}, "planned": planned,
            "policy": plan.get("selection", {}).get("rule", "?")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path, nargs="?", default=os.environ.get("ISOBENCH_SNAPSHOT"),
                        help="the snapshot's ISO-Bench folder (default $ISOBENCH_SNAPSHOT)")
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.root is None:
        print("skipped: no snapshot (pass the ISO-Bench folder of a checkout of ISO-Bench/ISO-Bench, "
              "or set ISOBENCH_SNAPSHOT)")
        return
    root = Path(args.root).resolve()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="track-team-numbers-"))
    runs = {label: measure(label, code, root, work)
            for label, code in (("track", None), ("baseline", args.baseline)) if label == "track" or code}
    labels = list(runs)
    print(f"snapshot {root}\n")
    print("== the evaluation's headline (evaluation_report.json runs['trae/gpt-5']) and the recount")
    report = (runs["track"]["campaign"].get("evaluation_report") or {})
    for line in report.get("side_by_side", []):
        print(f"  {line['figure']:<18} report {line['report']!s:>5}   recount {line['recount']!s:>5}   "
              f"({line['recount_counts']})")
    for folder, funnel in (runs["track"]["campaign"].get("funnel_by_model_folder") or {}).items():
        print(f"  model folder {folder:<18} evaluated {funnel['evaluated']:>4}: {funnel['evaluation_status']}")
    for label in labels[1:]:
        shown = "shown" if runs[label]["campaign"].get("evaluation_report") else "not shown anywhere"
        print(f"  [{label}] the report's figures: {shown}")
    print(f"  note: {report.get('note')}\n")
    grep = grep_folders(root)
    print("== runs affected per category: hand count (team) <= track <= plain grep (folders)")
    print(f"  {'category':<22} {'hand':>5} " + " ".join(f"{lab:>9}" for lab in labels) + f" {'grep':>5}")
    for category, hand in HAND_COUNTS.items():
        cells = " ".join(f"{runs[lab]['affected'].get(category, 0):>9}" for lab in labels)
        print(f"  {category:<22} {hand:>5} {cells} {grep[category]:>5}")
    print("\n== the team's rerun list (archive/logs/TRAE_GPT5_*_FAILED.txt) vs track plan")
    for label in labels:
        print(f"  [{label}] policy: {runs[label]['policy']}")
        for repo in ("vllm", "sglang"):
            theirs, ours = team_list(root, repo), runs[label]["planned"].get(repo, set())
            print(f"  [{label}] {repo:<7} team {len(theirs):>3}  planned {len(ours):>3}  "
                  f"in both {len(theirs & ours):>3}  only planned {len(ours - theirs):>3}  "
                  f"only team {len(theirs - ours):>3}")
    print("\n== every run folder accounted for")
    for label in labels:
        s = runs[label]["summary"]
        folders = s.get("folders")
        if folders:
            print(f"  [{label}] seen {folders['seen']} = {folders['attempts']} attempts + "
                  f"{sum(folders['filtered'].values())} filtered + {folders['unidentified']} unidentified "
                  f"(accounted: {folders['accounted']})")
        else:
            print(f"  [{label}] {s['runs']} attempts, {s['skipped']} skipped, {len(s['tree_problems'])} tree problems "
                  "(no accounting)")
    print("\n== import time")
    for label in labels:
        print(f"  [{label}] {runs[label]['summary']['runs']} attempts in {runs[label]['seconds']:.1f}s")


if __name__ == "__main__":
    main()
