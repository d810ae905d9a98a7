"""Remove secrets from text before it leaves a reader (evidence, logs, artifacts).

Redaction happens at the boundary: every excerpt the tracker keeps passes through `redact`, so no API
key, bearer token or AWS credential reaches an event, a log line or the terminal. At most a 3-char
non-secret prefix (`sk-`) is kept so a reader can still see *what kind* of secret was there.

It runs on every line of tens-of-MB logs, so it is built for speed: a cheap substring gate first,
then case-sensitive compiled regexes run over an ASCII-lowercased copy (same length, so match spans
map straight back onto the original); case-insensitive regexes are several times slower in CPython.
"""

from __future__ import annotations

import re
import string
from typing import Any

MARK = "[REDACTED]"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

# OpenAI keys: sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...; also the API's own masked echo
# ("sk-proj-t3r0ki9u****...ONFM"), whose visible part is still a piece of the key.
_OPENAI_KEY = re.compile(r"(?<![a-z0-9])sk-(?:[a-z0-9_\-*]{16,}|[a-z0-9_\-]*\*{2,}[a-z0-9_\-*]*)")
"""A key, or the API's short masked echo of one (`sk-proj-****B7cA`, `sk-proj***7cA`)."""
_BEARER = re.compile(r"(?<![a-z])bearer\s+([a-z0-9\-._~+/]+=*)")
_AWS_KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
# name = value / "name": "value" assignments whose value is a secret, whatever the value looks like
# (covers aws_secret_access_key, OPENAI_API_KEY=..., "api_key": "...").
_ASSIGNED_SECRET = re.compile(
    r"(?:api[_-]?key|secret[_-]?access[_-]?key|secret[_-]?key|session[_-]?token|access[_-]?token"
    r"|auth[_-]?token|client[_-]?secret|password|passwd)"
    r"[\"']?\s*[:=]\s*[\"']?([^\s\"',;}\]]+)"
)

_ALREADY = (MARK.lower(), "sk-" + MARK.lower())
_TRIGGERS = ("sk-", "bearer", "akia", "asia", "key", "token", "secret", "passw")


def redact(text: str) -> str:
    """Return `text` with every recognised secret replaced by a `[REDACTED]` marker."""
    low = text.lower()
    if not any(t in low for t in _TRIGGERS):
        return text
    if len(low) != len(text):  # a few non-ASCII letters change length when lowered
        low = text.translate(_ASCII_LOWER)
    spans = _secret_spans(text, low)
    if not spans:
        return text
    return _splice(text, spans)


def _secret_spans(text: str, low: str) -> list[tuple[int, int, str]]:
    """(start, end, replacement) for every secret found; more specific patterns first."""
    spans: list[tuple[int, int, str]] = []
    for find in _SPAN_FINDERS:
        spans += find(text, low)
    return spans


def _openai_keys(text: str, low: str) -> list[tuple[int, int, str]]:
    """OpenAI keys and their masked echoes; the `sk-` prefix stays visible."""
    if "sk-" not in low:
        return []
    return [(m.start(), m.end(), "sk-" + MARK) for m in _OPENAI_KEY.finditer(low)]


def _bearer_tokens(text: str, low: str) -> list[tuple[int, int, str]]:
    """The token after `Bearer` (the word itself stays)."""
    if "bearer" not in low:
        return []
    return [(m.start(1), m.end(1), MARK) for m in _BEARER.finditer(low)]


def _aws_key_ids(text: str, low: str) -> list[tuple[int, int, str]]:
    """AWS access key ids; upper-case by definition, so matched on the original text."""
    if "AKIA" not in text and "ASIA" not in text:
        return []
    return [(m.start(), m.end(), MARK) for m in _AWS_KEY_ID.finditer(text)]


def _assigned_secrets(text: str, low: str) -> list[tuple[int, int, str]]:
    """The value of a `name = value` / `"name": "value"` secret assignment not already redacted."""
    if "=" not in low and ":" not in low:
        return []
    return [
        (m.start(1), m.end(1), MARK)
        for m in _ASSIGNED_SECRET.finditer(low)
        if not low.startswith(_ALREADY, m.start(1))
    ]


_SPAN_FINDERS = (_openai_keys, _bearer_tokens, _aws_key_ids, _assigned_secrets)
"""Each finder gates on a cheap substring test before its regex; this order is `_splice`'s precedence."""


def _splice(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Replace spans in text; overlapping spans merge and keep the first pattern's marker."""
    spans.sort(key=lambda s: s[0])
    out: list[str] = []
    pos = 0
    for start, end, repl in spans:
        if start < pos:  # overlaps the previous replacement: extend it
            pos = max(pos, end)
            continue
        out.append(text[pos:start])
        out.append(repl)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact_value(value: Any) -> Any:
    """`redact` applied to every string inside a JSON-like value (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value
