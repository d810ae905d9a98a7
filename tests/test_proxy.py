"""The metering proxy: the real `openai` SDK behind it, the local API double in front of it.

Usage recorded equals what the double answered (streamed and not, Responses and Chat Completions),
unknown paths pass untouched, quota and key errors stop the campaign at the source, the budget refuses
the first request past it, and no key reaches the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.support.fake_openai import FakeOpenAI
from tracker.analysis.cost_check import disagreement
from tracker.domain.pricing import load_price_table
from tracker.eventstore.store import EventStore
from tracker.proxy.metering import SseMeter, read_body
from tracker.proxy.server import MeteringProxy

USAGE = {"input": 1200, "cached": 200, "output": 300, "reasoning": 120}
KEY = "sk-proj-METERTESTKEY0123456789abcdefghijklmnopqrstuv"
GPT5 = load_price_table().price_for("gpt-5")
assert GPT5 is not None
ONE_CALL_USD = (1000 * GPT5.input + 200 * GPT5.cached_input + 300 * GPT5.output) / 1e6
"""What one call with USAGE costs: reasoning is inside output, priced once."""


@contextmanager
def proxied(store: EventStore, api: FakeOpenAI, **kwargs: Any) -> Iterator[MeteringProxy]:
    with MeteringProxy(store, "camp", upstream=api.base_url, flush_every_s=0.05, **kwargs).start() as proxy:
        yield proxy


def facts(store: EventStore) -> list[dict[str, Any]]:
    return [e.payload for e in store.read_stream("meter:camp")]


def client(proxy: MeteringProxy, attempt: str = "tok-1", retries: int = 2) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.attempt_url(attempt), api_key=KEY, max_retries=retries)


def _responses(c: openai.OpenAI, stream: bool) -> Any:
    if not stream:
        return c.responses.create(model="gpt-5", input="hi").usage
    events = list(c.responses.create(model="gpt-5", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    return events[-1].response.usage


def _chat(c: openai.OpenAI, stream: bool) -> Any:
    messages: Any = [{"role": "user", "content": "hi"}]
    if not stream:
        return c.chat.completions.create(model="gpt-5", messages=messages).usage
    chunks = list(c.chat.completions.create(model="gpt-5", messages=messages, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "OK"
    return [ch for ch in chunks if ch.usage]


@pytest.mark.parametrize("route", ["responses", "chat"])
@pytest.mark.parametrize("stream", [False, True])
def test_usage_recorded_equals_the_apis(sqlite_url: str, route: str, stream: bool) -> None:
    with EventStore.open(sqlite_url) as store, FakeOpenAI(usage=USAGE) as api:
        with proxied(store, api) as proxy:
            got = (_responses if route == "responses" else _chat)(client(proxy), stream)
        [fact] = facts(store)
    assert (fact["input_tokens"], fact["cached_input_tokens"], fact["output_tokens"], fact["reasoning_tokens"]) == (
        1200, 200, 300, 120)
    assert fact["route"] == route and fact["stream"] is stream and fact["status"] == 200
    assert fact["attempt_id"] == "tok-1" and fact["model"] == "gpt-5-2025-08-07"
    assert fact["usage_source"] == ("body" if not stream else "stream_injected" if route == "chat" else "stream")
    assert fact["latency_ms"] > 0 and fact["duration_ms"] >= fact["latency_ms"]
    if route == "chat" and stream:
        assert got == []  # the client did not ask for usage: the chunk the proxy asked for is not passed on
        assert api.bodies[-1]["stream_options"] == {"include_usage": True}
    else:
        assert got.output_tokens == 300 if route == "responses" else got.completion_tokens == 300


def test_a_chat_stream_that_asks_for_usage_gets_it_as_the_api_sends_it(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store, FakeOpenAI(usage=USAGE) as api:
        with proxied(store, api) as proxy:
            chunks = list(client(proxy).chat.completions.create(
                model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True,
                stream_options={"include_usage": True}))
        [fact] = facts(store)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 1200
    assert fact["usage_source"] == "stream" and fact["output_tokens"] == 300


def test_unknown_paths_pass_through_untouched(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store, FakeOpenAI() as api, proxied(store, api) as proxy:
        assert [m.id for m in client(proxy).models.list().data][:2] == ["gpt-5", "gpt-5-2025-08-07"]
        answer = httpx.post(proxy.base_url + "/embeddings?x=1", json={"input": "a"},
                            headers={"Authorization": f"Bearer {KEY}"})
        assert answer.status_code == 404  # the double's own answer, passed on
        assert api.auth_headers[-1] == f"Bearer {KEY}"  # the key passes through
        proxy.writer.flush()
        routes = [(f["route"], f["path"], f["status"], f["attempt_id"]) for f in facts(store)]
    assert routes == [("other", "/models", 200, "tok-1"), ("other", "/embeddings", 404, None)]


def test_usage_is_read_from_the_final_event_however_the_stream_is_cut() -> None:
    body = (b'event: response.created\r\ndata: {"type":"response.created","response":{"usage":null}}\r\n\r\n'
            b'event: response.completed\r\ndata: {"type":"response.completed","response":{"model":"gpt-5",'
            b'"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,'
            b'"output_tokens_details":{"reasoning_tokens":5}}}}\r\n\r\n')
    meter = SseMeter()
    passed = b"".join(meter.feed(body[i:i + 1]) for i in range(len(body))) + meter.close()
    assert passed == body
    usage = meter.found.usage
    assert usage is not None and (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens,
                                  usage.reasoning_tokens) == (10, 4, 7, 5)
    # reasoning is inside output: priced once, not added on top
    cost = load_price_table().cost_usd("gpt-5", 10, 4, 7)
    assert cost == round((6 * GPT5.input + 4 * GPT5.cached_input + 7 * GPT5.output) / 1e6, 6)


def test_a_failed_stream_and_a_broken_body_are_read_without_guessing() -> None:
    meter = SseMeter()
    meter.feed(b'data: {"type":"response.failed","response":{"error":{"code":"server_error","message":"x"}}}\n\n')
    assert meter.found.error_code == "server_error" and meter.found.usage is None
    meter = SseMeter()
    meter.feed(b'data: {"type":"error","code":"insufficient_quota","message":"quota"}\n\n')
    assert meter.found.fatal_category(200) == "quota_exceeded"
    assert read_body(b"<html>502 Bad Gateway</html>").usage is None
    assert read_body(b'{"usage": {"input_tokens": "many"}}').usage.input_tokens is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("answer", "status", "category"), [("insufficient_quota", 429, "quota_exceeded"),
                                                             ("invalid_api_key", 401, "invalid_api_key")])
def test_a_quota_or_key_error_stops_the_campaign_and_nothing_more_is_forwarded(
        sqlite_url: str, answer: str, status: int, category: str) -> None:
    with EventStore.open(sqlite_url) as store, FakeOpenAI({"responses": ["ok", answer, "ok"]}, usage=USAGE) as api:
        with proxied(store, api) as proxy:
            c = client(proxy)  # the SDK's default retries: the proxy's own answer says not to retry
            c.responses.create(model="gpt-5", input="hi")
            with pytest.raises(openai.APIStatusError) as first:
                c.responses.create(model="gpt-5", input="hi")
            with pytest.raises(openai.APIStatusError) as later:
                c.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(openai.APIStatusError):
                c.models.list()
        stops = [e.payload for e in store.read_stream("campaign:camp")]
        recorded = facts(store)
    assert first.value.status_code == status and later.value.status_code == status
    assert later.value.code == answer  # OpenAI-shaped: the agent reports it as the API's own error
    assert api.hits["responses"] == 2 and api.hits["chat"] == 0 and api.hits["models"] == 0
    assert [(s["category"], s["reason"].split(":")[0]) for s in stops] == [(category, category)]
    assert "tok-1" in stops[0]["detail"] and answer in stops[0]["detail"]
    refused = [f for f in recorded if f["refused"]]
    assert len(refused) >= 2 and {f["refused"] for f in refused} == {"stopped"}  # the SDK retried a 429 too
    assert [f["error_code"] for f in recorded if not f["refused"]] == [None, answer]


def test_the_budget_refuses_the_first_request_that_would_pass_it(sqlite_url: str) -> None:
    budget = ONE_CALL_USD * 2.5
    with EventStore.open(sqlite_url) as store, FakeOpenAI(usage=USAGE) as api:
        with proxied(store, api, budget_usd=budget) as proxy:
            c = client(proxy)
            _responses(c, stream=True)
            _chat(c, stream=False)
            with pytest.raises(openai.APIStatusError) as refused:
                c.responses.create(model="gpt-5", input="hi")
        stops = [e.payload for e in store.read_stream("campaign:camp")]
        recorded = facts(store)
    assert refused.value.status_code == 402 and refused.value.code == "budget_exceeded"
    assert "budget" in refused.value.message
    assert api.hits["responses"] == 1 and api.hits["chat"] == 1  # the third never reached the API
    assert [s["reason"] for s in stops] == ["budget"]
    assert [f["refused"] for f in recorded] == [None, None, "budget"]


def test_the_budget_counts_what_was_spent_before(sqlite_url: str) -> None:
    with (EventStore.open(sqlite_url) as store, FakeOpenAI(usage=USAGE) as api,
          proxied(store, api, budget_usd=1.0, spent_before_usd=1.0) as proxy, pytest.raises(openai.APIStatusError)):
        client(proxy).responses.create(model="gpt-5", input="hi")
    assert api.hits["responses"] == 0


def test_the_key_never_reaches_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with EventStore.open(url) as store, FakeOpenAI({"responses": ["ok", "invalid_api_key"]}, usage=USAGE) as api:
        with proxied(store, api) as proxy:
            c = client(proxy)
            _responses(c, stream=False)
            _chat(c, stream=True)
            with pytest.raises(openai.AuthenticationError):
                c.responses.create(model="gpt-5", input="hi")
        assert len(facts(store)) == 3
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"events.db" in b"".join(p.name.encode() for p in tmp_path.iterdir())
    assert KEY.encode() not in stored and KEY[8:30].encode() not in stored
    assert b"Bearer" not in stored


def test_facts_are_appended_in_batches_off_the_request_path(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store, FakeOpenAI(usage=USAGE) as api:
        with MeteringProxy(store, "camp", upstream=api.base_url, flush_every_s=0.5).start() as proxy:
            c = client(proxy)
            threads = [threading.Thread(target=lambda: [_chat(c, False) for _ in range(10)]) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            waiting = len(facts(store))
            time.sleep(0.8)
            flushed = len(facts(store))
        positions = {e.position for e in store.read_stream("meter:camp")}
        versions = store.stream_version("meter:camp")
    assert waiting < 40 and flushed == 40 == versions == len(positions)


def test_three_figures_that_disagree_are_named() -> None:
    assert disagreement({"proxy": 1.0, "trajectory": 1.02, "agent": None}) is None
    named = disagreement({"proxy": 1.0, "trajectory": 0.8, "agent": 1.0})
    assert named is not None and "proxy $1.0000 vs trajectory $0.8000 (+25%)" in named and "agent" in named
    assert disagreement({"proxy": 0.004, "trajectory": 0.0, "agent": None}) is None  # under a cent


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_track_proxy_meters_until_stopped_and_keeps_the_key_out(tmp_path: Path, stop: str) -> None:
    """Ctrl-C or a supervisor's TERM: the proxy stops cleanly and every metered request is in the store, also when
    it was started with SIGINT ignored (a background job of a non-interactive shell)."""
    import os
    import re
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    db = tmp_path / "events.db"
    with FakeOpenAI(usage=USAGE) as api:
        process = subprocess.Popen(
            [sys.executable, "-m", "runners.cli", "--db", f"sqlite:///{db}", "proxy", "--campaign", "camp",
             "--upstream", api.base_url, "--port", "0"], stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as `cmd &` in a script leaves it
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/v1", line)
        assert match, line
        c = openai.OpenAI(base_url=f"{match.group(1)}/a/tok-9/v1", api_key=KEY)
        assert c.responses.create(model="gpt-5", input="hi").usage.output_tokens == 300  # type: ignore[union-attr]
        process.send_signal(getattr(signal, stop))
        try:
            _, rest = process.communicate(timeout=30)
        finally:
            process.kill()
        assert process.returncode == 0, rest
    assert "1 requests recorded" in rest and KEY not in line + rest
    with EventStore.open(f"sqlite:///{db}") as store:
        [fact] = facts(store)
    assert fact["attempt_id"] == "tok-9" and fact["input_tokens"] == 1200


def test_track_proxy_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    from tests.conftest import run_track

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_track("--db", f"sqlite:///{tmp_path / 'e.db'}", "proxy", "--campaign", "camp",
                           "--port", str(port))
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_an_unreachable_api_is_a_502_in_the_apis_shape(sqlite_url: str) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once this closes
    with (EventStore.open(sqlite_url) as store,
          MeteringProxy(store, "camp", upstream=f"http://127.0.0.1:{port}/v1", flush_every_s=0.05).start() as proxy):
        with pytest.raises(openai.InternalServerError) as error:
            client(proxy, retries=0).responses.create(model="gpt-5", input="hi")
        assert error.value.status_code == 502 and error.value.code == "upstream_unreachable"
    [fact] = facts(store)
    assert fact["status"] == 502 and fact["error_type"] == "upstream_unreachable" and fact["input_tokens"] is None


@pytest.mark.postgres
def test_a_store_that_blinks_delays_the_facts_not_the_requests(pg_url: str) -> None:
    from tests.support.blinking_proxy import BlinkingProxy

    EventStore.open(pg_url).close()
    blinking = BlinkingProxy(("127.0.0.1", 5432))
    with (EventStore.open(blinking.url(pg_url)) as store, FakeOpenAI(usage=USAGE) as api,
          MeteringProxy(store, "camp", upstream=api.base_url, flush_every_s=0.1).start() as proxy):
        c = client(proxy)
        _chat(c, stream=False)
        time.sleep(0.3)
        blinking.blink(2.0)
        start = time.monotonic()
        for _ in range(5):
            _chat(c, stream=False)
        took = time.monotonic() - start
        time.sleep(0.3)
        waiting = proxy.writer.pending
        time.sleep(2.5)
    with EventStore.open(pg_url) as store:
        recorded = facts(store)
        assert store.verify().ok
    assert took < 1.0 and waiting >= 5  # answered at once while the store was down; facts kept meanwhile
    assert len(recorded) == 6 and len({f["started_at"] for f in recorded}) == 6
