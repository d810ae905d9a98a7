"""Commands that bring an evaluation in and show what the store knows: import, campaigns, failures,
folders, attempts, log."""

from __future__ import annotations

from pathlib import Path

import click

from runners.commands_mlflow import run_sync, sync_text
from runners.context import AppContext, pass_app
from runners.options import category_choice, json_option, level_option, mlflow_options, repo_option
from runners.output import emit_json, format_table, progress_bar
from tracker.analysis.failures import failure_evidence, failure_table
from tracker.classify.rules import load_rule_table
from tracker.domain.outcomes import COMMIT_SUCCESS_RULE
from tracker.domain.vocabulary import ATTEMPT_STATUSES, FAILURE_CATEGORIES
from tracker.errors import UnknownCampaign
from tracker.ingest.importer import ALL, ImportSummary, import_tree
from tracker.isobench import discover_runs
from tracker.projections.read_model import queries

EXIT_NOTHING_IMPORTED = 1


@click.command("import")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--campaign", required=True,
              help="Campaign to record into, or a pattern with {agent} {model} {repo} (one campaign each).")
@click.option("--agent", default=None, help="Agent folder to import; '*' for all (default trae, or * with a pattern).")
@click.option("--model", default=None,
              help="Model to import (dated, provider and Bedrock names match); '*' for all (default gpt-5, or *).")
@repo_option(help="Import one repo only.")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Failure rule table to classify with (default: the packaged one).")
@click.option("--kind", type=click.Choice(["original", "rerun"]), default="original", show_default=True,
              help="Record a rerun made outside `track run` with --kind rerun.")
@click.option("--fix-commit", default=None, help="Agent fix commit of a rerun (e.g. a1c6d41).")
@click.option("--baseline", default=None, help="Baseline campaign of a rerun.")
@mlflow_options("project the imported attempts into MLflow")
@json_option
@pass_app
def import_command(app: AppContext, root: Path, campaign: str, agent: str | None, model: str | None,
                   repo: str | None, rules_path: Path | None, kind: str, fix_commit: str | None,
                   baseline: str | None, to_mlflow: bool, mlflow_uri: str | None, as_json: bool) -> None:
    """Import an ISO-Bench checkout (state/runs, pipeline logs, eval results) as original campaigns.

    Every run folder is accounted for: an attempt, left out by a named filter, or an unidentified
    record (`track folders`). Re-importing the same tree adds no event; after a file changed, only
    what changed is added. Exit code 0 if runs were imported, 1 if the tree had none, 2 on a usage error.

    Example: track import ~/ISO-Bench --campaign trae-gpt5 --agent trae --model gpt-5

    Example: track import ~/ISO-Bench --campaign 'isobench-{agent}-{model}'
    """
    agent, model = _defaults(campaign, agent, model)
    store = app.current_store(create=True)
    rules = load_rule_table(rules_path)
    total = sum(1 for _ in discover_runs(root, [])) if root.is_dir() else 0
    with progress_bar(total, "importing runs", hidden=as_json) as bar:
        summary = import_tree(store, root, campaign, agent=agent, model=model, repo=repo, rules=rules,
                              progress=lambda _facts: bar.update(1), kind=kind, agent_fix_commit=fix_commit,
                              baseline_campaign=baseline)
    synced = run_sync(app, mlflow_uri, quiet=as_json) if to_mlflow and summary.runs else None
    if as_json:
        emit_json({**summary.to_dict(), "mlflow": synced.to_dict() if synced else None})
    else:
        click.echo(_summary_text(summary) + (f"\n{sync_text(synced)}" if synced else ""))
    if summary.runs == 0:
        click.echo(f"no {agent}/{model} runs found under {root}/state/runs", err=True)
        raise click.exceptions.Exit(EXIT_NOTHING_IMPORTED)


def _defaults(campaign: str, agent: str | None, model: str | None) -> tuple[str, str]:
    """TRAE and GPT-5 by default; every agent and model when the campaign name is a pattern."""
    pattern = "{" in campaign
    return agent or (ALL if pattern else "trae"), model or (ALL if pattern else "gpt-5")


