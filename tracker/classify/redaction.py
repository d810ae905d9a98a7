"""Remove secrets from text before it leaves a reader or the runner (events, excerpts, artifacts, terminal).

Redaction happens at every boundary: excerpts, evidence lines, event payloads (`redact_value`, the last
boundary before the log), artifact copies and the runner's log lines all pass through here. The shapes
are a catalogue kept as data (`tracker/data/secret_rules.toml`, one test per rule), loaded once and
compiled. A short prefix that only names the kind stays visible (`sk-[REDACTED]`, `hf_[REDACTED]`), so a
reader still sees what was there; everything else becomes `[REDACTED]`.

Why a catalogue of our own rather than `detect-secrets`: measured on this machine, detect-secrets'
`scan_line` takes ~3,400 µs a line (it runs every plugin and an entropy check on each line) and 0.4 s to
import; this module takes ~1-5 µs a line and a few ms to load. Import reads tens of MB of logs, so the
library would cost the import-speed target many times over; its shapes are mirrored in the catalogue.

Robustness, because secrets arrive in awkward forms:
- JSON-escaped text (a trajectory line, an event's JSON): when the text holds a backslash, it is matched in
  decoded form (`\\n`, `\\"`, `\\u002d` …) and the spans are mapped back onto the original, so
  `\\nsk-…` and `sk\\u002dproj-…` are found; boundaries also accept a `\\n`/`\\t` escape in front.
- A token cut by a line wrap: when a token-shaped secret runs to the end of a line, a next line that starts
  with a key-shaped run holding a digit (not a log timestamp) is taken as its tail (`LineRedactor` does the
  same across separately read lines).
- PEM private keys span lines: the body up to `-----END … PRIVATE KEY` (or to the end, if cut) goes.

Speed: a cheap substring gate (each rule's literal triggers) first; regexes run over an ASCII-lowercased
copy (same length, so spans map straight back); case-insensitive regexes are several times slower in CPython.
"""

from __future__ import annotations

import re
import string
import tomllib
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MARK = "[REDACTED]"
RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "secret_rules.toml"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_BOUNDARY = re.compile(r"\{B(X?):([^{}]+)\}")
"""`{B:lit}` placed after a literal: the literal starts a word, or follows a JSON escape (`\\n`, `\\t`, `\\r`)."""
_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WRAP_TAIL = re.compile(r"(?:[+\- ]?(?:#|//) ?|[+\- ])?(?P<tail>(?=[A-Za-z0-9_\-+/=.]*\d)(?!\d{4}-\d\d-\d\d)"
                        r"[A-Za-z0-9_\-+/=.]+)(?=[\s\"',;}\]\\]|$)")
"""The remainder of a wrapped token at the start of the next line (after a diff or comment marker, as in a
patch): key characters, at least one digit, not a log line's timestamp."""
_PEM_END = re.compile(r"-----end [a-z0-9 ]{0,40}private key")
_ALREADY = MARK.lower()[:-1]  # value charsets stop at "]"


@dataclass(frozen=True)
class Rule:
    """One secret shape of the catalogue, compiled."""

    id: str
    description: str
    regex: re.Pattern[str]
    triggers: tuple[str, ...]
    exact: bool
    wraps: bool
    example: str


def load_rules(path: Path = RULES_FILE) -> tuple[Rule, ...]:
    """The catalogue, compiled (patterns are written for a lowercased text unless `case = "exact"`)."""
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    rules = []
    for raw in doc["rule"]:
        pattern = _BOUNDARY.sub(_boundary, raw["pattern"])
        flags = re.DOTALL if raw["id"] == "private_key" else 0
        rules.append(Rule(raw["id"], raw["description"], re.compile(pattern, flags), tuple(raw["triggers"]),
                          raw.get("case") == "exact", bool(raw.get("wraps", False)), raw["example"]))
    return tuple(rules)


def _boundary(m: re.Match[str]) -> str:
    word = "A-Za-z0-9_" if m.group(1) else "a-z0-9_"
    return rf"(?:(?<![{word}]{m.group(2)})|(?<=\\[ntr]{m.group(2)}))"


def _compile_gate(triggers: set[str]) -> Callable[[str], bool]:
    """One `t1 in low or t2 in low or ...` expression over the fewest triggers (one that holds another is
    dropped): about twice as fast as `any()` over a generator or a regex alternation, on every line."""
    needed = sorted(t for t in triggers if not any(o != t and o in t for o in triggers))
    gate: Callable[[str], bool] = eval("lambda low: " + " or ".join(f"{t!r} in low" for t in needed))  # noqa: S307
    return gate


