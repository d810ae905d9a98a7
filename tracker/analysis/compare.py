"""Compare a baseline campaign with its rerun: per commit, per repo, against criteria and cost.

Answers the rerun's questions from the read model: which commits now succeed, which still fail and
why, what it cost against the plan's estimate, whether the success criteria were met, and whether
the improvement is real (Wilson intervals, exact McNemar on the commits run in both).

Rules (documented here because every figure depends on them):
- An attempt **succeeds** when it reached the comparison's outcome **level** (`tracker.domain.outcomes`):
  `agent` (the default: status `success`, category `none`), `patch`, `tests` (evaluation `success`)
  or `faster`. Below the level, a finished attempt is a failure whose category is its root cause,
  or, when the agent itself succeeded, what stopped it (`no_patch`, `eval:<status>`, `not_evaluated`,
  `not_faster`).
- The **best attempt** of a commit in a campaign: a success beats a finished failure, which beats
  an unfinished attempt (`running`, `abandoned`, `interrupted`); within a tier the latest attempt
  wins (run timestamp, then stream id, so ties are broken the same way every time). A commit's
  status, category and speedup are its best attempt's; its attempts, tokens and cost are the sums
  over all of its attempts (a retry costs money even when it is not the best one).
- A commit's **category** is its best attempt's failure category (`none` on success; the status
  when unfinished; `unclassified` for a finished failure that has no category yet).
- **Transitions** (commits joined by repo and full sha): `fixed` failed -> succeeds, `still_failing`,
  `regressed` succeeded -> fails, `still_ok`, `not_rerun` (baseline only), `not_in_baseline` (rerun only).
- **Before** is the baseline; **after** is each commit's latest state over both campaigns (the
  rerun's result where the commit was rerun, else the baseline's); **rerun** is the rerun alone,
  which is what success criteria count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracker.analysis.cost_check import cost_check, cost_summary
from tracker.analysis.criteria import COMBINED, Criteria, load_criteria
from tracker.analysis.stats import mcnemar_exact, newcombe_interval, wilson_interval
from tracker.classify.rules import default_rule_table
from tracker.domain import outcomes
from tracker.domain.pricing import PriceTable, billed_model, load_price_table
from tracker.domain.vocabulary import HARNESS
from tracker.errors import TrackerError, UnknownCampaign
from tracker.eventstore.store import EventStore
from tracker.projections.read_model import queries
from tracker.rerun.planning import CONTROL_ARM, FIX_ARM, OLD_AGENT_ARM

SUCCESS = "success"
UNFINISHED = ("running", "abandoned", "interrupted")
TRANSITIONS = ("fixed", "still_failing", "regressed", "still_ok", "not_rerun", "not_in_baseline")
BEST_ATTEMPT_RULE = (
    "success beats failure beats unfinished; within a tier the latest attempt (run timestamp, then stream id)"
)

COMMIT_SCHEMA: dict[str, str] = {
    "repo": "string", "commit": "string", "item_id": "string",
    "baseline_status": "string", "baseline_category": "string",
    "rerun_status": "string", "rerun_category": "string", "transition": "string",
    "baseline_attempts": "int64", "rerun_attempts": "int64",
    "baseline_tokens": "Int64", "rerun_tokens": "Int64",
    "baseline_cost_usd": "Float64", "rerun_cost_usd": "Float64",
    "baseline_speedup": "Float64", "rerun_speedup": "Float64", "arm": "string",
}
_RATE = ("commits", "successes", "rate", "low", "high")
SUMMARY_SCHEMA: dict[str, str] = {
    "repo": "string",
    **{f"{side}_{name}": ("int64" if name in ("commits", "successes") else "Float64")
       for side in ("baseline", "rerun", "after") for name in _RATE},
    "paired_commits": "int64", **{name: "int64" for name in TRANSITIONS}, "mcnemar_p": "Float64",
}
_PER_COMMIT_SUMMARY = dict(SUMMARY_SCHEMA)
SUMMARY_SCHEMA.update({f"{side}_{name}": ("int64" if name != "pass_at_1" else "Float64")
                       for side in ("baseline", "rerun") for name in ("attempts", "attempt_successes", "pass_at_1")})
SUMMARY_SCHEMA.update({"rerun_speedups": "int64", "rerun_speedup_geomean": "Float64",
                       "rerun_share_faster": "Float64"})
TRANSITION_SCHEMA: dict[str, str] = {"baseline_category": "string", "rerun_category": "string", "commits": "int64"}
CRITERIA_SCHEMA: dict[str, str] = {
    "scope": "string", "measure": "string", "count": "int64", "commits": "int64", "of": "Int64",
    "level": "string", "threshold": "int64", "met": "bool", "level_reached": "string",
    "planned": "Int64", "not_run": "Int64", "best_possible": "string",
}
COST_SCHEMA: dict[str, str] = {
    "repo": "string", "baseline_attempts": "int64", "baseline_cost_usd": "Float64",
    "rerun_attempts": "int64", "rerun_successes": "int64", "rerun_input_tokens": "Int64",
    "rerun_output_tokens": "Int64", "rerun_tokens": "Int64", "rerun_cost_usd": "Float64",
    "estimate_usd": "Float64", "over_estimate_usd": "Float64", "actual_to_estimate": "Float64",
    "tokens_per_success": "Float64", "cost_per_success_usd": "Float64", "unpriced_attempts": "int64",
}
ATTRIBUTION_SCHEMA: dict[str, str] = {
    "cause_group": "string", "rerun": "int64", "fixed": "int64", "still_failing": "int64", "fixed_share": "Float64",
    "baseline_categories": "string", "rerun_failures": "string",
}
CONTROL_SCHEMA: dict[str, str] = {
    "arm": "string", "commits": "int64", "flips": "int64", "flip": "string", "rate": "Float64", "low": "Float64",
    "high": "Float64", "beyond_control": "Float64", "beyond_low": "Float64", "beyond_high": "Float64",
    "against": "string",
}
SCHEMAS: dict[str, dict[str, str]] = {
    "commits": COMMIT_SCHEMA, "summary": SUMMARY_SCHEMA, "transitions": TRANSITION_SCHEMA,
    "criteria": CRITERIA_SCHEMA, "cost": COST_SCHEMA, "attribution": ATTRIBUTION_SCHEMA, "control": CONTROL_SCHEMA,
}
"""Column types of every exported table: exports and loaders use them so a table round-trips exactly."""


@dataclass
class Comparison:
    """The comparison's tables (pandas) and what they were computed from."""

    baseline: dict[str, Any]
    rerun: dict[str, Any]
    commits: pd.DataFrame
    summary: pd.DataFrame
    transitions: pd.DataFrame
    criteria: pd.DataFrame
    cost: pd.DataFrame
    estimate: dict[str, Any] | None
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    attribution: pd.DataFrame = field(default_factory=lambda: typed(pd.DataFrame(), ATTRIBUTION_SCHEMA))
    control: pd.DataFrame = field(default_factory=lambda: typed(pd.DataFrame(), CONTROL_SCHEMA))
    costs: dict[str, Any] = field(default_factory=dict)
    """The rerun's three-way cost (`cost_check`): proxy, trajectory and agent figures, disagreements named."""

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"commits": self.commits, "summary": self.summary, "transitions": self.transitions,
                "criteria": self.criteria, "cost": self.cost, "attribution": self.attribution,
                "control": self.control}

    def transition_matrix(self) -> pd.DataFrame:
        """Baseline category (rows) x rerun category (columns), counts of commits run in both."""
        if self.transitions.empty:
            return pd.DataFrame()
        matrix = self.transitions.pivot_table(index="baseline_category", columns="rerun_category",
                                              values="commits", aggfunc="sum", fill_value=0)
        rows = matrix.sum(axis=1).sort_values(ascending=False).index
        columns = matrix.sum(axis=0).sort_values(ascending=False).index
        return matrix.loc[rows, columns].astype("int64")

    def overall(self) -> dict[str, Any]:
        """The combined row of the summary, as plain values."""
        row = self.summary[self.summary["repo"] == COMBINED]
        return queries.frame_records(row)[0] if len(row) else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline, "rerun": self.rerun, "meta": self.meta, "notes": self.notes,
            "estimate": self.estimate, "costs": self.costs,
            "tables": {name: queries.frame_records(frame) for name, frame in self.tables().items()},
        }


