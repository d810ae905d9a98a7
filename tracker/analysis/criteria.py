"""Success criteria of a rerun: thresholds per repo and combined, read from a small YAML file.

The team states up front what counts as a minimum, target and exceptional result (e.g. vLLM >= 25 /
35 / 40 of 53), so the judgement is written down before the numbers come in. The file format is
shown by `tracker/data/criteria.example.yaml`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tracker.errors import TrackerError

COMBINED = "all"
"""The row name of the combined (all repos) figures, in criteria and in comparison tables."""
MEASURES = ("successes", "fixed")
BELOW = "below_minimum"
DEFAULT_LEVELS = ("minimum", "target", "exceptional")
"""The levels of a file that does not name its own."""


@dataclass(frozen=True)
class Threshold:
    scope: str
    """A repo name, or `all` for the combined criteria."""
    of: int | None
    levels: dict[str, int]
    """Level name -> minimum count, in the order of the file's `levels` (lowest first)."""

    def level_reached(self, count: int) -> str:
        """The highest level whose threshold the count meets (a tie meets it), else `below_minimum`."""
        reached = BELOW
        for level, needed in self.levels.items():
            if count >= needed:
                reached = level
        return reached


@dataclass(frozen=True)
class Criteria:
    name: str
    measure: str
    levels: list[str]
    thresholds: list[Threshold]
    source: str


def example_path() -> Path:
    return Path(str(resources.files("tracker").joinpath("data/criteria.example.yaml")))


def load_criteria(path: str | Path) -> Criteria:
    """Read and check a criteria file; every mistake is a TrackerError naming the file and the fix."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TrackerError(f"cannot read criteria file {path}: {exc}") from None
    return parse_criteria(raw, str(path))


Fail = Callable[[str], TrackerError]
"""Builds the error for one mistake in a criteria file (names the file and the example)."""


def _failure(source: str) -> Fail:
    """An error builder bound to the file, so every check words its mistake the same way."""
    def fail(why: str) -> TrackerError:
        return TrackerError(f"criteria file {source}: {why} (see {example_path()} for the format)")

    return fail


def _count(value: Any) -> bool:
    """True for a non-negative integer (a bool is not a count, though Python says it is an int)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _levels(raw: dict[Any, Any], fail: Fail) -> list[str]:
    """The `levels` field: distinct level names, lowest first (the default three when absent)."""
    levels = raw.get("levels", list(DEFAULT_LEVELS))
    if not (isinstance(levels, list) and levels and all(isinstance(x, str) for x in levels)):
        raise fail("`levels` must be a list of level names, lowest first")
    if len(set(levels)) != len(levels) or BELOW in levels:
        raise fail("`levels` must be distinct names")
    return levels


def _measure(raw: dict[Any, Any], fail: Fail) -> str:
    """The `measure` field: what a threshold counts (`successes` when absent)."""
    measure = raw.get("measure", "successes")
    if measure not in MEASURES:
        raise fail(f"`measure` must be one of {', '.join(MEASURES)}, not {measure!r}")
    return measure


def _scopes(raw: dict[Any, Any], fail: Fail) -> list[tuple[Any, Any]]:
    """(scope, thresholds spec) pairs: each of `repos`, then `combined` as scope `all`; at least one."""
    repos = raw.get("repos", {}) or {}
    if not isinstance(repos, dict):
        raise fail("`repos` must map repo names to thresholds")
    scopes: list[tuple[Any, Any]] = list(repos.items())
    if raw.get("combined") is not None:
        scopes.append((COMBINED, raw["combined"]))
    if not scopes:
        raise fail("no thresholds: give `repos` and/or `combined`")
    return scopes


def _level_values(scope: Any, spec: dict[Any, Any], levels: list[str], fail: Fail) -> dict[str, int]:
    """The levels a scope gives a threshold for, in level order; they must not decrease."""
    values = {}
    for level in levels:
        value = spec.get(level)
        if value is None:
            continue
        if not _count(value):
            raise fail(f"{scope}.{level} must be a non-negative integer, not {value!r}")
        values[level] = value
    counts = list(values.values())
    if counts != sorted(counts):
        raise fail(f"thresholds of {scope!r} must not decrease from one level to the next: {values}")
    return values


def _threshold(scope: Any, spec: Any, levels: list[str], fail: Fail) -> Threshold:
    """One scope's thresholds, checked: a mapping of known levels (and `of`) to counts."""
    if not isinstance(spec, dict):
        raise fail(f"thresholds of {scope!r} must be a mapping like {{of: 53, minimum: 25, ...}}")
    unknown = set(spec) - set(levels) - {"of"}
    if unknown:
        raise fail(f"{scope!r} has unknown keys {sorted(unknown)}; levels are {levels}")
    values = _level_values(scope, spec, levels, fail)
    of = spec.get("of")
    if of is not None and not _count(of):
        raise fail(f"{scope}.of must be a non-negative integer, not {of!r}")
    return Threshold(scope=str(scope), of=of, levels=values)


def parse_criteria(raw: Any, source: str = "<criteria>") -> Criteria:
    """Check parsed criteria field by field, in the file's order; the first mistake is the error."""
    fail = _failure(source)
    if not isinstance(raw, dict):
        raise fail("expected a mapping at the top level")
    levels = _levels(raw, fail)
    measure = _measure(raw, fail)
    thresholds = [_threshold(scope, spec, levels, fail) for scope, spec in _scopes(raw, fail)]
    return Criteria(name=str(raw.get("name", Path(source).stem)), measure=measure, levels=levels,
                    thresholds=thresholds, source=source)
