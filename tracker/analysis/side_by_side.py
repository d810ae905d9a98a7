"""Several campaigns side by side on the commits they share: GPT-5's rerun beside Claude's, per repo.

Where `compare` follows one rerun back to its baseline, this lays two or more campaigns of equal standing
next to each other (two models rerunning the same failed commits, or three agent versions) and asks how
each did on the same work. Rules:

- Only the commits every campaign ran count (joined by repo and full sha): a rate over different commits
  would compare the commits, not the campaigns. What each campaign ran beyond them is said in a note.
- A commit succeeds in a campaign by the one rule of `tracker.domain.outcomes` (its best attempt reached
  the level); harness errors give no verdict and are left out, as in `compare`.
- Each campaign after the first is measured against the first (the reference): on the shared commits
  both directions are possible, so the exact McNemar test applies, with Holm's adjustment across the
  pairs. The difference of success rates and of per-attempt pass@1 get 95% intervals from a bootstrap
  that resamples commits (clusters), keeping each commit's attempts together in every campaign at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tracker.analysis.compare import (
    SUCCESS,
    UNFINISHED,
    _campaign_info,
    _campaign_rows,
    _meta,
    _model_attempts,
    attempt_outcomes,
    best_attempts,
    typed,
)
from tracker.analysis.criteria import COMBINED
from tracker.analysis.stats import cluster_bootstrap_differences, holm_adjust, mcnemar_exact, wilson_interval
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.errors import TrackerError
from tracker.eventstore.store import EventStore
from tracker.projections.read_model import queries

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20241201
"""Fixed, so the same store gives the same intervals every time (a report must be reproducible)."""

SIDE_COMMIT_SCHEMA: dict[str, str] = {
    "repo": "string", "commit": "string", "campaign": "string", "status": "string", "category": "string",
    "success": "bool", "attempts": "int64", "attempt_successes": "int64", "tokens": "Int64",
    "cost_usd": "Float64", "speedup": "Float64",
}
SIDE_SUMMARY_SCHEMA: dict[str, str] = {
    "repo": "string", "campaign": "string", "commits": "int64", "successes": "int64", "rate": "Float64",
    "low": "Float64", "high": "Float64", "attempts": "int64", "attempt_successes": "int64",
    "pass_at_1": "Float64", "cost_usd": "Float64", "cost_per_success_usd": "Float64",
    "speedup_geomean": "Float64", "not_shared": "int64",
}
SIDE_PAIR_SCHEMA: dict[str, str] = {
    "repo": "string", "campaign": "string", "against": "string", "commits": "int64", "both": "int64",
    "only_campaign": "int64", "only_against": "int64", "neither": "int64", "difference": "Float64",
    "low": "Float64", "high": "Float64", "pass_at_1_difference": "Float64", "pass_at_1_low": "Float64",
    "pass_at_1_high": "Float64", "mcnemar_p": "Float64", "holm_p": "Float64",
}
SIDE_SCHEMAS: dict[str, dict[str, str]] = {
    "commits": SIDE_COMMIT_SCHEMA, "summary": SIDE_SUMMARY_SCHEMA, "pairs": SIDE_PAIR_SCHEMA,
}


@dataclass
class SideBySide:
    """The campaigns' tables on their shared commits (pandas), and what they were computed from."""

    campaigns: list[dict[str, Any]]
    commits: pd.DataFrame
    summary: pd.DataFrame
    pairs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [str(info["name"]) for info in self.campaigns]

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"commits": self.commits, "summary": self.summary, "pairs": self.pairs}

    def outcome_grid(self) -> pd.DataFrame:
        """One row per shared commit, one column per campaign: its status there (`success`, `below_tests`...)."""
        if self.commits.empty:
            return pd.DataFrame(columns=["repo", "commit", *self.names])
        grid = self.commits.pivot(index=["repo", "commit"], columns="campaign", values="status")
        return grid.reindex(columns=self.names).reset_index()

    def to_dict(self) -> dict[str, Any]:
        return {"campaigns": self.campaigns, "meta": self.meta, "notes": self.notes,
                "tables": {name: queries.frame_records(frame) for name, frame in self.tables().items()}}


