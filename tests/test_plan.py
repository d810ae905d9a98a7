"""`track plan` and `track estimate`: the commits that never succeeded, and what rerunning them costs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_track
from tests.support.campaign_builders import Attempt, build_pair
from tests.support.events import read_all
from tracker.domain.pricing import load_price_table
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.read_model.queries import MeasuredAttempt
from tracker.rerun.estimate import estimate_items, makespan, summarise
from tracker.rerun.planning import PlanItem, load_plan, make_plan

TREE = FIXTURES / "isobench-small-a"
TRUTH = json.loads((FIXTURES / "isobench-small-a.truth.json").read_text())


@pytest.fixture
def baseline(sqlite_url: str) -> str:
    with EventStore.open(sqlite_url) as store:
        import_tree(store, TREE, "orig")
    return sqlite_url


def test_plan_selects_exactly_the_commits_that_never_succeeded(baseline: str, tmp_path: Path) -> None:
    result = run_track("--db", baseline, "plan", "orig", "--select", "never-succeeded", "--scope", "all",
                       "--out", str(tmp_path / "p"), "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert sorted(i["human"] for i in plan["items"]) == sorted(TRUTH["failed_commits"])
    assert plan["selection"]["by_repo"] == TRUTH["never_ok"]
    out = tmp_path / "p"
    all_commits = (out / "trae_gpt-5_ALL_FAILED.txt").read_text().split()
    assert sorted(all_commits) == sorted(TRUTH["failed_commits"]) and all(len(c) == 40 for c in all_commits)
    for repo, count in TRUTH["never_ok"].items():
        assert len((out / f"trae_gpt-5_{repo}_FAILED.txt").read_text().split()) == count
        bench = json.loads((out / f"trae_gpt-5_{repo}_plan.json").read_text())
        assert set(bench) == {"repo", "task_id", "selection", "items"} and bench["task_id"] == f"{repo}_gpt5_rerun"
        # the team's rerun convention: a fresh item id (the bench never meets the original's worktree),
        # and the parent of the human commit as pre-commit
        assert all(i == {"item_id": f"{repo}_gpt5_rerun_{i['human'][:8]}", "human": i["human"], "pre": "",
                         "pre_parent_index": 1} for i in bench["items"])
        assert [i["item_id"] for i in bench["items"]] == sorted(i["item_id"] for i in bench["items"])
        assert load_plan(out / f"trae_gpt-5_{repo}_plan.json").repo == repo


def test_plan_is_deterministic_and_records_why(baseline: str, tmp_path: Path) -> None:
    with EventStore.open(baseline) as store:
        first = make_plan(store, "orig", tmp_path / "a", policy="never-succeeded", scope="all")
        second = make_plan(store, "orig", tmp_path / "b", policy="never-succeeded", scope="all")
        events = [e for e in read_all(store) if e.event_type == "plan.created"]
    for name in ("trae_gpt-5_ALL_FAILED.txt", "trae_gpt-5_vllm_plan.json", "trae_gpt-5_sglang_plan.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first.plan_id == second.plan_id
    assert len({e.payload["plan_id"] for e in events}) == 1
    why = events[0].payload["selection"]["why"]
    assert set(why) == set(TRUTH["failed_commits"]) and "quota_exceeded" in why.values()


def test_plan_filters_by_category_and_repo(baseline: str, tmp_path: Path) -> None:
    with EventStore.open(baseline) as store:
        quota = make_plan(store, "orig", tmp_path / "q", categories=["quota_exceeded"], policy="never-succeeded",
                          scope="all")
        vllm = make_plan(store, "orig", tmp_path / "v", repos=["vllm"], policy="never-succeeded", scope="all")
    assert quota.items and all(i.last_category == "quota_exceeded" for i in quota.items)
    assert len(vllm.items) == TRUTH["never_ok"]["vllm"] and {i.repo for i in vllm.items} == {"vllm"}
    assert not (tmp_path / "v" / "trae_gpt-5_sglang_plan.json").exists()


def test_plan_refuses_bad_input(baseline: str, tmp_path: Path) -> None:
    unknown = run_track("--db", baseline, "plan", "nope", "--out", str(tmp_path))
    assert unknown.returncode == 2 and "no campaign named 'nope'" in unknown.stderr
    bad_category = run_track("--db", baseline, "plan", "orig", "--category", "bogus", "--out", str(tmp_path))
    assert bad_category.returncode == 2
    broken = tmp_path / "broken.json"
    broken.write_text('{"repo": "vllm", "items": [{"item_id": "x", "human": "not-a-sha"}]}')
    result = run_track("--db", baseline, "estimate", str(broken), "--baseline", "orig")
    assert result.returncode == 2 and "needs a commit sha (8 to 40 hex)" in result.stderr
    broken.write_text('{"repo": "vllm", "items": [{"item_id": "x", "human": "6baa945"}]}')  # too short to be a sha
    result = run_track("--db", baseline, "estimate", str(broken), "--baseline", "orig")
    assert result.returncode == 2 and "needs a commit sha" in result.stderr


def test_a_plan_of_8_character_shas_as_real_plans_write_them_is_estimated(baseline: str, tmp_path: Path) -> None:
    """Real plans and journals carry 8-character shas: `track estimate` takes them, and prices a commit the
    baseline measured under the same short sha from its own history."""
    with EventStore.open(baseline) as store:
        build_pair(store, [Attempt("vllm", "6baa9455", "error", "no_patch", input_tokens=2_000_000)], [],
                   names=("short", "short-rerun"))
    plan = tmp_path / "short.json"
    plan.write_text('{"repo": "vllm", "items": [{"item_id": "vllm_gpt5_rerun_6baa9455", "human": "6baa9455"}]}')
    result = run_track("--db", baseline, "estimate", str(plan), "--baseline", "short", "--json")
    assert result.returncode == 0, result.stderr
    estimate = json.loads(result.stdout)
    assert estimate["items"] == 1 and estimate["per_item"]["6baa9455"]["basis"] == "commit"


def _measured(repo: str, commit: str, tokens: int, duration: float) -> MeasuredAttempt:
    return MeasuredAttempt(repo, "i", commit, None, "2025-12-01_00-00-00", "error", "other", "gpt-5",
                           tokens, tokens // 2, tokens // 10, duration)


def test_estimate_uses_each_commits_history_and_the_repo_median_otherwise() -> None:
    baseline = [_measured("vllm", "a" * 40, 1_000_000, 100), _measured("vllm", "a" * 40, 3_000_000, 300),
                _measured("vllm", "b" * 40, 200_000, 50), _measured("sglang", "c" * 40, 400_000, 10)]
    items = [PlanItem("vllm", "x", "a" * 40, None), PlanItem("vllm", "y", "d" * 40, None),
             PlanItem("sglang", "z", "c" * 40, None)]
    prices = load_price_table()
    estimates = estimate_items(items, baseline, prices)
    assert [e.basis for e in estimates] == ["commit", "repo_median", "commit"]
    assert estimates[0].input_tokens == 2_000_000 and estimates[0].duration_s == 200  # median of its two runs
    # gpt-5: (2M - 1M) * 1.25 + 1M * 0.125 + 200k * 10 per 1M tokens
    assert estimates[0].cost_usd == pytest.approx(1.25 + 0.125 + 2.0)
    assert estimates[1].input_tokens == 1_000_000  # median of the vllm attempts
    summary = summarise(estimates, buffer=0.2, workers=2, price_version=prices.version, baseline="orig")
    assert summary["cost_usd_with_buffer"] == pytest.approx(summary["cost_usd"] * 1.2, abs=1e-3)
    assert summary["buffer_usd"] == pytest.approx(summary["cost_usd"] * 0.2, abs=1e-3)
    assert summary["per_repo"]["vllm"]["items"] == 2 and summary["price_table_version"] == prices.version
    assert summary["wall_time_s"] == 200  # 200 on one worker, 100 + 10 on the other


def test_makespan_spreads_work_over_workers() -> None:
    assert makespan([10, 10, 10, 10], 1) == 40
    assert makespan([10, 10, 10, 10], 4) == 10
    assert makespan([30, 10, 10, 10], 2) == 30
    assert makespan([], 3) == 0


def test_estimate_cli_against_the_measured_baseline(baseline: str, tmp_path: Path) -> None:
    with EventStore.open(baseline) as store:
        plan = make_plan(store, "orig", tmp_path, policy="never-succeeded", scope="all")
    plans = [f for f in plan.files if f.endswith("_plan.json")]
    one = run_track("--db", baseline, "estimate", *plans, "--baseline", "orig", "--json", "--campaign", "rr")
    four = run_track("--db", baseline, "estimate", *plans, "--baseline", "orig", "--json", "--workers", "4")
    assert one.returncode == 0 and four.returncode == 0, one.stderr + four.stderr
    a, b = json.loads(one.stdout), json.loads(four.stdout)
    assert a["items"] == len(TRUTH["failed_commits"]) and a["cost_usd"] > 0
    assert a["cost_usd"] == b["cost_usd"] and b["wall_time_s"] < a["wall_time_s"]
    assert a["tokens"]["input"] > a["tokens"]["cached_input"] > 0
    assert all(v["basis"] == {"commit": v["items"]} for v in a["per_repo"].values())
    with EventStore.open(baseline) as store:
        recorded = [e for e in store.read_stream("campaign:rr") if e.event_type == "plan.created"]
    assert recorded and recorded[0].payload["estimate"]["cost_usd"] == a["cost_usd"]


def test_a_price_for_no_model_is_no_price() -> None:
    """A read-model row can lack its model (an attempt recovered after kill -9); pricing it gives no cost."""
    prices = load_price_table()
    assert prices.price_for(float("nan")) is None  # type: ignore[arg-type]
    assert prices.cost_usd(None, 100, 0, 10) is None
