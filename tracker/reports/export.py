"""Write a comparison in one of the export formats, to a path or as text for stdout."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracker.analysis.compare import Comparison
from tracker.errors import TrackerError
from tracker.reports import files, html_report, markdown

FORMATS = ("table", "json", "csv", "md", "html", "parquet")
"""`table` is the terminal view, drawn by the CLI; every other format is written here."""


@dataclass
class Exported:
    paths: list[Path] = field(default_factory=list)
    text: str | None = None
    """What to print when no `out` was given (None when the files are the output)."""


def export(c: Comparison, fmt: str, out: str | Path | None = None) -> Exported:
    """`json`/`md`/`html` go to file `out` or to text; `csv`/`parquet` to folder `out` (one file per table)
    or file `out.<fmt>` (the per-commit table); `csv` without `out` is the per-commit table as text."""
    if fmt in ("json", "md", "html"):
        text = {"json": files.to_json, "md": markdown.render, "html": html_report.render}[fmt](c)
        if out is None:
            return Exported(text=text)
        path = Path(out)
        if path.is_dir():
            raise TrackerError(f"{path} is a folder: give a file name for the {fmt} report")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return Exported(paths=[path])
    if fmt in files.TABLE_FORMATS:
        if out is None:
            if fmt == "parquet":
                raise TrackerError("parquet tables need a destination: a folder, or a file name ending in .parquet")
            return Exported(text=c.commits.to_csv(index=False))
        return Exported(paths=files.write_tables(c, out, fmt))
    raise TrackerError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
