"""Write a comparison in one of the export formats, to a path or as text for stdout.

An HTML or Markdown report written to a file gets its figures beside it, as `<stem>_figures/<chart>.png`
and `.pdf` (for LaTeX: `\\includegraphics{report_figures/success-rates.pdf}`); the Markdown file shows the
PNGs. Printed to stdout, a report is one text and writes no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from tracker.analysis.compare import Comparison
from tracker.errors import TrackerError
from tracker.reports import figures, files, html_report, latex, markdown
from tracker.reports.mlflow_links import RunLinks

FORMATS = ("table", "json", "csv", "md", "html", "tex", "parquet")
"""`table` is the terminal view, drawn by the CLI; every other format is written here."""
_TEXT_FORMATS = ("json", "md", "html", "tex")


@dataclass
class Exported:
    paths: list[Path] = field(default_factory=list)
    text: str | None = None
    """What to print when no `out` was given (None when the files are the output)."""


def figures_folder(report: Path) -> Path:
    """Where a report file's figures go: `report.html` -> `report_figures/` beside it."""
    return report.with_name(f"{report.stem}_figures")


def export(c: Comparison, fmt: str, out: str | Path | None = None, *, links: RunLinks | None = None) -> Exported:
    """`json`/`md`/`html`/`tex` go to file `out` or to text; `csv`/`parquet` to folder `out` (one file per
    table) or file `out.<fmt>` (the per-commit table); `csv` without `out` is the per-commit table as text."""
    if fmt in _TEXT_FORMATS:
        return _text_export(c, fmt, None if out is None else Path(out), links)
    if fmt in files.TABLE_FORMATS:
        if out is None:
            if fmt == "parquet":
                raise TrackerError("parquet tables need a destination: a folder, or a file name ending in .parquet")
            return Exported(text=c.commits.to_csv(index=False))
        return Exported(paths=files.write_tables(c, out, fmt))
    raise TrackerError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def _text_export(c: Comparison, fmt: str, path: Path | None, links: RunLinks | None) -> Exported:
    """One text document; a report written to a file also writes its figures (drawn once for both)."""
    if path is not None and path.is_dir():
        raise TrackerError(f"{path} is a folder: give a file name for the {fmt} report")
    with_figures = path is not None and fmt in ("md", "html")
    figs = figures.figures(c) if fmt == "html" or with_figures else {}
    text = _text(c, fmt, path, figs, links)
    if path is None:
        return Exported(text=text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    written = [path]
    if with_figures:
        written += figures.write_files(figs, figures_folder(path))
    return Exported(paths=written)


def _text(c: Comparison, fmt: str, path: Path | None, figs: dict[str, Figure], links: RunLinks | None) -> str:
    if fmt == "html":
        return html_report.render(c, figs=figs, links=links)
    if fmt == "md":
        return markdown.render(c, figures_dir=figures_folder(path).name if path is not None else None,
                               figure_names=list(figs))
    return {"json": files.to_json, "tex": latex.render}[fmt](c)
