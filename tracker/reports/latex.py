"""The comparison's tables for a paper: one `.tex` file of booktabs tables to `\\input` into a document.

The file has no preamble (no `\\documentclass`, no `\\begin{document}`): the paper loads `booktabs` and
inputs it, e.g. `\\usepackage{booktabs}` ... `\\input{compare.tex}`. Each table is a `table` float with a
caption and a label `tab:track-<name>` (summary, attribution, control, criteria, cost), so the text can
`\\ref` it. Rates are percentages with their 95% interval in brackets and the counts in their own column.
Every cell is escaped: `\\ & % $ # _ { } ~ ^` and the report's Unicode signs (– × → ✓ ✗ ≥) become LaTeX.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracker.analysis.compare import Comparison
from tracker.reports import display

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_UNICODE = {"–": "--", "−": "-", "×": r"$\times$", "→": r"$\rightarrow$", "✓": "yes", "✗": "no", "≥": r"$\geq$",
            "≤": r"$\leq$", "·": r"$\cdot$"}


def escape(value: Any) -> str:
    """Text as LaTeX typesets it literally (a cell that starts with `[` is guarded from `\\\\[...]`)."""
    out = "".join(_SPECIAL.get(ch, _UNICODE.get(ch, ch)) for ch in str(value).replace("\n", " "))
    return "{}" + out if out.startswith("[") else out


def _rate(k: Any, n: Any, low: Any, high: Any) -> list[str]:
    """`k/n` and `rate [low, high]` in percent, or dashes when there is nothing to divide."""
    if not n or display.is_missing(low):
        return ["--", "--"]
    return [f"{int(k)}/{int(n)}", f"{100 * int(k) / int(n):.1f} [{100 * float(low):.1f}, {100 * float(high):.1f}]"]


def tabular(name: str, caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
            align: str | None = None) -> str:
    """One booktabs table float; cells are escaped here (pass plain text)."""
    align = align or "l" + "r" * (len(headers) - 1)
    lines = [f"% table {name}", r"\begin{table}[htbp]", r"\centering", r"\small",
             rf"\caption{{{escape(caption)}}}", rf"\label{{tab:track-{name}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(escape(h) for h in headers) + r" \\",
             r"\midrule"]
    lines += [" & ".join(escape(v) for v in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def summary(c: Comparison) -> str:
    headers = ["repo", "before", "before % [95% CI]", "rerun", "rerun % [95% CI]", "after", "after % [95% CI]",
               "fixed", "still failing", "regressed", "McNemar p"]
    rows = [[str(r.repo), *_rate(r.baseline_successes, r.baseline_commits, r.baseline_low, r.baseline_high),
             *_rate(r.rerun_successes, r.rerun_commits, r.rerun_low, r.rerun_high),
             *_rate(r.after_successes, r.after_commits, r.after_low, r.after_high),
             str(r.fixed), str(r.still_failing), str(r.regressed), display.p_value(r.mcnemar_p)]
            for r in c.summary.itertuples(index=False)]
    return tabular("summary", f"Success per repo at outcome level {c.meta.get('level')}: commits succeeding, "
                   "rate in % with its 95% Wilson interval; McNemar exact, on commits run in both", headers, rows)


def attribution(c: Comparison) -> str:
    rows = [[display.GROUP_WORDS.get(r.cause_group, r.cause_group), str(r.rerun), str(r.fixed),
             str(r.still_failing), f"{100 * r.fixed_share:.0f}%"] for r in c.attribution.itertuples(index=False)]
    return tabular("attribution", "Fixes by the cause group of the baseline's root cause",
                   ["cause group", "rerun", "fixed", "still failing", "fixed share"], rows)


def control(c: Comparison) -> str:
    rows = []
    for r in c.control.itertuples(index=False):
        beyond = "" if display.is_missing(r.beyond_control) else (
            f"{100 * r.beyond_control:+.1f} [{100 * r.beyond_low:+.1f}, {100 * r.beyond_high:+.1f}]")
        rows.append([r.arm, r.flip, *_rate(r.flips, r.commits, r.low, r.high), beyond])
    return tabular("control", "Control arm: flip rates in % (95% Wilson) and the fix beyond the control "
                   "(percentage points, 95% Newcombe)", ["arm", "flip", "flips", "rate % [95% CI]",
                                                         "beyond control [95% CI]"], rows, "llrrr")


def criteria(c: Comparison) -> str:
    headers, rows = display.criteria(c)
    return tabular("criteria", "Success criteria: successes among the planned commits against each level",
                   headers, rows, "ll" + "r" * (len(headers) - 4) + "ll")


def cost(c: Comparison) -> str:
    rows = [[str(r.repo), str(r.rerun_attempts), str(r.rerun_successes), display.number(r.rerun_tokens),
             display.usd(r.rerun_cost_usd), display.usd(r.estimate_usd), display.usd(r.cost_per_success_usd, 3)]
            for r in c.cost.itertuples(index=False)]
    return tabular("cost", f"Rerun cost (USD, price table {c.meta.get('price_table')}) against the plan's estimate",
                   ["repo", "attempts", "successes", "tokens", "actual", "estimate", "per success"], rows)


def render(c: Comparison) -> str:
    """The `.tex` body: a comment naming the comparison and its package, then one table per topic."""
    title = f"{c.rerun['name']} vs {c.baseline['name']}".replace("\n", " ")
    head = [f"% track compare: {title}, generated {c.meta.get('generated_at')}",
            "% Tables for \\input{} into a document that loads \\usepackage{booktabs}.", ""]
    parts = [summary(c)]
    if len(c.attribution):
        parts.append(attribution(c))
    if len(c.control):
        parts.append(control(c))
    if len(c.criteria):
        parts.append(criteria(c))
    parts.append(cost(c))
    return "\n".join(head) + "\n".join(parts)
