"""`track`: the command line. Each command parses, calls one `tracker` function, and prints.

Exit codes: 0 done; 1 done but found a problem (a broken chain, a tree with no runs, a failed check);
2 usage or configuration error (bad flag, bad or unreachable database, outdated schema); 3 `verify`:
the log is intact but the read model differs from it.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from runners.config_file import config_path, load_config
from runners.context import AppContext
from runners.renamed import rewrite
from tracker import __version__
from tracker.classify.redaction import redact
from tracker.errors import (
    BenchNotFound,
    LogWouldBeLost,
    ProjectionOutOfStep,
    SchemaOutdated,
    StoreConfigError,
    StoreNotFound,
    TrackerError,
    UnknownCampaign,
)
from tracker.projections.mlflow.client import MLFLOW_QUIET_DEFAULTS, MlflowUnavailable

EXIT_USAGE = 2
EXIT_INTERNAL = 70
HINTS: dict[type[TrackerError], str] = {
    StoreNotFound: "check --db (or TRACK_DB_URL); `track import` or `track db upgrade` creates a store",
    UnknownCampaign: "see `track campaigns`",
    SchemaOutdated: "run `track db upgrade`",
    MlflowUnavailable: "run `track sync` again when it is reachable",
    StoreConfigError: "check --db (or TRACK_DB_URL)",
    BenchNotFound: "pass --bench-root",
    ProjectionOutOfStep: "run `track verify`, then `track db rebuild`",
    LogWouldBeLost: "to do it anyway pass --i-understand-this-deletes-the-log (the events are exported first)",
}
"""What to type about a library error: the CLI's words, added to the library's message here only."""


def error_line(exc: TrackerError) -> str:
    hint = next((text for kind, text in HINTS.items() if isinstance(exc, kind)), None)
    return redact(f"error: {exc}" + (f": {hint}" if hint else ""))  # a --db URL may hold a password


COMMANDS = {
    "db": "runners.commands_store:db_group",
    "demo": "runners.commands_demo:demo_command",
    "import": "runners.commands_import:import_command",
    "campaigns": "runners.commands_import:campaigns_command",
    "failures": "runners.commands_import:failures_command",
    "folders": "runners.commands_import:folders_command",
    "attempts": "runners.commands_import:attempts_command",
    "log": "runners.commands_import:log_command",
    "plan": "runners.commands_run:plan_command",
    "estimate": "runners.commands_run:estimate_command",
    "preflight": "runners.commands_run:preflight_command",
    "run": "runners.commands_run:run_command",
    "status": "runners.commands_run:status_command",
    "proxy": "runners.commands_proxy:proxy_command",
    "sync": "runners.commands_mlflow:sync_command",
    "ui": "runners.commands_mlflow:ui_command_cli",
    "compare": "runners.commands_compare:compare_command",
    "verify": "runners.commands_store:verify_command",
}
"""Every subcommand and where it lives: imported only when used, so `track verify` does not pay for
pandas, MLflow and the openai SDK at start-up."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="track")
@click.option("--db", "db_url", envvar="TRACK_DB_URL", default=None, metavar="URL",
              help="Event store URL (default: sqlite:///mlruns/events.db; env TRACK_DB_URL).")
@click.option("--config", "config_file", default=None, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Settings file (default: $TRACK_CONFIG, else ./track.toml when present).")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, config_file: Path | None) -> None:
    """Audit and compare coding-agent benchmark reruns.

    Example: track import ../ISO-Bench --campaign trae-gpt5-original
    """
    for key, value in MLFLOW_QUIET_DEFAULTS.items():  # the process is ours: MLflow reads these from it
        os.environ.setdefault(key, value)
    path = config_path(config_file)
    if path is not None:
        settings = load_config(path, cli, ctx)
        ctx.default_map = {name: table for name, table in settings.items() if isinstance(table, dict)}
        db_url = db_url or settings.get("db")
    app = AppContext(db_url)
    ctx.obj = app
    ctx.call_on_close(app.close)



def run(argv: list[str] | None = None) -> int:
    """Run one command; library errors become one line on stderr and exit code 2, never a traceback."""
    try:
        args = rewrite(list(sys.argv[1:] if argv is None else argv))
        result = cli.main(args=args, prog_name="track", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except TrackerError as exc:
        click.echo(error_line(exc), err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: say so in one line; TRACK_DEBUG=1 shows the traceback
        if os.environ.get("TRACK_DEBUG"):
            raise
        click.echo(redact(f"internal error: {type(exc).__name__}: {exc} (rerun with TRACK_DEBUG=1 for details)"),
                   err=True)
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> None:
    """The console entry point."""
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
