"""Stream TRAE's `trajectory.json` for token usage, step errors and run bounds.

Trajectories reach hundreds of MB, so a large one is never loaded: `ijson` yields parse events and
only numbers under `llm_interactions[*].response.usage` and a few top-level scalars are kept. Most
are well under a few MB (the largest of the team's 823 is 2.2 MB): those are parsed whole by orjson,
several times faster, into the same facts; one that does not parse is streamed, so a truncated file
still gives the sums read so far.
Usage inside `agent_steps[*].llm_response` repeats the same calls and is ignored (no double count).
With the OpenAI Responses API cached tokens are part of `input_tokens` and reasoning tokens part of
`output_tokens`; the sums keep that meaning. A truncated file keeps the sums read so far.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson

from tracker.isobench.common import (
    INT64,
    MAX_JSON_DEPTH,
    PARSE_CHUNK,
    EvidenceLine,
    Problem,
    looks_binary,
    open_regular,
    os_problem,
)
from tracker.isobench.textlog import EvidenceCollector

TRAJECTORY = "trajectory.json"
WHOLE_PARSE_BYTES = 8 * 1024 * 1024
"""A trajectory up to this size is parsed whole (fast); a larger one is streamed (bounded memory)."""

_USAGE_PREFIX = "llm_interactions.item.response.usage."
_USAGE_FIELDS = {
    "input_tokens": "input_tokens",
    "cache_read_input_tokens": "cached_input_tokens",
    "cache_creation_input_tokens": "cache_creation_input_tokens",
    "output_tokens": "output_tokens",
    "reasoning_tokens": "reasoning_tokens",
}
_SCALARS = ("start_time", "end_time", "max_steps", "success", "provider", "model", "execution_time")
_ERROR_PATHS = ("agent_steps.item.error", "final_result")


@dataclass(frozen=True)
class TrajectoryFacts:
    """Sums over `llm_interactions[*].response.usage` and the trajectory's own header fields."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    interactions: int = 0
    steps: int = 0
    start_time: str | None = None
    end_time: str | None = None
    max_steps: int | None = None
    success: bool | None = None
    provider: str | None = None
    model: str | None = None
    execution_time: float | None = None
    complete: bool = True
    evidence: tuple[EvidenceLine, ...] = field(default_factory=tuple)


class _Accumulator:
    """Mutable state of one streaming pass."""

    def __init__(self) -> None:
        self.sums = dict.fromkeys(_USAGE_FIELDS.values(), 0)
        self.interactions = 0
        self.steps = 0
        self.scalars: dict[str, Any] = {}
        self.errors = EvidenceCollector("trajectory", TRAJECTORY)

    def feed(self, prefix: str, event: str, value: Any) -> None:
        """Consume one ijson event."""
        if event == "start_map":
            self._count(prefix)
        elif prefix.startswith(_USAGE_PREFIX) and event == "number":
            self._add_usage(prefix[len(_USAGE_PREFIX):], value)
        elif prefix in _ERROR_PATHS and event == "string":
            self._error(prefix, value)
        elif prefix in _SCALARS and event in ("string", "number", "boolean"):
            self.scalars[prefix] = value

    def _count(self, prefix: str) -> None:
        """A new object opens: count it when it is an LLM interaction or an agent step."""
        if prefix == "llm_interactions.item":
            self.interactions += 1
        elif prefix == "agent_steps.item":
            self.steps += 1

    def _add_usage(self, key: str, value: Any) -> None:
        """Add one usage number to its sum; usage keys we do not track are ignored."""
        name = _USAGE_FIELDS.get(key)
        count = int(value)
        if name is not None and 0 <= count <= INT64[1] - self.sums[name]:  # a count past 64 bits is no count
            self.sums[name] += count

    def _error(self, prefix: str, value: str) -> None:
        """`final_result` is offered (kept only if it matches a signature); a step's non-empty error is kept."""
        if prefix == "final_result":
            self.errors.offer(None, value)
        elif value:
            self.errors.add(None, value)

    def feed_document(self, doc: Any) -> None:
        """Consume a whole parsed trajectory: the same facts `feed` gathers from the events."""
        if not isinstance(doc, dict):
            return
        for item in _objects(doc.get("llm_interactions")):
            self.interactions += 1
            self._add_usage_of(item.get("response"))
        for step in _objects(doc.get("agent_steps")):
            self.steps += 1
            self._step_error(step.get("error"))
        final = doc.get("final_result")
        if isinstance(final, str):
            self.errors.offer(None, final)
        for key in _SCALARS:
            value = doc.get(key)
            if isinstance(value, str | int | float | bool):
                self.scalars[key] = value

    def _add_usage_of(self, response: Any) -> None:
        """Add the numeric fields of a parsed `response.usage` (anything else is skipped, as the stream does)."""
        usage = response.get("usage") if isinstance(response, dict) else None
        if not isinstance(usage, dict):
            return
        for key in _USAGE_FIELDS:
            value = usage.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._add_usage(key, value)

    def _step_error(self, error: Any) -> None:
        """A parsed step's `error`, kept when it is a non-empty string."""
        if isinstance(error, str) and error:
            self.errors.add(None, error)

    def facts(self, complete: bool) -> TrajectoryFacts:
        """Freeze what was read."""
        sc = self.scalars
        return TrajectoryFacts(
            **self.sums,
            interactions=self.interactions,
            steps=self.steps,
            start_time=_opt(sc.get("start_time"), str),
            end_time=_opt(sc.get("end_time"), str),
            max_steps=_as_int(sc.get("max_steps")),
            success=_opt(sc.get("success"), bool),
            provider=_opt(sc.get("provider"), str),
            model=_opt(sc.get("model"), str),
            execution_time=_as_float(sc.get("execution_time")),
            complete=complete,
            evidence=tuple(self.errors.lines),
        )


