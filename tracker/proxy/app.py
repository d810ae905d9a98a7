"""The metering proxy as an ASGI app: forwards OpenAI API requests, meters each, stops the campaign at the source.

A request to `/a/<attempt_id>/v1/<path>` (or `/v1/<path>`) is forwarded to `<upstream>/<path>` with its
headers (the key in `Authorization` passes through and is never read into a fact), streamed back as it
comes (httpx `send(stream=True)`), and metered: status, error type and code, latency, and the usage the
API returned (`metering`). Paths other than Responses and Chat Completions pass through untouched.

`Guard` decides before forwarding: after an `insufficient_quota` or `invalid_api_key` answer nothing more is
forwarded (the same error is answered at once, with `x-should-retry: false` so SDKs do not retry), and a
request that would pass the budget is refused with 402 `budget_exceeded`, in OpenAI's error shape.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import orjson

from tracker.domain.pricing import PriceTable
from tracker.domain.run_events import ApiRequestMetered
from tracker.proxy.metering import MAX_BODY_BYTES, Metered, RequestShape, SseMeter, read_body, shape_request
from tracker.proxy.writer import FactWriter

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
StopHandler = Callable[[str, str], None]

HEALTH_PATH = "/_track/health"
_ATTEMPT = re.compile(rb"^/a/([A-Za-z0-9._-]{1,80})(/.*)?$")
_HOP = {b"host", b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade",
        b"proxy-authorization", b"proxy-connection", b"accept-encoding"}
_HOP_BACK = {b"connection", b"keep-alive", b"transfer-encoding"}
_REFUSAL_STATUS = {"quota_exceeded": (429, "insufficient_quota"), "invalid_api_key": (401, "invalid_api_key"),
                   "budget": (402, "budget_exceeded")}


def split_attempt(raw_path: bytes) -> tuple[str | None, bytes]:
    """(attempt id, the path the upstream gets): `/a/<id>/v1/responses` -> (id, `/responses`)."""
    attempt = None
    match = _ATTEMPT.match(raw_path)
    if match:
        attempt, raw_path = match.group(1).decode(), match.group(2) or b"/"
    if raw_path == b"/v1" or raw_path.startswith(b"/v1/"):
        raw_path = raw_path[3:] or b"/"
    return attempt, raw_path


def route_of(method: str, path: bytes) -> str:
    """`responses`, `chat` or `other` (only a POST creating a response or a completion is metered for usage)."""
    if method == "POST":
        if path.rstrip(b"/").endswith(b"/responses"):
            return "responses"
        if path.rstrip(b"/").endswith(b"/chat/completions"):
            return "chat"
    return "other"


def error_body(message: str, code: str, kind: str | None = None) -> bytes:
    """An error body in the OpenAI API's shape, so SDKs and agents report it as they would the API's."""
    return orjson.dumps({"error": {"message": message, "type": kind or code, "param": None, "code": code}})


@dataclass
class Refusal:
    status: int
    body: bytes
    reason: str


class Guard:
    """The proxy's decision before forwarding: stopped for good (quota, key), or the budget would pass."""

    def __init__(self, campaign: str, prices: PriceTable, budget_usd: float | None, spent_before_usd: float,
                 on_stop: StopHandler | None) -> None:
        self.campaign, self.prices, self.budget = campaign, prices, budget_usd
        self.spent = spent_before_usd
        self.metered_cost, self.metered = 0.0, 0
        self.in_flight = 0
        self.stopped: Refusal | None = None
        self.on_stop = on_stop
        self._lock = threading.Lock()
        self._budget_told = False

    def refusal(self, route: str) -> Refusal | None:
        """Why this request must not be forwarded (None: forward it, counted as in flight)."""
        with self._lock:
            if self.stopped is not None:
                return self.stopped
            if route != "other" and self.budget is not None and self._would_pass():
                return self._budget_refusal()
            self.in_flight += route != "other"
            return None

    def _would_pass(self) -> bool:
        """Spent, plus what the requests in flight and this one are expected to cost (the mean so far)."""
        assert self.budget is not None
        mean = self.metered_cost / self.metered if self.metered else 0.0
        return self.spent >= self.budget or self.spent + mean * (self.in_flight + 1) > self.budget

    def _budget_refusal(self) -> Refusal:
        message = (f"track proxy: campaign {self.campaign} would pass its budget of ${self.budget:.2f} "
                   f"(spent ${self.spent:.4f}); the request was not forwarded")
        if not self._budget_told:
            self._budget_told = True
            self._tell("budget", f"proxy refused a request: spent ${self.spent:.4f} of ${self.budget:.2f}")
        return Refusal(402, error_body(message, "budget_exceeded"), "budget")

    def done(self, route: str, model: str | None, metered: Metered) -> float | None:
        """A forwarded request ended: add its cost (None when it cannot be priced)."""
        usage = metered.usage
        cost = None if usage is None else self.prices.cost_usd(model, usage.input_tokens, usage.cached_input_tokens,
                                                               usage.output_tokens)
        with self._lock:
            self.in_flight -= route != "other"
            if cost is not None:
                self.spent += cost
                self.metered_cost += cost
                self.metered += 1
        return cost

    def stop(self, category: str, detail: str) -> None:
        """Forward nothing more: every request is answered with the error that stopped the campaign."""
        with self._lock:
            if self.stopped is not None:
                return
            status, code = _REFUSAL_STATUS[category]
            message = (f"track proxy: campaign {self.campaign} is stopped ({category}: the API answered {code}); "
                       "the request was not forwarded")
            self.stopped = Refusal(status, error_body(message, code), "stopped")
        self._tell(category, detail)

    def _tell(self, category: str, detail: str) -> None:
        """The campaign's stop handler, on a thread of its own (it appends to the store)."""
        if self.on_stop is not None:
            threading.Thread(target=self.on_stop, args=(category, detail), name="track-proxy-stop").start()


