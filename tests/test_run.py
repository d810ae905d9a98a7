"""`track run` against the stand-in bench: every outcome, retries, stops, budget, resume, kill -9, two hosts."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_track
from tests.support.events import read_all
from tracker.demo.standin_bench import lay_out_bench_root
from tracker.domain.import_events import CampaignCreated
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import ensure_campaign
from tracker.projections.read_model import fold
from tracker.projections.read_model.queries import attempts_frame
from tracker.rerun.execution import RunConfig, run_campaign
from tracker.rerun.status import campaign_status

OUTCOMES = ["success", "tool_output_missing", "json_parse_error", "context_length_exceeded", "aws_sso_expired",
            "max_steps_exceeded", "no_patch", "timeout", "other", "rate_limited", "hang", "crash"]


def _sha(i: int) -> str:
    return hashlib.sha1(f"commit-{i}".encode()).hexdigest()


def write_plan(path: Path, n: int, repo: str = "vllm", start: int = 0) -> list[dict[str, str]]:
    """A bench plan whose repo is the checkout `lay_out_bench_root` makes (relative to the bench root)."""
    items = [{"item_id": f"{repo}_core-{9000 + i:04d}", "human": _sha(i), "pre": None} for i in range(start, start + n)]
    path.write_text(json.dumps({"repo": f"repos/{repo}", "task_id": f"{repo}_core", "items": items}))
    return items


def make_baseline(url: str) -> None:
    with EventStore.open(url) as store:
        ensure_campaign(store, CampaignCreated(name="orig", kind="original", agent="trae", model="gpt-5"), {})


def config(tmp_path: Path, **overrides: object) -> RunConfig:
    values: dict[str, object] = dict(
        campaign="rerun", baseline="orig", fix_commit="a1c6d41", bench_root=tmp_path / "bench",
        bench_module="tracker.demo.standin_bench", log_dir=tmp_path / "logs", retry_wait_s=0.05, lease_s=30.0,
        env={"PYTHONPATH": str(REPO_ROOT)},
    )
    values.update(overrides)
    lay_out_bench_root(tmp_path / "bench")
    return RunConfig(**values)  # type: ignore[arg-type]


def outcomes_env(tmp_path: Path, table: dict[str, object], sleep: float = 0.0) -> dict[str, str]:
    file = tmp_path / "outcomes.json"
    file.write_text(json.dumps(table))
    return {"PYTHONPATH": str(REPO_ROOT), "STANDIN_OUTCOMES": str(file), "STANDIN_SLEEP": str(sleep)}


def frame(url: str, campaign: str = "rerun"):  # type: ignore[no-untyped-def]
    with EventStore.open(url) as store:
        fold.catch_up(store)
        return attempts_frame(store, campaign)


def test_every_outcome_is_recorded_like_an_import(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", len(OUTCOMES))
    table = {item["item_id"]: outcome for item, outcome in zip(items, OUTCOMES, strict=True)}
    table[items[OUTCOMES.index("rate_limited")]["item_id"]] = ["rate_limited", "rate_limited", "success"]
    cfg = config(tmp_path, workers=4, item_timeout_s=2.0, env=outcomes_env(tmp_path, table))
    with EventStore.open(sqlite_url) as store:
        result = run_campaign(store, [tmp_path / "plan.json"], cfg)
        types = Counter(e.event_type for e in store.read_prefix("attempt:rerun:"))
    assert result.done == len(OUTCOMES) and result.stopped is None
    rows = frame(sqlite_url)
    plan_item = {item["human"]: item["item_id"] for item in items}
    final = {plan_item[row.commit]: row.failure_category for row in rows.sort_values("run_timestamp").itertuples()}
    retried = items[OUTCOMES.index("rate_limited")]
    assert sorted(rows[rows.commit == retried["human"]].item_id) == [  # a fresh bench item (worktree) per attempt
        retried["item_id"], f"{retried['item_id']}-a2", f"{retried['item_id']}-a3"]
    expected = {**table, items[OUTCOMES.index("rate_limited")]["item_id"]: "none",
                items[OUTCOMES.index("hang")]["item_id"]: "timeout", items[OUTCOMES.index("crash")]["item_id"]: "other"}
    expected = {k: ("none" if v == "success" else v) for k, v in expected.items()}
    assert final == expected
    # the rate-limited item was retried within the run (3 attempts), the others ran once
    per_item = Counter(plan_item[commit] for commit in rows["commit"])
    assert per_item[items[OUTCOMES.index("rate_limited")]["item_id"]] == 3
    assert sum(per_item.values()) == len(OUTCOMES) + 2
    assert types["attempt.started"] == types["attempt.finished"] == len(OUTCOMES) + 2
    assert types["attempt.observed"] == types["failure.classified"] == len(OUTCOMES) + 2
    success = rows[rows.failure_category == "none"].iloc[0]
    assert success.input_tokens > 0 and success.patch_bytes > 0 and success.status == "success"
    assert success.run_path == f"vllm/trae/gpt-5/{success.run_timestamp}/{success.item_id}"  # where --run-id put it
    assert (tmp_path / "bench" / "state" / "runs" / success.run_path / "journal.json").exists()
    assert result.succeeded == 2 and result.failed == len(OUTCOMES) - 2


def test_quota_exceeded_stops_the_whole_campaign_at_once(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 8)
    table = {items[0]["item_id"]: "quota_exceeded"}
    cfg = config(tmp_path, workers=1, env=outcomes_env(tmp_path, table))
    with EventStore.open(sqlite_url) as store:
        result = run_campaign(store, [tmp_path / "plan.json"], cfg)
        stops = [e for e in store.read_stream("campaign:rerun") if e.event_type == "campaign.stopped"]
        status = campaign_status(store, "rerun")
    assert result.stopped and "quota_exceeded" in result.stopped
    assert result.attempts == 1  # nothing else was started
    assert len(stops) == 1 and stops[0].payload["category"] == "quota_exceeded"
    assert stops[0].payload["items_left"] == 7
    assert status["stopped"]["category"] == "quota_exceeded" and status["succeeded"] == 0
    # the quota item ends failed, or interrupted when the stop seen live in its output ends it first (then it waits)
    assert (status["failed"], status["pending"]) in ((1, 7), (0, 8))


def test_invalid_key_seen_live_kills_the_running_items(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 4)
    # item 0 hangs (would run forever), item 1 prints an invalid key error: both must end promptly
    table = {items[0]["item_id"]: "hang", items[1]["item_id"]: {"outcome": "invalid_api_key", "sleep": 0.5}}
    cfg = config(tmp_path, workers=2, env=outcomes_env(tmp_path, table))
    started = time.monotonic()
    with EventStore.open(sqlite_url) as store:
        result = run_campaign(store, [tmp_path / "plan.json"], cfg)
    assert time.monotonic() - started < 20
    assert result.stopped and "invalid_api_key" in result.stopped
    rows = frame(sqlite_url)
    by_item = dict(zip(rows.item_id, rows.status, strict=True))
    assert by_item[items[0]["item_id"]] == "interrupted"
    assert rows[rows.item_id == items[1]["item_id"]].failure_category.iloc[0] == "invalid_api_key"
    assert set(by_item) == {items[0]["item_id"], items[1]["item_id"]}


def test_budget_stops_new_items_and_a_rerun_resumes(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 6)
    table = {items[1]["item_id"]: "no_patch"}
    env = outcomes_env(tmp_path, table)
    with EventStore.open(sqlite_url) as store:
        first = run_campaign(store, [tmp_path / "plan.json"], config(tmp_path, budget_usd=1.0, env=env))
    assert first.stopped == "budget"
    assert 1 <= first.done < 6 and first.cost_usd <= 1.0 + 0.8  # at most one item past the estimate-less start
    table[items[1]["item_id"]] = "success"
    env = outcomes_env(tmp_path, table)
    with EventStore.open(sqlite_url) as store:
        second = run_campaign(store, [tmp_path / "plan.json"], config(tmp_path, env=env))
        status = campaign_status(store, "rerun")
    assert second.skip_reasons["succeeded"] == first.succeeded  # succeeded items are not run again
    assert status["succeeded"] == 6 and status["failed"] == 0 and status["pending"] == 0
    rows = frame(sqlite_url)
    assert (rows[rows.status == "success"].groupby("commit").size() == 1).all()


def test_max_attempts_bounds_attempts_across_runs(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 1)
    env = outcomes_env(tmp_path, {items[0]["item_id"]: "tool_output_missing"})
    with EventStore.open(sqlite_url) as store:
        for _ in range(3):
            result = run_campaign(store, [tmp_path / "plan.json"], config(tmp_path, max_attempts=2, env=env))
    assert result.skip_reasons["max_attempts"] == 1
    assert len(frame(sqlite_url)) == 2


def test_a_template_runs_any_agent(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 2)
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import sys, json, pathlib\n"
        "item, human, workdir = sys.argv[1:4]\n"
        "print('Starting task processing: ' + item)\n"
        "print('OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx1234')\n"
        "j = {'task_id': 'vllm_core', 'commits': {'human': human, 'pre': None}, 'status': 'success',"
        " 'trae': {'returncode': 0, 'duration_s': 1.0}}\n"
        "pathlib.Path(workdir, 'journal.json').write_text(json.dumps(j))\n"
        "pathlib.Path(workdir, 'model_patch.diff').write_text('diff --git a/x b/x\\n')\n"
    )
    cfg = config(tmp_path, template=[sys.executable, str(agent), "{item_id}", "{human}", "{workdir}"])
    with EventStore.open(sqlite_url) as store:
        result = run_campaign(store, [tmp_path / "plan.json"], cfg)
    assert result.succeeded == 2
    logs = list((tmp_path / "logs").rglob("pipeline_run_*.log"))
    assert len(logs) == 2
    text = "".join(log.read_text() for log in logs)
    assert "Starting task processing" in text and "sk-proj-abcdefghij" not in text  # redacted on the way


def _events(url: str) -> list:  # type: ignore[type-arg]
    with EventStore.open(url) as store:
        return list(read_all(store))


def _start_run(url: str, tmp_path: Path, plan: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "runners.cli", "--db", url, "run", str(plan), "--campaign", "rerun",
            "--baseline", "orig", "--fix-commit", "a1c6d41", "--bench-root", str(tmp_path / "bench"),
            "--bench-module", "tracker.demo.standin_bench", "--log-dir", str(tmp_path / "logs"),
            "--no-mlflow", "--json",
            *extra]
    lay_out_bench_root(tmp_path / "bench")
    return subprocess.Popen(args, cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_kill_9_then_rerun_loses_nothing_and_runs_no_success_twice(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 6)
    env = outcomes_env(tmp_path, {items[4]["item_id"]: "other"}, sleep=0.7)
    proc = _start_run(sqlite_url, tmp_path, tmp_path / "plan.json", env, "--workers", "2")
    _wait_for(lambda: sum(e.event_type == "claim.released" for e in _events(sqlite_url)) >= 2)
    proc.kill()  # kill -9: no cleanup at all
    proc.wait()
    assert any(e.event_type == "attempt.started" for e in _events(sqlite_url))
    again = run_track("--db", sqlite_url, "run", str(tmp_path / "plan.json"), "--campaign", "rerun", "--baseline",
                      "orig", "--fix-commit", "a1c6d41", "--bench-root", str(tmp_path / "bench"), "--bench-module",
                      "tracker.demo.standin_bench", "--log-dir", str(tmp_path / "logs"), "--no-mlflow", "--json",
                      "--workers", "2", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    rows = frame(sqlite_url)
    final: dict[str, str] = {}
    for row in rows.sort_values("run_timestamp").itertuples():
        final[row.commit] = row.status
    assert set(final) == {item["human"] for item in items}  # none lost
    assert all(status in ("success", "error") for status in final.values())
    assert (rows[rows.status == "success"].groupby("commit").size() == 1).all()  # none run twice after success
    assert not (rows.status == "running").any()
    events = _events(sqlite_url)
    finished = Counter(e.stream_id for e in events if e.event_type == "attempt.finished")
    assert all(n == 1 for n in finished.values())
    # the attempts the dead runner left behind were either recovered from their run folder or abandoned
    taken_over = [e for e in events if e.event_type == "attempt.abandoned"
                  or (e.event_type == "attempt.finished" and e.payload["recovered"])]
    assert taken_over
    with EventStore.open(sqlite_url) as store:
        status = campaign_status(store, "rerun")
    assert status["succeeded"] == 5 and status["failed"] == 1 and status["running"] == 0


def test_sigint_finishes_the_running_item_and_stops(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 5)
    env = outcomes_env(tmp_path, {}, sleep=1.0)
    proc = _start_run(sqlite_url, tmp_path, tmp_path / "plan.json", env)
    _wait_for(lambda: any(e.event_type == "attempt.started" for e in _events(sqlite_url)))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["done"] == 1 and summary["succeeded"] == 1 and summary["attempts"] == 1
    rows = frame(sqlite_url)
    assert list(rows.status) == ["success"]


@pytest.mark.postgres
def test_two_runners_on_one_postgres_campaign_never_share_an_item(pg_url: str, tmp_path: Path) -> None:
    make_baseline(pg_url)
    items = write_plan(tmp_path / "plan.json", 12)
    env = outcomes_env(tmp_path, {}, sleep=0.3)
    procs = [_start_run(pg_url, tmp_path, tmp_path / "plan.json", env, "--workers", "2") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outputs]
    summaries = [json.loads(o[0]) for o in outputs]
    assert sum(s["done"] for s in summaries) == 12
    started = [e for e in _events(pg_url) if e.event_type == "attempt.started"]
    assert len(started) == 12  # every commit attempted exactly once, by one of the runners
    assert {e.payload["commit"] for e in started} == {i["human"] for i in items}
    pids = Counter(e.metadata["pid"] for e in started)
    assert len(pids) == 2  # both runners did work


def test_run_ends_by_projecting_its_attempts_into_mlflow(sqlite_url: str, tmp_path: Path) -> None:
    """Without --no-mlflow, `track run` writes one MLflow run per attempt, linked to nothing it should not be."""
    from mlflow import MlflowClient

    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 2)
    env = outcomes_env(tmp_path, {items[1]["item_id"]: "no_patch"})
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    lay_out_bench_root(tmp_path / "bench")
    result = run_track("--db", sqlite_url, "run", str(tmp_path / "plan.json"), "--campaign", "rerun", "--baseline",
                       "orig", "--fix-commit", "a1c6d41", "--bench-root", str(tmp_path / "bench"), "--bench-module",
                       "tracker.demo.standin_bench", "--log-dir", str(tmp_path / "logs"), "--mlflow-uri", mlflow_uri,
                       "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mlflow"]["runs_created"] == 2
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("iso-bench/trae/gpt-5")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], filter_string="params.phase = 'rerun'")
    by_commit = {run.data.params["commit"]: run for run in runs if "track.campaign_summary" not in run.data.tags}
    assert set(by_commit) == {item["human"] for item in items}
    assert by_commit[items[1]["human"]].data.tags["failure_category"] == "no_patch"
    assert by_commit[items[0]["human"]].data.params["agent_fix_commit"] == "a1c6d41"


def test_ctrl_c_twice_interrupts_even_after_a_budget_stop(sqlite_url: str, tmp_path: Path) -> None:
    """The budget stops new items; the user must still be able to interrupt a hanging one (exit 130)."""
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 3)
    env = outcomes_env(tmp_path, {items[1]["item_id"]: "hang"})  # item 0 succeeds and spends ~$0.42
    proc = _start_run(sqlite_url, tmp_path, tmp_path / "plan.json", env, "--workers", "2", "--budget-usd", "0.3")
    _wait_for(lambda: any(e.event_type == "failure.classified" for e in _events(sqlite_url)))
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    statuses = dict(zip(frame(sqlite_url)["item_id"], frame(sqlite_url)["status"], strict=True))
    assert statuses[items[0]["item_id"]] == "success"
    assert statuses[items[1]["item_id"]] == "interrupted"
    assert items[2]["item_id"] not in statuses, "the budget kept the third item from starting"


def test_resuming_with_fewer_plan_files_keeps_the_whole_plan(sqlite_url: str, tmp_path: Path) -> None:
    """Status and compare count every item ever planned for the campaign, not only the last plan's."""
    from tracker.analysis.compare import recorded_estimate

    make_baseline(sqlite_url)
    write_plan(tmp_path / "vllm.json", 2, repo="vllm")
    write_plan(tmp_path / "sglang.json", 2, repo="sglang", start=10)
    env = outcomes_env(tmp_path, {})
    with EventStore.open(sqlite_url) as store:
        run_campaign(store, [tmp_path / "vllm.json", tmp_path / "sglang.json"], config(tmp_path, env=env))
        run_campaign(store, [tmp_path / "vllm.json"], config(tmp_path, env=env))
        status = campaign_status(store, "rerun")
        estimate = recorded_estimate(store, "rerun")
    assert status["items"] == 4 and status["succeeded"] == 4 and status["pending"] == 0
    assert estimate is not None and estimate["items"] == 4
    assert set(estimate["per_repo"]) == {"vllm", "sglang"}


