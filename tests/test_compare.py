"""`tracker.analysis.compare` on campaigns with known outcomes: transitions, best attempt, summary, criteria, cost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest

from tests.support.campaign_builders import Attempt, add_attempts, build_pair, create_campaign, record_plan, sha
from tracker.analysis.compare import (
    TRANSITIONS,
    Comparison,
    at_level,
    attempt_outcomes,
    best_attempts,
    compare,
    estimate_for,
)
from tracker.analysis.criteria import example_path, load_criteria, parse_criteria
from tracker.analysis.stats import wilson_interval
from tracker.domain.pricing import load_price_table
from tracker.errors import TrackerError, UnknownValue
from tracker.eventstore.store import EventStore
from tracker.projections.read_model.queries import attempts_frame

T1, T2, T3 = "2025-12-01_10-00-00", "2025-12-02_10-00-00", "2025-12-03_10-00-00"
R1, R2 = "2026-01-10_09-00-00", "2026-01-11_09-00-00"
ATTEMPT_COST = 0.1225  # 80k uncached + 20k cached input, 2k output at gpt-5 list prices
ESTIMATE = {"cost_usd": 1.0, "per_repo": {"vllm": 0.4, "sglang": {"cost_usd": 0.6}}}

C = {name: sha(name) for name in ("fixed", "still", "regressed", "ok", "not_rerun", "new", "multi", "running")}

BASELINE = [
    Attempt("vllm", C["fixed"], "error", "tool_output_missing", T1),
    Attempt("vllm", C["still"], "error", "quota_exceeded", T1),
    Attempt("sglang", C["regressed"], "success", timestamp=T1, speedup=1.1),
    Attempt("sglang", C["ok"], "success", timestamp=T1),
    Attempt("vllm", C["not_rerun"], "error", "no_patch", T1),
    # several attempts: the success (T2) beats the later failure (T3)
    Attempt("vllm", C["multi"], "error", "quota_exceeded", T1),
    Attempt("vllm", C["multi"], "success", timestamp=T2, speedup=1.5),
    Attempt("vllm", C["multi"], "max_steps_exceeded", "max_steps_exceeded", T3),
    Attempt("sglang", C["running"], "error", "rate_limited", T1),
]
RERUN = [
    Attempt("vllm", C["fixed"], "success", timestamp=R1, speedup=1.3),
    # among failures, the latest attempt's category (timeout, not json_parse_error)
    Attempt("vllm", C["still"], "error", "json_parse_error", R1),
    Attempt("vllm", C["still"], "error", "timeout", R2),
    Attempt("sglang", C["regressed"], "error", "invalid_api_key", R1),
    Attempt("sglang", C["ok"], "success", timestamp=R1),
    Attempt("sglang", C["new"], "success", timestamp=R1),
    Attempt("vllm", C["multi"], "success", timestamp=R1, speedup=2.0),
    Attempt("vllm", C["multi"], "error", "other", R2),
    # a finished failure beats a later attempt still running (which has no tokens yet)
    Attempt("sglang", C["running"], "error", "context_length_exceeded", R1),
    Attempt("sglang", C["running"], "running", timestamp=R2, input_tokens=None, cached_input_tokens=None,
            output_tokens=None),
]


@pytest.fixture
def store(sqlite_url: str) -> EventStore:
    with EventStore.open(sqlite_url) as opened:
        yield opened


@pytest.fixture
def known(store: EventStore) -> Comparison:
    build_pair(store, BASELINE, RERUN, estimate=ESTIMATE)
    return compare(store, "orig", "rerun", criteria=example_path())


def _row(result: Comparison, name: str) -> dict:
    frame = result.commits.set_index("commit")
    return frame.loc[C[name]].to_dict()


def test_every_transition_kind_on_both_backends(store_url: str) -> None:
    with EventStore.open(store_url) as store:
        build_pair(store, BASELINE, RERUN, estimate=ESTIMATE)
        result = compare(store, "orig", "rerun")
    got = dict(zip(result.commits["commit"], result.commits["transition"], strict=True))
    assert got == {C["fixed"]: "fixed", C["still"]: "still_failing", C["regressed"]: "regressed", C["ok"]: "still_ok",
                   C["not_rerun"]: "not_rerun", C["new"]: "not_in_baseline", C["multi"]: "still_ok",
                   C["running"]: "still_failing"}
    assert set(got.values()) == set(TRANSITIONS)


def test_commits_missing_on_one_side(known: Comparison) -> None:
    not_rerun, new = _row(known, "not_rerun"), _row(known, "new")
    assert (not_rerun["baseline_status"], not_rerun["baseline_category"]) == ("error", "no_patch")
    assert pd.isna(not_rerun["rerun_status"]) and pd.isna(not_rerun["rerun_category"])
    assert (not_rerun["baseline_attempts"], not_rerun["rerun_attempts"]) == (1, 0)
    assert pd.isna(not_rerun["rerun_cost_usd"]) and pd.isna(not_rerun["rerun_tokens"])
    assert pd.isna(new["baseline_status"]) and (new["rerun_status"], new["rerun_category"]) == ("success", "none")
    assert new["item_id"] == f"sglang-{C['new'][:8]}"  # taken from the rerun when the baseline lacks the commit


def test_best_attempt_rule_and_sums_over_attempts(known: Comparison) -> None:
    multi = _row(known, "multi")
    # baseline: quota (T1), success (T2), max steps (T3) -> the success, with its speedup; all 3 attempts counted
    assert (multi["baseline_status"], multi["baseline_category"], multi["baseline_speedup"]) == ("success", "none", 1.5)
    assert multi["baseline_attempts"] == 3
    assert multi["baseline_tokens"] == 3 * 102_000
    assert multi["baseline_cost_usd"] == pytest.approx(3 * ATTEMPT_COST)
    assert (multi["rerun_status"], multi["rerun_speedup"], multi["rerun_attempts"]) == ("success", 2.0, 2)
    still = _row(known, "still")
    assert (still["rerun_status"], still["rerun_category"], still["rerun_attempts"]) == ("error", "timeout", 2)
    running = _row(known, "running")
    assert (running["rerun_status"], running["rerun_category"]) == ("error", "context_length_exceeded")
    assert running["rerun_tokens"] == 102_000  # the running attempt has no tokens: sum of what is known
    fixed = _row(known, "fixed")
    assert (fixed["baseline_category"], fixed["rerun_category"], fixed["rerun_speedup"]) == (
        "tool_output_missing", "none", 1.3)


def test_best_attempt_unfinished_only_and_unclassified(store: EventStore) -> None:
    create_campaign(store, "solo")
    add_attempts(store, "solo", [
        Attempt("vllm", sha("a"), "running", timestamp=T1),
        Attempt("vllm", sha("a"), "interrupted", timestamp=T2),
        Attempt("vllm", sha("b"), "error", "none", T1),  # a failure the classifier has not categorised
    ])
    best = best_attempts(attempts_frame(store, "solo")).set_index("commit")
    assert (best.loc[sha("a"), "status"], best.loc[sha("a"), "category"]) == ("interrupted", "interrupted")
    assert best.loc[sha("a"), "attempts"] == 2
    assert best.loc[sha("b"), "category"] == "unclassified"


def test_best_attempt_is_stable_under_append_order(tmp_path: Path) -> None:
    """Ties in rank are broken by run timestamp then stream id, never by the order events arrived in."""
    results = []
    for i, order in enumerate((BASELINE, list(reversed(BASELINE)))):
        with EventStore.open(f"sqlite:///{tmp_path / f'{i}.db'}") as store:
            build_pair(store, order, list(reversed(RERUN)) if i else RERUN)
            result = compare(store, "orig", "rerun")
            results.append(result.commits)
    pd.testing.assert_frame_equal(results[0], results[1])


def test_summary_counts_rates_and_tests(known: Comparison) -> None:
    summary = known.summary.set_index("repo")
    assert list(summary.index) == ["sglang", "vllm", "all"]
    all_ = summary.loc["all"]
    assert (all_["baseline_commits"], all_["baseline_successes"]) == (7, 3)
    assert (all_["rerun_commits"], all_["rerun_successes"]) == (7, 4)
    assert (all_["after_commits"], all_["after_successes"]) == (8, 4)
    assert (all_["paired_commits"], all_["fixed"], all_["regressed"], all_["still_failing"]) == (6, 1, 1, 2)
    assert all_["mcnemar_p"] == 1.0  # one fixed, one regressed: a tie
    assert (all_["baseline_low"], all_["baseline_high"]) == pytest.approx(tuple(wilson_interval(3, 7)))
    assert all_["after_rate"] == pytest.approx(0.5)
    vllm = summary.loc["vllm"]
    assert (vllm["baseline_successes"], vllm["baseline_commits"], vllm["fixed"], vllm["not_rerun"]) == (1, 4, 1, 1)
    assert (vllm["after_successes"], vllm["after_commits"]) == (2, 4)
    sglang = summary.loc["sglang"]
    assert (sglang["regressed"], sglang["not_in_baseline"], sglang["rerun_successes"]) == (1, 1, 2)


def test_mcnemar_on_a_real_improvement(store: EventStore) -> None:
    baseline = [Attempt("vllm", sha(i), "error", "tool_output_missing", T1) for i in range(20)]
    baseline += [Attempt("vllm", sha(i), "success", timestamp=T1) for i in range(20, 25)]
    rerun = [Attempt("vllm", sha(i), "success" if i < 12 or i in (20, 21, 22) else "error", timestamp=R1)
             for i in range(25)]
    build_pair(store, baseline, rerun)
    row = compare(store, "orig", "rerun").summary.set_index("repo").loc["all"]
    assert (row["fixed"], row["regressed"]) == (12, 2)
    assert row["mcnemar_p"] == pytest.approx(binomtest(12, 14, 0.5).pvalue, rel=1e-12)
    assert row["mcnemar_p"] < 0.05
    assert (row["rerun_low"], row["rerun_high"]) == pytest.approx(
        (lambda ci: (ci.low, ci.high))(binomtest(15, 25).proportion_ci(method="wilson")))


def test_category_transition_matrix(known: Comparison) -> None:
    pairs = {(r.baseline_category, r.rerun_category): r.commits for r in known.transitions.itertuples()}
    assert pairs == {("tool_output_missing", "none"): 1, ("quota_exceeded", "timeout"): 1,
                     ("none", "invalid_api_key"): 1, ("none", "none"): 2,
                     ("rate_limited", "context_length_exceeded"): 1}
    matrix = known.transition_matrix()
    assert matrix.loc["none", "none"] == 2 and matrix.loc["quota_exceeded", "none"] == 0
    assert int(matrix.to_numpy().sum()) == 6  # commits run in both campaigns


def test_criteria_levels_with_ties(store: EventStore) -> None:
    # vllm: exactly 35 rerun successes (= the target: a tie reaches it); sglang: 34 (< 35 minimum)
    rerun = [Attempt("vllm", sha(f"v{i}"), "success" if i < 35 else "error", timestamp=R1) for i in range(53)]
    rerun += [Attempt("sglang", sha(f"s{i}"), "success" if i < 34 else "error", timestamp=R1) for i in range(51)]
    build_pair(store, [], rerun)
    result = compare(store, "orig", "rerun", criteria=example_path())
    levels = dict(zip(result.criteria["scope"], result.criteria["level_reached"], strict=True))
    assert levels == {"vllm": "target", "sglang": "below_minimum", "all": "minimum"}  # 69 of 104: >= 60, < 75
    vllm = result.criteria[result.criteria["scope"] == "vllm"].set_index("level")
    assert vllm.loc["target", "met"] and not vllm.loc["exceptional", "met"]
    assert (vllm.loc["target", "count"], vllm.loc["target", "of"], vllm.loc["target", "commits"]) == (35, 53, 53)
    assert not [n for n in result.notes if "expect" in n]  # the rerun covers exactly the planned commits


def test_criteria_measure_fixed_and_of_mismatch(store: EventStore) -> None:
    build_pair(store, BASELINE, RERUN)
    criteria = parse_criteria({"measure": "fixed", "repos": {"vllm": {"of": 53, "minimum": 1, "target": 2}}})
    result = compare(store, "orig", "rerun", criteria=criteria)
    rows = result.criteria.set_index("level")
    assert rows.loc["minimum", "count"] == 1 and rows.loc["minimum", "level_reached"] == "minimum"
    assert any("expect 53 commits; the rerun has 3" in note for note in result.notes)


@pytest.mark.parametrize(("text", "message"), [
    ("- just a list", "mapping at the top level"),
    ("repos: {vllm: {minimum: 30, target: 20}}", "must not decrease"),
    ("repos: {vllm: {minimum: -1}}", "non-negative integer"),
    ("repos: {vllm: {minimum: many}}", "non-negative integer"),
    ("repos: {vllm: {minimun: 3}}", "unknown keys"),
    ("measure: speed\ncombined: {minimum: 1}", "`measure`"),
    ("levels: []\ncombined: {minimum: 1}", "`levels`"),
    ("name: empty", "no thresholds"),
    ("repos: [unbalanced", "cannot read criteria file"),
])
def test_bad_criteria_files_are_named_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "criteria.yaml"
    path.write_text(text)
    with pytest.raises(TrackerError, match=message) as info:
        load_criteria(path)
    assert str(path) in str(info.value)


def test_example_criteria_are_the_seeds_numbers() -> None:
    criteria = load_criteria(example_path())
    got = {t.scope: (t.of, t.levels) for t in criteria.thresholds}
    assert got == {"vllm": (53, {"minimum": 25, "target": 35, "exceptional": 40}),
                   "sglang": (51, {"minimum": 35, "target": 40, "exceptional": 45}),
                   "all": (104, {"minimum": 60, "target": 75, "exceptional": 85})}


def test_cost_against_the_recorded_estimate(known: Comparison) -> None:
    cost = known.cost.set_index("repo")
    assert cost.loc["vllm", "rerun_attempts"] == 5 and cost.loc["sglang", "rerun_attempts"] == 5
    assert cost.loc["vllm", "rerun_cost_usd"] == pytest.approx(5 * ATTEMPT_COST)
    assert cost.loc["sglang", "rerun_cost_usd"] == pytest.approx(4 * ATTEMPT_COST)  # the running one is unpriced
    assert cost.loc["sglang", "unpriced_attempts"] == 1
    assert (cost.loc["vllm", "estimate_usd"], cost.loc["sglang", "estimate_usd"], cost.loc["all", "estimate_usd"]) == (
        0.4, 0.6, 1.0)
    assert cost.loc["all", "actual_to_estimate"] == pytest.approx(9 * ATTEMPT_COST / 1.0)
    assert cost.loc["all", "over_estimate_usd"] == pytest.approx(9 * ATTEMPT_COST - 1.0)
    assert cost.loc["all", "tokens_per_success"] == pytest.approx(9 * 102_000 / 4)
    assert cost.loc["all", "cost_per_success_usd"] == pytest.approx(9 * ATTEMPT_COST / 4)
    assert cost.loc["all", "baseline_cost_usd"] == pytest.approx(9 * ATTEMPT_COST)
    assert known.estimate == ESTIMATE


def test_no_estimate_recorded_and_latest_plan_wins(store: EventStore) -> None:
    build_pair(store, BASELINE, RERUN)
    result = compare(store, "orig", "rerun")
    assert result.estimate is None and result.cost["estimate_usd"].isna().all()
    assert result.cost["actual_to_estimate"].isna().all()
    assert any("no cost estimate recorded" in note for note in result.notes)
    record_plan(store, "rerun", {"per_repo": {"vllm": 2.0, "sglang": 3.0}}, plan_id="p1")
    record_plan(store, "rerun", {"per_repo": {"vllm": 4.0, "sglang": 1.0}}, plan_id="p2")
    record_plan(store, "rerun", None, plan_id="p3")  # a plan without estimate does not erase the last one
    cost = compare(store, "orig", "rerun").cost.set_index("repo")
    assert (cost.loc["vllm", "estimate_usd"], cost.loc["all", "estimate_usd"]) == (4.0, 5.0)  # total = sum of repos


def test_repo_filter(known: Comparison, store: EventStore) -> None:
    only = compare(store, "orig", "rerun", repo="vllm")
    assert set(only.commits["repo"]) == {"vllm"}
    assert list(only.summary["repo"]) == ["vllm", "all"]
    assert only.summary.iloc[0].drop("repo").equals(only.summary.iloc[1].drop("repo"))
    with pytest.raises(UnknownValue) as caught:  # a typo is an error, never an empty comparison
        compare(store, "orig", "rerun", repo="vlm")
    assert caught.value.value == "vlm" and caught.value.known == ["sglang", "vllm"]


def test_campaign_problems_are_named(store: EventStore) -> None:
    build_pair(store, BASELINE, RERUN)
    with pytest.raises(TrackerError, match="no campaign named 'nope'"):
        compare(store, "orig", "nope")
    with pytest.raises(TrackerError, match="same campaign"):
        compare(store, "orig", "orig")
    create_campaign(store, "other", "original", model="gpt-4o")
    add_attempts(store, "other", [Attempt("vllm", C["fixed"], "success", timestamp=R1, model="gpt-4o")])
    result = compare(store, "orig", "other")
    assert any("not a rerun" in n for n in result.notes) and any("differ in model" in n for n in result.notes)


def test_empty_campaigns(store: EventStore) -> None:
    build_pair(store, [], [])
    result = compare(store, "orig", "rerun", criteria=example_path())
    assert result.commits.empty and result.transitions.empty
    overall = result.summary.set_index("repo").loc["all"]
    assert overall["after_commits"] == 0 and pd.isna(overall["after_rate"]) and pd.isna(overall["mcnemar_p"])
    assert set(result.criteria["level_reached"]) == {"below_minimum"}


def test_cost_is_priced_as_the_attempts_view_prices_it(store: EventStore) -> None:
    create_campaign(store, "mixed")
    add_attempts(store, "mixed", [
        Attempt("vllm", sha(1), "success", timestamp=T1, model="gpt-5-2025-08-07"),
        Attempt("vllm", sha(2), "error", timestamp=T1, model="gpt-4o", input_tokens=10, cached_input_tokens=50),
        Attempt("vllm", sha(3), "error", timestamp=T1, model="mystery-model"),
        Attempt("vllm", sha(4), "error", timestamp=T1, input_tokens=None, cached_input_tokens=None, output_tokens=7),
        Attempt("vllm", sha(5), "error", timestamp=T1, input_tokens=None, cached_input_tokens=None,
                output_tokens=None),
    ])
    prices = load_price_table()
    expected = attempts_frame(store, "mixed").set_index("commit")["cost_usd"]
    got = attempt_outcomes(store, "mixed", None, prices).set_index("commit")["cost_usd"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index().astype("float64"), check_names=False,
                                  check_index_type=False)
    assert got.isna().sum() == 2  # the unpriced model and the attempt without any token count


def test_best_attempts_do_not_depend_on_row_order(store: EventStore) -> None:
    build_pair(store, BASELINE, RERUN)
    frame = attempt_outcomes(store, "orig", None, load_price_table())
    expected = best_attempts(frame).sort_values(["repo", "commit"]).reset_index(drop=True)
    for seed in range(5):
        shuffled = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
        got = best_attempts(shuffled).sort_values(["repo", "commit"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize(("raw", "message"), [
    ({"levels": ["low", "low"], "combined": {"low": 1}}, "`levels` must be distinct names"),
    ({"levels": ["below_minimum"], "combined": {"below_minimum": 1}}, "`levels` must be distinct names"),
    ({"levels": "minimum", "combined": {"minimum": 1}}, "`levels` must be a list"),
    ({"repos": ["vllm"]}, "`repos` must map repo names to thresholds"),
    ({"repos": {"vllm": 25}}, "thresholds of 'vllm' must be a mapping"),
    ({"repos": {"vllm": {"minimum": True}}}, "vllm.minimum must be a non-negative integer, not True"),
    ({"combined": {"of": -1, "minimum": 1}}, "all.of must be a non-negative integer, not -1"),
    ({"combined": {"of": False}}, "all.of must be a non-negative integer, not False"),
    ({"repos": {"vllm": {"minimum": 1}}, "combined": {"minimum": "x"}}, "all.minimum must be a non-negative"),
])
def test_bad_criteria_mappings_are_named_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(TrackerError, match=message) as info:
        parse_criteria(raw, "mine.yaml")
    assert str(info.value).startswith("criteria file mine.yaml: ") and str(example_path()) in str(info.value)


def test_criteria_defaults_and_order() -> None:
    criteria = parse_criteria({"repos": {"sglang": {"target": 4, "minimum": 2}}, "combined": {"of": 9}}, "x/team.yaml")
    assert (criteria.name, criteria.measure, criteria.levels) == ("team", "successes", ["minimum", "target",
                                                                                       "exceptional"])
    assert [(t.scope, t.of, t.levels) for t in criteria.thresholds] == [
        ("sglang", None, {"minimum": 2, "target": 4}), ("all", 9, {})]


def test_at_level_names_what_stopped_a_finished_agent() -> None:
    base = {"failure_category": "none", "patch_sha256": "p", "patch_bytes": 10, "patch_generated": True,
            "eval_status": "success", "improvement": None, "speedup": 1.5}
    rows = [
        {**base, "status": "success"},  # reaches every level
        {**base, "status": "success", "patch_sha256": None, "patch_generated": False, "eval_status": None},  # no patch
        {**base, "status": "success", "eval_status": None},  # patched, never evaluated
        {**base, "status": "success", "eval_status": "error"},  # the tests failed
        {**base, "status": "success", "speedup": 0.9},  # tests passed, not faster
        {**base, "status": "error", "failure_category": "quota_exceeded", "eval_status": None},  # its root cause
        {**base, "status": "running", "failure_category": "none", "eval_status": None},  # unfinished: as it is
    ]
    frame = pd.DataFrame(rows)
    assert at_level(frame, "agent") is frame
    seen = {level: list(zip(at_level(frame, level)["status"], at_level(frame, level)["failure_category"],
                            strict=True)) for level in ("patch", "tests", "faster")}
    assert seen["patch"] == [("success", "none"), ("below_patch", "no_patch"), ("success", "none"),
                             ("success", "none"), ("success", "none"), ("success", "none"), ("running", "none")]
    assert seen["tests"] == [("success", "none"), ("below_tests", "no_patch"), ("below_tests", "not_evaluated"),
                             ("below_tests", "eval:error"), ("success", "none"),
                             ("below_tests", "quota_exceeded"), ("running", "none")]
    assert seen["faster"] == [("success", "none"), ("below_faster", "no_patch"),
                              ("below_faster", "not_evaluated"), ("below_faster", "eval:error"),
                              ("below_faster", "not_faster"), ("below_faster", "quota_exceeded"), ("running", "none")]


@pytest.mark.parametrize(("estimate", "scope", "expected"), [
    (None, "all", None),
    ({}, "vllm", None),
    ({"cost_usd": 3}, "all", 3.0),
    ({"total_usd": 2.5, "per_repo": {"vllm": 1}}, "all", 2.5),  # the total wins over the repos' sum
    ({"per_repo": {"vllm": 1, "sglang": {"usd": 2}}}, "all", 3.0),
    ({"per_repo": {"vllm": 1, "sglang": "lots"}}, "all", None),  # a partial sum would mislead
    ({"per_repo": {"vllm": 1, "sglang": "lots"}}, "vllm", 1.0),
    ({"per_repo": {"vllm": {"usd": True}}}, "vllm", None),
    ({"per_repo": ["vllm"], "cost_usd": 4}, "vllm", None),
    ({"per_repo": ["vllm"], "cost_usd": 4}, "all", 4.0),
    ({"per_repo": {}}, "all", None),
])
def test_estimate_for_each_scope(estimate: dict[str, object] | None, scope: str, expected: float | None) -> None:
    assert estimate_for(estimate, scope) == expected