@dataclass
class Upstream:
    base: str
    timeout_s: float = 900.0


class MeteringApp:
    """The ASGI application (see module docstring)."""

    def __init__(self, campaign: str, upstream: Upstream, guard: Guard, writer: FactWriter) -> None:
        self.campaign, self.upstream, self.guard, self.writer = campaign, upstream, guard, writer
        self.base = upstream.base.rstrip("/").encode()
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(connect=15.0, read=self.upstream.timeout_s, write=60.0, pool=None)
            limits = httpx.Limits(max_connections=512, max_keepalive_connections=64, keepalive_expiry=30.0)
            self._client = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)
        return self._client

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, t0 = time.time(), time.perf_counter()
        if scope["path"] == HEALTH_PATH:
            await _answer(send, 200, orjson.dumps({"status": "ok", "campaign": self.campaign}))
            return
        attempt, path = split_attempt(scope.get("raw_path") or scope["path"].encode())
        route = route_of(scope["method"], path)
        body = await _read_body(receive)
        shape = shape_request(route, body) if route != "other" else RequestShape(None, False, body)
        fact: dict[str, Any] = {"campaign": self.campaign, "attempt_id": attempt, "method": scope["method"],
                                "path": path.decode("latin-1"), "route": route, "stream": shape.stream,
                                "model": shape.model, "status": 0, "started_at": round(started, 3)}
        refusal = self.guard.refusal(route)
        if refusal is not None:
            await _answer(send, refusal.status, refusal.body)
            fact.update(status=refusal.status, refused=refusal.reason, error_code=_code_of(refusal.body),
                        error_type=_code_of(refusal.body), duration_ms=_ms(t0))
            self.writer.put(ApiRequestMetered(**fact))
            return
        metered, open_answer = Metered(), False
        try:
            metered, open_answer = await self._forward(scope, send, path, shape, route, fact, t0)
        finally:
            self._finish(fact, metered, route, t0)
        if open_answer:  # the answer ends only once its fact is queued: a caller that flushes then sees it
            with contextlib.suppress(OSError):  # the client went away: its fact is queued all the same
                await send({"type": "http.response.body", "body": b""})

    async def _forward(self, scope: Scope, send: Send, path: bytes, shape: RequestShape, route: str,
                       fact: dict[str, Any], t0: float) -> tuple[Metered, bool]:
        """Pass the request on and its answer back, all but the answer's end; (metered, answer still open)."""
        query = scope.get("query_string") or b""
        url = (self.base + path + (b"?" + query if query else b"")).decode("latin-1")
        try:
            request = self.client().build_request(scope["method"], url, headers=_request_headers(scope, route),
                                                  content=shape.body)
            response = await self.client().send(request, stream=True)
        except httpx.HTTPError as exc:
            fact.update(status=502, error_type="upstream_unreachable", error_code=type(exc).__name__)
            await _answer(send, 502, error_body(f"track proxy: the API at {self.upstream.base} could not be reached "
                                                f"({type(exc).__name__})", "upstream_unreachable",
                                                "api_connection_error"))
            return Metered(), False
        fact.update(status=response.status_code, latency_ms=_ms(t0))
        try:
            return await _pass_on(response, send, route, shape), True
        except OSError:  # the client went away mid-answer: what was read so far is still metered
            return Metered(), False
        finally:
            await response.aclose()

    def _finish(self, fact: dict[str, Any], metered: Metered, route: str, t0: float) -> None:
        """Record the fact; stop the campaign on a fatal answer."""
        fact["model"] = metered.model or fact["model"]
        usage = metered.usage
        if usage is not None:
            fact.update(input_tokens=usage.input_tokens, cached_input_tokens=usage.cached_input_tokens,
                        output_tokens=usage.output_tokens, reasoning_tokens=usage.reasoning_tokens,
                        usage_source=metered.source)
        fact.update(error_type=fact.get("error_type") or metered.error_type,
                    error_code=fact.get("error_code") or metered.error_code, duration_ms=_ms(t0))
        self.guard.done(route, fact["model"], metered)
        self.writer.put(ApiRequestMetered(**fact))
        category = metered.fatal_category(fact["status"]) if fact["status"] >= 400 or metered.error_code else None
        if category is not None:
            self.guard.stop(category, f"attempt {fact['attempt_id'] or '-'}: {fact['method']} {fact['path']} "
                                      f"answered {fact['status']} {metered.error_code or metered.error_type}")


