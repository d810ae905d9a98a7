"""`track compare`: the baseline vs the rerun, as a terminal table or an export, logged to MLflow."""

from __future__ import annotations

from pathlib import Path

import click

from runners.context import AppContext, pass_app
from runners.options import json_option, level_option, mlflow_options, repo_option
from runners.output import format_table
from tracker.analysis.compare import Comparison, compare
from tracker.analysis.criteria import BELOW
from tracker.analysis.side_by_side import SideBySide, compare_many
from tracker.errors import TrackerError
from tracker.projections.mlflow.comparison import ComparisonNotLogged, log_comparison
from tracker.projections.read_model import queries
from tracker.reports import display, mlflow_links
from tracker.reports import side_by_side as side_report
from tracker.reports.export import FORMATS, export

EXIT_PROBLEM = 1


@click.command("compare")
@click.argument("baseline")
@click.argument("rerun")
@click.argument("more", nargs=-1)
@click.option("--side-by-side", is_flag=True,
              help="Lay the campaigns side by side on the commits they share (implied by three or more).")
@click.option("--criteria", "criteria_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Success criteria YAML (example: tracker/data/criteria.example.yaml).")
@repo_option(help="Compare one repo only.")
@level_option
@click.option("--format", "fmt", type=click.Choice([f for f in FORMATS if f != "json"]), default="table",
              show_default=True,
              help="table (terminal), csv, md, html (self-contained), tex (booktabs tables), parquet; JSON: --json.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="File to write (json/md/html/table); for csv/parquet a folder (one file per table) "
                   "or a file name ending in .csv/.parquet (the per-commit table).")
@mlflow_options("log the comparison (tables, HTML report) as an MLflow run")
@click.option("--mlflow-url", default=None, metavar="URL",
              help="MLflow UI the HTML report's commit rows link to (default: --mlflow-uri or "
                   "$MLFLOW_TRACKING_URI when it is an http(s) server; else no links).")
@json_option
@pass_app
def compare_command(app: AppContext, baseline: str, rerun: str, more: tuple[str, ...], side_by_side: bool,
                    criteria_path: Path | None, repo: str | None, level: str, fmt: str, out: Path | None,
                    to_mlflow: bool, mlflow_uri: str | None, mlflow_url: str | None, as_json: bool) -> None:
    """Compare campaign RERUN with campaign BASELINE, commit by commit; or lay several side by side.

    Shows which commits are fixed, still failing (and why) or regressed, success rates with 95%
    Wilson intervals, an exact McNemar test, the category transition matrix, the criteria level
    reached and the cost against the plan's estimate. Exit code 0; 1 when a repo (or the combined
    figure) is below the criteria's minimum, or the MLflow run could not be logged; 2 on a usage error.

    An HTML or Markdown report written with --out gets its figures beside it, as PNG and PDF files in
    `<name>_figures/`; --format tex writes booktabs tables to \\input into a paper.

    With three or more campaigns (or --side-by-side), each is measured on the commits all of them ran, per
    repo, and every campaign after the first against the first: success and pass@1 differences with
    intervals from a bootstrap over commits, exact McNemar with Holm's adjustment (formats table, json,
    csv, md, html; not logged to MLflow).

    Example: track compare trae-gpt5-original trae-gpt5-rerun --criteria criteria.yaml --format html --out report.html

    Example: track compare trae-gpt5-a1c6d41 claude-sonnet-4.5-rerun --side-by-side --level tests
    """
    fmt = "json" if as_json else fmt
    if more or side_by_side:
        _side_by_side(app, [baseline, rerun, *more], repo, level, fmt, out, criteria_path)
        return
    if fmt == "parquet" and out is None:  # before the comparison is computed
        raise TrackerError("--format parquet needs --out (a folder, or a file name ending in .parquet)")
    ui = mlflow_links.ui_address(mlflow_url, mlflow_uri)  # a bad --mlflow-url fails before the comparison
    result = compare(app.current_store(), baseline, rerun, criteria=criteria_path, repo=repo, level=level)
    _write(result, fmt, out, _links(result, ui, fmt))
    _finish(result, to_mlflow and not _logged(result, mlflow_uri))


def _finish(result: Comparison, not_logged: bool) -> None:
    """Exit 1 when MLflow did not take the run or a scope is below the criteria's minimum (said on stderr)."""
    below = [scope for scope, level in _levels(result).items() if level == BELOW]
    if below:
        click.echo(f"below the criteria's minimum: {', '.join(below)}", err=True)
    if not_logged or below:
        raise click.exceptions.Exit(EXIT_PROBLEM)