def compare_many(store: EventStore, campaigns: list[str] | tuple[str, ...], *, repo: str | None = None,
                 level: str = "agent", prices: PriceTable | None = None) -> SideBySide:
    """Lay `campaigns` (two or more, the first the reference) side by side on the commits they all ran."""
    names = list(campaigns)
    if len(names) < 2:
        raise TrackerError("name at least two campaigns to lay side by side")
    if len(set(names)) != len(names):
        raise TrackerError(f"a campaign is named twice: {', '.join(names)}")
    prices = prices or load_price_table()
    rows = _campaign_rows(store, tuple(names))
    notes: list[str] = []
    frames = {name: _model_attempts(attempt_outcomes(store, name, repo, prices, level), name, notes)
              for name in names}
    per_commit = {name: _commit_rows(frame) for name, frame in frames.items()}
    shared = _shared_keys(per_commit)
    notes += _not_shared_notes(per_commit, shared)
    commits = _long_commits(per_commit, shared, names)
    repos = sorted(set(commits["repo"]))
    summary = summary_table(commits, per_commit, shared, names, repos)
    pairs = pair_table(commits, names, repos)
    notes += _info_notes([_campaign_info(rows[name]) for name in names])
    meta = {**_meta(store, repo, level, prices, None), "reference": names[0], "shared_commits": len(shared),
            "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "cluster": "commit"},
            "multiple_comparisons": "Holm over the pairs of each scope"}
    meta.pop("criteria", None)
    return SideBySide(campaigns=[_campaign_info(rows[name]) for name in names], commits=commits, summary=summary,
                      pairs=pairs, meta=meta, notes=notes)


