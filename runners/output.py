"""How reporting commands print: a plain table for people, `--json` for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def progress_bar(length: int, label: str, hidden: bool = False) -> Any:
    """The progress bar of long commands: on stderr, so `--json` output on stdout stays clean."""
    return click.progressbar(length=length, label=label, show_pos=True, file=sys.stderr, hidden=hidden)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A left-aligned text table (numbers right-aligned) of the given rows."""
    if not rows:
        return "(none)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *map(len, column)) for col, column in zip(columns, zip(*cells, strict=True), strict=True)]
    numeric = [_is_numeric([row.get(col) for row in rows]) for col in columns]
    lines = [columns, ["-" * w for w in widths], *cells]
    return "\n".join(_aligned(line, widths, numeric) for line in lines)


def _aligned(values: Sequence[str], widths: list[int], numeric: list[bool]) -> str:
    cells = zip(values, widths, numeric, strict=True)
    return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in cells).rstrip()


def _is_numeric(values: list[Any]) -> bool:
    """A column of numbers (or blanks) is right-aligned."""
    return all(value is None or isinstance(value, int | float) for value in values)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
