"""Exports of a comparison: Markdown, self-contained HTML, CSV/Parquet/JSON tables."""