def _commit_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (repo, commit) of one campaign: its best attempt (`best_attempts`) and its finished attempts'
    successes, for pass@1."""
    best = best_attempts(frame)
    finished = frame[~frame["status"].isin(UNFINISHED)]
    wins = (finished["status"] == SUCCESS).groupby([finished["repo"], finished["commit"]]).agg(["sum", "size"])
    wins.columns = ["attempt_successes", "finished_attempts"]
    out = best.merge(wins.reset_index(), on=["repo", "commit"], how="left")
    return out.assign(key=out["repo"].astype(str) + "/" + out["commit"].astype(str))


def _shared_keys(per_commit: dict[str, pd.DataFrame]) -> set[str]:
    """The `repo/commit` keys every campaign ran."""
    keys = [set(frame["key"]) for frame in per_commit.values()]
    return set.intersection(*keys) if keys else set()


def _long_commits(per_commit: dict[str, pd.DataFrame], shared: set[str], names: list[str]) -> pd.DataFrame:
    """The shared commits, one row per commit and campaign, in the campaigns' order."""
    parts = []
    for name in names:
        frame = per_commit[name]
        part = frame[frame["key"].isin(shared)]
        parts.append(pd.DataFrame({
            "repo": part["repo"], "commit": part["commit"], "campaign": name, "status": part["status"],
            "category": part["category"], "success": part["status"] == SUCCESS,
            "attempts": part["finished_attempts"].fillna(0), "attempt_successes": part["attempt_successes"].fillna(0),
            "tokens": part["tokens"], "cost_usd": part["cost_usd"], "speedup": part["speedup"]}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(out):
        order = {name: i for i, name in enumerate(names)}
        out = out.assign(_order=out["campaign"].map(order)).sort_values(["repo", "commit", "_order"],
                                                                        kind="mergesort")
    return typed(out, SIDE_COMMIT_SCHEMA)


def _scoped(frame: pd.DataFrame, scope: str) -> pd.DataFrame:
    return frame if scope == COMBINED else frame[frame["repo"] == scope]


def summary_table(commits: pd.DataFrame, per_commit: dict[str, pd.DataFrame], shared: set[str],
                  names: list[str], repos: list[str]) -> pd.DataFrame:
    """Per repo (and `all`) and campaign: success on the shared commits with its Wilson interval, pass@1
    over their finished attempts, cost per success, the speedups' geometric mean, and what was not shared."""
    rows = []
    for scope in [*repos, COMBINED]:
        for name in names:
            part = _scoped(commits[commits["campaign"] == name], scope)
            rows.append(_summary_row(scope, name, part, _scoped(per_commit[name], scope), shared))
    return typed(pd.DataFrame(rows), SIDE_SUMMARY_SCHEMA)


def _summary_row(scope: str, name: str, part: pd.DataFrame, own: pd.DataFrame,
                 shared: set[str]) -> dict[str, Any]:
    successes, n = int(part["success"].sum()), len(part)
    low, high = wilson_interval(successes, n)
    tries, wins = int(part["attempts"].sum()), int(part["attempt_successes"].sum())
    cost = part["cost_usd"].astype("float64").sum(min_count=1)
    speedups = part["speedup"].astype("float64")
    speedups = speedups[speedups > 0]
    not_shared = int((~own["key"].isin(shared)).sum())
    return {"repo": scope, "campaign": name, "commits": n, "successes": successes,
            "rate": successes / n if n else np.nan, "low": low, "high": high, "attempts": tries,
            "attempt_successes": wins, "pass_at_1": wins / tries if tries else np.nan, "cost_usd": cost,
            "cost_per_success_usd": cost / successes if successes and pd.notna(cost) else np.nan,
            "speedup_geomean": float(np.exp(np.log(speedups).mean())) if len(speedups) else np.nan,
            "not_shared": not_shared}


def pair_table(commits: pd.DataFrame, names: list[str], repos: list[str]) -> pd.DataFrame:
    """Each campaign after the first against the first, per scope: the 2x2 of shared commits, the
    differences with cluster-bootstrap intervals, exact McNemar and Holm's adjustment over the scope's pairs."""
    rows = []
    reference = names[0]
    for scope in [*repos, COMBINED]:
        part = _scoped(commits, scope)
        scope_rows = [_pair_row(scope, name, reference, part) for name in names[1:]]
        adjusted = holm_adjust([row["mcnemar_p"] for row in scope_rows])
        for row, holm in zip(scope_rows, adjusted, strict=True):
            rows.append({**row, "holm_p": holm})
    return typed(pd.DataFrame(rows), SIDE_PAIR_SCHEMA)


def _pair_row(scope: str, name: str, reference: str, part: pd.DataFrame) -> dict[str, Any]:
    mine = part[part["campaign"] == name].set_index(["repo", "commit"])
    theirs = part[part["campaign"] == reference].set_index(["repo", "commit"]).reindex(mine.index)
    a, b = mine["success"].to_numpy(bool), theirs["success"].to_numpy(bool)
    only_mine, only_theirs = int((a & ~b).sum()), int((~a & b).sum())
    per_commit = np.stack([a, b]).astype("float64")
    attempts = np.stack([mine["attempt_successes"].to_numpy("float64"), theirs["attempt_successes"].to_numpy("float64"),
                         mine["attempts"].to_numpy("float64"), theirs["attempts"].to_numpy("float64")])
    rate_ci, pass_ci = cluster_bootstrap_differences(per_commit, attempts, resamples=BOOTSTRAP_RESAMPLES,
                                                     seed=BOOTSTRAP_SEED)
    n = len(a)
    mine_pass, theirs_pass = _share(attempts[0], attempts[2]), _share(attempts[1], attempts[3])
    return {"repo": scope, "campaign": name, "against": reference, "commits": n, "both": int((a & b).sum()),
            "only_campaign": only_mine, "only_against": only_theirs, "neither": int((~a & ~b).sum()),
            "difference": (a.sum() - b.sum()) / n if n else np.nan, "low": rate_ci.low, "high": rate_ci.high,
            "pass_at_1_difference": mine_pass - theirs_pass, "pass_at_1_low": pass_ci.low,
            "pass_at_1_high": pass_ci.high,
            "mcnemar_p": mcnemar_exact(only_mine, only_theirs) if n else np.nan}


def _share(wins: np.ndarray, tries: np.ndarray) -> float:
    total = float(tries.sum())
    return float(wins.sum()) / total if total else float("nan")


def _not_shared_notes(per_commit: dict[str, pd.DataFrame], shared: set[str]) -> list[str]:
    """Say, per campaign, how many of its commits the others did not run (they are left out of every figure)."""
    notes = []
    for name, frame in per_commit.items():
        extra = int((~frame["key"].isin(shared)).sum())
        if extra:
            notes.append(f"{extra} of {len(frame)} commits of {name!r} were not run by every campaign and are "
                         "left out (column not_shared)")
    if not shared:
        notes.append("the campaigns share no commit: there is nothing to lay side by side")
    return notes


def _info_notes(infos: list[dict[str, Any]]) -> list[str]:
    """What differs between the campaigns besides their results (agent, model, fix commit, kind)."""
    notes = []
    for key in ("agent", "model", "agent_fix_commit", "kind"):
        values = [str(info.get(key)) for info in infos]
        if len(set(values)) > 1:
            notes.append(f"the campaigns differ in {key}: " + ", ".join(
                f"{info['name']} {value}" for info, value in zip(infos, values, strict=True)))
    return notes
