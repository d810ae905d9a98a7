"""The comparison as one self-contained HTML file: inline CSS, inline SVG figures, one inline script.

It opens from a mail attachment or an artifact store as it is, with no network: the figures are
matplotlib's SVG (text in a generic font family), the only script sorts the tables by a clicked header,
and the only links are to the commits' MLflow runs when the report was given the UI's address. The
per-commit table sits in a `<details>` so a 20,000-commit report still opens on its headline.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from matplotlib.figure import Figure

from tracker.analysis.compare import Comparison
from tracker.reports import display, figures
from tracker.reports.mlflow_links import RunLinks

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#212529;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dee2e6}
.meta{color:#6c757d;font-size:.9rem}.headline{background:#f8f9fa;border-left:4px solid #4c78a8;padding:.6rem 1rem}
dl.run{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;font-size:.85rem;margin:.6rem 0}
dl.run dt{color:#6c757d}dl.run dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}th,td{border:1px solid #dee2e6;padding:.25rem .5rem}
th{background:#f1f3f5;text-align:left;vertical-align:bottom}td.num{text-align:right;font-variant-numeric:tabular-nums}
td{white-space:nowrap}td.long{white-space:normal;min-width:14rem}
th button{all:unset;cursor:pointer}th button::after{content:" \\2195";color:#adb5bd}
th[aria-sort=ascending] button::after{content:" \\2191";color:#212529}
th[aria-sort=descending] button::after{content:" \\2193";color:#212529}
th button:focus-visible{outline:2px solid #4c78a8}
figure.chart{margin:.8rem 0}figure.chart svg{display:block;max-width:100%;height:auto}
figure.chart figcaption{color:#6c757d;font-size:.85rem}.notes li{color:#8a6d00}
.level-below_minimum{color:#c92a2a;font-weight:600}.level-ok{color:#2f9e44;font-weight:600}
tr.fixed td:nth-child(8){color:#2f9e44;font-weight:600}tr.regressed td:nth-child(8){color:#c92a2a;font-weight:600}
details summary{cursor:pointer;font-weight:600;margin:.5rem 0}
"""

SORT_SCRIPT = r"""
(function () {
  "use strict";
  var collator = new Intl.Collator("en", {sensitivity: "base"});
  function missing(t) { return t === "" || t === "\u2013" || t === "-"; }
  function number(t) {
    var rate = /=\s*(-?\d+(?:\.\d+)?)%/.exec(t);
    if (rate) return parseFloat(rate[1]);
    var s = t.replace(/^[<>]\s*/, "").replace(/[$,\u00d7%\s]/g, "").replace(/^\+/, "");
    var m = /^(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)(?:\/.*)?$/i.exec(s);
    return m ? parseFloat(m[1]) : null;
  }
  function sortBy(table, th, col) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var text = rows.map(function (r) {
      var c = r.cells[col];
      return c ? (c.getAttribute("data-sort") || c.textContent).trim() : "";
    });
    var nums = text.map(number);
    var numeric = text.every(function (t, i) { return nums[i] !== null || missing(t); });
    var sign = ascending ? 1 : -1, order = rows.map(function (_, i) { return i; });
    order.sort(function (a, b) {
      var ma = missing(text[a]), mb = missing(text[b]);
      if (ma || mb) return ma === mb ? a - b : (ma ? 1 : -1);  // missing values last either way
      var d = numeric ? nums[a] - nums[b] : collator.compare(text[a], text[b]);
      return d ? sign * d : a - b;
    });
    var fragment = document.createDocumentFragment();
    order.forEach(function (i) { fragment.appendChild(rows[i]); });
    body.appendChild(fragment);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table[data-table]"), function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      var button = th.querySelector("button");
      if (button) button.addEventListener("click", function () { sortBy(table, th, col); });
    });
  });
})();
"""
"""Sorts a table by the clicked header: numbers numerically (a rate by its percentage), text alphabetically,
missing values last; a second click reverses; `aria-sort` says the order. Keys are read once per click."""


def _numeric(value: str) -> bool:
    stripped = value.replace(",", "").replace(".", "").replace("$", "").replace("%", "").replace("/", "")
    return stripped.replace("–", "").replace("×", "").lstrip("-").isdigit()


