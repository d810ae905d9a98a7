"""The comparison's tables as people read them: rates with intervals, money, short shas (all strings).

Shared by the Markdown and HTML reports so both say the same thing in the same words.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from tracker.analysis.compare import Comparison

Table = tuple[list[str], list[list[str]]]
"""Column headers and rows of cell strings."""


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def rate(k: Any, n: Any, low: Any, high: Any) -> str:
    if not n or is_missing(low):
        return "–"
    return f"{int(k)}/{int(n)} = {int(k) / int(n):.1%} [{float(low):.1%}, {float(high):.1%}]"


def usd(value: Any, digits: int = 2) -> str:
    if is_missing(value):
        return "–"
    amount = float(value)
    return f"{'−' if amount < 0 else ''}${abs(amount):,.{digits}f}"


def number(value: Any, digits: int = 0) -> str:
    if is_missing(value):
        return "–"
    return f"{float(value):,.{digits}f}" if digits else f"{int(round(float(value))):,}"


def p_value(value: Any) -> str:
    if is_missing(value):
        return "–"
    if float(value) < 1e-12:
        return "< 1e-12"
    return f"{float(value):.2e}" if float(value) < 1e-3 else f"{float(value):.3f}"


def _relation(shown: str) -> str:
    """`= 0.012` or `< 1e-12`: a p-value as it reads in a sentence."""
    return shown if shown.startswith("<") else f"= {shown}"


def text(value: Any) -> str:
    return "" if is_missing(value) else str(value)


def summary(c: Comparison) -> Table:
    headers = ["repo", "before (baseline)", "rerun only", "after (latest state)", "fixed", "still failing",
               "regressed", "still ok", "not rerun", "not in baseline", "McNemar p (exact)",
               "pass@1 per attempt (before / rerun)"]
    rows = [[str(r.repo), rate(r.baseline_successes, r.baseline_commits, r.baseline_low, r.baseline_high),
             rate(r.rerun_successes, r.rerun_commits, r.rerun_low, r.rerun_high),
             rate(r.after_successes, r.after_commits, r.after_low, r.after_high),
             str(r.fixed), str(r.still_failing), str(r.regressed), str(r.still_ok), str(r.not_rerun),
             str(r.not_in_baseline), p_value(r.mcnemar_p),
             f"{_share(r.baseline_attempt_successes, r.baseline_attempts)} / "
             f"{_share(r.rerun_attempt_successes, r.rerun_attempts)}"] for r in c.summary.itertuples(index=False)]
    return headers, rows


def _share(successes: int, attempts: int) -> str:
    return f"{successes}/{attempts} = {successes / attempts:.1%}" if attempts else "–"


def transition_matrix(c: Comparison) -> Table:
    matrix = c.transition_matrix()
    if matrix.empty:
        return ["baseline \\ rerun"], []
    headers = ["baseline \\ rerun", *[str(col) for col in matrix.columns], "total"]
    rows = [[str(name), *[str(int(v)) for v in values], str(int(sum(values)))]
            for name, values in zip(matrix.index, matrix.to_numpy().tolist(), strict=True)]
    return headers, rows


ATTRIBUTION_HEADERS = ["cause group (baseline root cause)", "rerun", "fixed", "still failing", "fixed share",
                       "baseline categories", "rerun's remaining failures"]
GROUP_WORDS = {"agent_fix": "the agent fix", "infrastructure": "infrastructure restored", "model": "model-level",
               "unknown": "unknown"}


def attribution(c: Comparison) -> Table:
    rows = [[GROUP_WORDS.get(r.cause_group, r.cause_group), str(r.rerun), str(r.fixed), str(r.still_failing),
             f"{r.fixed_share:.0%}", text(r.baseline_categories), text(r.rerun_failures)]
            for r in c.attribution.itertuples(index=False)]
    return ATTRIBUTION_HEADERS, rows


CONTROL_HEADERS = ["arm", "commits", "flips", "flip", "rate (95% Wilson)", "fix arm beyond (95% Newcombe)"]
ARM_WORDS = {"failed": "with the fix", "old_agent": "with the old agent", "control": "baseline successes"}


def control(c: Comparison) -> Table:
    rows = []
    for r in c.control.itertuples(index=False):
        beyond = "" if is_missing(r.beyond_control) else (
            f"{r.beyond_control:+.1%} [{r.beyond_low:+.1%}, {r.beyond_high:+.1%}] vs {r.against}")
        rows.append([r.arm, str(r.commits), str(r.flips), r.flip, rate(r.flips, r.commits, r.low, r.high), beyond])
    return CONTROL_HEADERS, rows


def _arm_rate(row: Any) -> str:
    return rate(row.flips, row.commits, row.low, row.high)


def _fix_line(c: Comparison, o: dict[str, Any]) -> str:
    """The first sentence: what the rerun did to the failures, and what the design lets that say."""
    rows = {r.arm: r for r in c.control.itertuples(index=False)}
    failed, old = rows.get("failed"), rows.get("old_agent")
    if failed is not None and old is not None and failed.commits and old.commits:
        return (f"With the fix, {failed.flips} of {failed.commits} failed commits succeeded ({_arm_rate(failed)}); "
                f"with the old agent, {old.flips} of {old.commits} ({_arm_rate(old)}): the fix adds "
                f"{failed.beyond_control:+.1%} [{failed.beyond_low:+.1%}, {failed.beyond_high:+.1%}] "
                "(95% Newcombe, arms drawn at random).")
    fixed_of = f"{o['fixed']} of {o['fixed'] + o['still_failing']} commits that had failed"
    if is_missing(o["mcnemar_p"]):
        return (f"The rerun fixed {fixed_of}; only failures were rerun, so none could regress and this is no test "
                "of the fix (a rerun recovers failures by itself: quota back, a key renewed).")
    return (f"The rerun fixed {fixed_of}, and {o['regressed']} of {o['still_ok'] + o['regressed']} that had "
            f"succeeded regressed (exact McNemar p {_relation(p_value(o['mcnemar_p']))}).")


def _control_line(c: Comparison) -> list[str]:
    """A rerun's own pass -> fail flips, in one sentence, when the plan had a control arm."""
    rows = {r.arm: r for r in c.control.itertuples(index=False)}
    failed, arm = rows.get("failed"), rows.get("control")
    if failed is None or arm is None or not arm.commits:
        return []
    line = (f"Control arm: {arm.flips} of {arm.commits} baseline successes failed on rerun ({_arm_rate(arm)}), "
            "a rerun's own flips")
    if failed.against == "control" and failed.commits:
        line += (f"; the fix arm's {_arm_rate(failed)} is {failed.beyond_control:+.1%} "
                 f"[{failed.beyond_low:+.1%}, {failed.beyond_high:+.1%}] beyond that (95% Newcombe; no old-agent "
                 "arm, so fixes a rerun makes by itself are not ruled out)")
    return [line + "."]


