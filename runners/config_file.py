"""`track.toml`: the GPU host's long `track run` line, written down once.

Optional. Looked up as `--config FILE`, else `$TRACK_CONFIG`, else `./track.toml`. Top-level keys are the
group's (`db`); one table per command holds that command's options by their parameter name::

    db = "postgresql://track@dbhost/track"

    [run]
    campaign = "trae-gpt5-a1c6d41"
    baseline = "trae-gpt5-original"
    fix_commit = "a1c6d41"
    bench_root = "/home/ubuntu/ISO-Bench"
    workers = 4
    budget_usd = 300

Precedence, resolved once by Click: a flag on the command line, then its environment variable, then the
file, then the built-in default. An unknown table or key is an error naming it, never silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import click

CONFIG_ENV = "TRACK_CONFIG"
DEFAULT_CONFIG = Path("track.toml")
GROUP_KEYS = ("db",)


def config_path(explicit: Path | None) -> Path | None:
    """The configuration file to read, if any (an explicit one must exist)."""
    if explicit is not None:
        return explicit
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_config(path: Path, group: click.Group, ctx: click.Context) -> dict[str, Any]:
    """The file as Click's `default_map`, every table and key checked against the commands' options."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.UsageError(f"{path} is not valid TOML: {exc}") from None
    for key, value in doc.items():
        if isinstance(value, dict):
            _check_table(path, group, ctx, key, value)
        elif key not in GROUP_KEYS:
            raise click.UsageError(f"{path}: unknown setting {key!r} (top-level settings: {', '.join(GROUP_KEYS)})")
    return doc


def _check_table(path: Path, group: click.Group, ctx: click.Context, name: str, table: dict[str, Any]) -> None:
    command = group.get_command(ctx, name)
    if command is None:
        raise click.UsageError(f"{path}: [{name}] is not a track command")
    known = {param.name for param in command.params if param.name}
    unknown = sorted(set(table) - known)
    if unknown:
        raise click.UsageError(f"{path}: [{name}] has no setting {', '.join(map(repr, unknown))} "
                               f"(settings: {', '.join(sorted(known))})")
