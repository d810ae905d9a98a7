"""Commands that bring an evaluation in and show what the store knows: import, campaigns, attempts, log."""

from __future__ import annotations

from pathlib import Path

import click

from runners.commands_mlflow import mlflow_uri_option, run_sync, sync_text
from runners.context import AppContext, pass_app
from runners.output import emit_json, format_table, json_option, progress_bar
from tracker import views
from tracker.classifier import load_rule_table
from tracker.importer import ImportSummary, import_tree
from tracker.readers import discover_runs

EXIT_NOTHING_IMPORTED = 1


@click.command("import")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--campaign", required=True, help="Name of the original campaign to record into.")
@click.option("--agent", default="trae", show_default=True, help="Agent folder to import.")
@click.option("--model", default="gpt-5", show_default=True, help="Model to import (dated folder names match).")
@click.option("--repo", type=click.Choice(["vllm", "sglang"]), default=None, help="Import one repo only.")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Failure rule table to classify with (default: the packaged one).")
@click.option("--kind", type=click.Choice(["original", "rerun"]), default="original", show_default=True,
              help="Record a rerun made outside `track run` with --kind rerun.")
@click.option("--fix-commit", default=None, help="Agent fix commit of a rerun (e.g. a1c6d41).")
@click.option("--baseline", default=None, help="Baseline campaign of a rerun.")
@click.option("--no-sync", is_flag=True, help="Do not project into MLflow afterwards (`track sync` does it later).")
@mlflow_uri_option
@json_option
@pass_app
def import_command(app: AppContext, root: Path, campaign: str, agent: str, model: str, repo: str | None,
                   rules_path: Path | None, kind: str, fix_commit: str | None, baseline: str | None,
                   no_sync: bool, mlflow_uri: str | None, as_json: bool) -> None:
    """Import an ISO-Bench checkout (state/runs, pipeline logs, eval results) as an original campaign.

    Re-importing the same tree adds no event; after a file changed, only what changed is added.
    Exit code 0 if runs were imported, 1 if the tree had none, 2 on a usage error.

    Example: track import ~/ISO-Bench --campaign trae-gpt5-original
    """
    store = app.store()
    rules = load_rule_table(rules_path)
    total = sum(1 for _ in discover_runs(root, [])) if root.is_dir() else 0
    with progress_bar(total, "importing runs", hidden=as_json) as bar:
        summary = import_tree(store, root, campaign, agent=agent, model=model, repo=repo, rules=rules,
                              progress=lambda _facts: bar.update(1), kind=kind, agent_fix_commit=fix_commit,
                              baseline_campaign=baseline)
    synced = None if no_sync or summary.runs == 0 else run_sync(app, mlflow_uri, quiet=as_json)
    if as_json:
        emit_json({**summary.to_dict(), "mlflow": synced.to_dict() if synced else None})
    else:
        click.echo(_summary_text(summary))
        if synced:
            click.echo(sync_text(synced))
    if summary.runs == 0:
        click.echo(f"no {agent}/{model} runs found under {root}/state/runs", err=True)
        raise click.exceptions.Exit(EXIT_NOTHING_IMPORTED)


def _summary_text(summary: ImportSummary) -> str:
    lines = [
        f"campaign {summary.campaign}: {summary.runs} runs from {summary.root} "
        f"({summary.attempts_changed} attempts changed, {summary.events_appended} events appended, "
        f"{summary.skipped} runs of other agents/models skipped) in {summary.seconds:.1f}s",
        "",
        format_table([{"status": k, "runs": v} for k, v in sorted(summary.by_status.items())]),
        "",
        format_table([{"failure_category": k, "runs": v} for k, v in summary.by_category.most_common()]),
        "",
        format_table([{"repo": k, "runs": v} for k, v in sorted(summary.by_repo.items())]),
        "",
        f"problems: {summary.problems} (files missing, truncated or unreadable; see `track attempts --json`)",
    ]
    lines += [f"  {p['file']}: {p['kind']} ({p['detail']})" for p in summary.tree_problems[:20]]
    return "\n".join(lines)


@click.command("campaigns")
@json_option
@pass_app
def campaigns_command(app: AppContext, as_json: bool) -> None:
    """List campaigns with their counts.

    Example: track campaigns --json
    """
    rows = views.list_campaigns(app.store())
    if as_json:
        emit_json(rows)
    else:
        click.echo(format_table(rows, ["name", "kind", "agent", "model", "agent_fix_commit", "baseline_campaign",
                                       "attempts", "commits", "succeeded", "failed"]))


@click.command("attempts")
@click.option("--campaign", required=True)
@click.option("--repo", default=None)
@click.option("--status", default=None, help="success, error, max_steps_exceeded, ...")
@click.option("--category", default=None, help="Failure category (none = succeeded).")
@json_option
@pass_app
def attempts_command(app: AppContext, campaign: str, repo: str | None, status: str | None, category: str | None,
                     as_json: bool) -> None:
    """List one row per attempt of a campaign.

    Example: track attempts --campaign trae-gpt5-original --category quota_exceeded
    """
    frame = views.attempts_frame(app.store(), campaign, repo=repo, status=status, category=category)
    if as_json:
        emit_json(views.frame_records(frame))
        return
    frame = frame.assign(commit=frame["commit"].str[:12], problems=frame["problems"].map(len))
    click.echo(format_table(views.frame_records(frame), [
        "repo", "item_id", "commit", "run_timestamp", "status", "failure_category", "input_tokens",
        "output_tokens", "cost_usd", "patch_bytes", "problems"]))
    click.echo(f"{len(frame)} attempts")


@click.command("log")
@click.option("--campaign", required=True)
@click.option("--commit", required=True, help="Full sha or a unique prefix.")
@json_option
@pass_app
def log_command(app: AppContext, campaign: str, commit: str, as_json: bool) -> None:
    """Print the full event history (audit trail) of one commit's attempts in a campaign.

    Example: track log --campaign trae-gpt5-original --commit 4283fefc
    """
    history = views.commit_history(app.store(), campaign, commit)
    if as_json:
        emit_json([event._asdict() for event in history])
        return
    for event in history:
        click.echo(f"#{event.position} {event.recorded_at} {event.stream_id} v{event.stream_version} "
                   f"{event.event_type}")
        for key, value in event.payload.items():
            click.echo(f"    {key}: {value}")