def _speedup_line(o: dict[str, Any]) -> list[str]:
    if not o.get("rerun_speedups"):
        return []
    return [f"Speedup of the {o['rerun_speedups']} rerun commits measured: geometric mean "
            f"{o['rerun_speedup_geomean']:.2f}x, {o['rerun_share_faster']:.0%} faster than before (> 1)."]


def _attribution_line(c: Comparison) -> list[str]:
    """Which cause groups the fixes came from: what the agent fix can take credit for, and what not."""
    fixed = {r.cause_group: int(r.fixed) for r in c.attribution.itertuples(index=False) if r.fixed}
    if not fixed:
        return []
    parts = [f"{n} {GROUP_WORDS.get(group, group)}" for group, n in fixed.items()]
    return [f"Fixes by the baseline's root cause: {', '.join(parts)}."]


def criteria(c: Comparison) -> Table:
    frame = c.criteria
    if frame.empty:
        return [], []
    levels = list(dict.fromkeys(frame["level"]))
    headers = ["scope", "measure", "count", "rerun commits", "planned", "not run", "criteria's of", *levels,
               "level reached", "if the rest succeed"]
    rows = []
    for scope, part in frame.groupby("scope", sort=False):
        first = part.iloc[0]
        marks = {lvl: f"{thr} {'✓' if met else '✗'}" for lvl, thr, met in
                 zip(part["level"], part["threshold"], part["met"], strict=True)}
        rows.append([str(scope), str(first["measure"]), str(first["count"]), str(first["commits"]),
                     text(first["planned"]), text(first["not_run"]), text(first["of"]),
                     *[marks.get(lvl, "–") for lvl in levels], str(first["level_reached"]).replace("_", " "),
                     str(first["best_possible"]).replace("_", " ")])
    return headers, rows


