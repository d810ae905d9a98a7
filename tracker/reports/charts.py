"""Inline SVG charts for the HTML report, drawn by hand so the report needs no network and no JS.

Each function returns one `<svg>` element string with `data-chart` naming it (tests look for them)
and a `<title>` for screen readers. Colours are a small fixed palette that reads in grey too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

import pandas as pd

PALETTE = {"baseline": "#9aa5b1", "rerun": "#4c78a8", "after": "#2f9e44", "estimate": "#c9a227",
           "actual": "#4c78a8"}
TRANSITION_COLOURS = {"fixed": "#2f9e44", "still_ok": "#8fd19e", "still_failing": "#e8590c",
                      "regressed": "#c92a2a", "not_rerun": "#ced4da", "not_in_baseline": "#748ffc"}
FONT = "font-family:system-ui,sans-serif;font-size:12px"


def _svg(name: str, title: str, width: int, height: int, body: Sequence[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" data-chart="{name}" role="img" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" style="{FONT}"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def _text(x: float, y: float, label: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(label)}</text>'


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for label, colour in items:
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        out.append(_text(x + 14, y, label, "start"))
        x += 24 + 7 * len(label)
    return out


def success_rates(summary: pd.DataFrame) -> str:
    """Grouped bars per repo: success rate before, in the rerun, and after, with 95% Wilson intervals."""
    sides = [("baseline", "before (baseline)"), ("rerun", "rerun only"), ("after", "after (latest state)")]
    groups = list(summary.itertuples(index=False))
    left, top, plot_h, bar_w, gap = 50, 30, 220, 26, 30
    width = max(420, left + len(groups) * (len(sides) * bar_w + gap) + 20)
    height = top + plot_h + 50
    body = _legend([(label, PALETTE[side]) for side, label in sides], left, 16)
    for tick in range(0, 101, 25):
        y = top + plot_h * (1 - tick / 100)
        body.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e9ecef"/>')
        body.append(_text(left - 6, y + 4, f"{tick}%", "end"))
    for g, row in enumerate(groups):
        x0 = left + 10 + g * (len(sides) * bar_w + gap)
        for s, (side, label) in enumerate(sides):
            rate, low, high = (getattr(row, f"{side}_{k}") for k in ("rate", "low", "high"))
            k, n = getattr(row, f"{side}_successes"), getattr(row, f"{side}_commits")
            x = x0 + s * bar_w
            if n == 0 or pd.isna(rate):
                body.append(_text(x + bar_w / 2 - 2, top + plot_h - 4, "n/a", extra='font-size="9"'))
                continue
            h = plot_h * float(rate)
            body.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 4}" '
                        f'height="{h:.1f}" fill="{PALETTE[side]}"><title>{escape(str(row.repo))} {label}: '
                        f'{k}/{n} = {rate:.1%} (95% CI {low:.1%}-{high:.1%})</title></rect>')
            cx, y_low, y_high = x + (bar_w - 4) / 2, top + plot_h * (1 - low), top + plot_h * (1 - high)
            body.append(f'<path class="ci" d="M{cx:.1f},{y_low:.1f}V{y_high:.1f}M{cx - 4:.1f},{y_low:.1f}'
                        f'h8M{cx - 4:.1f},{y_high:.1f}h8" stroke="#212529" fill="none"/>')
            body.append(_text(cx, y_high - 4, f"{k}/{n}", extra='font-size="9"'))
        body.append(_text(x0 + len(sides) * bar_w / 2, top + plot_h + 18, str(row.repo), extra='font-weight="600"'))
    body.append(f'<line x1="{left}" x2="{width - 10}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#495057"/>')
    return _svg("success-rates", "Success rate per repo with 95% Wilson intervals", width, height, body)


def transitions(summary: pd.DataFrame) -> str:
    """One horizontal stacked bar per repo: how many commits were fixed, still failing, regressed..."""
    kinds = list(TRANSITION_COLOURS)
    rows = list(summary.itertuples(index=False))
    left, top, bar_h, plot_w = 70, 34, 22, 520
    height = top + len(rows) * (bar_h + 10) + 10
    body = _legend([(k.replace("_", " "), TRANSITION_COLOURS[k]) for k in kinds], 10, 14)
    for i, row in enumerate(rows):
        total = sum(int(getattr(row, k)) for k in kinds)
        y = top + i * (bar_h + 10)
        body.append(_text(left - 6, y + bar_h / 2 + 4, str(row.repo), "end", 'font-weight="600"'))
        x = float(left)
        for kind in kinds:
            count = int(getattr(row, kind))
            if not count or not total:
                continue
            w = plot_w * count / total
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                        f'fill="{TRANSITION_COLOURS[kind]}"><title>{escape(str(row.repo))} {kind}: {count}'
                        '</title></rect>')
            if w > 18:
                body.append(_text(x + w / 2, y + bar_h / 2 + 4, str(count)))
            x += w
    return _svg("transitions", "Commit transitions per repo", left + plot_w + 20, height, body)


def category_matrix(matrix: pd.DataFrame) -> str:
    """Heat map of baseline category (rows) to rerun category (columns), commits run in both."""
    if matrix.empty:
        return _svg("category-matrix", "No commit was run in both campaigns", 300, 30,
                    [_text(150, 20, "no commit was run in both campaigns")])
    rows, cols = list(matrix.index), list(matrix.columns)
    cell, left = 46, 20 + 7 * max(len(str(r)) for r in rows)
    top = 40 + int(5 * max(len(str(c)) for c in cols))
    peak = max(1, int(matrix.to_numpy().max()))
    body = [_text(left + len(cols) * cell / 2, 14, "rerun category →", extra='font-weight="600"'),
            _text(10, top - 8, "baseline category ↓", "start", 'font-weight="600"')]
    body += _column_labels(cols, left, top, cell)
    for i, name in enumerate(rows):
        y = top + i * cell
        body.append(_text(left - 6, y + cell / 2 + 4, str(name), "end"))
        for j, col in enumerate(cols):
            body += _matrix_cell(left + j * cell, y, cell, str(name), str(col), int(matrix.loc[name, col]), peak)
    return _svg("category-matrix", "Failure category transitions (baseline → rerun)",
                left + len(cols) * cell + 20, top + len(rows) * cell + 10, body)


def _column_labels(cols: Sequence[object], left: int, top: int, cell: int) -> list[str]:
    """The heat map's column names, slanted so long category names fit above narrow cells."""
    out = []
    for j, col in enumerate(cols):
        x = left + j * cell + cell / 2
        out.append(f'<text x="{x:.1f}" y="{top - 6}" transform="rotate(-45 {x:.1f} {top - 6})">'
                   f'{escape(str(col))}</text>')
    return out


