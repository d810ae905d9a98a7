"""Commands that project the log into MLflow and show it: sync, ui."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from runners.context import AppContext, pass_app
from runners.options import json_option, mlflow_uri_option, prices_option
from runners.output import emit_json, progress_bar
from tracker.domain.pricing import load_price_table
from tracker.errors import TrackerError
from tracker.projections.mlflow.client import UI_PORT, ui_command
from tracker.projections.mlflow.portable import relocate_artifacts
from tracker.projections.mlflow.runs import SyncSummary, sync
from tracker.settings import resolve_tracking_uri


class _SyncBar:
    """A progress bar on stderr, opened once the sync knows how many attempts it will write."""

    def __init__(self, hidden: bool) -> None:
        self.hidden = hidden
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = progress_bar(total, "syncing MLflow runs", hidden=self.hidden).__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def run_sync(app: AppContext, mlflow_uri: str | None, prices_path: str | None = None,
             quiet: bool = False, traces: bool = True) -> SyncSummary:
    """Sync with a progress bar on stderr (shared by `sync` and the import/run commands)."""
    bar = _SyncBar(hidden=quiet)
    try:
        return sync(app.store(create=True), mlflow_uri, prices=load_price_table(prices_path), progress=bar,
                    traces=traces)
    finally:
        bar.close()


def sync_text(summary: SyncSummary) -> str:
    if summary.from_position >= summary.to_position:
        return f"MLflow {summary.tracking_uri}: up to date (position {summary.to_position})"
    return (f"MLflow {summary.tracking_uri}: {summary.attempts_touched} attempts touched, "
            f"{summary.runs_created} runs created, {summary.runs_updated} updated, {summary.runs_unchanged} unchanged, "
            f"{summary.summary_runs} summary runs created, {summary.traces} traces; "
            f"experiments {', '.join(summary.experiments)}; "
            f"positions {summary.from_position}..{summary.to_position} in {summary.seconds:.1f}s"
            + _evidence_warnings(summary))


def _evidence_warnings(summary: SyncSummary) -> str:
    """The gaps a person must see: evidence the store could not give, evidence read from the bench tree."""
    lines = []
    if summary.evidence_gaps:
        lines.append(f"warning: {summary.evidence_gaps} attempts have a file not logged: its evidence is gone from "
                     "the store, changed or too large (each run's MISSING_EVIDENCE.txt names it; `track verify` "
                     "checks the store)")
    if summary.evidence_vanished:
        lines.append(f"note: {summary.evidence_vanished} attempts have files gone from the bench tree since they "
                     "were captured: the captured copies were logged (MISSING_EVIDENCE.txt names them)")
    if summary.evidence_from_disk:
        lines.append(f"warning: {summary.evidence_from_disk} attempts were imported before evidence was captured: "
                     "their files were read from the bench tree; import it again to capture them into the store")
    return "".join(f"\n{line}" for line in lines)


@click.command("sync")
@mlflow_uri_option
@prices_option
@click.option("--traces/--no-traces", default=True, show_default=True,
              help="Log each finished attempt's trajectory as an MLflow trace of its run (its Traces tab).")
@json_option
@pass_app
def sync_command(app: AppContext, mlflow_uri: str | None, prices_path: str | None, traces: bool,
                 as_json: bool) -> None:
    """Project new events into MLflow: one run per attempt, one summary run per campaign.

    Safe to repeat or interrupt: runs are found by their stream id, never duplicated. Each finished attempt
    gets its trajectory as a trace, once (LLM calls with token usage, tool calls, failed steps). Artifacts
    come from the evidence captured at import, never from the bench tree.

    Example: track sync --mlflow-uri http://127.0.0.1:5000
    """
    summary = run_sync(app, mlflow_uri, prices_path, quiet=as_json, traces=traces)
    if as_json:
        emit_json(summary.to_dict())
    else:
        click.echo(sync_text(summary))


def port_free_or_fail(port: int) -> None:
    """Refuse a loopback port something already listens on (MLflow would start and fail behind our back)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise TrackerError(f"port {port} on 127.0.0.1 is taken (another `track ui` or MLflow server?): "
                               "pass --port with a free one") from None


@click.command("ui")
@click.option("--port", default=UI_PORT, show_default=True, type=int, help="Loopback port to serve the UI on.")
@click.option("--mlflow-uri", default=None, metavar="URI",
              help="A sqlite:/// tracking URI (default: the embedded store).")
def ui_command_cli(port: int, mlflow_uri: str | None) -> None:
    """Serve the MLflow UI on the embedded store, on 127.0.0.1 only (Ctrl-C stops it).

    Example: track ui --port 5000   # then open http://127.0.0.1:5000
    """
    uri = resolve_tracking_uri(mlflow_uri)
    argv = ui_command(uri, port)
    port_free_or_fail(port)
    relocate_artifacts(uri)  # a copied or moved mlruns/ shows and keeps its own artifacts
    click.echo(f"MLflow UI at http://127.0.0.1:{port} (Ctrl-C to stop)", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # The server takes this process's place: signals (Ctrl-C, a supervisor's TERM) reach it, its exit code is ours.
    os.execv(argv[0], argv)
