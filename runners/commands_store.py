"""Commands about the store itself: schema migrations and chain verification."""

from __future__ import annotations

import click

from runners.context import AppContext, pass_app
from runners.options import json_option
from runners.output import emit_json
from tracker.eventstore import migrate
from tracker.eventstore.database import create_store_engine, safe_url
from tracker.projections.read_model import fold
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
        applied = fold.catch_up(app.store())
        if applied:
            click.echo(f"read model: {applied} events replayed")


@db_group.command("downgrade")
@click.argument("revision")
@pass_app
def db_downgrade(app: AppContext, revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes everything: events included!).

    Example: track db downgrade 0001
    """
    engine = create_store_engine(resolve_db_url(app.db_url))
    migrate.downgrade(engine, revision)
    click.echo(f"{safe_url(engine.url)}: schema now {migrate.current_revision(engine) or 'empty'}")
    engine.dispose()


@db_group.command("current")
@json_option
@pass_app
def db_current(app: AppContext, as_json: bool) -> None:
    """Show the schema revision of the store and the one this track needs."""
    engine = create_store_engine(resolve_db_url(app.db_url))
    info = {"url": safe_url(engine.url), "current": migrate.current_revision(engine), "head": migrate.head_revision()}
    engine.dispose()
    if as_json:
        emit_json(info)
    else:
        click.echo(f"{info['url']}: revision {info['current'] or 'empty'} (this track needs {info['head']})")


@click.command("verify")
@json_option
@pass_app
def verify_command(app: AppContext, as_json: bool) -> None:
    """Recompute the hash chain over every event; name the first broken one (exit 1 if any).

    Example: track verify --json
    """
    report = app.store().verify()
    brk = report.first_break
    if as_json:
        emit_json({
            "ok": report.ok, "events_checked": report.events_checked, "last_position": report.last_position,
            "first_break": None if brk is None else {
                "position": brk.position, "event_id": brk.event_id, "stream_id": brk.stream_id, "reason": brk.reason,
            },
        })
    elif brk is None:
        click.echo(f"ok: {report.events_checked} events, hash chain intact up to position {report.last_position}")
    else:
        click.echo(
            f"BROKEN at position {brk.position} (event {brk.event_id}, stream {brk.stream_id}): {brk.reason}; "
            f"{report.events_checked} events before it are intact"
        )
    if brk is not None:
        raise click.exceptions.Exit(1)