def _matrix_cell(x: int, y: int, cell: int, name: str, col: str, count: int, peak: int) -> list[str]:
    """One heat-map cell: shaded by sqrt(count / peak) (green for the `none` column), labelled when not empty."""
    shade = 0 if count == 0 else 0.15 + 0.85 * math.sqrt(count / peak)
    colour = f"rgba(76,120,168,{shade:.2f})" if col != "none" else f"rgba(47,158,68,{shade:.2f})"
    out = [f'<rect class="cell" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
           f'fill="{colour}" stroke="#dee2e6"><title>{escape(name)} → {escape(col)}: '
           f'{count}</title></rect>']
    if count:
        out.append(_text(x + cell / 2 - 1, y + cell / 2 + 4, str(count),
                         extra=f'fill="{"#fff" if shade > 0.6 else "#212529"}"'))
    return out


def cost(cost_frame: pd.DataFrame) -> str:
    """Grouped bars per repo: actual rerun cost vs the plan's estimate (when one was recorded)."""
    rows = list(cost_frame.itertuples(index=False))
    peak = _cost_peak(rows)
    left, top, plot_h, bar_w, gap = 70, 30, 200, 34, 36
    width = max(380, left + len(rows) * (2 * bar_w + gap) + 20)
    body = _legend([("actual", PALETTE["actual"]), ("estimate", PALETTE["estimate"])], left, 16)
    body += _cost_ticks(peak, left, top, plot_h, width)
    for g, row in enumerate(rows):
        x0 = left + 10 + g * (2 * bar_w + gap)
        for s, (key, value) in enumerate((("actual", row.rerun_cost_usd), ("estimate", row.estimate_usd))):
            body += _cost_bar(x0 + s * bar_w, top + plot_h, plot_h, bar_w, str(row.repo), key, value, peak)
        body.append(_text(x0 + bar_w, top + plot_h + 18, str(row.repo), extra='font-weight="600"'))
    body.append(f'<line x1="{left}" x2="{width - 10}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#495057"/>')
    return _svg("cost", "Rerun cost: actual vs estimate (USD)", width, top + plot_h + 40, body)