RULES = load_rules()
_gate = _compile_gate({t for rule in RULES for t in rule.triggers})
"""The cheap pre-filter: does any rule's trigger occur in the lowercased text at all?"""
_RULE_GATES = tuple((rule, _compile_gate(set(rule.triggers))) for rule in RULES)
_SHORTEST = 8
"""No text shorter than this holds a secret we could tell from ordinary text (`pass=abc` is 8)."""


@dataclass
class _Views:
    """The text as matched: decoded (JSON escapes) when it holds any, lowercased, with the way back."""

    text: str
    view: str
    low: str
    dec_breaks: list[int] | None = None
    orig_breaks: list[int] | None = None

    def original(self, pos: int) -> int:
        """A position in the decoded view -> the same place in the original text."""
        if self.dec_breaks is None or self.orig_breaks is None:
            return pos
        i = bisect_right(self.dec_breaks, pos) - 1
        return self.orig_breaks[i] + (pos - self.dec_breaks[i])


def _views(text: str, low: str) -> _Views:
    view, dec_breaks, orig_breaks = text, None, None
    if "\\" in text:
        view, dec_breaks, orig_breaks = _decode_escapes(text)
    if view is not text:
        low = view.lower()
    if len(low) != len(view):  # a few non-ASCII letters change length when lowered
        low = view.translate(_ASCII_LOWER)
    return _Views(text, view, low, dec_breaks, orig_breaks)


