"""Read exported comparison tables back (Markdown, CSV, Parquet, JSON), to check what a reader gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from tracker.analysis.compare import SCHEMAS, typed
from tracker.errors import TrackerError


def parse_table(markdown: str, heading: str) -> tuple[list[str], list[list[str]]]:
    """Read back the table under `## heading` (used by tests to check what a reader would paste)."""
    lines = markdown.splitlines()
    start = lines.index(f"## {heading}")
    rows: list[list[str]] = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]
            rows.append(cells)
    header, body = rows[0], [r for r in rows[2:]]
    return header, body


def read_table(path: str | Path, name: str | None = None) -> pd.DataFrame:
    """Load a table written by `write_table`; `name` (default: the file's stem) picks its schema."""
    path = Path(path)
    schema = SCHEMAS.get(name or path.stem)
    if schema is None:
        raise TrackerError(f"no table named {name or path.stem!r}: one of {', '.join(SCHEMAS)}")
    if path.suffix.lower() == ".parquet":
        return typed(pd.read_parquet(path), schema)
    if path.suffix.lower() == ".csv":
        dtypes = {col: ("boolean" if dtype == "bool" else dtype) for col, dtype in schema.items()}
        return typed(pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""]), schema)
    raise TrackerError(f"{path}: expected a .csv or .parquet file")


def tables_from_json(document: str | dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The typed tables of a `--json` document."""
    doc = json.loads(document) if isinstance(document, str) else document
    return {name: typed(pd.DataFrame.from_records(records, columns=list(SCHEMAS[name])), SCHEMAS[name])
            for name, records in doc["tables"].items()}