_DEPTH_STEP = {"start_map": 1, "start_array": 1, "end_map": -1, "end_array": -1}


def _stream(fh: BinaryIO, acc: _Accumulator) -> bool:
    """Feed the parse events to `acc`; False when the document nests deeper than `MAX_JSON_DEPTH` (a
    streaming parser's paths grow with the depth: 100 KB of brackets would take gigabytes)."""
    depth = 0
    for prefix, event, value in ijson.parse(fh, buf_size=PARSE_CHUNK):
        depth += _DEPTH_STEP.get(event, 0)
        if depth > MAX_JSON_DEPTH:
            return False
        acc.feed(prefix, event, value)
    return True


def read_trajectory(run_dir: Path) -> tuple[TrajectoryFacts | None, list[Problem]]:
    """Stream the trajectory; None without a problem when the file is absent (it is optional)."""
    path = run_dir / TRAJECTORY
    acc = _Accumulator()
    try:
        with open_regular(path) as fh:
            if looks_binary(fh.read(8192)):
                return None, [Problem(TRAJECTORY, "binary", "NUL bytes where JSON text was expected")]
            fh.seek(0)
            if os.fstat(fh.fileno()).st_size <= WHOLE_PARSE_BYTES:
                try:
                    acc.feed_document(orjson.loads(fh.read()))
                    return acc.facts(complete=True), []
                except (orjson.JSONDecodeError, RecursionError):
                    acc = _Accumulator()  # stream it to tell truncated from invalid, keeping partial sums
            fh.seek(0)
            if not _stream(fh, acc):
                return acc.facts(complete=False), [Problem(TRAJECTORY, "too_deep", f"nested deeper than "
                                                           f"{MAX_JSON_DEPTH} levels; sums cover what was read")]
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        return None, [os_problem(TRAJECTORY, exc)]
    except (ijson.JSONError, ValueError) as exc:  # ValueError: undecodable bytes
        kind = "truncated" if _ends_early(path, exc) else "invalid_json"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return acc.facts(complete=False), [Problem(TRAJECTORY, kind, f"{detail}; sums cover what was read")]
    return acc.facts(complete=True), []


def _ends_early(path: Path, exc: Exception) -> bool:
    """A parse error is truncation when the document stops before its closing bracket."""
    if "premature EOF" in str(exc):
        return True
    try:
        with open_regular(path) as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 64))
            tail = fh.read().rstrip()
    except OSError:
        return False
    return not tail.endswith((b"}", b"]"))


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """The dict items of a parsed JSON list (nothing when `value` is not a list)."""
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict):
            yield item


def _opt(value: Any, typ: type) -> Any:
    return value if isinstance(value, typ) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    number = int(value)
    return number if INT64[0] <= number <= INT64[1] else None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return float(value)