def cost(c: Comparison) -> Table:
    headers = ["repo", "rerun attempts", "rerun successes", "tokens (in+out)", "actual", "estimate",
               "actual − estimate", "actual / estimate", "tokens per success", "cost per success",
               "baseline cost", "unpriced attempts"]
    rows = [[str(r.repo), str(r.rerun_attempts), str(r.rerun_successes), number(r.rerun_tokens),
             usd(r.rerun_cost_usd), usd(r.estimate_usd), usd(r.over_estimate_usd),
             "–" if is_missing(r.actual_to_estimate) else f"{float(r.actual_to_estimate):.2f}×",
             number(r.tokens_per_success), usd(r.cost_per_success_usd, 3), usd(r.baseline_cost_usd),
             str(r.unpriced_attempts)] for r in c.cost.itertuples(index=False)]
    return headers, rows


COMMIT_HEADERS = ["repo", "commit", "item", "baseline", "baseline category", "rerun", "rerun category",
                  "transition", "attempts (b/r)", "tokens (b/r)", "cost (b/r)", "speedup (b/r)"]


def commits(c: Comparison) -> Table:
    frame = c.commits
    cols = [frame[name].tolist() for name in (
        "repo", "commit", "item_id", "baseline_status", "baseline_category", "rerun_status", "rerun_category",
        "transition", "baseline_attempts", "rerun_attempts", "baseline_tokens", "rerun_tokens",
        "baseline_cost_usd", "rerun_cost_usd", "baseline_speedup", "rerun_speedup")]
    rows = []
    for (repo, sha, item, bs, bc, rs, rc, tr, ba, ra, bt, rt, bcost, rcost, bsp, rsp) in zip(*cols, strict=True):
        rows.append([repo, sha[:12], text(item), text(bs), text(bc), text(rs), text(rc), tr, f"{ba}/{ra}",
                     f"{number(bt)}/{number(rt)}", f"{usd(bcost, 3)}/{usd(rcost, 3)}",
                     f"{number(bsp, 2)}/{number(rsp, 2)}"])
    return COMMIT_HEADERS, rows


def headline(c: Comparison) -> list[str]:
    """Two or three sentences a reader wants first."""
    o = c.overall()
    if not o:
        return ["No commit in either campaign."]
    lines = [
        _fix_line(c, o),
        *_control_line(c),
        *_attribution_line(c),
        *_speedup_line(o),
        f"Success before: {rate(*(o[f'baseline_{k}'] for k in ('successes', 'commits', 'low', 'high')))}; "
        f"after: {rate(*(o[f'after_{k}'] for k in ('successes', 'commits', 'low', 'high')))} (95% Wilson).",
    ]
    all_cost = c.cost[c.cost["repo"] == "all"]
    if len(all_cost):
        row = all_cost.iloc[0]
        estimate = "no estimate recorded" if is_missing(row["estimate_usd"]) else f"estimate {usd(row['estimate_usd'])}"
        lines.append(f"Rerun cost {usd(row['rerun_cost_usd'])} ({estimate}); "
                     f"{number(row['tokens_per_success'])} tokens per success.")
    if len(c.criteria):
        reached = dict(zip(c.criteria["scope"], c.criteria["level_reached"], strict=True))
        lines.append("Criteria: " + ", ".join(f"{k} {v.replace('_', ' ')}" for k, v in reached.items()) + ".")
    return lines


def _listed(values: object) -> str:
    items = [str(v) for v in values] if isinstance(values, list | tuple) else []
    return ", ".join(items) if items else "not recorded"


def run_metadata(c: Comparison) -> list[tuple[str, str]]:
    """The report header's facts: what made the results and by which rules (shared with Markdown and LaTeX)."""
    meta = c.meta
    versions = meta.get("rules_versions") or {}
    return [
        ("agent / model", f"{c.rerun.get('agent')} / {c.rerun.get('model')}"),
        ("agent fix commit", str(meta.get("agent_fix_commit") or c.rerun.get("agent_fix_commit") or "none")),
        ("bench commit", str(meta.get("bench_commit") or "not recorded")),
        ("outcome level", f"{meta.get('level')} ({meta.get('success_rule')})"),
        ("rule table", f"{meta.get('rule_table') or 'unknown'} today; classified by baseline "
                       f"{_listed(versions.get('baseline'))}, rerun {_listed(versions.get('rerun'))}"),
        ("price table", str(meta.get("price_table"))),
        ("rerun hosts", _listed(meta.get("hosts")) if meta.get("hosts") else "not recorded (imported from files)"),
        ("generated", f"{meta.get('generated_at')} (event store position {meta.get('store_position')})"),
    ]