def _side_by_side(app: AppContext, names: list[str], repo: str | None, level: str, fmt: str,
                  out: Path | None, criteria_path: Path | None) -> None:
    """The N-way view, written in the asked format."""
    if criteria_path is not None:
        raise TrackerError("--criteria applies to a baseline and its rerun, not to campaigns side by side")
    result = compare_many(app.current_store(), names, repo=repo, level=level)
    text: str | None
    if fmt == "table":
        text, paths = _side_terminal(result), []
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n", encoding="utf-8")
            text, paths = None, [out]
    else:
        text, paths = side_report.export(result, fmt, out)
    if text is not None:
        click.echo(text, nl=not text.endswith("\n"))
    for path in paths:
        click.echo(f"wrote {path}", err=True)


def _side_terminal(result: SideBySide) -> str:
    """Headline, per-repo grid, the pairs, notes and the per-commit outcome grid."""
    return "\n".join([
        " vs ".join(result.names) + f" (success = {result.meta['success_rule']})",
        *side_report.headline(result), "", format_rows(*side_report.summary(result)), "",
        f"against {result.names[0]}:", format_rows(*side_report.pairs(result)), "",
        *[f"note: {note}" for note in result.notes], "", format_rows(*side_report.commit_grid(result)),
        f"{len(result.commits) // max(1, len(result.names))} shared commits"])


def format_rows(headers: list[str], rows: list[list[str]]) -> str:
    """A display table (headers, cell strings) as the terminal's aligned table."""
    return format_table([dict(zip(headers, row, strict=True)) for row in rows], headers) if headers else "(none)"


def _links(result: Comparison, ui: str | None, fmt: str) -> mlflow_links.RunLinks | None:
    """The HTML report's MLflow links, or None (after a warning) when the server could not say where the runs are."""
    if ui is None or fmt != "html":
        return None
    try:
        return mlflow_links.resolve(result.baseline, result.rerun, ui)
    except mlflow_links.LinksUnavailable as exc:
        click.echo(f"warning: {exc}", err=True)
        return None


def _write(result: Comparison, fmt: str, out: Path | None, links: mlflow_links.RunLinks | None = None) -> None:
    """The comparison on stdout or in files, in the asked format (paths written are said on stderr)."""
    if fmt == "table":
        text = _terminal(result)
        if out is None:
            click.echo(text)
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
        return
    exported = export(result, fmt, out, links=links)
    if exported.text is not None:
        click.echo(exported.text, nl=not exported.text.endswith("\n"))
    for path in exported.paths:
        click.echo(f"wrote {path}", err=True)


def _logged(result: Comparison, mlflow_uri: str | None) -> bool:
    """Log the comparison run; False (after a warning) when MLflow could not take it."""
    try:
        logged = log_comparison(result, mlflow_uri)
    except ComparisonNotLogged as exc:
        click.echo(f"warning: {exc}", err=True)
        return False
    verb = "logged" if logged.created else "already logged"
    click.echo(f"{verb} to MLflow: experiment {logged.experiment}, run {logged.run_id}", err=True)
    return True


def _levels(result: Comparison) -> dict[str, str]:
    frame = result.criteria
    return dict(zip(frame["scope"], frame["level_reached"], strict=True)) if len(frame) else {}


def _terminal(result: Comparison) -> str:
    """Headline, per-repo summary, transitions, criteria, cost and the per-commit table."""

    table = format_rows
    commits = queries.frame_records(result.commits.assign(commit=result.commits["commit"].str[:12]))
    lines = [f"{result.rerun['name']} vs {result.baseline['name']} (success = {result.meta['success_rule']})",
             *display.headline(result), "",
             table(*display.summary(result)), "", "failure category, baseline -> rerun:",
             table(*display.transition_matrix(result)), ""]
    if len(result.criteria):
        lines += ["criteria:", table(*display.criteria(result)), ""]
    lines += ["cost:", table(*display.cost(result)), ""]
    if result.costs.get("requests"):
        t = result.costs["totals"]
        lines += [f"cost by source ({result.rerun['name']}): proxy ${t['proxy_usd']:.2f}, trajectory "
                  f"${t['trajectory_usd']:.2f}, agent-reported ${t['agent_usd']:.2f}; "
                  f"{len(result.costs['disagreements'])} attempts disagree past "
                  f"{result.costs['threshold_share']:.0%}", ""]
    lines += [f"note: {note}" for note in result.notes]
    lines += ["", format_table(commits, [
        "repo", "commit", "item_id", "baseline_status", "baseline_category", "rerun_status", "rerun_category",
        "transition", "baseline_attempts", "rerun_attempts", "rerun_tokens", "rerun_cost_usd", "rerun_speedup"]),
        f"{len(commits)} commits"]
    return "\n".join(lines)
