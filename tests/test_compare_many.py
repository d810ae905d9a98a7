"""`track compare A B [C …]`: campaigns side by side on the commits they share, per repo, every pair's
difference with an interval that keeps a commit's attempts together, and exact McNemar with Holm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from tests.conftest import run_track
from tests.support.campaign_builders import Attempt, add_attempts, create_campaign, sha
from tracker.analysis.side_by_side import compare_many
from tracker.analysis.stats import cluster_bootstrap_differences, holm_adjust
from tracker.errors import TrackerError, UnknownCampaign
from tracker.eventstore.store import EventStore

# (repo, commit label) -> outcome per campaign: gpt-5 rerun, claude rerun, an older agent's rerun
OUTCOMES = {
    **{("vllm", f"v{i}"): ("success", "success", "error") for i in range(6)},
    **{("vllm", f"v{i}"): ("success", "error", "error") for i in range(6, 9)},
    **{("vllm", f"v{i}"): ("error", "success", "success") for i in range(9, 10)},
    **{("vllm", f"v{i}"): ("error", "error", "error") for i in range(10, 12)},
    **{("sglang", f"s{i}"): ("error", "success", "success") for i in range(4)},
    **{("sglang", f"s{i}"): ("success", "success", "success") for i in range(4, 7)},
    **{("sglang", f"s{i}"): ("error", "error", "error") for i in range(7, 10)},
}
NAMES = ("gpt5-rerun", "claude-rerun", "old-rerun")


def _three(store: EventStore) -> None:
    for index, name in enumerate(NAMES):
        create_campaign(store, name, "rerun", model="claude-sonnet-4.5" if "claude" in name else "gpt-5",
                        fix_commit="a1c6d41")
        attempts = []
        for (repo, label), outcome in OUTCOMES.items():
            status = outcome[index]
            if status == "success" and index == 0 and label in ("v0", "v1"):  # two tries, the first failed
                attempts.append(Attempt(repo, sha(label), "error", "json_parse_error", timestamp="2025-12-01_09-00-00"))
            attempts.append(Attempt(repo, sha(label), status, None if status == "success" else "max_steps_exceeded"))
        if name == "claude-rerun":  # commits only this campaign ran: not shared, left out
            attempts += [Attempt("vllm", sha(f"extra{i}"), "success") for i in range(3)]
        add_attempts(store, name, attempts)


def test_only_the_shared_commits_count_and_what_was_left_out_is_named(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        _three(store)
        result = compare_many(store, list(NAMES))
    summary = result.summary.set_index(["repo", "campaign"])
    assert summary.loc[("all", "claude-rerun"), "commits"] == len(OUTCOMES)
    assert summary.loc[("all", "claude-rerun"), "not_shared"] == 3
    assert any("3 of 25 commits of 'claude-rerun'" in note for note in result.notes)
    assert any("differ in model" in note for note in result.notes)
    for name_index, name in enumerate(NAMES):
        for repo in ("vllm", "sglang", "all"):
            wins = sum(outcome[name_index] == "success" for (r, _), outcome in OUTCOMES.items()
                       if repo in ("all", r))
            n = sum(repo in ("all", r) for (r, _) in OUTCOMES)
            row = summary.loc[(repo, name)]
            assert (row["successes"], row["commits"]) == (wins, n)
            low, high = proportion_confint(wins, n, method="wilson")
            assert row["low"] == pytest.approx(low, abs=1e-9) and row["high"] == pytest.approx(high, abs=1e-9)
    # pass@1 counts every finished attempt: gpt-5 tried v0 and v1 twice
    gpt = summary.loc[("all", "gpt5-rerun")]
    assert (gpt["attempts"], gpt["attempt_successes"]) == (len(OUTCOMES) + 2, 12)


def test_each_campaign_is_measured_against_the_first_with_exact_mcnemar_and_holm(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        _three(store)
        result = compare_many(store, list(NAMES))
    pairs = result.pairs.set_index(["repo", "campaign"])
    claude = pairs.loc[("all", "claude-rerun")]
    # claude solved v9 + s0..s3 that gpt-5 did not (5); gpt-5 solved v6..v8 that claude did not (3)
    assert claude[["both", "only_campaign", "only_against", "neither"]].tolist() == [9, 5, 3, 5]
    assert claude["against"] == "gpt5-rerun"
    assert claude["difference"] == pytest.approx((14 - 12) / 22)
    assert claude["mcnemar_p"] == pytest.approx(stats.binomtest(3, 8, 0.5).pvalue)
    old = pairs.loc[("all", "old-rerun")]
    assert old[["only_campaign", "only_against"]].tolist() == [5, 9]
    raw = [claude["mcnemar_p"], old["mcnemar_p"]]
    assert [claude["holm_p"], old["holm_p"]] == pytest.approx(list(multipletests(raw, method="holm")[1]))
    assert claude["low"] <= claude["difference"] <= claude["high"]
    assert set(result.pairs["repo"]) == {"vllm", "sglang", "all"}


def test_the_outcome_grid_holds_one_row_per_shared_commit_in_the_campaigns_order(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        _three(store)
        result = compare_many(store, list(NAMES), repo="sglang")
    grid = result.outcome_grid()
    assert list(grid.columns) == ["repo", "commit", *NAMES]
    assert len(grid) == 10 and set(grid["repo"]) == {"sglang"}
    row = grid[grid["commit"] == sha("s0")].iloc[0]
    assert row[list(NAMES)].tolist() == ["error", "success", "success"]


def test_the_level_decides_what_succeeded(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        _three(store)
        agent = compare_many(store, list(NAMES[:2]), level="agent")
        tests = compare_many(store, list(NAMES[:2]), level="tests")
    assert int(agent.summary.query("repo == 'all'")["successes"].sum()) > 0
    assert int(tests.summary.query("repo == 'all'")["successes"].sum()) == 0  # nothing was evaluated
    assert tests.meta["level"] == "tests"


def test_the_cluster_bootstrap_agrees_with_scipy_paired_bootstrap() -> None:
    rng = np.random.default_rng(3)
    n = 400
    a = rng.random(n) < 0.6
    b = rng.random(n) < 0.45
    tries_a, tries_b = rng.integers(1, 4, n), rng.integers(1, 4, n)
    wins_a, wins_b = rng.binomial(tries_a, 0.5), rng.binomial(tries_b, 0.35)
    rate_ci, pass_ci = cluster_bootstrap_differences(
        np.stack([a, b]).astype(float), np.stack([wins_a, wins_b, tries_a, tries_b]).astype(float),
        resamples=4000, seed=1)
    ref_rate = stats.bootstrap((a.astype(float), b.astype(float)), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis),
                               paired=True, n_resamples=4000, method="percentile", random_state=2).confidence_interval

    def pass_diff(wa: np.ndarray, wb: np.ndarray, ta: np.ndarray, tb: np.ndarray, axis: int = -1) -> np.ndarray:
        return wa.sum(axis) / ta.sum(axis) - wb.sum(axis) / tb.sum(axis)

    ref_pass = stats.bootstrap((wins_a, wins_b, tries_a, tries_b), pass_diff, paired=True, n_resamples=4000,
                               method="percentile", random_state=2).confidence_interval
    assert rate_ci.low == pytest.approx(ref_rate.low, abs=0.01)
    assert rate_ci.high == pytest.approx(ref_rate.high, abs=0.01)
    assert pass_ci.low == pytest.approx(ref_pass.low, abs=0.01)
    assert pass_ci.high == pytest.approx(ref_pass.high, abs=0.01)
    again = cluster_bootstrap_differences(np.stack([a, b]).astype(float),
                                          np.stack([wins_a, wins_b, tries_a, tries_b]).astype(float),
                                          resamples=4000, seed=1)
    assert again == (rate_ci, pass_ci)  # seeded: a report is reproducible


def test_holm_matches_statsmodels_and_leaves_missing_p_values_alone() -> None:
    raw = [0.01, 0.04, 0.03, float("nan"), 0.5]
    adjusted = holm_adjust(raw)
    reference = multipletests([p for p in raw if p == p], method="holm")[1]
    assert [p for p in adjusted if p == p] == pytest.approx(list(reference))
    assert adjusted[3] != adjusted[3]


def test_bad_calls_are_refused_with_a_reason(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        _three(store)
        with pytest.raises(TrackerError, match="named twice"):
            compare_many(store, ["gpt5-rerun", "gpt5-rerun"])
        with pytest.raises(UnknownCampaign):
            compare_many(store, ["gpt5-rerun", "nope"])
        with pytest.raises(TrackerError, match="at least two"):
            compare_many(store, ["gpt5-rerun"])


def test_the_cli_lays_three_campaigns_side_by_side_in_every_format(sqlite_url: str, tmp_path: Path) -> None:
    with EventStore.open(sqlite_url) as store:
        _three(store)
    base = ["--db", sqlite_url, "compare", *NAMES]
    table = run_track(*base)
    assert table.returncode == 0, table.stdout
    assert "On the 22 commits all 3 campaigns ran" in table.stdout
    assert "claude-rerun vs gpt5-rerun: +9.1%" in table.stdout
    data = json.loads(run_track(*base, "--json").stdout)
    assert [c["name"] for c in data["campaigns"]] == list(NAMES)
    assert {row["campaign"] for row in data["tables"]["pairs"]} == {"claude-rerun", "old-rerun"}
    html = run_track(*base, "--format", "html", "--out", str(tmp_path / "many.html"))
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "many.html").read_text()
    assert 'data-table="pairs"' in page and "http" not in page.replace("http-equiv", "")
    csv = run_track(*base, "--format", "csv", "--out", str(tmp_path / "tables"))
    assert csv.returncode == 0 and {p.name for p in (tmp_path / "tables").iterdir()} == {
        "commits.csv", "summary.csv", "pairs.csv"}
    two = run_track("--db", sqlite_url, "compare", "gpt5-rerun", "claude-rerun", "--side-by-side", "--json")
    assert two.returncode == 0 and len(json.loads(two.stdout)["tables"]["pairs"]) == 3  # vllm, sglang, all


def test_the_cli_refuses_what_a_side_by_side_view_cannot_do(sqlite_url: str, tmp_path: Path) -> None:
    with EventStore.open(sqlite_url) as store:
        _three(store)
    criteria = tmp_path / "c.yaml"
    criteria.write_text("name: x\nthresholds: []\n")
    refused = run_track("--db", sqlite_url, "compare", *NAMES, "--criteria", str(criteria))
    assert refused.returncode != 0 and "side by side" in refused.stderr
    tex = run_track("--db", sqlite_url, "compare", *NAMES, "--format", "tex")
    assert tex.returncode != 0 and "not tex" in tex.stderr
