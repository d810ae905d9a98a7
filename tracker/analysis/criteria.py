"""Success criteria of a rerun: thresholds per repo and combined, read from a small YAML file.

The team states up front what counts as a minimum, target and exceptional result (e.g. vLLM >= 25 /
35 / 40 of 53), so the judgement is written down before the numbers come in. The file format is
shown by `tracker/data/criteria.example.yaml`.
"""

from __future__ import annotations

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


def parse_criteria(raw: Any, source: str = "<criteria>") -> Criteria:
    def fail(why: str) -> TrackerError:
        return TrackerError(f"criteria file {source}: {why} (see {example_path()} for the format)")

    if not isinstance(raw, dict):
        raise fail("expected a mapping at the top level")
    levels = raw.get("levels", ["minimum", "target", "exceptional"])
    if not (isinstance(levels, list) and levels and all(isinstance(x, str) for x in levels)):
        raise fail("`levels` must be a list of level names, lowest first")
    if len(set(levels)) != len(levels) or BELOW in levels:
        raise fail("`levels` must be distinct names")
    measure = raw.get("measure", "successes")
    if measure not in MEASURES:
        raise fail(f"`measure` must be one of {', '.join(MEASURES)}, not {measure!r}")
    scopes: list[tuple[str, Any]] = []
    repos = raw.get("repos", {}) or {}
    if not isinstance(repos, dict):
        raise fail("`repos` must map repo names to thresholds")
    scopes += list(repos.items())
    if raw.get("combined") is not None:
        scopes.append((COMBINED, raw["combined"]))
    if not scopes:
        raise fail("no thresholds: give `repos` and/or `combined`")
    thresholds = []
    for scope, spec in scopes:
        if not isinstance(spec, dict):
            raise fail(f"thresholds of {scope!r} must be a mapping like {{of: 53, minimum: 25, ...}}")
        unknown = set(spec) - set(levels) - {"of"}
        if unknown:
            raise fail(f"{scope!r} has unknown keys {sorted(unknown)}; levels are {levels}")
        values = {}
        for level in levels:
            value = spec.get(level)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise fail(f"{scope}.{level} must be a non-negative integer, not {value!r}")
            values[level] = value
        counts = list(values.values())
        if counts != sorted(counts):
            raise fail(f"thresholds of {scope!r} must not decrease from one level to the next: {values}")
        of = spec.get("of")
        if of is not None and (not isinstance(of, int) or isinstance(of, bool) or of < 0):
            raise fail(f"{scope}.of must be a non-negative integer, not {of!r}")
        thresholds.append(Threshold(scope=str(scope), of=of, levels=values))
    return Criteria(name=str(raw.get("name", Path(source).stem)), measure=measure, levels=levels,
                    thresholds=thresholds, source=source)
