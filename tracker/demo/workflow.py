"""`track demo`: the whole workflow on realistic data, with no server, no API key and no GPU.

Generate an ISO-Bench tree -> import it as the original campaign -> plan the rerun of the commits
that never succeeded -> estimate it -> run it with the packaged stand-in bench (outcomes drawn so
that most infrastructure failures are fixed and some are not) -> project into MLflow -> compare
original vs rerun -> write the HTML and Markdown reports.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.analysis.compare import CAUSE_GROUPS, Comparison, compare
from tracker.analysis.criteria import example_path, load_criteria
from tracker.demo.sample_tree import generate_tree
from tracker.demo.standin_bench import lay_out_bench_root
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import ImportSummary, import_tree
from tracker.projections.mlflow.client import UI_PORT, commit_attempts, compare_route, ui_link
from tracker.projections.mlflow.comparison import log_comparison
from tracker.projections.mlflow.runs import sync
from tracker.projections.mlflow.views import commit_view_key, view_route
from tracker.reports import html_report, markdown
from tracker.reports.display import headline
from tracker.rerun.estimate import estimate_plan
from tracker.rerun.execution import RunConfig, RunProgress, run_campaign
from tracker.rerun.planning import OLD_AGENT_ARM, Plan, make_plan
from tracker.settings import resolve_tracking_uri

ORIGINAL = "demo-original"
RERUN = "demo-rerun"
FIX_COMMIT = "a1c6d41"
EXPERIMENT = "iso-bench/trae/gpt-5"

FIX_RATE = {
    "tool_output_missing": 0.85, "quota_exceeded": 0.9, "invalid_api_key": 0.9, "aws_sso_expired": 0.9,
    "rate_limited": 0.8, "json_parse_error": 0.6, "context_length_exceeded": 0.4, "no_patch": 0.35,
    "max_steps_exceeded": 0.35, "timeout": 0.3, "other": 0.3,
}
"""Chance that the stand-in agent, with its fix, succeeds on a commit, by the commit's original failure
category: what the fix targets and infrastructure since restored mostly succeed, model-side failures mostly not."""

OLD_AGENT_RATE = {category: 0.1 for category in CAUSE_GROUPS["agent_fix"]}
"""The old agent on the failures its fix targets (the bug is still there); elsewhere it does as well as FIX_RATE."""

STILL_FAILING = ["no_patch", "max_steps_exceeded", "other", "json_parse_error", "timeout"]
"""What a commit that is not fixed fails with in the rerun (never quota or key errors: those would
rightly stop the whole campaign)."""

Echo = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: Path
    imported: ImportSummary
    plan: Plan
    estimate: dict[str, Any]
    run: RunProgress
    outputs: dict[str, Any] = field(default_factory=dict)


CONTROL_ARM_SIZE = 12
"""Baseline successes the demo reruns alike, so its comparison can tell the fix from a rerun's own noise."""
CONTROL_KEEP = 0.9
OLD_AGENT_ARM_SIZE = 16
"""Failed commits the demo runs with the old agent, so its comparison can tell the fix from what a rerun fixes alone."""


def draw_outcomes(plan: Plan, seed: int) -> dict[str, str]:
    """Outcome of each planned commit in the rerun, drawn from FIX_RATE (deterministic per seed)."""
    rng = random.Random(seed)
    outcomes = {}
    for item in plan.items:
        if item.control:  # a baseline success: a rerun keeps most, and flips a few by itself
            outcomes[item.commit] = "success" if rng.random() < CONTROL_KEEP else rng.choice(STILL_FAILING)
            continue
        chance = FIX_RATE.get(item.last_category, 0.3)
        if item.arm == OLD_AGENT_ARM:
            chance = OLD_AGENT_RATE.get(item.last_category, chance)
        fixed = rng.random() < chance
        outcomes[item.commit] = "success" if fixed else rng.choice(STILL_FAILING)
    return outcomes


def _compare_link(comparison: Comparison, tracking_uri: str | None) -> dict[str, Any] | None:
    """One fixed commit in MLflow: the runs table filtered to it (the saved view of its attempts) and the
    compare page of all its attempts, original and rerun."""
    fixed = comparison.commits[comparison.commits["transition"] == "fixed"]
    if fixed.empty:
        return None
    commit = str(fixed.iloc[0]["commit"])
    uri = resolve_tracking_uri(tracking_uri)
    found = commit_attempts(uri, EXPERIMENT, commit)
    if found is None or len(found[1]) < 2:
        return None
    experiment_id, run_ids = found
    return {"commit": commit, "attempts": len(run_ids),
            "url": ui_link(uri, compare_route(experiment_id, run_ids), UI_PORT),
            "runs_url": ui_link(uri, view_route(experiment_id, commit_view_key(commit)), UI_PORT)}