def _cost_peak(rows: Sequence[Any]) -> float:
    """The cost axis' top: the largest actual or estimated amount (1 when there is none above zero)."""
    values = [float(v) for r in rows for v in (r.rerun_cost_usd, r.estimate_usd) if pd.notna(v)]
    peak = max(values) if values else 1.0
    return peak if peak > 0 else 1.0


def _cost_ticks(peak: float, left: int, top: int, plot_h: int, width: int) -> list[str]:
    """Five gridlines from $0 to the peak, labelled in whole dollars unless the amounts are small."""
    out = []
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h * (1 - tick / 4)
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e9ecef"/>')
        out.append(_text(left - 6, y + 4, f"${value:,.0f}" if peak >= 20 else f"${value:,.2f}", "end"))
    return out


def _cost_bar(x: int, base: int, plot_h: int, bar_w: int, repo: str, key: str, value: Any, peak: float) -> list[str]:
    """One amount's bar standing on `base` with its label, or `none` when the amount is unknown."""
    if pd.isna(value):
        return [_text(x + bar_w / 2, base - 4, "none", extra='font-size="9"')]
    h = plot_h * float(value) / peak
    return [f'<rect class="bar" x="{x}" y="{base - h:.1f}" width="{bar_w - 4}" height="{h:.1f}" '
            f'fill="{PALETTE[key]}"><title>{escape(repo)} {key}: ${float(value):,.2f}'
            '</title></rect>',
            _text(x + (bar_w - 4) / 2, base - h - 4, f"${float(value):,.0f}", extra='font-size="9"')]


def criteria(criteria_frame: pd.DataFrame) -> str:
    """Per scope, the measured count as a bar over its planned commits, each level's threshold marked.

    Each scope has its own scale (its planned `of`, else its largest figure), so vLLM's 53 and the
    combined 104 both read as "how far along the plan".
    """
    scopes = list(dict.fromkeys(criteria_frame["scope"]))
    left, top, bar_h, plot_w, step = 70, 20, 22, 480, 56
    body = []
    for i, scope in enumerate(scopes):
        part = criteria_frame[criteria_frame["scope"] == scope]
        count, reached, of = int(part["count"].iloc[0]), str(part["level_reached"].iloc[0]), part["of"].iloc[0]
        peak = max([1, count, *part["threshold"].tolist(), *([] if pd.isna(of) else [int(of)])])
        y = top + i * step
        body.append(_text(left - 6, y + bar_h / 2 + 4, str(scope), "end", 'font-weight="600"'))
        body.append(f'<rect x="{left}" y="{y}" width="{plot_w}" height="{bar_h}" fill="#f1f3f5"/>')
        w = plot_w * count / peak
        colour = "#c92a2a" if reached == "below_minimum" else "#2f9e44"
        body.append(f'<rect class="bar" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                    f'<title>{escape(str(scope))}: {count} ({escape(reached)})</title></rect>')
        planned = "" if pd.isna(of) else f" of {int(of)}"
        body.append(_text(left + plot_w + 10, y + bar_h / 2 + 4, f"{count}{planned}: {reached.replace('_', ' ')}",
                          "start"))
        for j, (level, threshold) in enumerate(zip(part["level"], part["threshold"], strict=True)):
            x = left + plot_w * int(threshold) / peak
            label_y = y + bar_h + 11 + 10 * (j % 3)  # staggered: close thresholds would overlap
            body.append(f'<line class="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 3}" y2="{label_y - 8}" '
                        f'stroke="#212529" stroke-dasharray="3,2"/>')
            body.append(_text(x, label_y, f"{level} {threshold}", "start", 'font-size="9"'))
    return _svg("criteria", "Success criteria: count vs thresholds", left + plot_w + 190,
                top + len(scopes) * step + 20, body)
