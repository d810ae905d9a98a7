"""Machine-readable exports of a comparison (CSV, Parquet, JSON) and their loaders.

Every table has a fixed schema (`tracker.compare.SCHEMAS`), so a table written here loads back into
the very same DataFrame (same columns, dtypes and values), whatever the format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from tracker.compare import SCHEMAS, Comparison, typed
from tracker.errors import TrackerError

TABLE_FORMATS = ("csv", "parquet")


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        raise TrackerError(f"unknown table format {fmt!r}: use csv or parquet")
    return path


def write_tables(c: Comparison, out: str | Path, fmt: str) -> list[Path]:
    """Write every table: into folder `out` (one file per table), or only `commits` if `out` ends in .<fmt>."""
    out = Path(out)
    if out.suffix.lower() == f".{fmt}":
        return [write_table(c.commits, out, fmt)]
    if out.exists() and not out.is_dir():
        raise TrackerError(f"{out} exists and is not a folder: give a folder, or a file name ending in .{fmt}")
    return [write_table(frame, out / f"{name}.{fmt}", fmt) for name, frame in c.tables().items()]


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


def to_json(c: Comparison) -> str:
    return json.dumps(c.to_dict(), indent=2, default=str, ensure_ascii=False)


def tables_from_json(document: str | dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The typed tables of a `--format json` document."""
    doc = json.loads(document) if isinstance(document, str) else document
    return {name: typed(pd.DataFrame.from_records(records, columns=list(SCHEMAS[name])), SCHEMAS[name])
            for name, records in doc["tables"].items()}
