"""A local HTTP server that answers like the OpenAI API (real status codes and error bodies).

Tests point the real `openai` SDK at it with OPENAI_BASE_URL. A scenario maps a route
(`models`, `responses`) to a list of answers used in order (the last one repeats): an answer is
`"ok"`, one of the error names below, or `"hang"` (never answer within the client's timeout).
"""

from __future__ import annotations

import json
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


class FakeOpenAI:
    """Run with `with FakeOpenAI({"responses": ["server_error", "ok"]}) as api: api.base_url`."""

    def __init__(self, scenario: dict[str, list[str]] | None = None, hang_s: float = 5.0) -> None:
        self.scenario = {k: list(v) for k, v in (scenario or {}).items()}
        self.hang_s = hang_s
        self.hits: Counter[str] = Counter()
        self.auth_headers: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _answer(self, route: str, ok_body: dict[str, Any]) -> None:
                fake.auth_headers.append(self.headers.get("Authorization", ""))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                answer = fake._next(route)
                if answer == "hang":
                    time.sleep(fake.hang_s)
                    return
                status, body = (200, ok_body) if answer == "ok" else ERRORS[answer]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    self._answer("models", MODELS)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/responses"):
                    self._answer("responses", RESPONSE)
                else:
                    self.send_error(404)

        return Handler
