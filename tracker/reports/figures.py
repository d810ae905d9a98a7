"""The report's figures, drawn with matplotlib: inline SVG for the HTML, PNG and PDF files for LaTeX.

Every figure is a `matplotlib.figure.Figure` made here (never pyplot, so nothing global is kept between
reports), from the comparison's already aggregated tables: a 20,000-commit comparison draws as fast as a
tiny one (the speedup histogram bins its values once). Rendering settings live in `_RC`, applied only
while a figure is saved. Text stays text in the SVG with a generic font family, so the HTML needs no
font and no network; artists carry ids (`bar-<repo>-<side>`, `cell-<i>-<j>`...) tests can count.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter

from tracker.analysis.compare import Comparison

WIDTH_IN = 7.2
"""Figure width: 7.2 in is 518 pt, 691 CSS px, so every figure fits an 800 px page at its natural size."""
PALETTE = {"baseline": "#8c96a3", "rerun": "#4c78a8", "after": "#2f9e44", "estimate": "#c9a227",
           "actual": "#4c78a8"}
TRANSITION_COLOURS = {"fixed": "#2f9e44", "still_ok": "#8fd19e", "still_failing": "#e8590c",
                      "regressed": "#c92a2a", "not_rerun": "#ced4da", "not_in_baseline": "#748ffc"}
REPO_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2")
SIDES = (("baseline", "before (baseline)"), ("rerun", "rerun only"), ("after", "after (latest state)"))
FILE_FORMATS = ("png", "pdf")
PNG_DPI = 200
_RC: dict[Any, Any] = {
    "svg.fonttype": "none", "font.family": ["sans-serif"],
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "sans-serif"], "font.size": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 10, "axes.titleweight": "bold",
    "legend.frameon": False, "pdf.fonttype": 42, "svg.hashsalt": "track",
}
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}


def wrap_label(name: str, width: int = 14) -> str:
    """A category name on lines of about `width` characters, broken after `_` or `:` (never cut short)."""
    parts = re.findall(r"[^_:]+[_:]?|[_:]", str(name))
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(lines) or str(name)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _styled(make: Callable[_P, _R]) -> Callable[_P, _R]:
    """Build a figure under the report's settings: fonts, sizes and spines are read when artists are made."""
    @functools.wraps(make)
    def styled(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with mpl.rc_context(_RC):
            return make(*args, **kwargs)
    return styled


def _figure(height: float) -> Figure:
    return Figure(figsize=(WIDTH_IN, height), layout="constrained")


def _percent_axis(ax: Any) -> None:
    ax.set_ylim(0, 1.08)
    ax.set_yticks(np.linspace(0, 1, 5))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.grid(axis="y", color="#e9ecef", linewidth=0.8)
    ax.set_axisbelow(True)


@_styled
def success_rates(summary: pd.DataFrame) -> Figure:
    """Grouped bars per repo: success before, in the rerun and after, each with its 95% Wilson interval."""
    fig = _figure(3.2)
    ax = fig.add_subplot()
    repos = [str(r) for r in summary["repo"]]
    x = np.arange(len(repos))
    width = 0.26
    for s, (side, label) in enumerate(SIDES):
        offset = x + (s - 1) * width
        for i, row in enumerate(summary.itertuples(index=False)):
            k, n = int(getattr(row, f"{side}_successes")), int(getattr(row, f"{side}_commits"))
            rate, low, high = (getattr(row, f"{side}_{key}") for key in ("rate", "low", "high"))
            if n == 0 or pd.isna(rate):
                ax.text(offset[i], 0.02, "n/a", ha="center", fontsize=8, color="#6c757d")
                continue
            first = label not in ax.get_legend_handles_labels()[1]
            ax.bar(offset[i], float(rate), width * 0.92, color=PALETTE[side], label=label if first else None,
                   gid=f"bar-{repos[i]}-{side}")
            bars = ax.errorbar(offset[i], float(rate), yerr=[[float(rate) - float(low)], [float(high) - float(rate)]],
                               fmt="none", ecolor="#212529", elinewidth=0.9, capsize=2.5)
            bars.lines[2][0].set_gid(f"ci-{repos[i]}-{side}")  # the vertical line (its caps are lines of their own)
            ax.text(offset[i], float(high) + 0.015, f"{k}/{n}", ha="center", va="bottom", fontsize=7.5)
    ax.set_xticks(x, repos)
    _percent_axis(ax)
    ax.set_ylabel("commits succeeding")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=9)
    return fig