def test_two_campaigns_in_one_bench_root_each_run_every_item_on_their_own_worktrees(sqlite_url: str,
                                                                                  tmp_path: Path) -> None:
    """The bench's `--resume` skips only within one run id, so a second campaign in the same checkout runs
    every item again, each on a worktree of its own (the first campaign's are stepped around)."""
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 2)
    env = outcomes_env(tmp_path, {})
    with EventStore.open(sqlite_url) as store:
        first = run_campaign(store, [tmp_path / "plan.json"], config(tmp_path, env=env))
        second = run_campaign(store, [tmp_path / "plan.json"], config(tmp_path, env=env, campaign="rerun2"))
        status = campaign_status(store, "rerun2")
    assert first.succeeded == 2 and second.succeeded == 2 and second.failed == 0 and not second.skip_reasons
    assert status["succeeded"] == 2 and status["harness_errors"] == 0
    rows = frame(sqlite_url, "rerun2")
    assert sorted(rows.item_id) == sorted(f"{item['item_id']}-a2" for item in items)


def test_a_bench_resume_skip_is_not_recorded_as_a_failure(sqlite_url: str, tmp_path: Path) -> None:
    """An agent that says it skipped the item as already done (the bench's `--resume` line) ran nothing for
    this campaign: the attempt is interrupted with the reason, never a `no_patch`."""
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 2)
    template = [sys.executable, "-c", "import sys; sys.stderr.write('Skipping ' + sys.argv[1] + ' - task already "
                "completed successfully')", "{item_id}"]
    with EventStore.open(sqlite_url) as store:
        result = run_campaign(store, [tmp_path / "plan.json"], config(tmp_path, template=template))
        status = campaign_status(store, "rerun")
    assert result.failed == 0 and result.skip_reasons["bench_already_done"] == 2
    assert status["failed"] == 0 and status["succeeded"] == 0
    rows = frame(sqlite_url)
    assert set(rows["status"]) == {"interrupted"} and len(rows) == len(items)


