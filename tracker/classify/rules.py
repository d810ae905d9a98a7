"""The failure rule table: loaded, validated and versioned.

The table (`tracker/data/failure_rules.json`, or an override file, JSON or YAML) is an ordered list
of rules plus the known-harmless noise blocks. Anything unknown or ill-typed is refused with the rule
and the problem named, so a typo never silently changes what a failure is called.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tracker.domain.vocabulary import FAILURE_CATEGORIES
from tracker.errors import TrackerError

DEFAULT_RULES = Path(__file__).parent.parent / "data" / "failure_rules.json"


CATEGORIES = ("none", *FAILURE_CATEGORIES)


GENERIC_CATEGORIES = ("none", "other", "no_patch")


"""Categories that name no specific error signature: they give a root cause but never an incident."""


SOURCES = ("journal", "stderr", "stdout", "trajectory", "pipeline_log")


_CONDITIONS = {
    "status", "patterns", "sources", "return_code", "duration_at_least_budget", "has_patch", "journal_error",
}


class RuleTableError(TrackerError):
    """The failure rule table is malformed (names the rule and the problem)."""


@dataclass(frozen=True)
class Rule:
    """One ordered rule: all given conditions must hold."""

    id: str
    category: str
    patterns: tuple[re.Pattern[str], ...] = ()
    sources: tuple[str, ...] = SOURCES
    status: tuple[str, ...] | None = None
    return_code: tuple[int, ...] | None = None
    duration_at_least_budget: bool | None = None
    has_patch: bool | None = None
    journal_error: bool | None = None
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoiseBlock:
    """Lines from a `start` match through the next `end` match (same file) are not evidence.

    With `require_end`, a block whose end never comes within `max_lines` is not this noise at all
    (the lakeview block is noise only when it is the IndexError it is known for). A line inside a
    block that matches a specific failure signature is always kept: noise never hides a 401.
    """

    id: str
    start: re.Pattern[str]
    end: re.Pattern[str]
    sources: tuple[str, ...]
    max_lines: int
    require_end: bool = False


@dataclass(frozen=True)
class RuleTable:
    version: str
    rules: tuple[Rule, ...]
    noise: tuple[NoiseBlock, ...] = ()
    excerpt_chars: int = 300
    max_evidence: int = 5
    source: str = field(default="", compare=False)


def load_rule_table(path: Path | str | None = None) -> RuleTable:
    """Load and validate a rule table; the packaged default when `path` is None."""
    file = Path(path) if path is not None else DEFAULT_RULES
    try:
        text = file.read_text(encoding="utf-8")
        doc = yaml.safe_load(text) if file.suffix in (".yaml", ".yml") else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise RuleTableError(f"cannot read rule table {file}: {exc}") from exc
    return parse_rule_table(doc, str(file))


def parse_rule_table(doc: Any, source: str = "<memory>") -> RuleTable:
    """Build a RuleTable from a parsed document, rejecting anything unknown or ill-typed."""
    if not isinstance(doc, dict) or not isinstance(doc.get("version"), str) or not doc["version"]:
        raise RuleTableError(f"{source}: needs a non-empty string 'version'")
    parsed = _parse_rules(doc.get("rules"), source)
    noise = tuple(_parse_noise(n, source) for n in doc.get("noise") or [])
    return RuleTable(doc["version"], parsed, noise, int(doc.get("excerpt_chars", 300)),
                     int(doc.get("max_evidence", 5)), source)


def _parse_rules(rules: Any, source: str) -> tuple[Rule, ...]:
    """The non-empty `rules` list, each rule validated, their ids unique."""
    if not isinstance(rules, list) or not rules:
        raise RuleTableError(f"{source}: needs a non-empty 'rules' list")
    parsed = tuple(_parse_rule(r, i, source) for i, r in enumerate(rules))
    ids = [r.id for r in parsed]
    if len(set(ids)) != len(ids):
        raise RuleTableError(f"{source}: duplicate rule ids")
    return parsed


def _parse_rule(raw: Any, index: int, source: str) -> Rule:
    where = f"{source}: rule #{index}"
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise RuleTableError(f"{where}: needs an 'id'")
    where = f"{source}: rule {raw['id']!r}"
    if raw.get("category") not in CATEGORIES:
        raise RuleTableError(f"{where}: category must be one of {', '.join(CATEGORIES)}")
    when = raw.get("when", {})
    if not isinstance(when, dict) or set(when) - _CONDITIONS:
        raise RuleTableError(f"{where}: unknown conditions {sorted(set(when) - _CONDITIONS)}")
    sources = tuple(when.get("sources", SOURCES))
    if set(sources) - set(SOURCES):
        raise RuleTableError(f"{where}: unknown sources {sorted(set(sources) - set(SOURCES))}")
    flags = re.IGNORECASE if raw.get("ignore_case", True) else 0
    return Rule(
        id=raw["id"],
        category=raw["category"],
        patterns=tuple(_compile(p, flags, where) for p in when.get("patterns", [])),
        sources=sources,
        status=_opt_tuple(when.get("status")),
        return_code=_opt_tuple(when.get("return_code")),
        duration_at_least_budget=when.get("duration_at_least_budget"),
        has_patch=when.get("has_patch"),
        journal_error=when.get("journal_error"),
        examples=tuple(raw.get("examples", [])),
    )


def _parse_noise(raw: Any, source: str) -> NoiseBlock:
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("id", "start", "end")):
        raise RuleTableError(f"{source}: a noise entry needs string 'id', 'start' and 'end'")
    where = f"{source}: noise {raw['id']!r}"
    return NoiseBlock(raw["id"], _compile(raw["start"], 0, where), _compile(raw["end"], 0, where),
                      tuple(raw.get("sources", SOURCES)), int(raw.get("max_lines", 40)),
                      bool(raw.get("require_end", False)))


def _compile(pattern: Any, flags: int, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise RuleTableError(f"{where}: pattern {pattern!r} is not a string")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise RuleTableError(f"{where}: bad regex {pattern!r}: {exc}") from exc


def _opt_tuple(value: Any) -> tuple[Any, ...] | None:
    return tuple(value) if isinstance(value, list) else None


_DEFAULT: RuleTable | None = None


def default_rule_table() -> RuleTable:
    """The packaged table, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_rule_table()
    return _DEFAULT