def run_demo(store: EventStore, workdir: Path, runs: int = 434, seed: int = 2025, workers: int = 2,
             echo: Echo = print, on_run_progress: Callable[[RunProgress], None] | None = None,
             tracking_uri: str | None = None) -> DemoResult:
    """Every step of the real workflow, in `workdir`; returns what each step produced."""
    workdir = workdir.resolve()
    tree = workdir / "ISO-Bench"
    if not (tree / "state" / "runs").is_dir():
        echo(f"1/7 generating a sample ISO-Bench tree of {runs} runs in {tree}")
        generate_tree(tree, runs=runs, seed=seed)
    else:
        echo(f"1/7 reusing the sample tree in {tree}")
    echo(f"2/7 importing it as campaign {ORIGINAL}")
    imported = import_tree(store, tree, ORIGINAL)
    echo(f"    {imported.runs} runs, {imported.by_status.get('success', 0)} succeeded, "
         f"{imported.problems} file problems recorded")
    plans = workdir / "plans"
    rerun_root = workdir / "ISO-Bench-rerun"  # a bench checkout laid out like the real one, with its repos
    checkouts = lay_out_bench_root(rerun_root)
    plan = make_plan(store, ORIGINAL, plans, repo_root=str(next(iter(checkouts.values())).parent),
                     policy="never-succeeded", scope="all", control=CONTROL_ARM_SIZE, seed=seed,
                     old_agent=OLD_AGENT_ARM_SIZE)
    arms = Counter(item.arm for item in plan.items)
    echo(f"3/7 planned the rerun of {arms['fix'] + arms['old_agent']} commits that never succeeded "
         f"({arms['old_agent']} of them drawn to run with the old agent) and a control arm of {arms['control']} "
         f"that did -> {plans}")
    estimate = estimate_plan(store, plan.items, ORIGINAL, workers=workers)
    echo(f"4/7 estimate: ${estimate['cost_usd']:,.2f} (+{estimate['buffer']:.0%} buffer = "
         f"${estimate['cost_usd_with_buffer']:,.2f}), about {estimate['wall_time_s'] / 3600:,.1f} h wall time "
         f"on {workers} workers")
    outcomes = draw_outcomes(plan, seed)
    config = RunConfig(
        campaign=RERUN, baseline=ORIGINAL, fix_commit=FIX_COMMIT, bench_root=rerun_root, workers=workers,
        python=sys.executable, bench_module="tracker.demo.standin_bench", log_dir=workdir / "attempt-logs",
        max_attempts=1, env={"STANDIN_OUTCOMES": json.dumps(outcomes), "STANDIN_SLEEP": "0"},
    )
    plan_files = sorted(plans.glob("*_plan.json"))
    echo(f"5/7 running the rerun with the stand-in agent ({len(plan.items)} items, {workers} workers)")
    progress = run_campaign(store, plan_files, config, progress=on_run_progress, echo=lambda _line: None)
    echo(f"    {progress.succeeded} succeeded, {progress.failed} failed, {progress.skipped} skipped "
         f"(already done), ${progress.cost_usd:,.2f} spent")
    result = DemoResult(workdir, imported, plan, estimate, progress)
    echo("6/7 projecting every attempt into MLflow")
    result.outputs["mlflow"] = sync(store, tracking_uri)
    comparison = compare(store, ORIGINAL, RERUN, criteria=load_criteria(example_path()))
    reports = workdir / "reports"
    html = html_report.write(comparison, reports / "compare.html")
    md = reports / "compare.md"
    md.write_text(markdown.render(comparison), encoding="utf-8")
    logged = log_comparison(comparison, tracking_uri)
    result.outputs.update(comparison=comparison, html=html, markdown=md, comparison_run=logged)
    result.outputs["compare_url"] = _compare_link(comparison, tracking_uri)
    overall = comparison.overall()
    echo(f"7/7 compared {ORIGINAL} vs {RERUN}: " + " ".join(headline(comparison)[:2]))
    result.outputs["overall"] = overall
    return result