@_styled
def transitions(summary: pd.DataFrame) -> Figure:
    """One horizontal stacked bar per repo: commits fixed, still failing, regressed, still ok, not rerun..."""
    rows = list(summary.itertuples(index=False))
    fig = _figure(1.1 + 0.42 * len(rows))
    ax = fig.add_subplot()
    repos = [str(r.repo) for r in rows][::-1]
    left = np.zeros(len(rows))
    totals = np.array([sum(int(getattr(r, k)) for k in TRANSITION_COLOURS) for r in rows][::-1], dtype=float)
    for kind, colour in TRANSITION_COLOURS.items():
        counts = np.array([int(getattr(r, kind)) for r in rows][::-1], dtype=float)
        if not counts.any():
            continue
        drawn = ax.barh(repos, counts, left=left, color=colour, label=kind.replace("_", " "), height=0.62)
        for patch, repo in zip(drawn, repos, strict=True):
            patch.set_gid(f"bar-{repo}-{kind}")
        _segment_labels(ax, counts, left, totals)
        left += counts
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v):,}"))
    ax.set_xlabel("commits")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=6, fontsize=8.5, handlelength=1.2,
              columnspacing=1.0)
    return fig


def _segment_labels(ax: Any, counts: np.ndarray, left: np.ndarray, totals: np.ndarray) -> None:
    """Each stacked segment's count, inside it, where the segment is wide enough to hold it (> 6%)."""
    for i, (count, start) in enumerate(zip(counts, left, strict=True)):
        if count and totals[i] and count / totals[i] > 0.06:
            ax.text(start + count / 2, i, f"{int(count):,}", ha="center", va="center", fontsize=8)


@_styled
def category_matrix(matrix: pd.DataFrame) -> Figure:
    """Heat map of baseline category (rows) to rerun category (columns), commits run in both."""
    if matrix.empty:
        fig = _figure(0.6)
        fig.text(0.5, 0.5, "no commit was run in both campaigns", ha="center", va="center")
        return fig
    rows, cols = [str(r) for r in matrix.index], [str(c) for c in matrix.columns]
    values = matrix.to_numpy(dtype=float)
    fig = _figure(min(9.0, 1.6 + 0.42 * len(rows) + 0.08 * max(len(wrap_label(c)) for c in cols) / 2))
    ax = fig.add_subplot()
    peak = max(1.0, float(values.max()))
    # pcolormesh, not imshow: quads stay vectors in SVG and PDF (imshow would embed a bitmap)
    image = ax.pcolormesh(np.arange(len(cols) + 1) - 0.5, np.arange(len(rows) + 1) - 0.5,
                          np.ma.masked_equal(values, 0), cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=peak))
    ax.set_xlim(-0.5, len(cols) - 0.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_facecolor("#f8f9fa")
    _cells(ax, values, peak)
    ax.set_xticks(range(len(cols)), [wrap_label(c, 20) for c in cols], rotation=40, ha="right", rotation_mode="anchor",
                  fontsize=8.5)
    ax.set_yticks(range(len(rows)), [wrap_label(r, 22) for r in rows], fontsize=8.5)
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("rerun category")
    ax.set_ylabel("baseline category")
    _colour_bar(fig, ax, image)
    return fig


def _cells(ax: Any, values: np.ndarray, peak: float) -> None:
    """Each heat-map cell's border (with its id) and count (white on dark cells); an empty cell stays blank."""
    for i, j in np.ndindex(values.shape):
        count = int(values[i, j])
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#dee2e6", linewidth=0.6,
                               gid=f"cell-{i}-{j}"))
        if count:
            dark = math.sqrt(count / peak) > 0.6
            ax.text(j, i, f"{count:,}", ha="center", va="center", fontsize=8.5, color="white" if dark else "#212529")


def _colour_bar(fig: Figure, ax: Any, image: Any) -> None:
    """The heat map's scale in whole commits, drawn as vectors."""
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.locator = MaxNLocator(integer=True, nbins=5)
    bar.update_ticks()
    if bar.solids is not None:
        bar.solids.set_rasterized(False)  # matplotlib rasterizes long colour bars: keep the SVG all vector
        bar.solids.set_edgecolor("face")  # and without seams between its bands
    bar.set_label("commits", fontsize=8)
    bar.ax.tick_params(labelsize=7.5)


