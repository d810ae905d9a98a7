"""The comparison as Markdown: headline, then tables ready to paste into a report."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tracker.analysis.compare import Comparison
from tracker.reports import display, figures


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped, numbers right-aligned)."""
    if not headers:
        return "_none_"
    aligns = [_align([row[i] for row in rows]) for i, _ in enumerate(headers)]
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: str) -> str:
    """A cell's text that cannot break the table: pipes escaped, newlines as spaces."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _looks_numeric(value: str) -> bool:
    """A formatted number (`1,234`, `$3.50`, `-2`, `3/5`) or the dash of a missing one."""
    digits = value.replace(",", "").replace(".", "").replace("$", "").replace("/", "").replace("–", "")
    return digits.lstrip("-").isdigit() or value == "–"


def _align(column: list[str]) -> str:
    """The column's alignment row cell: right-aligned when every cell is a number, else left."""
    return "---:" if column and all(_looks_numeric(v) for v in column) else "---"


def _image(name: str, folder: str | None, names: Sequence[str]) -> list[str]:
    """The figure's PNG (written beside the Markdown file) as an image line, when there is one."""
    if folder is None or name not in names:
        return []
    return [f"![{figures.TITLES[name]}]({folder}/{name}.png)", ""]


def _design_sections(c: Comparison, image: Callable[[str], list[str]]) -> list[str]:
    """Control arm, attribution and criteria, each when the comparison has it."""
    parts: list[str] = []
    if len(c.control):
        parts += ["## Control arm", "", table(*display.control(c)), "",
                  "The control arm is a seeded sample of baseline successes rerun alike: its pass -> fail flips "
                  "are what a rerun breaks by itself. The old-agent arm is a seeded sample of the failed commits "
                  "run with the agent before its fix: its fail -> pass flips are what a rerun fixes without the "
                  "fix, and the fix is measured beyond them.", ""]
    if len(c.attribution):
        parts += ["## Attribution", "", table(*display.attribution(c)), "",
                  "A fix is credited to the group of its baseline root cause: the agent fix (tool output or result "
                  "missing, empty error content), infrastructure restored (quota, key, SSO, connection, rate limit, "
                  "harness) or model-level (JSON, steps, context, timeout, no patch, other).", ""]
    if len(c.criteria):
        parts += ["## Success criteria", "", *image("criteria"), table(*display.criteria(c)), ""]
    return parts


def render(c: Comparison, *, commits: bool = True, figures_dir: str | None = None,
           figure_names: Sequence[str] = ()) -> str:
    """The whole report; `commits=False` leaves out the per-commit table (long for big campaigns).
    `figures_dir`: the folder (relative to the Markdown file) holding `figure_names` as PNG files."""
    fix = c.rerun.get("agent_fix_commit")
    parts = [
        f"# {c.rerun['name']} vs {c.baseline['name']}",
        "",
        f"Agent {c.rerun.get('agent')} / model {c.rerun.get('model')}"
        + (f", agent fix `{fix}`" if fix else "") + f". Generated {c.meta.get('generated_at')}.",
        "",
        *[f"- {line}" for line in display.headline(c)],
        "",
        "## Success per repo",
        "",
        *_image("success-rates", figures_dir, figure_names),
        table(*display.summary(c)),
        "",
        "Rates are successes/commits with 95% Wilson intervals. *Before* is the baseline, *rerun only* the "
        "rerun campaign, *after* each commit's latest state. McNemar is exact, on commits run in both.",
        "",
        "## Failure category transitions (baseline → rerun)",
        "",
        *_image("transitions", figures_dir, figure_names),
        *_image("category-matrix", figures_dir, figure_names),
        table(*display.transition_matrix(c)),
        "",
    ]
    parts += _design_sections(c, lambda name: _image(name, figures_dir, figure_names))
    parts += ["## Cost", "", *_image("cost", figures_dir, figure_names), table(*display.cost(c)), ""]
    speed = _image("speedups", figures_dir, figure_names)
    parts += ["## Speedups", "", *speed] if speed else []
    if c.notes:
        parts += ["## Notes", "", *[f"- {note}" for note in c.notes], ""]
    parts += [f"Best attempt rule: {c.meta.get('best_attempt_rule')}. Success: {c.meta.get('success_rule')}. "
              f"Prices: table {c.meta.get('price_table')}.", "",
              "Run: " + "; ".join(f"{key}: {value}" for key, value in display.run_metadata(c)) + ".", ""]
    if commits:
        parts += ["## Commits", "", table(*display.commits(c)), ""]
    return "\n".join(parts)