def _summary_text(summary: ImportSummary) -> str:
    return "\n".join([*_accounting_lines(summary), "", *_table_lines(summary), *_problem_lines(summary)])


def _accounting_lines(summary: ImportSummary) -> list[str]:
    """What was imported and how every folder was accounted for."""
    names = ", ".join(f"{name} ({n})" for name, n in sorted(summary.campaigns.items())) or summary.campaign
    lines = [
        f"campaign {names}: {summary.runs} runs from {summary.root} "
        f"({summary.attempts_changed} attempts changed, {summary.events_appended} events appended) "
        f"in {summary.seconds:.1f}s",
        f"folders: {summary.folders_seen} seen = {summary.runs} attempts + {sum(summary.filtered.values())} "
        f"left out by a filter + {len(summary.unidentified)} unidentified"
        + ("" if summary.accounted else "  (DOES NOT ADD UP: please report)"),
    ]
    lines += [f"  left out: {n} x {reason}" for reason, n in summary.filtered.most_common()]
    lines += [f"  unidentified: {u['run_path']}: {u['reason']}" for u in summary.unidentified[:20]]
    return lines


def _table_lines(summary: ImportSummary) -> list[str]:
    return [
        format_table([{"status": k, "runs": v} for k, v in sorted(summary.by_status.items())]),
        "",
        format_table([{"root_cause": k, "runs": v} for k, v in summary.by_category.most_common()]),
        "",
        format_table([{"incident": k, "runs_affected": v} for k, v in summary.incidents.most_common()]),
        "",
        format_table([{"repo": k, "runs": v} for k, v in sorted(summary.by_repo.items())]),
        "",
    ]


def _problem_lines(summary: ImportSummary) -> list[str]:
    lines = [f"problems: {summary.problems} (files missing, truncated or unreadable; see `track attempts --json`)"]
    lines += [f"  {p['file']}: {p['kind']} ({p['detail']})" for p in summary.tree_problems[:20]]
    lines += [f"evaluation report {r['file']} [{r['run_key']}] recorded for {r['campaign']}" for r in summary.reports]
    return lines


@click.command("campaigns")
@level_option
@json_option
@pass_app
def campaigns_command(app: AppContext, level: str, as_json: bool) -> None:
    """List campaigns with their outcome funnel (agent -> patch -> tests -> faster).

    `succeeded` counts commits whose best attempt reached --level (as `compare` and `status` count
    them); the funnel's columns count attempts. Where the team's evaluation report covers a campaign,
    its figures are shown beside the recount from the per-item results, and every difference is named.

    Example: track campaigns --level tests --json
    """
    rows = queries.list_campaigns(app.current_store(), level)
    if as_json:
        emit_json(rows)
        return
    table = []
    succeeded = f"commits_succeeded ({level})"
    for row in rows:
        f, won = row["funnel"], row["commit_success"]
        table.append({**row, succeeded: f"{won['succeeded']}/{won['commits']}",
                      **{k: f[k] for k in ("agent_succeeded", "patch_produced", "evaluated", "tests_passed",
                                           "faster", "baseline_failed", "no_test")}, "basis": f["basis"]})
    click.echo(format_table(table, ["name", "kind", "agent", "model", "commits", succeeded, "attempts",
                                    "agent_succeeded", "patch_produced", "evaluated", "tests_passed", "faster",
                                    "baseline_failed", "no_test", "basis"]))
    click.echo(f"{succeeded}: {COMMIT_SUCCESS_RULE}; the columns from attempts on count attempts")
    for row in rows:
        report = row.get("evaluation_report")
        if not report:
            continue
        click.echo(f"\n{row['name']}: the team's {report['file']} [{report['run_key']}] beside the recount")
        click.echo(format_table(report["side_by_side"], ["figure", "report", "recount", "recount_counts"]))
        if report["note"]:
            click.echo(report["note"])


@click.command("failures")
@click.argument("campaign")
@click.option("--evidence", "category", default=None, type=category_choice,
              help="List every run behind this category's counts, with file, line and excerpt.")
