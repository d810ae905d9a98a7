"""Set the team's own `evaluation_report.json` figures beside the tool's recount, and name every difference.

The report is an aggregate written at one moment by the team's script; the per-item
`test_results.json` files are the facts. When they disagree (a stale report, another scope), the
disagreement is shown figure by figure, never hidden behind one of the two numbers.
"""

from __future__ import annotations

from typing import Any

REPORT_FIGURES = (
    ("total_commits", "evaluated", "runs the report counts vs test_results.json files of this campaign"),
    ("tests_run", "tests_run", "patched code run (result.status success or error)"),
    ("tests_passed", "tests_passed", "result.status success"),
    ("no_patch", "no_patch", "result.status no_patch"),
    ("errors", "errors", "result.status error"),
    ("no_test_available", "no_test", "result.status no_test"),
)
"""(report key, funnel key, what the recount counts)."""


def report_comparison(report: dict[str, Any] | None, funnel: dict[str, Any]) -> dict[str, Any] | None:
    """The report's figures, the recount, and the named differences (None without a report)."""
    if report is None:
        return None
    figures = report.get("figures") or {}
    rows = []
    differences = []
    for report_key, funnel_key, meaning in REPORT_FIGURES:
        if report_key not in figures:
            continue
        theirs, ours = figures[report_key], funnel.get(funnel_key)
        rows.append({"figure": report_key, "report": theirs, "recount": ours, "recount_counts": meaning})
        if theirs != ours:
            differences.append(f"{report_key}: report {theirs}, recount {ours} ({meaning})")
    note = None
    if differences:
        note = (f"{report.get('file')} (generated {report.get('generated_at') or 'at an unknown time'}, key "
                f"{report.get('run_key')!r}) disagrees with the per-item results on {len(differences)} figures: "
                "the report is not a recount of the result files now on disk (older, or another scope); "
                "the recount is what the files say")
    return {"file": report.get("file"), "run_key": report.get("run_key"), "generated_at": report.get("generated_at"),
            "figures": {key: figures.get(key) for key, _, _ in REPORT_FIGURES if key in figures},
            "side_by_side": rows, "differences": differences, "note": note}