def typed(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """The frame with exactly the schema's columns, in order, with its dtypes."""
    out = pd.DataFrame({column: frame[column] if column in frame else pd.Series(dtype=object, index=frame.index)
                        for column in schema}, index=frame.index).reset_index(drop=True)
    for column, dtype in schema.items():
        values = out[column]
        if dtype in ("Int64", "int64"):
            values = pd.to_numeric(values).round()
        elif dtype == "Float64":
            values = pd.to_numeric(values)
        out[column] = values.astype(dtype)
    return out


def compare(store: EventStore, baseline: str, rerun: str, *, criteria: Criteria | str | Path | None = None,
            repo: str | None = None, prices: PriceTable | None = None, level: str = "agent") -> Comparison:
    """Compare campaign `rerun` with campaign `baseline` (see the module docstring for the rules)."""
    if baseline == rerun:
        raise TrackerError(f"baseline and rerun are the same campaign ({baseline!r}): name two campaigns")
    _check_direction(store, baseline, rerun)
    criteria = _as_criteria(criteria)
    prices = prices or load_price_table()
    campaigns = _campaign_rows(store, (baseline, rerun))
    if repo is not None:
        queries.require_repos(store, [baseline, rerun], [repo])
    base_info, rerun_info = _campaign_info(campaigns[baseline]), _campaign_info(campaigns[rerun])
    notes = _campaign_notes(base_info, rerun_info)
    base_frame = _model_attempts(attempt_outcomes(store, baseline, repo, prices, level), baseline, notes)
    rerun_frame = _model_attempts(attempt_outcomes(store, rerun, repo, prices, level), rerun, notes)

    planned, arms = planned_commits(store, rerun)
    commits = with_arms(commit_table(base_frame, rerun_frame), arms)
    repos = sorted(set(commits["repo"]))
    arm = commits["arm"].fillna(FIX_ARM)  # a commit the plan does not name ran with the fix
    with_fix = commits[arm != OLD_AGENT_ARM]  # the old agent's runs are no result of the fix
    old_agent_ids = set(commits.loc[arm == OLD_AGENT_ARM, "commit"])
    summary = with_speedups(with_attempt_rates(summary_table(with_fix, repos),
                                               base_frame[~base_frame["commit"].isin(old_agent_ids)],
                                               rerun_frame[~rerun_frame["commit"].isin(old_agent_ids)]), with_fix)
    estimate = recorded_estimate(store, rerun)
    if estimate is None:
        notes.append(f"no cost estimate recorded for {rerun!r} (a plan or an estimate recorded for it gives one)")
    cost = cost_table(base_frame, rerun_frame, commits, repos, estimate)
    notes += _unpriced_notes(cost, prices)
    criteria_frame = _criteria_frame(with_fix[arm[with_fix.index] != CONTROL_ARM], repos, criteria, notes, planned)
    meta = {**_meta(store, repo, level, prices, criteria), **run_metadata(store, baseline, rerun, rerun_info)}
    notes += _design_notes(summary) + _arm_notes(commits)
    costs = cost_summary(cost_check(store, rerun, prices))
    notes += cost_notes(rerun, costs)
    return Comparison(baseline=base_info, rerun=rerun_info, commits=commits, summary=summary,
                      transitions=transition_table(with_fix), criteria=criteria_frame, cost=cost,
                      estimate=estimate, meta=meta, notes=notes, attribution=attribution_table(with_fix),
                      control=control_table(commits), costs=costs)


CAUSE_GROUPS: dict[str, tuple[str, ...]] = {
    "agent_fix": ("tool_output_missing", "tool_result_missing", "empty_error_content"),
    "infrastructure": ("quota_exceeded", "invalid_api_key", "aws_sso_expired", "connection_error", "rate_limited",
                       "harness_error"),
    "model": ("json_parse_error", "max_steps_exceeded", "context_length_exceeded", "timeout", "no_patch", "other"),
}
"""What a baseline root cause says a fix came from: the agent fix (the failure it targets), infrastructure
restored (quota, key, SSO, connection, the harness), or the model's own limits; anything else is `unknown`."""
_GROUP_OF = {category: group for group, categories in CAUSE_GROUPS.items() for category in categories}


def cost_notes(campaign: str, costs: dict[str, Any]) -> list[str]:
    """A note naming each attempt whose proxy, trajectory and agent costs disagree past the threshold."""
    found = costs.get("disagreements") or []
    notes = [f"cost disagreement in {campaign} {d['commit'][:12]} {d['run_timestamp'] or ''}: {d['disagreement']}"
             for d in found[:5]]
    if len(found) > 5:
        notes.append(f"{len(found) - 5} more attempts of {campaign} whose costs disagree (see costs in --json)")
    return notes


def cause_group(category: Any) -> str:
    return _GROUP_OF.get(str(category), "unknown") if isinstance(category, str) else "unknown"


def attribution_table(commits: pd.DataFrame) -> pd.DataFrame:
    """Per cause group of the baseline root cause, the rerun commits fixed and still failing, with the
    categories they failed with before and the rerun's remaining failures."""
    paired = commits[commits["transition"].isin(["fixed", "still_failing"])]
    rows = []
    for group in [*CAUSE_GROUPS, "unknown"]:
        part = paired[paired["baseline_category"].map(cause_group) == group]
        if part.empty:
            continue
        fixed = int((part["transition"] == "fixed").sum())
        failing = part[part["transition"] == "still_failing"]
        rows.append({"cause_group": group, "rerun": len(part), "fixed": fixed, "still_failing": len(failing),
                     "fixed_share": fixed / len(part), "baseline_categories": _counts(part["baseline_category"]),
                     "rerun_failures": _counts(failing["rerun_category"])})
    return typed(pd.DataFrame(rows), ATTRIBUTION_SCHEMA)


def planned_commits(store: EventStore, rerun: str) -> tuple[dict[str, set[str]], dict[str, str]]:
    """What the rerun's plan covered: its commits to rerun with the fix by repo (empty without a plan), and
    the arm of every planned commit (`tracker.rerun.planning.ARMS`: the fix, the control, the old agent)."""
    items, _ = queries.campaign_plan(store, rerun)
    planned: dict[str, set[str]] = {}
    arms: dict[str, str] = {}
    for item in items:
        arm = CONTROL_ARM if item.get("control") is True else str(item.get("arm") or FIX_ARM)
        arms[str(item["human"])] = arm
        if arm == FIX_ARM:
            planned.setdefault(str(item.get("repo") or ""), set()).add(str(item["human"]))
    return planned, arms


def with_arms(commits: pd.DataFrame, arms: dict[str, str]) -> pd.DataFrame:
    """The commit table with each commit's arm in the rerun's plan (None: not planned, or no plan)."""
    out = commits.copy()
    out["arm"] = out["commit"].map(arms).astype("string")
    return typed(out, COMMIT_SCHEMA)


def control_table(commits: pd.DataFrame) -> pd.DataFrame:
    """Each arm's flip rate with its Wilson interval: the fix arm's fail -> pass, the old agent's fail -> pass
    (what a rerun fixes without the fix) and the control's pass -> fail (what a rerun breaks by itself). The fix
    arm's rate beyond the old agent's (or, without that arm, beyond the control's flips) has a Newcombe interval."""
    arm = commits["arm"].fillna(FIX_ARM)
    failed = commits[(arm == FIX_ARM) & commits["transition"].isin(["fixed", "still_failing"])]
    old = commits[(arm == OLD_AGENT_ARM) & commits["transition"].isin(["fixed", "still_failing"])]
    steady = commits[(arm == CONTROL_ARM) & commits["transition"].isin(["still_ok", "regressed"])]
    if old.empty and steady.empty:
        return typed(pd.DataFrame(), CONTROL_SCHEMA)
    fixed, old_fixed = int((failed["transition"] == "fixed").sum()), int((old["transition"] == "fixed").sum())
    flipped = int((steady["transition"] == "regressed").sum())
    against, k, n = (OLD_AGENT_ARM, old_fixed, len(old)) if len(old) else (CONTROL_ARM, flipped, len(steady))
    beyond = newcombe_interval(fixed, len(failed), k, n)
    rows = [{"arm": "failed", "commits": len(failed), "flips": fixed, "flip": "fail -> pass",
             **_rate_bounds(fixed, len(failed)),
             "beyond_control": fixed / len(failed) - k / n if len(failed) and n else None,
             "beyond_low": beyond.low, "beyond_high": beyond.high, "against": against}]
    if len(old):
        rows.append({"arm": OLD_AGENT_ARM, "commits": len(old), "flips": old_fixed, "flip": "fail -> pass",
                     **_rate_bounds(old_fixed, len(old))})
    if len(steady):
        rows.append({"arm": CONTROL_ARM, "commits": len(steady), "flips": flipped, "flip": "pass -> fail",
                     **_rate_bounds(flipped, len(steady))})
    return typed(pd.DataFrame(rows), CONTROL_SCHEMA)


def _arm_notes(commits: pd.DataFrame) -> list[str]:
    """Say which planned commits the per-repo figures leave out, and why."""
    old = int((commits["arm"].fillna(FIX_ARM) == OLD_AGENT_ARM).sum())
    if not old:
        return []
    return [f"{old} commits of the old-agent arm ran the agent before its fix: they are left out of the summary, "
            "transitions, attribution and criteria, and measured in table control"]


def _rate_bounds(successes: int, trials: int) -> dict[str, float | None]:
    low, high = wilson_interval(successes, trials)
    return {"rate": successes / trials if trials else None, "low": low, "high": high}


def _counts(values: pd.Series) -> str | None:
    """`category n, category n` by frequency: a readable cell that round-trips as text (None: no value)."""
    counts = values.fillna("unknown").astype(str).value_counts()
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or None


def _design_notes(summary: pd.DataFrame) -> list[str]:
    """What the design lets the statistics say: a rerun of failures only cannot show a regression."""
    overall = summary[summary["repo"] == COMBINED]
    if overall.empty or int(overall["paired_commits"].iloc[0]) == 0 or pd.notna(overall["mcnemar_p"].iloc[0]):
        return []
    return ["only commits that failed in the baseline were rerun, so none could regress: McNemar's test (fixed "
            "vs regressed) says nothing here and is left out; the rerun's own success rate (with its interval) "
            "is the figure, and a control arm of baseline successes would measure the flips a rerun causes by itself"]


def _check_direction(store: EventStore, baseline: str, rerun: str) -> None:
    """Refuse the swapped call: the campaign named as the baseline is a rerun of the one named as the rerun."""
    rows = {row["name"]: row for row in queries.campaign_summaries(store)}
    named_baseline = rows.get(baseline) or {}
    if named_baseline.get("kind") == "rerun" and named_baseline.get("baseline_campaign") == rerun:
        raise TrackerError(f"{baseline!r} is the rerun of {rerun!r}: the baseline comes first "
                           f"(compare {rerun} {baseline})")


def _as_criteria(criteria: Criteria | str | Path | None) -> Criteria | None:
    """The criteria themselves: a path is read (and checked) before any campaign is looked at."""
    if criteria is not None and not isinstance(criteria, Criteria):
        return load_criteria(criteria)
    return criteria


def _model_attempts(frame: pd.DataFrame, campaign: str, notes: list[str]) -> pd.DataFrame:
    """The attempts that gave the model a run: a broken setup (`harness_error`) is no verdict on the model,
    so it is kept out of every rate (and said in a note)."""
    setup = frame["failure_category"] == HARNESS
    if setup.any():
        notes.append(f"{int(setup.sum())} attempts of {campaign!r} hit a broken setup (harness_error) and are not "
                     f"counted: {', '.join(sorted(set(frame.loc[setup, 'commit'].str[:8])))}")
    return frame[~setup].reset_index(drop=True)


def _campaign_rows(store: EventStore, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Every campaign's summary by name; each of `names` must be among them, else UnknownCampaign."""
    campaigns = {row["name"]: row for row in queries.campaign_summaries(store)}
    for name in names:
        if name not in campaigns:
            raise UnknownCampaign(name)
    return campaigns


def _unpriced_notes(cost: pd.DataFrame, prices: PriceTable) -> list[str]:
    """A note when rerun attempts could not be priced: the totals then leave their cost out."""
    unpriced = int(cost.loc[cost["repo"] == COMBINED, "unpriced_attempts"].iloc[0]) if len(cost) else 0
    if not unpriced:
        return []
    return [f"{unpriced} rerun attempts have tokens but no price in table {prices.version} "
            "(or no token counts): their cost is missing from the totals"]


def _criteria_frame(commits: pd.DataFrame, repos: list[str], criteria: Criteria | None,
                    notes: list[str], planned: dict[str, set[str]] | None = None) -> pd.DataFrame:
    """The criteria table, or an empty one of the same columns when no criteria were given."""
    if criteria is None:
        return typed(pd.DataFrame(), CRITERIA_SCHEMA)
    return criteria_table(commits, repos, criteria, notes, planned)


def _meta(store: EventStore, repo: str | None, level: str, prices: PriceTable,
          criteria: Criteria | None) -> dict[str, Any]:
    """What the comparison was computed from and by which rules, so an export can be reproduced."""
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repo_filter": repo, "level": level,
        "success_rule": f"the attempt reached level {level}: {outcomes.LEVEL_HELP[level]}",
        "best_attempt_rule": BEST_ATTEMPT_RULE, "price_table": prices.version,
        "criteria": None if criteria is None else {"name": criteria.name, "source": criteria.source,
                                                   "measure": criteria.measure, "levels": criteria.levels},
        "store_position": store.last_position(), "store_head": _head_hash(store), "confidence": 0.95,
    }


def run_metadata(store: EventStore, baseline: str, rerun: str, rerun_info: dict[str, Any]) -> dict[str, Any]:
    """Who and what made the campaigns' results, for a report's header: the rule tables that classified
    them (and today's), the agent fix, the bench commit when a plan recorded one, the rerun's hosts."""
    return {
        "rules_versions": {"baseline": queries.rules_versions(store, baseline),
                           "rerun": queries.rules_versions(store, rerun)},
        "rule_table": default_rule_table().version, "agent_fix_commit": rerun_info.get("agent_fix_commit"),
        "bench_commit": queries.bench_commit(store, rerun), "hosts": queries.campaign_hosts(store, rerun),
    }


def _head_hash(store: EventStore) -> str | None:
    """The hash-chain head: identifies the log's exact content (two stores never share it)."""
    position = store.last_position()
    batch = next(iter(store.read_batches(position - 1, 1)), []) if position else []
    return batch[0].hash if batch else None


def _campaign_info(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "kind", "agent", "model", "benchmark", "agent_fix_commit", "baseline_campaign", "created_at",
            "attempts", "commits", "succeeded")
    return {key: row.get(key) for key in keys}


def _campaign_notes(base: dict[str, Any], rerun: dict[str, Any]) -> list[str]:
    notes = []
    if rerun.get("baseline_campaign") and rerun["baseline_campaign"] != base["name"]:
        notes.append(f"{rerun['name']!r} records {rerun['baseline_campaign']!r} as its baseline, not {base['name']!r}")
    if rerun.get("kind") != "rerun":
        notes.append(f"{rerun['name']!r} is of kind {rerun.get('kind')!r}, not a rerun")
    for key in ("agent", "model"):
        if base.get(key) != rerun.get(key):
            notes.append(f"the campaigns differ in {key}: {base.get(key)!r} vs {rerun.get(key)!r}")
    return notes


# -- per commit --------------------------------------------------------------------------------

_OUTCOME_COLUMNS = ("stream_id", "repo", "commit", "item_id", "run_timestamp", "status", "failure_category",
                    "model", "input_tokens", "cached_input_tokens", "output_tokens", "speedup", "patch_sha256",
                    "patch_bytes", "patch_generated", "eval_status", "improvement", "usage_model")


def _seen_at(row: dict[str, Any], level: str) -> tuple[Any, Any]:
    """One attempt's (status, failure category) at `level`: unfinished stays as it is, a success is
    `success`/`none`, anything else is `below_<level>` with its root cause or what stopped it."""
    status, category = row["status"], row["failure_category"]
    if status in UNFINISHED:
        return status, category
    if outcomes.succeeded(row, level):
        return SUCCESS, "none"
    if status == SUCCESS:
        category = _stopped_by(row, level)
    return f"below_{level}", category


def _stopped_by(row: dict[str, Any], level: str) -> str:
    """Why an attempt whose agent succeeded is below `level`: the first step of the funnel it missed."""
    if level == "patch" or not outcomes.patch_produced(row):
        return "no_patch"
    if row["eval_status"] is None or pd.isna(row["eval_status"]):
        return "not_evaluated"
    if row["eval_status"] != SUCCESS:
        return f"eval:{row['eval_status']}"
    return "not_faster"


def at_level(frame: pd.DataFrame, level: str) -> pd.DataFrame:
    """The frame with `status` and `failure_category` as seen at outcome `level` (see module docstring)."""
    if level == "agent":
        return frame
    seen = [_seen_at(row, level) for row in frame.to_dict(orient="records")]
    return frame.assign(status=[status for status, _ in seen], failure_category=[category for _, category in seen])


def attempt_outcomes(store: EventStore, campaign: str, repo: str | None, prices: PriceTable,
                     level: str = "agent") -> pd.DataFrame:
    """The attempts' columns a comparison needs, with `cost_usd` priced now (as `queries.attempts_frame`),
    at a third of its columns and priced per model on whole columns (a 20,000-attempt comparison in < 2 s)."""
    columns = queries.attempt_columns(store, campaign, _OUTCOME_COLUMNS, repo)
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in
                          zip(_OUTCOME_COLUMNS, columns, strict=True)})
    for name in ("input_tokens", "cached_input_tokens", "output_tokens", "speedup"):
        frame[name] = frame[name].astype("float64")
    frame["failure_category"] = frame["failure_category"].fillna("none")
    frame["model"] = pd.Series([billed_model(m, u) for m, u in zip(frame["model"], frame["usage_model"], strict=True)],
                               index=frame.index, dtype=object)
    frame["cost_usd"] = prices.cost_column(frame)
    return at_level(frame, outcomes.check_level(level))


