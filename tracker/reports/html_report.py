"""The comparison as one self-contained HTML file: inline CSS and inline SVG charts, no script, no network.

It opens from a mail attachment or an artifact store as it is; the per-commit table sits in a
`<details>` so a 20,000-commit report still opens on its headline.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from tracker.analysis.compare import Comparison
from tracker.reports import charts, display

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#212529;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dee2e6}
.meta{color:#6c757d;font-size:.9rem}.headline{background:#f8f9fa;border-left:4px solid #4c78a8;padding:.6rem 1rem}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}th,td{border:1px solid #dee2e6;padding:.25rem .5rem}
th{background:#f1f3f5;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{margin:.8rem 0;overflow-x:auto}.notes li{color:#8a6d00}
.level-below_minimum{color:#c92a2a;font-weight:600}.level-ok{color:#2f9e44;font-weight:600}
tr.fixed td:nth-child(8){color:#2f9e44;font-weight:600}tr.regressed td:nth-child(8){color:#c92a2a;font-weight:600}
details summary{cursor:pointer;font-weight:600;margin:.5rem 0}
"""


def _numeric(value: str) -> bool:
    stripped = value.replace(",", "").replace(".", "").replace("$", "").replace("%", "").replace("/", "")
    return stripped.replace("–", "").replace("×", "").lstrip("-").isdigit()


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, name: str,
               row_classes: Sequence[str] | None = None) -> str:
    if not headers:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{escape(row_classes[i])}"' if row_classes else ""
        cells = "".join(f'<td class="num">{escape(v)}</td>' if _numeric(v) else f"<td>{escape(v)}</td>" for v in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table data-table="{name}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def render(c: Comparison) -> str:
    """The report as an HTML string."""
    title = f"{c.rerun['name']} vs {c.baseline['name']}"
    fix = c.rerun.get("agent_fix_commit")
    meta = (f"Agent {escape(str(c.rerun.get('agent')))} / model {escape(str(c.rerun.get('model')))}"
            + (f", agent fix <code>{escape(str(fix))}</code>" if fix else "")
            + f" · generated {escape(str(c.meta.get('generated_at')))}"
            + f" · prices {escape(str(c.meta.get('price_table')))}")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>", f'<p class="meta">{meta}</p>',
        '<div class="headline"><ul>' + "".join(f"<li>{escape(line)}</li>" for line in display.headline(c))
        + "</ul></div>",
        "<h2>Success per repo</h2>",
        f'<div class="chart">{charts.success_rates(c.summary)}</div>',
        html_table(*display.summary(c), name="summary"),
        '<p class="meta">Successes/commits with 95% Wilson intervals (error bars). <em>Before</em>: the baseline; '
        "<em>rerun only</em>: the rerun campaign; <em>after</em>: each commit's latest state. McNemar: exact, "
        "on commits run in both.</p>",
        "<h2>Transitions</h2>",
        f'<div class="chart">{charts.transitions(c.summary)}</div>',
        "<h3>Failure category, baseline → rerun</h3>",
        f'<div class="chart">{charts.category_matrix(c.transition_matrix())}</div>',
        html_table(*display.transition_matrix(c), name="transition-matrix"),
    ]
    if len(c.control):
        parts += ["<h2>Control arm</h2>", html_table(*display.control(c), name="control")]
    if len(c.attribution):
        parts += ["<h2>Attribution</h2>", html_table(*display.attribution(c), name="attribution")]
    if len(c.criteria):
        headers, rows = display.criteria(c)
        parts += ["<h2>Success criteria</h2>", f'<div class="chart">{charts.criteria(c.criteria)}</div>',
                  html_table(headers, rows, name="criteria")]
    parts += ["<h2>Cost</h2>", f'<div class="chart">{charts.cost(c.cost)}</div>',
              html_table(*display.cost(c), name="cost")]
    if c.notes:
        parts += ['<h2>Notes</h2><ul class="notes">', *[f"<li>{escape(n)}</li>" for n in c.notes], "</ul>"]
    parts.append(f'<p class="meta">Best attempt rule: {escape(str(c.meta.get("best_attempt_rule")))}. '
                 f'Success: {escape(str(c.meta.get("success_rule")))}.</p>')
    headers, rows = display.commits(c)
    parts += [f"<h2>Commits</h2><details{' open' if len(rows) <= 300 else ''}>"
              f"<summary>{len(rows):,} commits</summary>",
              html_table(headers, rows, name="commits", row_classes=c.commits["transition"].tolist()),
              "</details>", "</body></html>"]
    return "\n".join(parts)


def write(c: Comparison, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(c), encoding="utf-8")
    return path
