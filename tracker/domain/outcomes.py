"""Outcome levels: how far an attempt got. One definition, used by every command and view.

An attempt climbs a funnel: the **agent** finished (journal status `success`) -> it produced a
**patch** (a non-blank diff, else the run summary's `patch_generated`) -> the patch's **tests**
passed (evaluation `result.status` `success`) -> the patched code is **faster** (the evaluation's
`improvement`, else speedup > 1). Journal `success` says only that the agent process finished.

Evaluation statuses `baseline_failed` (the harness failed before measuring the patch, e.g. `No
module named 'IPython'`) and `no_test` (no test for the commit) are problems of the evaluation, not
of the agent: they are counted apart and never as agent failures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

LEVELS = ("agent", "patch", "tests", "faster")
LEVEL_HELP = {
    "agent": "the agent run finished (journal status success)",
    "patch": "a patch was produced",
    "tests": "the evaluation's tests passed with the patch",
    "faster": "the evaluation measured the patched code faster",
}
EVALUATION_PROBLEMS = ("baseline_failed", "no_test")
TESTS_RUN = ("success", "error")
"""Evaluation statuses for which the patched code was actually run."""


def check_level(level: str) -> str:
    if level not in LEVELS:
        from tracker.errors import TrackerError

        raise TrackerError(f"unknown outcome level {level!r}: use one of {', '.join(LEVELS)}")
    return level


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))


def patch_produced(row: Mapping[str, Any]) -> bool:
    if _present(row.get("patch_sha256")):
        return True
    return not (row.get("patch_bytes") or 0) and row.get("patch_generated") is True


def faster(row: Mapping[str, Any]) -> bool:
    if row.get("eval_status") != "success":
        return False
    improvement = row.get("improvement")
    if improvement is True or improvement is False:
        return bool(improvement)
    speedup = row.get("speedup")
    return speedup is not None and _present(speedup) and float(speedup) > 1.0


def succeeded(row: Mapping[str, Any], level: str = "agent") -> bool:
    """Did this attempt succeed at `level`?"""
    if level == "agent":
        return row.get("status") == "success"
    if level == "patch":
        return patch_produced(row)
    if level == "tests":
        return row.get("eval_status") == "success"
    if level == "faster":
        return faster(row)
    check_level(level)
    return False


def highest_level(row: Mapping[str, Any]) -> str:
    """The highest level reached (`none` when not even the agent finished)."""
    reached = "none"
    for level in LEVELS:
        if succeeded(row, level):
            reached = level
    return reached


def outcome_at(row: Mapping[str, Any], level: str) -> bool | None:
    """Success (True), failure (False), or not known at this level (None): at the tests and faster
    levels an attempt without an evaluation, or whose evaluation failed on its own (baseline_failed,
    no_test), says nothing about the agent."""
    if level in ("tests", "faster"):
        status = row.get("eval_status")
        if not _present(status) or status in EVALUATION_PROBLEMS:
            return None
    return succeeded(row, level)


def level_column(frame: pd.DataFrame, level: str) -> pd.Series:
    """`outcome_at(row, level)` for every row of an attempts frame (object dtype: True, False or None)."""
    check_level(level)
    return pd.Series([outcome_at(row, level) for row in frame.to_dict(orient="records")], index=frame.index,
                     dtype=object)


COMMIT_SUCCESS_RULE = ("a commit succeeds when its best attempt reaches the level (any of its attempts does); "
                       "attempts stopped by a broken bench setup give no verdict and are not counted")
"""The one meaning of a commit's success: `campaigns`, `status`, `compare` and the MLflow summary runs use it."""


def commit_success(rows: Sequence[Mapping[str, Any]], level: str = "agent") -> dict[str, Any]:
    """Commits (repo, sha) with a verdict and how many succeeded at `level` (`COMMIT_SUCCESS_RULE`)."""
    check_level(level)
    verdicts: dict[tuple[Any, Any], bool] = {}
    for row in rows:
        if row.get("failure_category") == "harness_error":
            continue
        key = (row.get("repo"), row.get("commit"))
        verdicts[key] = verdicts.get(key, False) or succeeded(row, level)
    return {"level": level, "commits": len(verdicts), "succeeded": sum(verdicts.values()),
            "rule": COMMIT_SUCCESS_RULE}


def funnel(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A campaign's funnel. Where evaluations exist, `no_patch`, `errors` and `tests_*` are the
    evaluation's (`basis: evaluation`); otherwise they are the agent's (`basis: agent`)."""
    evaluated = [r for r in rows if _present(r.get("eval_status"))]
    agent_ok = sum(1 for r in rows if succeeded(r, "agent"))
    patched = sum(1 for r in rows if patch_produced(r))
    out: dict[str, Any] = {"runs": len(rows), "agent_succeeded": agent_ok, "patch_produced": patched,
                           "evaluated": len(evaluated)}
    if not evaluated:
        return {**out, **_agent_funnel(len(rows), agent_ok, patched)}
    return {**out, **_evaluation_funnel(evaluated)}


def _agent_funnel(runs: int, agent_ok: int, patched: int) -> dict[str, Any]:
    """The funnel's lower steps when nothing was evaluated: what the agent runs alone can tell."""
    return {"basis": "agent", "tests_run": 0, "tests_passed": 0, "no_patch": runs - patched,
            "errors": runs - agent_ok, "baseline_failed": 0, "no_test": 0, "faster": 0,
            "evaluation_status": {}}


def _evaluation_funnel(evaluated: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The funnel's lower steps from the evaluations' statuses (the evaluation's word wins over the agent's)."""
    statuses = Counter(str(r["eval_status"]) for r in evaluated)
    return {"basis": "evaluation", "tests_run": sum(statuses[s] for s in TESTS_RUN),
            "tests_passed": statuses["success"], "no_patch": statuses["no_patch"], "errors": statuses["error"],
            "baseline_failed": statuses["baseline_failed"], "no_test": statuses["no_test"],
            "faster": sum(1 for r in evaluated if faster(r)), "evaluation_status": dict(sorted(statuses.items()))}