def test_an_error_inside_a_worker_stops_the_run_and_is_raised_not_lost(sqlite_url: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker.errors import StoreUnavailable
    from tracker.rerun import execution

    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 3)

    def broken(self: object, claim: object) -> None:
        raise StoreUnavailable("the store went away")

    monkeypatch.setattr(execution.CampaignRunner, "_launch", broken)
    with EventStore.open(sqlite_url) as store, pytest.raises(StoreUnavailable, match="went away"):
        run_campaign(store, [tmp_path / "plan.json"], config(tmp_path, env=outcomes_env(tmp_path, {})))
    with EventStore.open(sqlite_url) as store:
        stops = [e for e in read_all(store) if e.event_type == "campaign.stopped"]
    assert len(stops) == 1 and "StoreUnavailable" in stops[0].payload["reason"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_quota_stop_holds_across_three_runners(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The runner that meets the exhausted quota records the stop at once; the two others read it and stop
    too: after it, no runner of the campaign starts another item (one in flight at that instant aside)."""
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    make_baseline(url)
    items = write_plan(tmp_path / "plan.json", 15)
    env = outcomes_env(tmp_path, {items[3]["item_id"]: {"outcome": "quota_exceeded", "sleep": 0.2}}, sleep=0.6)
    procs = [_start_run(url, tmp_path, tmp_path / "plan.json", env) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [1, 1, 1], [o[1][-300:] for o in outputs]
    events = _events(url)
    stops = [e for e in events if e.event_type == "campaign.stopped"]
    assert len(stops) == 1 and stops[0].payload["category"] == "quota_exceeded"  # recorded once, by its runner
    later = [e for e in events if e.event_type == "attempt.started" and e.position > stops[0].position]
    assert len(later) <= 2
    summaries = [json.loads(o[0]) for o in outputs]
    assert sum(s["stopped"].startswith("stopped by another runner") for s in summaries) == 2
    assert sum(s["attempts"] for s in summaries) < len(items)


@pytest.mark.postgres
def test_a_host_whose_clock_runs_ahead_steals_no_live_claim(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases are on the database's clock: a host 40 s ahead of it (lease 30 s) sees the claim as live."""
    import time as clock

    from tracker.rerun.claims import Claim, Claims, Refusal
    from tracker.rerun.planning import PlanItem

    item = PlanItem("vllm", "vllm_core-0001", _sha(1), None)
    with EventStore.open(pg_url) as store:
        holder = Claims(store, "rerun", 30.0, {})
        held = holder.acquire(item)
        assert isinstance(held, Claim)
        real = clock.time
        monkeypatch.setattr(clock, "time", lambda: real() + 40.0)  # this "host" runs 40 s ahead
        skewed = Claims(store, "rerun", 30.0, {})
        skewed.host = "gpu-host-2"  # another host: it cannot look at the holder's pid, only at the lease
        refused = skewed.acquire(item)
        assert isinstance(refused, Refusal) and refused.reason == "held"
        assert skewed.dead_reason(holder.state(item.commit).holder) is None  # type: ignore[arg-type]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_the_agent_dies_with_its_runner_after_kill_9(sqlite_url: str, tmp_path: Path) -> None:
    """The agent runs under a supervisor that the kernel signals when `track run` dies: after a kill -9 of
    the runner, the whole agent tree is gone within seconds, so a later runner never meets a live agent."""
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 1)
    proc = _start_run(sqlite_url, tmp_path, tmp_path / "plan.json", outcomes_env(tmp_path, {}, sleep=60))

    def agent_group() -> int | None:
        renewals = [e for e in _events(sqlite_url) if e.event_type == "claim.renewed" and e.payload["child_pid"]]
        return renewals[0].payload["child_pid"] if renewals else None

    _wait_for(lambda: agent_group() is not None)
    pgid = agent_group()
    assert pgid is not None and _group_alive(pgid)  # recorded on the claim the moment it ran
    proc.kill()
    proc.wait()
    _wait_for(lambda: not _group_alive(pgid), timeout=10)
    again = run_track("--db", sqlite_url, "run", str(tmp_path / "plan.json"), "--campaign", "rerun", "--baseline",
                      "orig", "--fix-commit", "a1c6d41", "--bench-root", str(tmp_path / "bench"), "--bench-module",
                      "tracker.demo.standin_bench", "--log-dir", str(tmp_path / "logs"), "--no-mlflow", "--json",
                      cwd=tmp_path, env=outcomes_env(tmp_path, {}))
    assert again.returncode == 0, again.stderr
    events = _events(sqlite_url)
    assert [e.event_type for e in events if e.event_type in ("attempt.abandoned", "attempt.finished")] == [
        "attempt.abandoned", "attempt.finished"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_budget_holds_across_three_runners(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Reservations live in the store: three runners of one campaign together pass `--budget-usd` by no more
    than one item's estimate (each on its own would spend the whole budget)."""
    from tests.support.campaign_builders import Attempt, build_pair
    from tracker.demo.standin_bench import _tokens
    from tracker.domain.pricing import load_price_table

    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    items = write_plan(tmp_path / "plan.json", 15)
    measured = [Attempt("vllm", item["human"], "error", "no_patch", **{k: v for k, v in _tokens(item["human"]).items()
                                                                      if k != "reasoning_tokens"})
                for item in items]  # the baseline used what the stand-in will use: estimates are exact
    with EventStore.open(url) as store:
        build_pair(store, measured, [], names=("orig", "unused"))
    prices = load_price_table()
    costs = [prices.cost_usd("gpt-5", a.input_tokens, a.cached_input_tokens, a.output_tokens) or 0.0 for a in measured]
    budget = round(sum(costs) / 3, 2)
    env = outcomes_env(tmp_path, {}, sleep=0.3)
    procs = [_start_run(url, tmp_path, tmp_path / "plan.json", env, "--budget-usd", str(budget)) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 1 for p in procs), [o[1][-300:] for o in outputs]
    spent = frame(url)["cost_usd"].sum()
    assert budget * 0.5 < spent <= budget + max(costs), (spent, budget)
    summaries = [json.loads(o[0]) for o in outputs]
    assert all(s["stopped"] == "budget" or s["stopped"].startswith("stopped by another runner") for s in summaries)


@pytest.mark.postgres
def test_a_5_second_store_outage_loses_nothing_and_ends_no_run(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL unreachable for 5 s mid-run (every connection dropped, new ones refused): the runner waits
    and retries while the agents keep running, then records everything; no attempt is left running."""
    from tests.support.blinking_proxy import BlinkingProxy

    make_baseline(pg_url)
    EventStore.open(pg_url).close()
    proxy = BlinkingProxy(("127.0.0.1", 5432))
    url = proxy.url(pg_url)
    items = write_plan(tmp_path / "plan.json", 6)
    proc = _start_run(url, tmp_path, tmp_path / "plan.json", outcomes_env(tmp_path, {}, sleep=1.0),
                      "--workers", "2", "--lease", "60")
    _wait_for(lambda: sum(e.event_type == "attempt.finished" for e in _events(pg_url)) >= 1)
    proxy.blink(5.0)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-800:]
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["succeeded"] == len(items) and summary["stopped"] is None
    rows = frame(pg_url)
    assert sorted(set(rows.commit)) == sorted(i["human"] for i in items)
    assert set(rows.status) == {"success"} and len(rows) == len(items)  # none lost, none twice, none running
    with EventStore.open(pg_url) as store:
        assert store.verify().ok
