"""Machine-readable exports of a comparison (CSV, Parquet, JSON) and their loaders.

Every table has a fixed schema (`tracker.analysis.compare.SCHEMAS`), so a table written here loads back into
the very same DataFrame (same columns, dtypes and values), whatever the format.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tracker.analysis.compare import Comparison
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


def to_json(c: Comparison) -> str:
    return json.dumps(c.to_dict(), indent=2, default=str, ensure_ascii=False)