def _decode_escapes(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """JSON escapes decoded, with (decoded, original) positions just after each escape."""
    parts: list[str] = []
    dec_breaks, orig_breaks = [0], [0]
    pos = length = 0
    for m in _ESCAPE.finditer(text):
        parts.append(text[pos:m.start()])
        length += m.start() - pos + 1
        parts.append(chr(int(m.group(1), 16)) if m.group(1) else _SIMPLE_ESCAPES[m.group(2)])
        pos = m.end()
        dec_breaks.append(length)
        orig_breaks.append(pos)
    if pos == 0:
        return text, None, None
    parts.append(text[pos:])
    return "".join(parts), dec_breaks, orig_breaks


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    replacement: str
    wraps: bool = False
    open_end: bool = False
    """The match ran to the end of the text without its closing line (a PEM block cut short)."""


_CACHED_LENGTH = 256
"""Texts up to this long go through a cache: field values (categories, rule ids, file names, statuses) come
back in every payload, and a cache hit costs a hash the string already holds."""


def redact(text: str) -> str:
    """Return `text` with every recognised secret replaced by a `[REDACTED]` marker."""
    size = len(text)
    if size < _SHORTEST:
        return text
    if size <= _CACHED_LENGTH and type(text) is str:
        return _redact_short(text)
    return _redact(text)


def _redact(text: str) -> str:
    low = text.lower()
    if not _gate(low) and "\\u" not in text:
        return text
    spans = _find(_views(text, low))
    return _splice(text, spans) if spans else text


_redact_short = lru_cache(maxsize=16_384)(_redact)


def _find(v: _Views) -> list[_Span]:
    """Every secret's span in original coordinates, catalogue order (earlier rules win overlaps)."""
    spans: list[_Span] = []
    for rule, triggered in _RULE_GATES:
        if not triggered(v.low):
            continue
        view = v.view if rule.exact else v.low
        for m in rule.regex.finditer(view):
            span = _span(v, rule, m)
            if span is not None:
                spans.append(span)
                spans += _wrapped_tail(v, rule, m)
    return spans


def _span(v: _Views, rule: Rule, m: re.Match[str]) -> _Span | None:
    """The part of a match that goes, and what stands in its place (None: already redacted)."""
    groups = m.re.groupindex
    which = "secret" if "secret" in groups else 0
    start, end = m.span(which)
    open_end = rule.id == "private_key" and end == len(v.view)
    if open_end:  # a block cut short: the body runs to the end, but the line ending stays
        end = max(start, len(v.view.rstrip("\r\n")))
    elif start == end or _ALREADY in v.low[start:end]:
        return None
    keep = ""
    if which == 0 and "keep" in groups:
        keep = v.text[v.original(m.start("keep")):v.original(m.end("keep"))]
    return _Span(v.original(start), v.original(end), keep + MARK, rule.wraps, open_end)


def _wrapped_tail(v: _Views, rule: Rule, m: re.Match[str]) -> list[_Span]:
    """The next lines' starts while a token-shaped secret runs to the end of its line (a wrapped key)."""
    spans: list[_Span] = []
    end = m.end()
    while rule.wraps and v.view[end:end + 1] in ("\n", "\r"):
        tail = _WRAP_TAIL.match(v.view, end + (2 if v.view.startswith("\r\n", end) else 1))
        if tail is None:
            break
        spans.append(_Span(v.original(tail.start("tail")), v.original(tail.end()), MARK, True))
        end = tail.end()
    return spans


def _splice(text: str, spans: list[_Span]) -> str:
    """Replace spans in text; overlapping spans merge and keep the first pattern's marker."""
    spans.sort(key=lambda s: s.start)
    out: list[str] = []
    pos = 0
    for span in spans:
        if span.start < pos:  # overlaps the previous replacement: extend it
            pos = max(pos, span.end)
            continue
        out.append(text[pos:span.start])
        out.append(span.replacement)
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


class LineRedactor:
    """`redact` for a text read line by line (a log copied, a process's output): a PEM block's body lines
    and the wrapped tail of a key that ended its line are caught on the following lines too."""

    def __init__(self) -> None:
        self._in_pem = False
        self._wrap = False

    def __call__(self, line: str) -> str:
        head, rest = self._carried(line)
        if not rest:
            return head
        low = rest.lower()
        if not _gate(low) and "\\u" not in rest:
            return head + rest
        v = _views(rest, low)
        spans = _find(v)
        if not spans:
            return head + rest
        content_end = len(rest.rstrip("\r\n"))
        self._in_pem = any(s.open_end for s in spans)
        self._wrap = any(s.wraps and s.end == content_end for s in spans)
        return head + _splice(rest, spans)

    def _carried(self, line: str) -> tuple[str, str]:
        """(redacted start carried over from the previous line, the rest still to look at)."""
        if self._in_pem:
            end = _PEM_END.search(line.lower())
            if end is None:
                return MARK + line[len(line.rstrip("\r\n")):], ""
            self._in_pem = False
            return MARK, line[end.start():]
        if self._wrap:
            self._wrap = False
            tail = _WRAP_TAIL.match(line)
            if tail is not None:
                self._wrap = tail.end() == len(line.rstrip("\r\n"))
                return line[:tail.start("tail")] + MARK, line[tail.end():]
        return "", line


_SECRET_NAMES = frozenset({
    "api_key", "apikey", "api-key", "password", "passwd", "secret", "client_secret", "secret_key",
    "access_token", "auth_token", "refresh_token", "private_key", "aws_secret_access_key", "authorization",
})
"""Mapping keys (lowercased) whose string value is a secret whatever it looks like."""
_ENV_SECRET_NAME = re.compile(r"(?:[A-Z0-9]+_)*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PAT|CREDENTIALS?)")
_SECRET_FLAG = re.compile(r"--?(?:[a-z0-9]+[\-_])*(?:api[\-_]?key|key|token|secret|password|passwd)")


@lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Does a variable, field or header name say its value is a secret (`HF_TOKEN`, `api_key`)? (Cached: the
    same few field names come back in every payload.)"""
    return name.lower() in _SECRET_NAMES or (name[-1:].isupper() and _ENV_SECRET_NAME.fullmatch(name) is not None)


_PLAIN = frozenset({int, float, bool, type(None)})
"""Values with nothing to redact: returned as they are without walking (most of a payload)."""


def redact_value(value: Any) -> Any:
    """`redact` applied to every string inside a JSON-like value (dicts, lists, tuples); a string under a
    key that names a secret, or after a secret flag in an argument list (`--api-key X`), goes whole."""
    kind = type(value)
    if kind is str:
        return redact(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return _redact_mapping(value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return _redact_mapping(value)
    if isinstance(value, list | tuple):
        return _redact_items(value)
    return value


def _redact_mapping(value: dict[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, item in value.items():
        kind = type(item)
        if kind in _PLAIN:
            out[key] = item
        elif isinstance(item, str) and item and isinstance(key, str) and secret_name(key):
            out[key] = MARK
        else:
            out[key] = redact(item) if kind is str else redact_value(item)
    return out


def _redact_items(items: list[Any] | tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    after_flag = False
    for item in items:
        if after_flag and isinstance(item, str) and item and not item.startswith("-"):
            out.append(MARK)
        else:
            out.append(redact_value(item))
        after_flag = isinstance(item, str) and item[:1] == "-" and _SECRET_FLAG.fullmatch(item.lower()) is not None
    return out