def _oldest_first(frame: pd.DataFrame) -> bool:
    """True when the rows already come by (run timestamp, stream id), as `attempt_outcomes` reads them."""
    stamps, ids = frame["run_timestamp"].to_numpy(), frame["stream_id"].to_numpy()
    later = stamps[1:] > stamps[:-1]
    same = stamps[1:] == stamps[:-1]
    return bool(np.all(later | (same & (ids[1:] > ids[:-1]))))


def best_attempts(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (repo, commit): the best attempt's fields plus attempts/tokens/cost over all attempts."""
    columns = ["repo", "commit", "item_id", "status", "category", "speedup", "attempts", "tokens", "cost_usd",
               "input_tokens", "output_tokens"]
    if frame.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    status = frame["status"].fillna("unknown")
    tier = np.where(status == SUCCESS, 0, np.where(status.isin(UNFINISHED), 2, 1))
    tokens = frame[["input_tokens", "output_tokens"]].astype("float64").sum(axis=1, min_count=1)
    work = frame.assign(_tier=tier, tokens=tokens, status=status,
                        run_timestamp=frame["run_timestamp"].fillna(""))
    # Oldest first by (run timestamp, stream id), then a stable sort by tier, worst tier first: the
    # last row of each commit is then its best tier's latest attempt (cheaper than sorting on strings).
    ordered = work.sort_values(["run_timestamp", "stream_id"], kind="stable") if not _oldest_first(work) else work
    ordered = ordered.sort_values("_tier", ascending=False, kind="stable")
    best = ordered.drop_duplicates(["repo", "commit"], keep="last").set_index(["repo", "commit"])
    grouped = work.groupby(["repo", "commit"], sort=False)
    totals = pd.DataFrame({
        "attempts": grouped.size(),
        "tokens": grouped["tokens"].sum(min_count=1),
        "cost_usd": grouped["cost_usd"].sum(min_count=1),
        "input_tokens": grouped["input_tokens"].sum(min_count=1),
        "output_tokens": grouped["output_tokens"].sum(min_count=1),
    })
    category = best["failure_category"].where(best["failure_category"] != "none", "unclassified")
    category = category.where(best["_tier"] != 2, best["status"]).where(best["_tier"] != 0, "none")
    out = pd.DataFrame({"item_id": best["item_id"], "status": best["status"], "category": category,
                        "speedup": best["speedup"]}).join(totals)
    return out.reset_index()[columns]


def commit_table(base_frame: pd.DataFrame, rerun_frame: pd.DataFrame) -> pd.DataFrame:
    """One row per commit in either campaign, with both sides' best attempt and the transition."""
    keep = ["repo", "commit", "item_id", "status", "category", "attempts", "tokens", "cost_usd", "speedup"]
    base = best_attempts(base_frame)[keep].rename(columns=lambda c: c if c in ("repo", "commit") else f"baseline_{c}")
    again = best_attempts(rerun_frame)[keep].rename(columns=lambda c: c if c in ("repo", "commit") else f"rerun_{c}")
    merged = base.merge(again, on=["repo", "commit"], how="outer", indicator=True)
    merged["item_id"] = merged["baseline_item_id"].where(merged["baseline_item_id"].notna(), merged["rerun_item_id"])
    before_ok = merged["baseline_status"] == SUCCESS
    after_ok = merged["rerun_status"] == SUCCESS
    side = merged["_merge"].astype(str)
    merged["transition"] = np.select(
        [side == "left_only", side == "right_only", before_ok & after_ok, before_ok & ~after_ok,
         ~before_ok & after_ok],
        ["not_rerun", "not_in_baseline", "still_ok", "regressed", "fixed"], default="still_failing")
    for column in ("baseline_attempts", "rerun_attempts"):
        merged[column] = merged[column].fillna(0)
    merged = merged.sort_values(["repo", "commit"], kind="mergesort")
    return typed(merged, COMMIT_SCHEMA)


# -- per repo ----------------------------------------------------------------------------------


def _rate(prefix: str, successes: int, commits: int) -> dict[str, Any]:
    low, high = wilson_interval(successes, commits)
    return {f"{prefix}_commits": commits, f"{prefix}_successes": successes,
            f"{prefix}_rate": successes / commits if commits else np.nan, f"{prefix}_low": low, f"{prefix}_high": high}


def summary_table(commits: pd.DataFrame, repos: list[str]) -> pd.DataFrame:
    """Per repo and combined (`all`): success before / rerun / after with 95% Wilson intervals, and McNemar."""
    rows = []
    for scope in [*repos, COMBINED]:
        part = commits if scope == COMBINED else commits[commits["repo"] == scope]
        in_base, in_rerun = part["baseline_status"].notna(), part["rerun_status"].notna()
        base_ok = (part["baseline_status"] == SUCCESS).fillna(False)
        rerun_ok = (part["rerun_status"] == SUCCESS).fillna(False)
        after_ok = rerun_ok.where(in_rerun, base_ok)
        counts = part["transition"].value_counts()
        row: dict[str, Any] = {"repo": scope}
        row.update(_rate("baseline", int(base_ok.sum()), int(in_base.sum())))
        row.update(_rate("rerun", int(rerun_ok.sum()), int(in_rerun.sum())))
        row.update(_rate("after", int(after_ok.sum()), len(part)))
        row["paired_commits"] = int((in_base & in_rerun).sum())
        row.update({name: int(counts.get(name, 0)) for name in TRANSITIONS})
        could_regress = row["still_ok"] + row["regressed"] > 0  # paired commits that had succeeded before
        row["mcnemar_p"] = mcnemar_exact(row["fixed"], row["regressed"]) if could_regress else np.nan
        rows.append(row)
    return typed(pd.DataFrame(rows), _PER_COMMIT_SUMMARY)


def with_attempt_rates(summary: pd.DataFrame, base_frame: pd.DataFrame, rerun_frame: pd.DataFrame) -> pd.DataFrame:
    """Per-attempt success (pass@1) beside the per-commit best-of-k, with the attempt counts behind each:
    a commit tried three times has three chances; its attempts say how likely one try is to succeed."""
    out = summary.copy()
    for side, frame in (("baseline", base_frame), ("rerun", rerun_frame)):
        finished = frame[~frame["status"].isin(UNFINISHED)]
        scoped = [finished if scope == COMBINED else finished[finished["repo"] == scope] for scope in out["repo"]]
        tries = [len(part) for part in scoped]
        wins = [int((part["status"] == SUCCESS).sum()) for part in scoped]
        out[f"{side}_attempts"] = tries
        out[f"{side}_attempt_successes"] = wins
        out[f"{side}_pass_at_1"] = [w / t if t else np.nan for w, t in zip(wins, tries, strict=True)]
    return out  # typed once its last columns are in (`with_speedups`)


def with_speedups(summary: pd.DataFrame, commits: pd.DataFrame) -> pd.DataFrame:
    """At the faster level the question is how much: per scope, how many rerun commits were measured, the
    geometric mean of their speedups (ratios average geometrically) and the share faster than before (> 1)."""
    out = summary.copy()
    measured = commits[commits["rerun_speedup"].notna() & (commits["rerun_speedup"] > 0)]
    scoped = [measured if scope == COMBINED else measured[measured["repo"] == scope] for scope in out["repo"]]
    out["rerun_speedups"] = [len(part) for part in scoped]
    out["rerun_speedup_geomean"] = [float(np.exp(np.log(part["rerun_speedup"].astype(float)).mean()))
                                    if len(part) else np.nan for part in scoped]
    out["rerun_share_faster"] = [float((part["rerun_speedup"] > 1).mean()) if len(part) else np.nan
                                 for part in scoped]
    return typed(out, SUMMARY_SCHEMA)


def transition_table(commits: pd.DataFrame) -> pd.DataFrame:
    """Long form of the category transition matrix, over commits run in both campaigns."""
    paired = commits[commits["baseline_status"].notna() & commits["rerun_status"].notna()]
    counts = (paired.groupby(["baseline_category", "rerun_category"]).size().rename("commits").reset_index()
              .sort_values(["commits", "baseline_category", "rerun_category"], ascending=[False, True, True],
                           kind="mergesort"))
    return typed(counts, TRANSITION_SCHEMA)


# -- criteria ------------------------------------------------------------------------------------


def criteria_table(commits: pd.DataFrame, repos: list[str], criteria: Criteria, notes: list[str],
                   planned: dict[str, set[str]] | None = None) -> pd.DataFrame:
    """One row per scope and level: the count measured, the threshold, met or not, and the level reached.

    With the rerun's plan, a criterion counts among the planned commits: those not run yet are `not_run`,
    never failures, and `best_possible` is the level reached if every one of them succeeded."""
    rows = []
    for threshold in criteria.thresholds:
        scope = threshold.scope
        part = commits if scope == COMBINED else commits[commits["repo"] == scope]
        if scope != COMBINED and scope not in repos:
            notes.append(f"criteria name repo {scope!r}, which has no commit in this comparison")
        wanted = _planned_in(planned, scope)
        if wanted is not None:
            part = part[part["commit"].isin(wanted)]
        count = _criteria_count(part, criteria.measure)
        rerun_commits = int(part["rerun_status"].notna().sum())
        not_run = None if wanted is None else len(wanted) - rerun_commits
        _criteria_note(notes, scope, threshold.of, wanted, rerun_commits)
        reached = threshold.level_reached(count)
        best = threshold.level_reached(count + (not_run or 0))
        for level, needed in threshold.levels.items():
            rows.append({"scope": scope, "measure": criteria.measure, "count": count, "commits": rerun_commits,
                         "of": threshold.of, "level": level, "threshold": needed, "met": count >= needed,
                         "level_reached": reached, "planned": None if wanted is None else len(wanted),
                         "not_run": not_run, "best_possible": best})
    return typed(pd.DataFrame(rows), CRITERIA_SCHEMA)


def _criteria_count(part: pd.DataFrame, measure: str) -> int:
    """Successes of the rerun (or commits fixed, with the `fixed` measure)."""
    if measure == "fixed":
        return int((part["transition"] == "fixed").sum())
    return int((part["rerun_status"] == SUCCESS).fillna(False).sum())


def _planned_in(planned: dict[str, set[str]] | None, scope: str) -> set[str] | None:
    """The planned commits of a scope (all repos for `all`); None without a recorded plan (or, for one
    repo, when the plan's items do not name their repo)."""
    if not planned:
        return None
    if scope == COMBINED:
        return set().union(*planned.values())
    return None if "" in planned else planned.get(scope, set())


def _criteria_note(notes: list[str], scope: str, of: int | None, wanted: set[str] | None, run: int) -> None:
    """Say where the criteria's `of` and what the plan or the rerun hold disagree."""
    held = run if wanted is None else len(wanted)
    if of is not None and of != held:
        what = "the rerun has" if wanted is None else "the plan holds"
        notes.append(f"criteria for {scope!r} expect {of} commits; {what} {held}")
    if wanted is not None and run < len(wanted):
        notes.append(f"{scope}: {len(wanted) - run} of {len(wanted)} planned commits not run yet (not failures)")


# -- cost ----------------------------------------------------------------------------------------


def recorded_estimate(store: EventStore, campaign: str) -> dict[str, Any] | None:
    """The campaign's estimate: all its plans merged (see `queries.campaign_plan`), or None."""
    return queries.campaign_plan(store, campaign)[1]


def _money(value: Any) -> float | None:
    if isinstance(value, dict):
        value = next((value[k] for k in ("cost_usd", "total_usd", "usd") if k in value), None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def estimate_for(estimate: dict[str, Any] | None, scope: str) -> float | None:
    """The estimated USD for a repo or for `all` (the total, else the sum of the repos' estimates)."""
    if not estimate:
        return None
    per_repo = _per_repo(estimate)
    if scope != COMBINED:
        return _money(per_repo.get(scope))
    total = _money(estimate)
    if total is None and per_repo:
        total = _sum_of_repos(per_repo)
    return total


def _per_repo(estimate: dict[str, Any]) -> dict[str, Any]:
    """The estimate's `per_repo` mapping; anything else there counts as no per-repo figures."""
    raw = estimate.get("per_repo")
    return raw if isinstance(raw, dict) else {}


def _sum_of_repos(per_repo: dict[str, Any]) -> float | None:
    """The repos' estimates added up, or None when any of them is not an amount (a partial sum would mislead)."""
    values = [_money(v) for v in per_repo.values()]
    return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))


