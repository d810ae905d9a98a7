"""Several campaigns side by side, as people read them: a headline, the per-repo grid, the pairs, the commits.

One set of cell strings (`tables`) feeds the terminal, Markdown and HTML, so all three say the same thing;
JSON and CSV write the typed tables of `tracker.analysis.side_by_side`.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from tracker.analysis.side_by_side import SideBySide
from tracker.errors import TrackerError
from tracker.reports import files, html_report, markdown
from tracker.reports.display import Table, number, p_value, rate, usd

FORMATS = ("table", "json", "csv", "md", "html")


def _signed(value: object) -> str:
    return "–" if not isinstance(value, float | int) or value != value else f"{float(value):+.1%}"


def _interval(low: object, high: object) -> str:
    if not isinstance(low, float | int) or low != low or not isinstance(high, float | int):
        return "–"
    return f"[{float(low):+.1%}, {float(high):+.1%}]"


def headline(s: SideBySide) -> list[str]:
    """One sentence per campaign on the shared commits, then each pair's difference in plain words."""
    overall = s.summary[s.summary["repo"] == "all"]
    if overall.empty or int(overall["commits"].max()) == 0:
        return ["The campaigns share no commit."]
    n = int(overall["commits"].iloc[0])
    lines = [f"On the {n:,} commits all {len(s.names)} campaigns ran (at level {s.meta.get('level')}):"]
    lines += [f"{row.campaign}: {rate(row.successes, row.commits, row.low, row.high)} succeeded; "
              f"pass@1 {_plain(row.pass_at_1)} over {int(row.attempts):,} attempts"
              for row in overall.itertuples()]
    for row in s.pairs[s.pairs["repo"] == "all"].itertuples():
        lines.append(f"{row.campaign} vs {row.against}: {_signed(row.difference)} "
                     f"{_interval(row.low, row.high)} (95%, bootstrap over commits); "
                     f"{int(row.only_campaign)} commits only {row.campaign} solved, {int(row.only_against)} only "
                     f"{row.against}; exact McNemar p {p_value(row.mcnemar_p)} (Holm {p_value(row.holm_p)})")
    return lines


def _plain(value: object) -> str:
    return "–" if not isinstance(value, float | int) or value != value else f"{float(value):.1%}"


def summary(s: SideBySide) -> Table:
    headers = ["repo", "campaign", "success (95% Wilson)", "pass@1 per attempt", "attempts", "cost",
               "cost per success", "speedup (geomean)", "not shared"]
    rows = [[str(r.repo), str(r.campaign), rate(r.successes, r.commits, r.low, r.high), _plain(r.pass_at_1),
             number(r.attempts), usd(r.cost_usd), usd(r.cost_per_success_usd), number(r.speedup_geomean, 2),
             number(r.not_shared)]
            for r in s.summary.itertuples()]
    return headers, rows


def pairs(s: SideBySide) -> Table:
    headers = ["repo", "campaign", "against", "commits", "both", "only campaign", "only against", "neither",
               "difference [95%]", "pass@1 difference [95%]", "McNemar p (exact)", "Holm p"]
    rows = [[str(r.repo), str(r.campaign), str(r.against), number(r.commits), number(r.both),
             number(r.only_campaign), number(r.only_against), number(r.neither),
             f"{_signed(r.difference)} {_interval(r.low, r.high)}",
             f"{_signed(r.pass_at_1_difference)} {_interval(r.pass_at_1_low, r.pass_at_1_high)}",
             p_value(r.mcnemar_p), p_value(r.holm_p)]
            for r in s.pairs.itertuples()]
    return headers, rows


def commit_grid(s: SideBySide) -> Table:
    """One row per shared commit: its status in each campaign, the category beside a failure."""
    if s.commits.empty:
        return [], []
    cells = s.commits.assign(cell=[status if status == "success" else f"{status} ({category})"
                                   for status, category in zip(s.commits["status"], s.commits["category"],
                                                               strict=True)])
    grid = cells.pivot(index=["repo", "commit"], columns="campaign", values="cell").reindex(columns=s.names)
    rows = [[repo, sha[:12], *[str(v) for v in values]] for (repo, sha), values in zip(grid.index, grid.to_numpy(),
                                                                                      strict=True)]
    return ["repo", "commit", *s.names], rows


def _title(s: SideBySide) -> str:
    return " vs ".join(s.names)


def render_markdown(s: SideBySide) -> str:
    parts = [f"# {_title(s)}", "", *[f"- {line}" for line in headline(s)], "", "## Per repo", "",
             markdown.table(*summary(s)), "", f"## Against {s.names[0]}", "", markdown.table(*pairs(s)), ""]
    if s.notes:
        parts += ["## Notes", "", *[f"- {note}" for note in s.notes], ""]
    parts += [f"Success: {s.meta.get('success_rule')}. Best attempt rule: {s.meta.get('best_attempt_rule')}.", "",
              "## Commits", "", markdown.table(*commit_grid(s)), ""]
    return "\n".join(parts)


def render_html(s: SideBySide) -> str:
    """One self-contained page (the compare report's CSS and sorting script; no network)."""
    title = _title(s)
    grid_headers, grid_rows = commit_grid(s)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{html_report.CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        '<div class="headline"><ul>' + "".join(f"<li>{escape(line)}</li>" for line in headline(s)) + "</ul></div>",
        "<h2>Per repo</h2>", html_report.html_table(*summary(s), name="summary"),
        f"<h2>Against {escape(s.names[0])}</h2>", html_report.html_table(*pairs(s), name="pairs"),
    ]
    if s.notes:
        parts += ['<h2>Notes</h2><ul class="notes">', *[f"<li>{escape(n)}</li>" for n in s.notes], "</ul>"]
    parts += [f'<p class="meta">Success: {escape(str(s.meta.get("success_rule")))}. Intervals of differences: '
              "percentile bootstrap resampling commits (seeded). McNemar: exact, Holm-adjusted over the pairs.</p>",
              f"<h2>Commits</h2><details{' open' if len(grid_rows) <= 300 else ''}>"
              f"<summary>{len(grid_rows):,} shared commits</summary>",
              html_report.html_table(grid_headers, grid_rows, name="commits"), "</details>",
              f"<script>{html_report.SORT_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts)


def to_json(s: SideBySide) -> str:
    return json.dumps(s.to_dict(), indent=2, default=str, ensure_ascii=False)


def export(s: SideBySide, fmt: str, out: Path | None) -> tuple[str | None, list[Path]]:
    """(text for stdout, paths written): `json`/`md`/`html` to file `out` or as text; `csv` to folder `out`
    (one file per table) or as the per-commit table on stdout."""
    if fmt == "csv":
        if out is None:
            return s.commits.to_csv(index=False), []
        return None, [files.write_table(frame, out / f"{name}.csv", "csv") for name, frame in s.tables().items()]
    render = {"json": to_json, "md": render_markdown, "html": render_html}.get(fmt)
    if render is None:
        raise TrackerError(f"side-by-side comparisons are written as {', '.join(FORMATS)}, not {fmt}")
    text = render(s)
    if out is None:
        return text, []
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return None, [out]
