"""A local HTTP server that answers like the OpenAI API (real status codes and error bodies).

Tests point the real `openai` SDK at it with OPENAI_BASE_URL. A scenario maps a route
(`models`, `responses`, `chat`) to a list of answers used in order (the last one repeats): an answer is
`"ok"`, one of the error names below, or `"hang"` (never answer within the client's timeout).
A request with `"stream": true` is answered as the API streams: Server-Sent Events, chunked, with the
usage in the final event (`response.completed`; for Chat Completions a last chunk without choices, only
when `stream_options.include_usage` asks for it), then `[DONE]` for Chat Completions. Errors come as the
API sends them before a stream starts: a JSON body with the real status code.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "invalid_api_key": (401, {"error": {
        "message": "Incorrect API key provided: sk-test-****************************wxyz. You can find your API key "
                   "at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}),
    "insufficient_quota": (429, {"error": {
        "message": "You exceeded your current quota, please check your plan and billing details. For more "
                   "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}),
    "rate_limit_exceeded": (429, {"error": {
        "message": "Rate limit reached for gpt-5 in organization org-test on tokens per min (TPM): Limit 30000, "
                   "Used 29000, Requested 3000. Please try again in 2ms.",
        "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}),
    "server_error": (500, {"error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error", "param": None, "code": None}}),
    "model_not_found": (404, {"error": {
        "message": "The model `gpt-5` does not exist or you do not have access to it.",
        "type": "invalid_request_error", "param": None, "code": "model_not_found"}}),
}

MODELS = {"object": "list", "data": [
    {"id": name, "object": "model", "created": 1754000000, "owned_by": "system"}
    for name in ("gpt-5", "gpt-5-2025-08-07", "gpt-5-mini", "gpt-4o")
]}

RESPONSE = {
    "id": "resp_test", "object": "response", "created_at": 1754000000, "status": "completed",
    "model": "gpt-5-2025-08-07",
    "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "OK", "annotations": []}]}],
    "usage": {"input_tokens": 11, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 16},
    "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
}


USAGE = {"input": 11, "cached": 0, "output": 5, "reasoning": 0}
"""What every answer says it used, unless a test gives its own (cached inside input, reasoning inside output)."""


def responses_usage(u: dict[str, int]) -> dict[str, Any]:
    return {"input_tokens": u["input"], "input_tokens_details": {"cached_tokens": u["cached"]},
            "output_tokens": u["output"], "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
            "total_tokens": u["input"] + u["output"]}


def chat_usage(u: dict[str, int]) -> dict[str, Any]:
    return {"prompt_tokens": u["input"], "completion_tokens": u["output"], "total_tokens": u["input"] + u["output"],
            "prompt_tokens_details": {"cached_tokens": u["cached"], "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": u["reasoning"], "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def chat_completion(u: dict[str, int]) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 1754000000, "model": "gpt-5-2025-08-07",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK", "refusal": None,
                                                 "annotations": []}, "finish_reason": "stop"}],
            "usage": chat_usage(u), "service_tier": "default", "system_fingerprint": None}


def responses_stream(u: dict[str, int]) -> list[tuple[str | None, dict[str, Any]]]:
    """The events of a streamed Responses call, as the API names them."""
    done = {**RESPONSE, "usage": responses_usage(u)}
    running = {**RESPONSE, "status": "in_progress", "output": [], "usage": None}
    item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": running},
        {"type": "response.in_progress", "response": running},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "part": part},
        {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "delta": "OK", "logprobs": []},
        {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "text": "OK", "logprobs": []},
        {"type": "response.output_item.done", "output_index": 0, "item": done["output"][0]},
        {"type": "response.completed", "response": done},
    ]
    return [(e["type"], {**e, "sequence_number": n}) for n, e in enumerate(events)]


def chat_stream(u: dict[str, int], include_usage: bool) -> list[tuple[str | None, dict[str, Any]]]:
    """The chunks of a streamed Chat Completions call (`usage: null` on each when usage was asked for)."""
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1754000000,
            "model": "gpt-5-2025-08-07", "service_tier": "default", "system_fingerprint": None}
    extra = {"usage": None} if include_usage else {}
    deltas = [{"role": "assistant", "content": "", "refusal": None}, {"content": "OK"}, {}]
    chunks = [{**base, **extra, "choices": [{"index": 0, "delta": d, "finish_reason": "stop" if not d else None}]}
              for d in deltas]
    if include_usage:
        chunks.append({**base, "choices": [], "usage": chat_usage(u)})
    return [(None, c) for c in chunks]


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connecting at once (the default 5 resets some)


class FakeOpenAI:
    """Run with `with FakeOpenAI({"responses": ["server_error", "ok"]}) as api: api.base_url`."""

    def __init__(self, scenario: dict[str, list[str]] | None = None, hang_s: float = 5.0,
                 usage: dict[str, int] | None = None) -> None:
        self.scenario = {k: list(v) for k, v in (scenario or {}).items()}
        self.hang_s = hang_s
        self.usage = {**USAGE, **(usage or {})}
        self.hits: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        """Every request body received, parsed (a test sees what the proxy forwarded)."""
        self.auth_headers: list[str] = []
        self.log: list[tuple[str, str, float, float]] = []
        """(route, answer, received at, answered at) per request, on `time.monotonic()`."""
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, route: str) -> str:
        with self._lock:
            self.hits[route] += 1
            answers = self.scenario.get(route) or ["ok"]
            return answers.pop(0) if len(answers) > 1 else answers[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the API

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # events go out at once

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _answer(self, route: str, ok_body: dict[str, Any]) -> None:
                fake.auth_headers.append(self.headers.get("Authorization", ""))
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}") if length else {}
                with fake._lock:
                    fake.bodies.append(request)
                received = time.monotonic()
                answer = fake._next(route)
                try:
                    self._give(route, answer, request, ok_body)
                finally:
                    with fake._lock:
                        fake.log.append((route, answer, received, time.monotonic()))

            def _give(self, route: str, answer: str, request: dict[str, Any], ok_body: dict[str, Any]) -> None:
                if answer == "hang":
                    time.sleep(fake.hang_s)
                    return
                if answer == "ok" and request.get("stream") is True:
                    self._stream(route, request)
                    return
                status, body = (200, ok_body) if answer == "ok" else ERRORS[answer]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, route: str, request: dict[str, Any]) -> None:
                include = bool((request.get("stream_options") or {}).get("include_usage"))
                events = (responses_stream(fake.usage) if route == "responses"
                          else chat_stream(fake.usage, include))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for name, data in events:
                    head = f"event: {name}\n" if name else ""
                    self._chunk(f"{head}data: {json.dumps(data)}\n\n".encode())
                if route == "chat":
                    self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    self._answer("models", MODELS)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/responses"):
                    self._answer("responses", {**RESPONSE, "usage": responses_usage(fake.usage)})
                elif self.path.rstrip("/").endswith("/chat/completions"):
                    self._answer("chat", chat_completion(fake.usage))
                else:
                    self.send_error(404)

        return Handler