def cost_table(base_frame: pd.DataFrame, rerun_frame: pd.DataFrame, commits: pd.DataFrame, repos: list[str],
               estimate: dict[str, Any] | None) -> pd.DataFrame:
    """Actual cost and tokens of the rerun per repo and total, against the plan's estimate."""
    rows = [_cost_row(scope, _in_scope(base_frame, scope), _in_scope(rerun_frame, scope), _in_scope(commits, scope),
                      estimate_for(estimate, scope))
            for scope in [*repos, COMBINED]]
    return typed(pd.DataFrame(rows), COST_SCHEMA)


def _in_scope(frame: pd.DataFrame, scope: str) -> pd.DataFrame:
    """The frame's rows of one repo, or all of them for the combined scope."""
    return frame if scope == COMBINED else frame[frame["repo"] == scope]


def _per(amount: Any, count: Any) -> Any:
    """amount / count, or None when there is nothing to divide by or no amount is known."""
    return amount / count if count and pd.notna(amount) else None


def _cost_row(scope: str, base: pd.DataFrame, again: pd.DataFrame, part: pd.DataFrame,
              planned: float | None) -> dict[str, Any]:
    """One scope's row of the cost table, from its baseline attempts, rerun attempts and commits."""
    successes = int((part["rerun_status"] == SUCCESS).sum())
    tokens_in = again["input_tokens"].sum(min_count=1)
    tokens_out = again["output_tokens"].sum(min_count=1)
    tokens = pd.Series([tokens_in, tokens_out], dtype="float64").sum(min_count=1)
    actual = again["cost_usd"].astype("float64").sum(min_count=1)
    return {
        "repo": scope, "baseline_attempts": len(base),
        "baseline_cost_usd": base["cost_usd"].astype("float64").sum(min_count=1),
        "rerun_attempts": len(again), "rerun_successes": successes, "rerun_input_tokens": tokens_in,
        "rerun_output_tokens": tokens_out, "rerun_tokens": tokens, "rerun_cost_usd": actual,
        "estimate_usd": planned,
        "over_estimate_usd": actual - planned if planned is not None and pd.notna(actual) else None,
        "actual_to_estimate": _per(actual, planned),
        "tokens_per_success": _per(tokens, successes),
        "cost_per_success_usd": _per(actual, successes),
        "unpriced_attempts": int(again["cost_usd"].isna().sum()),
    }