def _cell(value: str) -> str:
    """A cell: numbers right-aligned, long text allowed to wrap (everything else stays on one line)."""
    cls = ' class="num"' if _numeric(value) else ' class="long"' if len(value) > 40 else ""
    return f"<td{cls}>{escape(value)}</td>"


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, name: str,
               row_classes: Sequence[str] | None = None, extra: Sequence[str] | None = None) -> str:
    """A sortable table; `extra` holds one ready-made cell's HTML per row (the MLflow links), after the rest."""
    if not headers:
        return "<p><em>none</em></p>"
    head = "".join(f'<th aria-sort="none"><button type="button">{escape(h)}</button></th>' for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{escape(row_classes[i])}"' if row_classes else ""
        cells = "".join(_cell(v) for v in row)
        body.append(f"<tr{cls}>{cells}{extra[i] if extra else ''}</tr>")
    return (f'<div class="scroll"><table data-table="{name}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _figure(figs: dict[str, Figure], name: str) -> str:
    if name not in figs:
        return ""
    return (f'<figure class="chart" data-chart="{name}">{figures.inline_svg(figs[name], name)}'
            f"<figcaption>{escape(figures.TITLES[name])}</figcaption></figure>")


def _link_cells(c: Comparison, links: RunLinks | None) -> list[str] | None:
    """One cell per commit row with its MLflow runs link(s), or None without links."""
    if links is None or not links.experiments:
        return None
    out = []
    for commit in c.commits["commit"].tolist():
        anchors = " ".join(f'<a href="{escape(url)}" rel="noopener" data-commit="{escape(commit)}">{escape(label)}</a>'
                           for label, url in links.for_commit(commit))
        out.append(f"<td>{anchors}</td>")
    return out


def render(c: Comparison, *, figs: dict[str, Figure] | None = None, links: RunLinks | None = None) -> str:
    """The report as an HTML string (`figs`: figures already drawn, e.g. for the PNG/PDF files too)."""
    figs = figures.figures(c) if figs is None else figs
    title = f"{c.rerun['name']} vs {c.baseline['name']}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        '<dl class="run">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in display.run_metadata(c))
        + "</dl>",
        '<div class="headline"><ul>' + "".join(f"<li>{escape(line)}</li>" for line in display.headline(c))
        + "</ul></div>",
        "<h2>Success per repo</h2>", _figure(figs, "success-rates"),
        html_table(*display.summary(c), name="summary"),
        '<p class="meta">Successes/commits with 95% Wilson intervals (error bars). <em>Before</em>: the baseline; '
        "<em>rerun only</em>: the rerun campaign; <em>after</em>: each commit's latest state. McNemar: exact, "
        "on commits run in both.</p>",
        "<h2>Transitions</h2>", _figure(figs, "transitions"),
        "<h3>Failure category, baseline → rerun</h3>", _figure(figs, "category-matrix"),
        html_table(*display.transition_matrix(c), name="transition-matrix"),
    ]
    if len(c.control):
        parts += ["<h2>Control arm</h2>", html_table(*display.control(c), name="control")]
    if len(c.attribution):
        parts += ["<h2>Attribution</h2>", html_table(*display.attribution(c), name="attribution")]
    if len(c.criteria):
        parts += ["<h2>Success criteria</h2>", _figure(figs, "criteria"),
                  html_table(*display.criteria(c), name="criteria")]
    parts += ["<h2>Cost</h2>", _figure(figs, "cost"), html_table(*display.cost(c), name="cost")]
    if "speedups" in figs:
        parts += ["<h2>Speedups</h2>", _figure(figs, "speedups")]
    if c.notes:
        parts += ['<h2>Notes</h2><ul class="notes">', *[f"<li>{escape(n)}</li>" for n in c.notes], "</ul>"]
    parts.append(f'<p class="meta">Best attempt rule: {escape(str(c.meta.get("best_attempt_rule")))}. '
                 f'Success: {escape(str(c.meta.get("success_rule")))}.</p>')
    parts += _commit_section(c, links)
    parts += [f"<script>{SORT_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts)


def _commit_section(c: Comparison, links: RunLinks | None) -> list[str]:
    headers, rows = display.commits(c)
    cells = _link_cells(c, links)
    head = [*headers, "MLflow"] if cells is not None else headers
    return [f"<h2>Commits</h2><details{' open' if len(rows) <= 300 else ''}>"
            f"<summary>{len(rows):,} commits</summary>",
            html_table(head, rows, name="commits", row_classes=c.commits["transition"].tolist(), extra=cells),
            "</details>"]


def write(c: Comparison, path: str | Path, *, figs: dict[str, Figure] | None = None,
          links: RunLinks | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(c, figs=figs, links=links), encoding="utf-8")
    return path