async def _pass_on(response: httpx.Response, send: Send, route: str, shape: RequestShape) -> Metered:
    """Stream the upstream's answer back, metering it on the way; the caller sends its end."""
    sse = response.headers.get("content-type", "").startswith("text/event-stream")
    drop = sse and shape.injected
    headers = [(k, v) for k, v in response.headers.raw
               if k.lower() not in _HOP_BACK and not (drop and k.lower() == b"content-length")]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    if route == "other":
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        return Metered()
    if sse:
        return await _pass_stream(response, send, drop)
    return await _pass_body(response, send)


async def _pass_stream(response: httpx.Response, send: Send, drop: bool) -> Metered:
    meter = SseMeter(drop_usage_chunk=drop, source="stream_injected" if drop else "stream")
    async for chunk in response.aiter_raw():
        passed = meter.feed(chunk)
        if passed:
            await send({"type": "http.response.body", "body": passed, "more_body": True})
    await send({"type": "http.response.body", "body": meter.close(), "more_body": True})
    return meter.found


async def _pass_body(response: httpx.Response, send: Send) -> Metered:
    kept = bytearray()
    async for chunk in response.aiter_raw():
        if len(kept) < MAX_BODY_BYTES:
            kept += chunk
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    body = bytes(kept)
    if response.headers.get("content-encoding", "") in ("gzip", "deflate"):
        try:
            body = zlib.decompress(body, 47)  # 47: gzip or zlib header, detected
        except zlib.error:
            return Metered()
    return read_body(body)


def _request_headers(scope: Scope, route: str) -> list[tuple[bytes, bytes]]:
    """The client's headers minus hop-by-hop ones; metered answers come uncompressed (to be read on the way)."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
    accept = [v for k, v in scope["headers"] if k.lower() == b"accept-encoding"]
    if route != "other":
        headers.append((b"accept-encoding", b"identity"))
    elif accept:
        headers.append((b"accept-encoding", accept[0]))
    return headers


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _answer(send: Send, status: int, body: bytes) -> None:
    """The proxy's own answer: JSON, and `x-should-retry: false` (the OpenAI SDKs honour it)."""
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-should-retry", b"false")]})
    await send({"type": "http.response.body", "body": body})


def _code_of(body: bytes) -> str | None:
    code = orjson.loads(body)["error"]["code"]
    return code if isinstance(code, str) else None


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
