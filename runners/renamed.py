"""Spellings an earlier `track` accepted, rewritten to today's with a note, so scripts keep working."""

from __future__ import annotations

import click

RENAMED_FLAGS: dict[str, str] = {"--no-sync": "--no-mlflow", "--price-table": "--prices"}
"""Flags whose name changed: the old name is replaced by the new one wherever it appears."""

NOW_ARGUMENTS: dict[str, str] = {"plan": "--from", "attempts": "--campaign", "log": "--campaign"}
"""Commands whose campaign option became their argument: `track plan --from X` is `track plan X`."""


def rewrite(argv: list[str]) -> list[str]:
    """Today's spelling of a command line; each rewrite is said once on stderr."""
    command = next((a for a in argv if not a.startswith("-") and a not in _group_option_values(argv)), "")
    moved = NOW_ARGUMENTS.get(command)
    out: list[str] = []
    rest = iter(enumerate(argv))
    for i, arg in rest:
        name, eq, value = arg.partition("=")
        if name in RENAMED_FLAGS:
            click.echo(f"note: {name} is now {RENAMED_FLAGS[name]}", err=True)
            out.append(RENAMED_FLAGS[name] + eq + value)
        elif moved is not None and name == moved and "--" not in argv[:i]:
            click.echo(f"note: `track {command} {moved} NAME` is now `track {command} NAME`", err=True)
            out.append(value if eq else next(rest, (i, ""))[1])
        else:
            out.append(arg)
    return out


def _group_option_values(argv: list[str]) -> set[str]:
    """Values of the group's own options (`--db URL`, `--config FILE`), which are not the command name."""
    values: set[str] = set()
    for i, arg in enumerate(argv[:-1]):
        if arg in ("--db", "--config"):
            values.add(argv[i + 1])
    return values
