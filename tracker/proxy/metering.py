"""What an OpenAI API answer says it used, and why it failed: from a JSON body or from an SSE stream.

Two traps known from other proxies are avoided here. A streamed call's usage is in its final event
(`response.completed` for Responses, the last chunk for Chat Completions), so a stream is metered from
that event, never priced at $0. Reasoning tokens are part of output tokens (OpenAI's
`output_tokens_details.reasoning_tokens`): they are kept for the record and priced once, inside output.
A Chat Completions stream only carries usage when the client asks (`stream_options.include_usage`): the
proxy asks for it, and drops the extra usage-only chunk when the client had not asked (`SseMeter`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import orjson

MAX_BODY_BYTES = 32 * 1024 * 1024
"""A JSON answer is kept for metering up to this size (it is passed on whole, whatever its size)."""

FATAL_CODES = {"insufficient_quota": "quota_exceeded", "invalid_api_key": "invalid_api_key"}
"""Error codes after which every further request fails the same way: the campaign stops (category named)."""


@dataclass
class Usage:
    """Tokens the API counted for one request, the OpenAI way (cached inside input, reasoning inside output)."""

    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass
class Metered:
    """What one answer said: its model, usage and error (any of them may be unknown)."""

    model: str | None = None
    usage: Usage | None = None
    error_type: str | None = None
    error_code: str | None = None
    source: str | None = None

    def fatal_category(self, status: int) -> str | None:
        """`quota_exceeded` or `invalid_api_key` when the answer means every further request fails."""
        for value in (self.error_code, self.error_type):
            if value in FATAL_CODES:
                return FATAL_CODES[value]
        return "invalid_api_key" if status == 401 else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _details(usage: dict[str, Any], key: str, field: str) -> int | None:
    details = usage.get(key)
    return _int(details.get(field)) if isinstance(details, dict) else None


def usage_of(usage: Any) -> Usage | None:
    """A Responses (`input_tokens`) or Chat Completions (`prompt_tokens`) usage object, read the same way."""
    if not isinstance(usage, dict):
        return None
    if "input_tokens" in usage or "output_tokens" in usage:
        return Usage(_int(usage.get("input_tokens")), _details(usage, "input_tokens_details", "cached_tokens"),
                     _int(usage.get("output_tokens")), _details(usage, "output_tokens_details", "reasoning_tokens"))
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return Usage(_int(usage.get("prompt_tokens")), _details(usage, "prompt_tokens_details", "cached_tokens"),
                     _int(usage.get("completion_tokens")),
                     _details(usage, "completion_tokens_details", "reasoning_tokens"))
    return None


def _error_into(found: Metered, error: Any) -> None:
    if isinstance(error, dict):
        kind, code = error.get("type"), error.get("code")
        found.error_type = kind if isinstance(kind, str) else found.error_type
        found.error_code = code if isinstance(code, str) else found.error_code


def read_document(doc: Any, found: Metered, source: str) -> None:
    """Fold one JSON document (a whole answer, or one streamed event) into `found`."""
    if not isinstance(doc, dict):
        return
    response = doc.get("response")  # Responses stream events wrap the response object
    inner = response if isinstance(response, dict) else doc
    model = inner.get("model")
    if isinstance(model, str) and model:
        found.model = model
    usage = usage_of(inner.get("usage"))
    if usage is not None:
        found.usage, found.source = usage, source
    _error_into(found, doc.get("error"))
    if inner is not doc:
        _error_into(found, inner.get("error"))
    if doc.get("type") == "error":  # a Responses stream's error event carries code and message at the top
        found.error_type = found.error_type or "error"
        code = doc.get("code")
        found.error_code = code if isinstance(code, str) else found.error_code


def read_body(body: bytes) -> Metered:
    """The model, usage and error of a whole JSON answer (nothing when it is no JSON)."""
    found = Metered()
    with contextlib.suppress(orjson.JSONDecodeError):
        read_document(orjson.loads(body), found, "body")
    return found


def _is_usage_only_chunk(doc: Any) -> bool:
    """The extra last chunk that `include_usage` adds to a Chat Completions stream: no choices, a usage."""
    return isinstance(doc, dict) and doc.get("choices") == [] and isinstance(doc.get("usage"), dict)


class SseMeter:
    """Reads an SSE stream as it passes: usage from the final event, errors from any event.

    `feed` returns the bytes to pass on. Unless `drop_usage_chunk`, that is the chunk itself, at once
    (parsing goes on beside it); with it, whole events only, minus the usage-only chunk the client did
    not ask for.
    """

    def __init__(self, drop_usage_chunk: bool = False, source: str = "stream") -> None:
        self.found = Metered()
        self.drop = drop_usage_chunk
        self.source = source
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        passed: list[bytes] = []
        while True:
            end, sep = _event_end(self._buffer)
            if end < 0:
                break
            event, self._buffer = self._buffer[:end + sep], self._buffer[end + sep:]
            if self._read_event(event[:end]) or not self.drop:
                passed.append(event)
        if not self.drop:
            return chunk
        return b"".join(passed)

    def close(self) -> bytes:
        """The end of the stream: a last event without its blank line is read (and passed on) too."""
        rest, self._buffer = self._buffer, b""
        if rest.strip():
            keep = self._read_event(rest)
            return rest if (keep and self.drop) else b""
        return b""

    def _read_event(self, event: bytes) -> bool:
        """Read one event's data; False when it is the usage-only chunk to drop."""
        data = b"\n".join(line[5:].lstrip(b" ") for line in event.replace(b"\r\n", b"\n").split(b"\n")
                          if line.startswith(b"data:"))
        if not data or data == b"[DONE]" or (b'"usage"' not in data and b'"error"' not in data
                                             and b'"model"' not in data):
            return True
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        read_document(doc, self.found, self.source)
        return not (self.drop and _is_usage_only_chunk(doc))


def _event_end(buffer: bytes) -> tuple[int, int]:
    """Where the first complete SSE event ends, and the length of the blank line after it (-1: none yet)."""
    candidates = [(buffer.find(sep), len(sep)) for sep in (b"\n\n", b"\r\n\r\n")]
    found = [c for c in candidates if c[0] >= 0]
    return min(found) if found else (-1, 0)


@dataclass
class RequestShape:
    """What the proxy needs from a request body: the model asked for, streaming, and usage asked for."""

    model: str | None
    stream: bool
    body: bytes
    injected: bool = False


def shape_request(route: str, body: bytes) -> RequestShape:
    """Read the request; for a Chat Completions stream without `include_usage`, ask for usage (`injected`)."""
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        return RequestShape(None, False, body)
    model = doc.get("model") if isinstance(doc.get("model"), str) else None
    stream = doc.get("stream") is True
    options = doc.get("stream_options")
    if route == "chat" and stream and not (isinstance(options, dict) and options.get("include_usage") is True):
        doc["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return RequestShape(model, stream, orjson.dumps(doc), injected=True)
    return RequestShape(model, stream, body)