@_styled
def criteria(frame: pd.DataFrame) -> Figure:
    """Per scope, the count measured as a bar over its planned commits, each level's threshold marked.

    Each scope has its own axis (its planned `of`, else its largest figure), so vLLM's 53 and the combined
    104 both read as "how far along the plan"."""
    scopes = list(dict.fromkeys(str(s) for s in frame["scope"]))
    fig = _figure(0.5 + 0.95 * len(scopes))
    axes = fig.subplots(len(scopes), 1, squeeze=False)[:, 0]
    for ax, scope in zip(axes, scopes, strict=True):
        _criteria_row(ax, frame[frame["scope"] == scope], scope)
    axes[-1].set_xlabel("commits succeeding in the rerun")
    return fig


def _criteria_row(ax: Any, part: pd.DataFrame, scope: str) -> None:
    """One scope's bar, its thresholds (dashed, labelled above) and the level reached (at the right)."""
    first = part.iloc[0]
    count, reached, of = int(first["count"]), str(first["level_reached"]), first["of"]
    planned = first["planned"]
    scale = next((int(v) for v in (planned, of) if pd.notna(v)), None)
    peak = max([1, count, *[int(t) for t in part["threshold"]], *([] if scale is None else [scale])])
    ax.barh([0], [scale or peak], color="#f1f3f5", height=0.55)
    ax.barh([0], [count], color="#c92a2a" if reached == "below_minimum" else "#2f9e44", height=0.55,
            gid=f"bar-{scope}")
    for j, (level, threshold) in enumerate(zip(part["level"], part["threshold"], strict=True)):
        height = 0.38 + 0.42 * (j % 2)  # staggered: neighbouring thresholds' labels would overlap
        ax.plot([int(threshold)] * 2, [-0.36, height], color="#212529", linestyle="--", linewidth=0.8)
        # near the right edge the label ends at its line, clear of the level text beside the axis
        align = "right" if int(threshold) >= 0.8 * peak else "center"
        ax.text(int(threshold), height, f"{level} {int(threshold)}", ha=align, va="bottom", fontsize=7.5)
    of_text = "" if scale is None else f" of {scale}"
    ax.text(1.01, 0.5, f"{count}{of_text}\n{reached.replace('_', ' ')}", transform=ax.transAxes, va="center",
            fontsize=7.5)
    ax.set_xlim(0, peak * 1.02)
    ax.set_ylim(-0.45, 1.2)
    ax.set_yticks([0], [scope], fontweight="bold")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)


def _usd(peak: float) -> FuncFormatter:
    """Dollar ticks: whole dollars from a $20 peak, cents below."""
    return FuncFormatter(lambda v, _: f"${v:,.0f}" if peak >= 20 else f"${v:,.2f}")


def _cost_bar(ax: Any, at: float, value: Any, key: str, repo: str, peak: float) -> None:
    """One amount's bar with its label, or `none` when the amount is unknown (legend label on the first)."""
    if pd.isna(value):
        ax.text(at, peak * 0.02, "none", ha="center", va="bottom", fontsize=8, color="#6c757d")
        return
    first = key not in ax.get_legend_handles_labels()[1]
    ax.bar(at, float(value), 0.34, color=PALETTE[key], label=key if first else None, gid=f"bar-{repo}-{key}")
    ax.text(at, float(value) + peak * 0.01, _usd(peak)(float(value), None), ha="center", va="bottom", fontsize=7.5)


