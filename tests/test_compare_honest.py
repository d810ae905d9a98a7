"""An honest answer to "did the fix work?": fixes attributed to their cause, statistics that fit the design,
and the comparison refused when its campaigns are named the wrong way round."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from runners.cli import run
from tests.support.campaign_builders import Attempt, build_pair, sha
from tracker.analysis.compare import cause_group, compare
from tracker.errors import TrackerError
from tracker.eventstore.store import EventStore
from tracker.reports import display, markdown

# baseline root causes of the failed commits, and what their rerun did
FAILED = ([("tool_output_missing", "success")] * 5 + [("tool_output_missing", "max_steps_exceeded")] * 1
          + [("quota_exceeded", "success")] * 3 + [("invalid_api_key", "success")] * 1
          + [("json_parse_error", "success")] * 1 + [("json_parse_error", "json_parse_error")] * 2
          + [("no_patch", "no_patch")] * 2)


def _failed_only(store: EventStore) -> None:
    baseline = [Attempt("vllm", sha(i), "error", before) for i, (before, _) in enumerate(FAILED)]
    baseline += [Attempt("vllm", sha(100 + i), "success", "none") for i in range(4)]  # never rerun
    rerun = [Attempt("vllm", sha(i), "success" if after == "success" else "error",
                     "none" if after == "success" else after, timestamp="2025-12-20_10-00-00")
             for i, (_, after) in enumerate(FAILED)]
    build_pair(store, baseline, rerun)


def test_every_fix_is_attributed_to_the_group_of_its_baseline_root_cause(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        _failed_only(store)
        result = compare(store, "orig", "rerun")
    table = result.attribution.set_index("cause_group")
    assert table.loc["agent_fix", ["rerun", "fixed", "still_failing"]].tolist() == [6, 5, 1]
    assert table.loc["infrastructure", ["rerun", "fixed", "still_failing"]].tolist() == [4, 4, 0]
    assert table.loc["model", ["rerun", "fixed", "still_failing"]].tolist() == [5, 1, 4]
    assert table.loc["agent_fix", "rerun_failures"] == "max_steps_exceeded 1"
    assert table.loc["model", "rerun_failures"] == "json_parse_error 2, no_patch 2"
    assert table["fixed"].sum() == int(result.overall()["fixed"])  # every fix is attributed exactly once
    assert pd.isna(table.loc["infrastructure", "rerun_failures"])
    headline = " ".join(display.headline(result))
    assert "Fixes by the baseline's root cause: 5 the agent fix, 4 infrastructure restored, 1 model-level." in headline
    assert "## Attribution" in markdown.render(result)


def test_cause_groups_follow_the_issue() -> None:
    categories = ("empty_error_content", "aws_sso_expired", "harness_error", "context_length_exceeded", "eval:error",
                  None)
    assert [cause_group(c) for c in categories] == [
        "agent_fix", "infrastructure", "infrastructure", "model", "unknown", "unknown"]


def test_a_rerun_of_failures_only_gets_no_mcnemar_and_says_why(sqlite_url: str) -> None:
    """No commit that had succeeded was rerun, so a regression was impossible: the 2 * 0.5**k p-value
    would only measure the design. It is null, and the note and headline say why."""
    with EventStore.open(sqlite_url) as store:
        _failed_only(store)
        result = compare(store, "orig", "rerun")
    overall = result.overall()
    assert overall["fixed"] == 10 and overall["regressed"] == 0 and overall["mcnemar_p"] is None
    assert any("none could regress" in note for note in result.notes)
    assert "McNemar" not in display.headline(result)[0] and "none could regress" in display.headline(result)[0]


def test_mcnemar_stays_where_both_directions_were_possible(sqlite_url: str) -> None:
    """With baseline successes rerun too (a control arm or a full rerun), the exact test is computed."""
    from scipy.stats import binomtest

    baseline = [Attempt("vllm", sha(i), "error", "no_patch") for i in range(8)]
    baseline += [Attempt("vllm", sha(50 + i), "success", "none") for i in range(6)]
    rerun = [Attempt("vllm", sha(i), "success", "none", timestamp="2025-12-20_10-00-00") for i in range(7)]
    rerun += [Attempt("vllm", sha(50), "error", "no_patch", timestamp="2025-12-20_10-00-00")]
    rerun += [Attempt("vllm", sha(50 + i), "success", "none", timestamp="2025-12-20_10-00-00") for i in range(1, 6)]
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, rerun)
        result = compare(store, "orig", "rerun")
    overall = result.overall()
    assert (overall["fixed"], overall["regressed"]) == (7, 1)
    assert overall["mcnemar_p"] == pytest.approx(binomtest(1, 8, 0.5).pvalue)
    assert not any("none could regress" in note for note in result.notes)


def test_the_swapped_call_is_refused(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with EventStore.open(sqlite_url) as store:
        _failed_only(store)
        with pytest.raises(TrackerError, match="'rerun' is the rerun of 'orig': the baseline comes first"):
            compare(store, "rerun", "orig")
    assert run(["--db", sqlite_url, "compare", "rerun", "orig", "--no-mlflow"]) == 2
    assert "(compare orig rerun)" in capsys.readouterr().err


def test_a_control_arm_measures_the_flips_a_rerun_causes_by_itself(sqlite_url: str) -> None:
    """20 failures rerun (12 fixed) beside a control arm of 10 baseline successes rerun alike (2 flip to
    failure): each arm's rate with its Wilson interval, the fix beyond the control with Newcombe's, and the
    exact test computed now that both directions were possible."""
    from scipy.stats import binomtest
    from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

    from tests.support.campaign_builders import record_plan

    later = "2025-12-20_10-00-00"
    baseline = [Attempt("vllm", sha(i), "error", "tool_output_missing") for i in range(20)]
    baseline += [Attempt("vllm", sha(100 + i), "success", "none") for i in range(25)]
    rerun = [Attempt("vllm", sha(i), *(("success", "none") if i < 12 else ("error", "no_patch")), timestamp=later)
             for i in range(20)]
    rerun += [Attempt("vllm", sha(100 + i), *(("error", "timeout") if i < 2 else ("success", "none")), timestamp=later)
              for i in range(10)]
    plan = [{"item_id": f"f{i}", "human": sha(i)} for i in range(20)]
    plan += [{"item_id": f"c{i}", "human": sha(100 + i), "control": True} for i in range(10)]
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, rerun)
        record_plan(store, "rerun", None, items=plan)
        result = compare(store, "orig", "rerun")
    arms = result.control.set_index("arm")
    assert arms.loc["failed", ["commits", "flips"]].tolist() == [20, 12]
    assert arms.loc["control", ["commits", "flips"]].tolist() == [10, 2]
    wilson = proportion_confint(2, 10, method="wilson")
    assert arms.loc["control", "low"] == pytest.approx(wilson[0]) and arms.loc["control", "high"] == pytest.approx(
        wilson[1])
    newcombe = confint_proportions_2indep(12, 20, 2, 10, method="newcomb", compare="diff")
    assert arms.loc["failed", "beyond_control"] == pytest.approx(0.6 - 0.2)
    assert (arms.loc["failed", "beyond_low"], arms.loc["failed", "beyond_high"]) == (
        pytest.approx(newcombe[0]), pytest.approx(newcombe[1]))
    overall = result.overall()
    assert (overall["fixed"], overall["regressed"]) == (12, 2)
    assert overall["mcnemar_p"] == pytest.approx(binomtest(2, 14, 0.5).pvalue)
    line = " ".join(display.headline(result))
    assert "Control arm: 2 of 10 baseline successes failed on rerun" in line and "+40.0%" in line
    assert "## Control arm" in markdown.render(result)


def test_track_plan_draws_a_reproducible_control_arm_apart_from_the_failed_list(sqlite_url: str,
                                                                                tmp_path: Path) -> None:
    import json

    from tracker.rerun.planning import make_plan

    baseline = [Attempt("vllm", sha(i), "error", "no_patch") for i in range(5)]
    baseline += [Attempt("vllm", sha(100 + i), "success", "none") for i in range(30)]
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, [])
        first = make_plan(store, "orig", tmp_path / "a", control=6, seed=7)
        again = make_plan(store, "orig", tmp_path / "b", control=6, seed=7)
        other = make_plan(store, "orig", tmp_path / "c", control=6, seed=8)
    arm = [i.commit for i in first.items if i.control]
    assert len(arm) == 6 and arm == [i.commit for i in again.items if i.control]
    assert arm != [i.commit for i in other.items if i.control]
    assert set(arm) <= {sha(100 + i) for i in range(30)}  # only commits that did not fail
    assert first.selection["control"] == {"requested": 6, "seed": 7, "selected": 6,
                                          "rule": "a seeded random sample of the commits that did not fail, "
                                                  "rerun alike"}
    bench = json.loads((tmp_path / "a" / "trae_gpt-5_vllm_plan.json").read_text())
    assert sum(item.get("control", False) for item in bench["items"]) == 6 and len(bench["items"]) == 11
    failed_list = (tmp_path / "a" / "trae_gpt-5_vllm_FAILED.txt").read_text().split()
    assert len(failed_list) == 5 and not set(failed_list) & set(arm)


def test_criteria_count_among_the_planned_commits_and_not_run_is_not_failed(sqlite_url: str) -> None:
    """53 vllm commits planned, 32 run, 27 fixed: the criterion counts 27 of the plan, 21 not run yet
    (not failures), and says what level is still possible; the control arm counts for nothing here."""
    from tests.support.campaign_builders import record_plan
    from tracker.analysis.criteria import parse_criteria

    later = "2025-12-20_10-00-00"
    baseline = [Attempt("vllm", sha(i), "error", "no_patch") for i in range(53)]
    baseline += [Attempt("vllm", sha(200 + i), "success", "none") for i in range(5)]
    rerun = [Attempt("vllm", sha(i), *(("success", "none") if i < 27 else ("error", "no_patch")), timestamp=later)
             for i in range(32)]
    rerun += [Attempt("vllm", sha(200 + i), "success", "none", timestamp=later) for i in range(5)]  # control
    plan = [{"repo": "vllm", "item_id": f"f{i}", "human": sha(i)} for i in range(53)]
    plan += [{"repo": "vllm", "item_id": f"c{i}", "human": sha(200 + i), "control": True} for i in range(5)]
    criteria = parse_criteria({"name": "team", "measure": "successes",
                               "repos": {"vllm": {"of": 53, "minimum": 25, "target": 35, "exceptional": 40}}})
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, rerun)
        record_plan(store, "rerun", None, items=plan)
        result = compare(store, "orig", "rerun", criteria=criteria)
    row = result.criteria[result.criteria["scope"] == "vllm"].iloc[0]
    assert (row["count"], row["commits"], row["planned"], row["not_run"]) == (27, 32, 53, 21)
    assert row["level_reached"] == "minimum" and row["best_possible"] == "exceptional"
    assert any("21 of 53 planned commits not run yet (not failures)" in note for note in result.notes)
    assert not any("expect 53 commits" in note for note in result.notes)  # the plan holds 53, as the file says


def test_pass_at_1_per_attempt_stands_beside_best_of_k(sqlite_url: str) -> None:
    """A commit that needed three tries is one best-of-3 success but one of three attempts: both are shown,
    with the attempt counts behind them."""
    baseline = [Attempt("vllm", sha(1), "error", "no_patch"), Attempt("vllm", sha(2), "error", "no_patch")]
    rerun = [Attempt("vllm", sha(1), "error", "rate_limited", timestamp="2025-12-20_10-00-00"),
             Attempt("vllm", sha(1), "error", "rate_limited", timestamp="2025-12-20_11-00-00"),
             Attempt("vllm", sha(1), "success", "none", timestamp="2025-12-20_12-00-00"),
             Attempt("vllm", sha(2), "success", "none", timestamp="2025-12-20_10-00-00")]
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, rerun)
        result = compare(store, "orig", "rerun")
    overall = result.overall()
    assert (overall["rerun_successes"], overall["rerun_commits"]) == (2, 2)  # best of k: both commits
    assert (overall["rerun_attempt_successes"], overall["rerun_attempts"]) == (2, 4)
    assert overall["rerun_pass_at_1"] == pytest.approx(0.5) and overall["baseline_pass_at_1"] == 0.0
    assert display.summary(result)[1][-1][-1] == "0/2 = 0.0% / 2/4 = 50.0%"


def test_speedups_are_summarised_geometrically_with_the_share_faster(sqlite_url: str) -> None:
    import math

    baseline = [Attempt("vllm", sha(i), "error", "no_patch") for i in range(4)]
    speeds = [2.0, 0.5, 1.5, None]
    rerun = [Attempt("vllm", sha(i), "success", "none", timestamp="2025-12-20_10-00-00", speedup=s)
             for i, s in enumerate(speeds)]
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, rerun)
        result = compare(store, "orig", "rerun")
    overall = result.overall()
    assert overall["rerun_speedups"] == 3
    geomean = math.exp((math.log(2) + math.log(0.5) + math.log(1.5)) / 3)
    assert overall["rerun_speedup_geomean"] == pytest.approx(geomean)
    assert overall["rerun_share_faster"] == pytest.approx(2 / 3)
    assert "geometric mean 1.14x, 67% faster than before" in " ".join(display.headline(result))


def test_an_old_agent_arm_measures_what_a_rerun_fixes_without_the_fix(sqlite_url: str) -> None:
    """30 failed commits drawn into two arms: 20 rerun with the fix (14 fixed), 10 with the old agent (3 fixed,
    a rerun's luck and restored quota); 10 baseline successes as the control (1 flips). The fix's effect is
    14/20 - 3/10 with Newcombe's interval, and the old agent's commits stay out of the per-repo figures."""
    from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

    from tests.support.campaign_builders import record_plan

    later = "2025-12-20_10-00-00"
    baseline = [Attempt("vllm", sha(i), "error", "tool_output_missing") for i in range(30)]
    baseline += [Attempt("vllm", sha(100 + i), "success", "none") for i in range(10)]
    fixed = set(range(14)) | {20, 21, 22}
    rerun = [Attempt("vllm", sha(i), *(("success", "none") if i in fixed else ("error", "max_steps_exceeded")),
                     timestamp=later) for i in range(30)]
    rerun += [Attempt("vllm", sha(100 + i), *(("error", "timeout") if i == 0 else ("success", "none")),
                      timestamp=later) for i in range(10)]
    plan = [{"item_id": f"f{i}", "human": sha(i)} for i in range(20)]
    plan += [{"item_id": f"o{i}", "human": sha(i), "arm": "old_agent"} for i in range(20, 30)]
    plan += [{"item_id": f"c{i}", "human": sha(100 + i), "control": True} for i in range(10)]
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, rerun)
        record_plan(store, "rerun", None, items=plan)
        result = compare(store, "orig", "rerun")
    arms = result.control.set_index("arm")
    assert arms.loc["failed", ["commits", "flips", "against"]].tolist() == [20, 14, "old_agent"]
    assert arms.loc["old_agent", ["commits", "flips", "flip"]].tolist() == [10, 3, "fail -> pass"]
    assert arms.loc["control", ["commits", "flips"]].tolist() == [10, 1]
    assert (arms.loc["old_agent", "low"], arms.loc["old_agent", "high"]) == tuple(
        pytest.approx(bound) for bound in proportion_confint(3, 10, method="wilson"))
    newcombe = confint_proportions_2indep(14, 20, 3, 10, method="newcomb", compare="diff")
    assert arms.loc["failed", "beyond_control"] == pytest.approx(0.7 - 0.3)
    assert (arms.loc["failed", "beyond_low"], arms.loc["failed", "beyond_high"]) == (
        pytest.approx(newcombe[0]), pytest.approx(newcombe[1]))
    overall = result.overall()
    assert (overall["fixed"], overall["still_failing"], overall["regressed"], overall["paired_commits"]) == (
        14, 6, 1, 30)  # the old agent's 3 fixes are not the fix's
    assert int(result.attribution["rerun"].sum()) == 20
    by_commit = result.commits.set_index("commit")["arm"]
    assert by_commit[sha(25)] == "old_agent" and by_commit[sha(5)] == "fix" and by_commit[sha(105)] == "control"
    first = display.headline(result)[0]
    assert first.startswith("With the fix, 14 of 20 failed commits succeeded")
    assert "with the old agent, 3 of 10" in first
    assert "the fix adds +40.0%" in first
    assert any("old-agent arm ran the agent before its fix" in note for note in result.notes)


def test_track_plan_moves_a_seeded_sample_of_failures_to_the_old_agent_arm(sqlite_url: str, tmp_path: Path) -> None:
    import json

    from tracker.rerun.planning import load_plan, make_plan

    baseline = [Attempt("vllm", sha(i), "error", "no_patch") for i in range(12)]
    baseline += [Attempt("vllm", sha(100 + i), "success", "none") for i in range(10)]
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, [])
        alone = make_plan(store, "orig", tmp_path / "a", control=3, seed=5)
        both = make_plan(store, "orig", tmp_path / "b", control=3, seed=5, old_agent=4)
        again = make_plan(store, "orig", tmp_path / "c", control=3, seed=5, old_agent=4)
    old = [i.commit for i in both.items if i.arm == "old_agent"]
    assert len(old) == 4 and old == [i.commit for i in again.items if i.arm == "old_agent"]
    assert set(old) <= {sha(i) for i in range(12)}  # only failed commits
    assert [i.commit for i in both.items if i.control] == [i.commit for i in alone.items if i.control]
    assert both.selection["old_agent"]["selected"] == 4
    folder = tmp_path / "b"
    failed_list = (folder / "trae_gpt-5_vllm_FAILED.txt").read_text().split()
    assert len(failed_list) == 8 and not set(failed_list) & set(old)
    old_plan = load_plan(folder / "trae_gpt-5_vllm_old_agent_plan.json")
    assert sorted(i.commit for i in old_plan.items) == sorted(old) and {i.arm for i in old_plan.items} == {"old_agent"}
    assert all("_oldagent_" in i.item_id for i in old_plan.items)  # never the fix arm's worktree
    fix_plan = json.loads((folder / "trae_gpt-5_vllm_plan.json").read_text())
    assert len(fix_plan["items"]) == 8 + 3 and not {i["human"] for i in fix_plan["items"]} & set(old)


def test_a_plan_item_with_an_unknown_arm_is_refused(tmp_path: Path) -> None:
    import json

    from tracker.rerun.planning import load_plan

    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"repo": "vllm", "task_id": "vllm_core",
                                "items": [{"item_id": "x", "human": sha(1), "arm": "placebo"}]}))
    with pytest.raises(TrackerError, match="arm 'placebo'; expected one of fix, control, old_agent"):
        load_plan(path)


def test_one_meaning_of_success_in_campaigns_status_and_compare(sqlite_url: str) -> None:
    """A commit that succeeded and then failed again, one that only failed, one stopped by a broken setup: every
    view counts commits whose best attempt reached the level, and says so."""
    from tracker.domain.outcomes import COMMIT_SUCCESS_RULE
    from tracker.projections.read_model import queries
    from tracker.rerun.status import campaign_status

    baseline = [Attempt("vllm", sha(i), "error", "no_patch") for i in range(3)]
    rerun = [Attempt("vllm", sha(0), "success", "none", timestamp="2025-12-20_10-00-00"),
             Attempt("vllm", sha(0), "error", "timeout", timestamp="2025-12-20_11-00-00"),  # later, worse
             Attempt("vllm", sha(1), "error", "timeout", timestamp="2025-12-20_10-00-00"),
             Attempt("vllm", sha(2), "error", "harness_error", timestamp="2025-12-20_10-00-00")]
    with EventStore.open(sqlite_url) as store:
        build_pair(store, baseline, rerun)
        result = compare(store, "orig", "rerun")
        listed = {row["name"]: row for row in queries.list_campaigns(store)}
        status = campaign_status(store, "rerun")
    assert listed["rerun"]["commit_success"] == {"level": "agent", "commits": 2, "succeeded": 1,
                                                 "rule": COMMIT_SUCCESS_RULE}
    assert listed["rerun"]["funnel"]["agent_succeeded"] == 1 and listed["rerun"]["attempts"] == 4  # attempts
    overall = result.overall()
    assert (overall["rerun_successes"], overall["rerun_commits"]) == (1, 2)
    assert status["succeeded"] == 1 and status["success_rule"] == COMMIT_SUCCESS_RULE
    with EventStore.open(sqlite_url) as store:
        assert queries.list_campaigns(store, "tests")[1]["commit_success"]["succeeded"] == 0  # none evaluated
