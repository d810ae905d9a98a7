"""Commands about the store itself: schema migrations, the read model's replay, and verification."""

from __future__ import annotations

from pathlib import Path

import click

from runners.context import AppContext, pass_app
from runners.options import json_option
from runners.output import emit_json
from runners.verify_output import verify_json, verify_text
from tracker.eventstore import migrate
from tracker.eventstore.anchors import read_anchors
from tracker.eventstore.database import create_store_engine, safe_url
from tracker.projections.read_model import fold
from tracker.projections.read_model.audit import verify_read_model
from tracker.settings import resolve_db_url


@click.group("db")
def db_group() -> None:
    """Manage the event store's schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_app
def db_upgrade(app: AppContext, revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest).

    Example: track --db postgresql://track@dbhost/track db upgrade
    """
    engine = create_store_engine(resolve_db_url(app.db_url))
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    click.echo(f"{safe_url(engine.url)}: schema {before or 'empty'} -> {after}")
    engine.dispose()
    if after == migrate.head_revision():  # a migration may reset the read model: replay the log into it
        applied = fold.catch_up(app.store(create=True))
        if applied:
            click.echo(f"read model: {applied} events replayed")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--i-understand-this-deletes-the-log", "delete_log", is_flag=True,
              help="Allow a downgrade that drops the event table of a store holding events (exported first).")
@click.option("--export", "export_to", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Where the events are exported before the log is dropped "
              "(default: beside the SQLite file, else the working folder).")
@pass_app
def db_downgrade(app: AppContext, revision: str, delete_log: bool, export_to: Path | None) -> None:
    """Revert migrations down to REVISION. Below 0001 (`base`) the event table goes: refused on a store
    holding events unless --i-understand-this-deletes-the-log, and even then the events are exported
    to JSON lines first.

    Example: track db downgrade 0003
    """
    engine = create_store_engine(resolve_db_url(app.db_url), create=False)
    try:
        target = (export_to or migrate.default_export_path(engine)) if delete_log else None
        export = migrate.downgrade(engine, revision, export_to=target)
        if export is not None:
            click.echo(f"exported {export.events} events (positions 1..{export.last_position}) to {export.path}")
        click.echo(f"{safe_url(engine.url)}: schema now {migrate.current_revision(engine) or 'empty'}")
    finally:
        engine.dispose()


@db_group.command("rebuild")
@json_option
@pass_app
def db_rebuild(app: AppContext, as_json: bool) -> None:
    """Replay the read model (campaigns, attempts) from the log: after `track verify` finds it differs,
    or its checkpoint is ahead of the log.

    Example: track db rebuild
    """
    store = app.store()
    replayed = fold.rebuild(store)
    reset = fold.reset_out_of_step(store)
    info = {"events_replayed": replayed, "checkpoint": store.checkpoint(fold.NAME), "projections_reset": reset}
    if as_json:
        emit_json(info)
        return
    click.echo(f"read model rebuilt: {replayed} events replayed, checkpoint at position {info['checkpoint']}")
    for name in reset:
        click.echo(f"projection {name}: its checkpoint was not in the log; it starts again from position 0")


@db_group.command("current")
@json_option
@pass_app
def db_current(app: AppContext, as_json: bool) -> None:
    """Show the schema revision of the store and the one this track needs."""
    engine = create_store_engine(resolve_db_url(app.db_url), create=False)
    info = {"url": safe_url(engine.url), "current": migrate.current_revision(engine), "head": migrate.head_revision()}
    engine.dispose()
    if as_json:
        emit_json(info)
    else:
        click.echo(f"{info['url']}: revision {info['current'] or 'empty'} (this track needs {info['head']})")


EXIT_LOG_BROKEN = 1
EXIT_READ_MODEL_DIFFERS = 3


@click.command("verify")
@click.option("--anchor", "anchor_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Hold the log against this anchor file (a copy kept elsewhere, or a file holding "
              "the MLflow tag track.log_head) instead of the store's own.")
@click.option("--no-read-model", "skip_read_model", is_flag=True, help="Check the log only.")
@click.option("--max-differences", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many read-model differences to list.")
@json_option
@pass_app
def verify_command(app: AppContext, anchor_file: Path | None, skip_read_model: bool, max_differences: int,
                   as_json: bool) -> None:
    """Recompute the hash chain, hold it against the newest anchors (a cut tail, a rewritten prefix or a
    swapped store is named, with the positions missing), and rebuild the read model in memory to
    compare it row by row with the live one.

    Exit 0: all intact; 1: the log is broken; 3: the log is intact but the read model differs
    (`track db rebuild` replays it).

    Example: track verify --anchor ~/reports/events.db.anchor.jsonl --json
    """
    store = app.store()
    report = store.verify(anchor_set=read_anchors(anchor_file) if anchor_file else None)
    model = None if skip_read_model else verify_read_model(store, limit=max_differences)
    if as_json:
        emit_json(verify_json(report, model))
    else:
        click.echo(verify_text(report, model))
    if not report.ok:
        raise click.exceptions.Exit(EXIT_LOG_BROKEN)
    if model is not None and not model.ok:
        raise click.exceptions.Exit(EXIT_READ_MODEL_DIFFERS)
