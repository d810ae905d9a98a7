"""`track run --proxy`: agents using the real `openai` SDK through the run's proxy, the API double behind it.

A quota error mid-campaign ends the running items and stops the campaign within seconds, with no further
request forwarded; a proxy that stops serving takes the campaign down cleanly; `status` shows the proxy's,
the trajectory's and the agent's cost, and names an attempt whose trajectory lost calls.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from tests.support.fake_openai import FakeOpenAI
from tests.test_run import config, make_baseline, write_plan
from tracker.analysis.compare import compare
from tracker.domain.events import decode
from tracker.domain.run_events import CampaignStopped
from tracker.eventstore.store import EventStore
from tracker.projections.read_model import fold
from tracker.rerun.execution import CampaignRunner, prepare_campaign, run_campaign
from tracker.rerun.status import campaign_status

KEY = "sk-proj-RUNPROXYKEY0123456789abcdefghijklmnopqrstuvw"
USAGE = {"input": 12000, "cached": 2000, "output": 3000, "reasoning": 1200}
ONE_CALL_USD = (10000 * 1.25 + 2000 * 0.125 + 3000 * 10.0) / 1e6

AGENT = '''
import json, os, pathlib, sys, time
import openai
item, human, workdir, calls, pause, kept = sys.argv[1:7]
client = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY from the environment the runner gives it
interactions = []
status = "success"
for i in range(int(calls)):
    try:
        if i % 2:
            usage = [e for e in client.responses.create(model="gpt-5", input="hi", stream=True)][-1].response.usage
        else:
            usage = client.responses.create(model="gpt-5", input="hi").usage
    except openai.APIStatusError as exc:
        if not os.environ.get("AGENT_QUIET"):  # quiet: the runner learns of the error only from the store
            print(f"Error: {exc.status_code} {exc.code}", flush=True)
        status = "error"
        break
    interactions.append({"response": {"usage": {"input_tokens": usage.input_tokens,
        "cache_read_input_tokens": usage.input_tokens_details.cached_tokens, "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.output_tokens_details.reasoning_tokens}}})
    time.sleep(float(pause))
work = pathlib.Path(workdir)
trajectory = {"llm_interactions": interactions[:int(kept)] if int(kept) >= 0 else interactions}
(work / "trajectory.json").write_text(json.dumps(trajectory))
(work / "journal.json").write_text(json.dumps({"task_id": "vllm_core", "commits": {"human": human, "pre": None},
    "status": status, "trae": {"returncode": 0 if status == "success" else 1, "duration_s": 1.0}}))
(work / "model_patch.diff").write_text("diff --git a/x b/x\\n")
sys.exit(0 if status == "success" else 1)
'''


def _agent(tmp_path: Path, calls: int, pause: float, kept: int = -1) -> list[str]:
    path = tmp_path / "agent.py"
    path.write_text(AGENT)
    return [sys.executable, str(path), "{item_id}", "{human}", "{workdir}", str(calls), str(pause), str(kept)]


def _env(api: FakeOpenAI) -> dict[str, str]:
    return {"OPENAI_BASE_URL": api.base_url, "OPENAI_API_KEY": KEY}


def _stops(store: EventStore) -> list[CampaignStopped]:
    return [s for s in (decode(e) for e in store.read_stream("campaign:rerun")) if isinstance(s, CampaignStopped)]


def test_a_quota_error_mid_campaign_stops_it_within_seconds(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 6)
    with FakeOpenAI({"responses": ["ok"] * 8 + ["insufficient_quota", "ok"]}, usage=USAGE) as api:
        cfg = config(tmp_path, workers=2, proxy=True, template=_agent(tmp_path, 200, 0.05), env=_env(api))
        with EventStore.open(sqlite_url) as store:
            result = run_campaign(store, [tmp_path / "plan.json"], cfg)
            ended = time.monotonic()
            stops = _stops(store)
            started = [e for e in store.read_prefix("attempt:rerun:") if e.event_type == "attempt.started"]
            interrupted = [e for e in store.read_prefix("attempt:rerun:") if e.event_type == "attempt.interrupted"]
            metered = [e.payload for e in store.read_stream("meter:rerun")]
        log = list(api.log)
    quota_at = next(answered for route, answer, _, answered in log if answer == "insufficient_quota")
    assert ended - quota_at < 5.0
    assert not [entry for entry in log if entry[2] > quota_at + 0.05]  # nothing forwarded after the stop
    assert 9 <= len(log) <= 10  # one more only when an agent's request crossed the quota answer on the way
    assert result.stopped and result.stopped.startswith("quota_exceeded")
    assert [s.category for s in stops] == ["quota_exceeded"] and "metering proxy" in stops[0].detail
    assert len(started) == 2 and len(interrupted) == 2  # both running items ended; no new item started
    assert {f["attempt_id"] for f in metered} == {e.payload["claim_token"] for e in started}
    assert sum(1 for f in metered if f["refused"] is None) == len(log)
    stored = b"".join(f.read_bytes() for f in Path(sqlite_url.removeprefix("sqlite:///")).parent.rglob("*")
                      if f.is_file())
    assert KEY.encode() not in stored and KEY[8:28].encode() not in stored  # nor in the logs, plans or anchors


def test_a_proxy_that_stops_serving_takes_the_campaign_down(sqlite_url: str, tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 4)
    with FakeOpenAI(usage=USAGE) as api:
        cfg = config(tmp_path, workers=2, proxy=True, template=_agent(tmp_path, 400, 0.05), env=_env(api))
        with EventStore.open(sqlite_url) as store:
            fold.catch_up(store)
            items, estimate = prepare_campaign(store, [tmp_path / "plan.json"], cfg)
            fold.catch_up(store)
            runner = CampaignRunner(store, cfg, items, estimate)

            def kill_the_proxy() -> None:
                while api.hits["responses"] < 4:
                    time.sleep(0.02)
                assert runner.metered is not None and runner.metered.proxy is not None
                runner.metered.proxy.server.should_exit = True

            killer = threading.Thread(target=kill_the_proxy)
            killer.start()
            t0 = time.monotonic()
            result = runner.run()
            took = time.monotonic() - t0
            killer.join()
            stops = _stops(store)
            attempts = [e.event_type for e in store.read_prefix("attempt:rerun:")]
    assert result.stopped and result.stopped.startswith("proxy_down")
    assert [s.category for s in stops] == ["proxy_down"]
    assert attempts.count("attempt.started") == 2 and attempts.count("attempt.interrupted") == 2
    assert took < 15  # 400 calls x 50 ms each would be 20 s: the agents were ended, not left to fail


def test_status_shows_the_three_costs_and_names_a_trajectory_that_lost_calls(sqlite_url: str,
                                                                                tmp_path: Path) -> None:
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 1)
    with FakeOpenAI(usage=USAGE) as api:
        cfg = config(tmp_path, proxy=True, template=_agent(tmp_path, 4, 0.0, kept=3), env=_env(api))
        with EventStore.open(sqlite_url) as store:
            result = run_campaign(store, [tmp_path / "plan.json"], cfg)
            status = campaign_status(store, "rerun")
            comparison = compare(store, "orig", "rerun")
    assert result.succeeded == 1
    assert comparison.costs["totals"] == status["costs"]["totals"]
    assert any(note.startswith("cost disagreement in rerun") and "proxy $0.1710" in note for note in comparison.notes)
    costs = status["costs"]
    one = ONE_CALL_USD
    assert costs["requests"] == 4 and costs["metered_attempts"] == 1
    assert abs(costs["totals"]["proxy_usd"] - round(4 * one, 4)) < 1e-4
    assert abs(costs["totals"]["trajectory_usd"] - round(3 * one, 4)) < 1e-4
    [named] = costs["disagreements"]
    assert named["disagreement"].startswith("proxy $0.1710 vs trajectory $0.128") and "(+33%)" in named["disagreement"]


def test_track_run_proxy_from_the_command_line(sqlite_url: str, tmp_path: Path) -> None:
    import json

    from tests.conftest import run_track

    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 2)
    config(tmp_path)  # lays out the bench root
    with FakeOpenAI(usage=USAGE) as api:
        result = run_track("--db", sqlite_url, "run", str(tmp_path / "plan.json"), "--campaign", "rerun",
                           "--baseline", "orig", "--fix-commit", "a1c6d41", "--bench-root", str(tmp_path / "bench"),
                           "--log-dir", str(tmp_path / "logs"), "--no-mlflow", "--json", "--proxy", "--",
                           *_agent(tmp_path, 2, 0.0), env=_env(api))
        status = run_track("--db", sqlite_url, "status", "rerun")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["succeeded"] == 2 and api.hits["responses"] == 4
    assert "cost by source: proxy $0.17 (4 requests, 2 attempts), trajectory $0.17" in status.stdout


def test_runners_obey_the_stop_a_standalone_proxy_records(sqlite_url: str, tmp_path: Path) -> None:
    from tracker.proxy.server import MeteringProxy

    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 4)
    with (FakeOpenAI({"responses": ["ok"] * 4 + ["insufficient_quota", "ok"]}, usage=USAGE) as api,
          EventStore.open(sqlite_url) as proxy_store,
          MeteringProxy(proxy_store, "rerun", upstream=api.base_url).start() as proxy):
        env = {"OPENAI_BASE_URL": proxy.base_url, "OPENAI_API_KEY": KEY, "AGENT_QUIET": "1"}
        cfg = config(tmp_path, workers=2, template=_agent(tmp_path, 400, 0.05), env=env)
        with EventStore.open(sqlite_url) as store:
            t0 = time.monotonic()
            result = run_campaign(store, [tmp_path / "plan.json"], cfg)
            took = time.monotonic() - t0
            stops = _stops(store)
    assert result.stopped and "stopped by another runner" in result.stopped and "quota_exceeded" in result.stopped
    assert [s.category for s in stops] == ["quota_exceeded"] and stops[0].detail.startswith("attempt -")
    assert took < 15 and api.hits["responses"] <= 6
