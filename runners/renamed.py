"""Spellings an earlier `track` accepted, rewritten to today's with a note, so scripts keep working."""

from __future__ import annotations

import click

RENAMED_FLAGS: dict[str, str] = {"--no-sync": "--no-mlflow", "--price-table": "--prices"}
"""Flags whose name changed: the old name is replaced by the new one wherever it appears."""

NOW_ARGUMENTS: dict[str, str] = {"plan": "--from", "attempts": "--campaign", "log": "--campaign"}
"""Commands whose campaign option became their argument: `track plan --from X` is `track plan X`."""


def rewrite(argv: list[str]) -> list[str]:
    """Today's spelling of a command line; each rewrite is said once on stderr."""
    out: list[str] = []
    command = next((a for a in argv if not a.startswith("-") and a not in _group_option_values(argv)), None)
    moved = NOW_ARGUMENTS.get(command or "")
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in RENAMED_FLAGS:
            click.echo(f"note: {name} is now {RENAMED_FLAGS[name]}", err=True)
            out.append(RENAMED_FLAGS[name] + (eq + value if eq else ""))
        elif moved and name == moved and "--" not in argv[:i]:
            click.echo(f"note: `track {command} {moved} NAME` is now `track {command} NAME`", err=True)
            if eq:
                out.append(value)
            elif i + 1 < len(argv):
                out.append(argv[i + 1])
                i += 1
        else:
            out.append(arg)
        i += 1
    return out


def _group_option_values(argv: list[str]) -> set[str]:
    """Values of the group's own options (`--db URL`, `--config FILE`), which are not the command name."""
    values: set[str] = set()
    for i, arg in enumerate(argv[:-1]):
        if arg in ("--db", "--config"):
            values.add(argv[i + 1])
    return values