@_styled
def cost(frame: pd.DataFrame) -> Figure:
    """Grouped bars per repo: actual rerun cost vs the plan's estimate (`none` where an amount is unknown)."""
    fig = _figure(2.8)
    ax = fig.add_subplot()
    repos = [str(r) for r in frame["repo"]]
    values = [float(v) for c in ("rerun_cost_usd", "estimate_usd") for v in frame[c] if pd.notna(v)]
    peak = max(values) if values and max(values) > 0 else 1.0
    x = np.arange(len(repos))
    for s, (key, column) in enumerate((("actual", "rerun_cost_usd"), ("estimate", "estimate_usd"))):
        for i, value in enumerate(frame[column]):
            _cost_bar(ax, x[i] + (s - 0.5) * 0.36, value, key, repos[i], peak)
    ax.set_xticks(x, repos)
    ax.set_ylim(0, peak * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_formatter(_usd(peak))
    ax.grid(axis="y", color="#e9ecef", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_ylabel("USD")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=9)
    return fig


@_styled
def speedups(commits: pd.DataFrame, level: str = "agent") -> Figure | None:
    """The rerun commits' speedups (log-scale x, stacked by repo), 1x and the geometric mean marked; None
    when no rerun commit was measured."""
    measured = commits[commits["rerun_speedup"].notna() & (commits["rerun_speedup"] > 0)]
    if measured.empty:
        return None
    values = measured["rerun_speedup"].astype(float).to_numpy()
    low, high = float(values.min()), float(values.max())
    if high / low < 1.5:
        low, high = low / 1.25, high * 1.25
    bins = np.geomspace(low, high, 31)
    repos = sorted(set(measured["repo"]))
    fig = _figure(2.8)
    ax = fig.add_subplot()
    ax.hist([measured.loc[measured["repo"] == r, "rerun_speedup"].astype(float).to_numpy() for r in repos],
            bins=bins.tolist(),
            stacked=True, label=repos, color=[REPO_COLOURS[i % len(REPO_COLOURS)] for i in range(len(repos))])
    geomean = float(np.exp(np.log(values).mean()))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=_log_subs(high / low)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axvline(1.0, color="#6c757d", linewidth=0.8, linestyle=":")
    ax.axvline(geomean, color="#c92a2a", linewidth=1.2, gid="geomean")
    ax.text(geomean, 1.0, f" geometric mean {geomean:.2f}×", transform=ax.get_xaxis_transform(), color="#c92a2a",
            fontsize=7.5, va="top")
    ax.set_xlabel(f"speedup of the rerun's best attempt (outcome level {level})")
    ax.set_ylabel("commits")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # headroom for the geometric mean's label
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(repos), fontsize=9)
    return fig


def _log_subs(span: float) -> tuple[float, ...]:
    """Tick multiples per decade: more where the values span less than a decade, so a few ticks always show."""
    decades = math.log10(span)
    if decades <= 1:
        return (1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 7.0)
    return (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)


TITLES = {"success-rates": "Success rate per repo with 95% Wilson intervals",
          "transitions": "Commit transitions per repo", "category-matrix": "Failure category, baseline → rerun",
          "criteria": "Success criteria: count against thresholds", "cost": "Rerun cost: actual vs estimate (USD)",
          "speedups": "Speedups of the rerun commits measured"}


def figures(c: Comparison) -> dict[str, Figure]:
    """The figures that apply to this comparison, by name (the `data-chart` name and the file stem)."""
    makers: list[tuple[str, Callable[[], Figure | None]]] = [
        ("success-rates", lambda: success_rates(c.summary)), ("transitions", lambda: transitions(c.summary)),
        ("category-matrix", lambda: category_matrix(c.transition_matrix())),
        ("criteria", lambda: criteria(c.criteria) if len(c.criteria) else None),
        ("cost", lambda: cost(c.cost)),
        ("speedups", lambda: speedups(c.commits, str(c.meta.get("level") or "agent"))),
    ]
    drawn = {name: make() for name, make in makers}
    return {name: fig for name, fig in drawn.items() if fig is not None}


def render(fig: Figure, fmt: str, salt: str = "track") -> bytes:
    """The figure as SVG, PNG or PDF bytes, with the report's rendering settings (no date: reproducible)."""
    buffer = io.BytesIO()
    with mpl.rc_context({**_RC, "svg.hashsalt": salt}):
        fig.savefig(buffer, format=fmt, dpi=PNG_DPI if fmt == "png" else 72, metadata=_METADATA[fmt])
    # The layout is in figure coordinates, the same at any dpi: keep it, so the next format skips it.
    fig.set_layout_engine("none")
    return buffer.getvalue()


def inline_svg(fig: Figure, name: str) -> str:
    """The figure's `<svg>` element for an HTML page: no XML prolog or doctype, scalable, titled."""
    text = render(fig, "svg", salt=name).decode("utf-8")
    text = text[text.index("<svg"):]
    # Ids (`axes_1`, clip paths, markers) are unique within one SVG only: prefix them for a page of many.
    text = re.sub(r'(\sid="|href="#|url\(#)', lambda m: f"{m.group(1)}{name}-", text)
    title = TITLES.get(name, name)
    return text.replace("<svg ", f'<svg role="img" aria-label="{title}" ', 1)


def write_files(figs: dict[str, Figure], folder: Path, formats: Sequence[str] = FILE_FORMATS) -> list[Path]:
    """Each figure as `<folder>/<name>.<fmt>` (PNG at 200 dpi, PDF with embedded TrueType), for LaTeX."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figs.items():
        for fmt in formats:
            path = folder / f"{name}.{fmt}"
            path.write_bytes(render(fig, fmt, salt=name))
            paths.append(path)
    return paths