@json_option
@pass_app
def failures_command(app: AppContext, campaign: str, category: str | None, as_json: bool) -> None:
    """The failure table: per category, runs affected, runs failed with it as root cause, commits, models.

    Example: track failures trae-gpt5 --json

    Example: track failures trae-gpt5 --evidence tool_output_missing
    """
    store = app.current_store()
    if category:
        rows = failure_evidence(store, campaign, category)
        if as_json:
            emit_json(rows)
            return
        for r in rows:
            where = f"{r['first']['file']}:{r['first']['line']}" if r["first"] else "(root cause only)"
            click.echo(f"{r['run_path']}  {r['status']}{' ROOT CAUSE' if r['root_cause'] else ''}  "
                       f"x{r['count']} first at {where}")
            if r["excerpt"]:
                click.echo(f"    {r['excerpt']}")
        click.echo(f"{len(rows)} runs with {category} in {campaign}")
        return
    table = failure_table(store, campaign)
    if as_json:
        emit_json(table)
        return
    click.echo(format_table([{**r, "models": ", ".join(r["models"])} for r in table],
                            ["category", "affected_runs", "root_cause_runs", "commits", "occurrences", "models"]))
    click.echo("affected = the signature occurred in the run, whatever its outcome; root cause = the run failed "
               "and this is why (precedence). Evidence: track failures CAMPAIGN --evidence CATEGORY")


@click.command("folders")
@click.argument("campaign")
@json_option
@pass_app
def folders_command(app: AppContext, campaign: str, as_json: bool) -> None:
    """Run folders of a campaign that could not become attempts, with the reason and the files they hold.

    Example: track folders trae-gpt5
    """
    store = app.current_store()
    if not queries.campaign_exists(store, campaign):
        raise UnknownCampaign(campaign)
    rows = queries.unidentified_folders(store, campaign)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['run_path']}: {r['reason']}\n    files: {', '.join(r['files']) or '(none)'}")
    click.echo(f"{len(rows)} unidentified folders in {campaign}")


@click.command("attempts")
@click.argument("campaign")
@repo_option()
@click.option("--status", default=None, type=click.Choice(ATTEMPT_STATUSES), help="Attempt status.")
@click.option("--category", default=None, type=click.Choice(("none", *FAILURE_CATEGORIES)),
              help="Root cause (none = succeeded).")
@json_option
@pass_app
def attempts_command(app: AppContext, campaign: str, repo: str | None, status: str | None, category: str | None,
                     as_json: bool) -> None:
    """List one row per attempt of a campaign.

    Example: track attempts trae-gpt5-original --category quota_exceeded
    """
    frame = queries.attempts_frame(app.current_store(), campaign, repo=repo, status=status, category=category)
    if as_json:
        emit_json(queries.frame_records(frame))
        return
    frame = frame.assign(commit=frame["commit"].str[:12], problems=frame["problems"].map(len))
    frame = frame.assign(incidents=[", ".join(f"{i['category']} x{i['count']}" for i in found)
                                    for found in frame["incidents"]])
    click.echo(format_table(queries.frame_records(frame), [
        "repo", "item_id", "commit", "run_timestamp", "status", "failure_category", "outcome_level", "eval_status",
        "incidents", "input_tokens", "output_tokens", "cost_usd", "patch_bytes", "problems"]))
    click.echo(f"{len(frame)} attempts")


@click.command("log")
@click.argument("campaign")
@click.option("--commit", required=True, help="Full sha or a unique prefix.")
@json_option
@pass_app
def log_command(app: AppContext, campaign: str, commit: str, as_json: bool) -> None:
    """Print the full event history (audit trail) of one commit's attempts in a campaign.

    Example: track log trae-gpt5-original --commit 4283fefc
    """
    history = queries.commit_history(app.current_store(), campaign, commit)
    if as_json:
        emit_json([event._asdict() for event in history])
        return
    for event in history:
        click.echo(f"#{event.position} {event.recorded_at} {event.stream_id} v{event.stream_version} "
                   f"{event.event_type}")
        for key, value in event.payload.items():
            click.echo(f"    {key}: {value}")
