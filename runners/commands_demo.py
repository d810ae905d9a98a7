"""`track demo`: the whole workflow in about a minute, on the embedded store, with nothing else running."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from runners.context import AppContext, pass_app
from runners.options import json_option, mlflow_uri_option
from runners.output import emit_json, progress_bar
from tracker.rerun.execution import RunProgress


@click.command("demo")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("track-demo"),
              show_default=True, help="Where the sample tree, plans, logs and reports go.")
@click.option("--runs", type=click.IntRange(20, 100_000), default=434, show_default=True,
              help="Run folders in the generated original evaluation.")
@click.option("--workers", type=click.IntRange(1, 32), default=2, show_default=True,
              help="Items the rerun runs at once.")
@click.option("--seed", type=int, default=2025, show_default=True,
              help="Seed of the generated tree (same seed, same tree).")
@mlflow_uri_option
@json_option
@pass_app
def demo_command(app: AppContext, workdir: Path, runs: int, workers: int, seed: int, mlflow_uri: str | None,
                 as_json: bool) -> None:
    """Generate a realistic ISO-Bench evaluation, import it, plan/estimate/run the rerun with a stand-in agent,
    project it into MLflow, compare, and write the reports. No server, API key or GPU needed.

    Example: track demo --dir /tmp/track-demo
    """
    from tracker.demo.workflow import ORIGINAL, RERUN, run_demo
    from tracker.settings import resolve_tracking_uri

    store = app.store(create=True)
    uri = resolve_tracking_uri(mlflow_uri)
    echo = (lambda _line: None) if as_json else click.echo
    bars: list[Any] = []

    def on_progress(progress: RunProgress) -> None:
        if as_json:
            return
        if not bars and sys.stderr.isatty():  # the rerun's size is known only once it starts
            bars.append(progress_bar(max(progress.total, 1), "    rerun").__enter__())
        if bars:
            bars[0].update(progress.done - bars[0].pos)

    try:
        result = run_demo(store, workdir, runs=runs, seed=seed, workers=workers, echo=echo,
                          on_run_progress=on_progress, tracking_uri=uri)
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
    logged = result.outputs["comparison_run"]
    overall = result.outputs["overall"]
    db_flag = f"--db {shlex.quote(app.db_url)} " if app.db_url else ""
    track = _invoked_as()
    ui = f"{track} {db_flag}ui" if uri.startswith("sqlite:") else f"open {uri}"
    if as_json:
        emit_json({
            "workdir": str(result.workdir), "original": ORIGINAL, "rerun": RERUN,
            "imported_runs": result.imported.runs, "planned_commits": len(result.plan.items),
            "estimate_usd": result.estimate["cost_usd"], "rerun_succeeded": result.run.succeeded,
            "rerun_failed": result.run.failed, "spent_usd": round(result.run.cost_usd, 4),
            "html_report": str(result.outputs["html"]), "markdown_report": str(result.outputs["markdown"]),
            "mlflow": result.outputs["mlflow"].to_dict(), "comparison_run": getattr(logged, "run_id", None),
            "overall": overall if isinstance(overall, dict) else None, "ui": ui,
            "compare_url": (result.outputs.get("compare_url") or {}).get("url"),
            "commit_runs_url": (result.outputs.get("compare_url") or {}).get("runs_url"),
        })
        return
    click.echo("")
    click.echo("Open the report:      " + str(result.outputs["html"]))
    click.echo("Markdown for a doc:   " + str(result.outputs["markdown"]))
    click.echo(f"Browse in MLflow:     {ui}   then open a link below (experiment iso-bench/trae/gpt-5; its "
               "runs table opens on category, outcome, tokens and cost)")
    link = result.outputs.get("compare_url")
    if link:
        click.echo(f"One commit's runs:    {link['runs_url']}")
        click.echo(f"Compare its attempts: {link['url']}")
        click.echo(f"                      (commit {link['commit'][:12]}: original failed, rerun succeeded; "
                   f"{link['attempts']} attempts)")
    click.echo(f"Audit trail:          {track} {db_flag}log {RERUN} --commit <sha>   |   "
               f"{track} {db_flag}verify")


def _invoked_as() -> str:
    """How to call track again, as the user did (`.venv/bin/track` after `make demo`)."""
    argv0 = sys.argv[0]
    return shlex.quote(argv0) if Path(argv0).name == "track" and "/" in argv0 else "track"
