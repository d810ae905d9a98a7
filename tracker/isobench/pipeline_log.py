"""Index the bench's `pipeline_run_*.log` files: per (item, run timestamp), what the pipeline saw.

One streaming pass over every log at the tree root. Only parsed facts (commits, return code,
status, token totals) and evidence lines that match an error signature are kept, never whole logs.
A log's run timestamp comes from its name (`pipeline_run_20251203_174002.log` ->
`2025-12-03_17-40-02`), or from its first line's time when the name does not carry one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tracker.isobench.common import EvidenceLine, Problem, looks_binary, open_regular, os_problem
from tracker.isobench.textlog import TOKEN_LINE, EvidenceCollector, iter_lines

LOG_GLOB_RE = re.compile(r"^pipeline_run.*\.log$")
_NAME_TS = re.compile(r"(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})")
_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2}):(\d{2})(?:,\d+)? - (\S+) - ([A-Z]+) - (.*)$")
_START = re.compile(r"^Starting task processing: (\S+)")
_SKIP = re.compile(r"^Skipping (\S+) - task already completed")
_CONFIG = re.compile(r"Human commit: ([0-9a-fA-F]+|None)?,? ?Pre commit: ([0-9a-fA-F]+|None)?")
_RC = re.compile(r"^Process return code: (-?\d+)")
_STATUS = re.compile(r"^Task status determined as: (\w+)")
_JOURNAL_STATUS = re.compile(r"^Writing journal with final status: (\w+)")
_DURATION = re.compile(r"execution completed in ([\d.]+) seconds")
_EVIDENCE_LEVELS = ("WARNING", "ERROR", "CRITICAL")
TS_FORMAT = "%Y-%m-%d_%H-%M-%S"


@dataclass(frozen=True)
class ItemLog:
    """One item's block in one pipeline log (the last one, if the item was processed twice)."""

    item_id: str
    log_file: str
    log_timestamp: str | None
    start_line: int
    skipped: bool = False
    human_commit: str | None = None
    pre_commit: str | None = None
    return_code: int | None = None
    status: str | None = None
    journal_status: str | None = None
    duration_s: float | None = None
    token_input: int | None = None
    token_output: int | None = None
    fact_lines: dict[str, int] = field(default_factory=dict)
    evidence: tuple[EvidenceLine, ...] = ()


class _Block:
    """Mutable block while its log is being read; frozen into an ItemLog when the next one starts."""

    def __init__(self, item_id: str, log_file: str, log_ts: str | None, line: int, skipped: bool) -> None:
        self.item = ItemLog(item_id, log_file, log_ts, line, skipped)
        self.fact_lines: dict[str, int] = {}
        self.collector = EvidenceCollector("pipeline_log", log_file)

    def set(self, line: int, **values: Any) -> None:
        self.item = replace(self.item, **values)
        self.fact_lines.update(dict.fromkeys(values, line))

    def freeze(self) -> ItemLog:
        return replace(self.item, fact_lines=dict(self.fact_lines), evidence=tuple(self.collector.lines))


@dataclass
class PipelineLogIndex:
    """All item blocks of all logs, looked up by item id and run timestamp."""

    by_item: dict[str, list[ItemLog]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def find(
        self, item_id: str, run_timestamp: str, commit: str | None = None, tolerance_s: float = 3600
    ) -> ItemLog | None:
        """The block of the log that ran this item at this run timestamp.

        Exact timestamp first; else the nearest log within `tolerance_s` (a log named a second or
        a minute off its run folder); blocks whose commit contradicts `commit` are never chosen.
        Skip-only blocks are not runs and are ignored.
        """
        candidates = [b for b in self.by_item.get(item_id, []) if _may_be_run(b, commit)]
        exact = [b for b in candidates if b.log_timestamp == run_timestamp]
        if exact:
            return exact[-1]
        return _nearest(candidates, run_timestamp, tolerance_s)


def _may_be_run(block: ItemLog, commit: str | None) -> bool:
    """A processing block (not a skip) whose commit, if it names one, does not contradict `commit`."""
    return not block.skipped and not (commit and block.human_commit and block.human_commit != commit)


def _nearest(blocks: list[ItemLog], run_timestamp: str, tolerance_s: float) -> ItemLog | None:
    """The block whose log timestamp is closest to the run's, if within `tolerance_s` (first one on a tie)."""
    target = _parse_ts(run_timestamp)
    if target is None:
        return None
    timed = [
        (abs((ts - target).total_seconds()), b)
        for b in blocks
        if (ts := _parse_ts(b.log_timestamp)) is not None
    ]
    timed = [t for t in timed if t[0] <= tolerance_s]
    return min(timed, key=lambda t: t[0])[1] if timed else None


def index_pipeline_logs(root: Path) -> PipelineLogIndex:
    """Read every `pipeline_run_*.log` directly under `root`, in name order."""
    index = PipelineLogIndex()
    try:
        names = sorted(e.name for e in os.scandir(root) if LOG_GLOB_RE.match(e.name) and e.is_file())
    except OSError as exc:
        index.problems.append(os_problem(".", exc))
        return index
    for name in names:
        index.logs.append(name)
        for block in _read_log(root / name, name, index.problems):
            index.by_item.setdefault(block.item_id, []).append(block)
    return index


def log_timestamp_from_name(name: str) -> str | None:
    """`pipeline_run_20251203_174002.log` -> `2025-12-03_17-40-02`."""
    m = _NAME_TS.search(name)
    if not m:
        return None
    y, mo, d, h, mi, s = m.groups()
    ts = f"{y}-{mo}-{d}_{h}-{mi}-{s}"
    return ts if _parse_ts(ts) else None


def _read_log(path: Path, name: str, problems: list[Problem]) -> list[ItemLog]:
    """Blocks of one log: the last processing block per item, else its skip block."""
    log_ts = log_timestamp_from_name(name)
    blocks: dict[str, ItemLog] = {}
    current: _Block | None = None
    try:
        with open_regular(path) as raw:
            if looks_binary(raw.read(8192)):
                problems.append(Problem(name, "binary", "NUL bytes in a pipeline log; not read"))
                return []
            raw.seek(0)
            with open(raw.fileno(), encoding="utf-8", errors="replace", closefd=False) as fh:
                for line_no, text in iter_lines(fh):
                    m = _LINE.match(text)
                    if log_ts is None and m:
                        log_ts = f"{m.group(1)}_{m.group(2)}-{m.group(3)}-{m.group(4)}"
                    opened = _opens_block(m, name, log_ts, line_no)
                    if opened is not None:
                        _close(current, blocks)
                        current = opened
                    elif current is not None:
                        _feed(current, m, text, line_no)
    except OSError as exc:
        problems.append(os_problem(name, exc))
    _close(current, blocks)
    return list(blocks.values())


def _opens_block(m: re.Match[str] | None, name: str, log_ts: str | None, line_no: int) -> _Block | None:
    """A new block starts at `Starting task processing` or `Skipping ... already completed`."""
    if m is None:
        return None
    message = m.group(7)
    if start := _START.match(message):
        return _Block(start.group(1), name, log_ts, line_no, skipped=False)
    if skip := _SKIP.match(message):
        return _Block(skip.group(1), name, log_ts, line_no, skipped=True)
    return None


def _close(block: _Block | None, blocks: dict[str, ItemLog]) -> None:
    """Keep the block unless a real processing block of the item is already kept."""
    if block is None:
        return
    frozen = block.freeze()
    previous = blocks.get(frozen.item_id)
    if previous is None or not frozen.skipped or previous.skipped:
        blocks[frozen.item_id] = frozen


def _feed(block: _Block, m: re.Match[str] | None, text: str, line_no: int) -> None:
    """Parse one line inside an item's block."""
    if m is None:  # continuation of a multi-line message (e.g. a logged traceback)
        block.collector.offer(line_no, text)
        return
    level, message = m.group(6), m.group(7)
    facts = _line_facts(message)
    if facts is not None:
        block.set(line_no, **facts)
    elif level in _EVIDENCE_LEVELS or "TRAE STDERR" in message or "API call failed" in message:
        block.collector.offer(line_no, message)


def _line_facts(message: str) -> dict[str, Any] | None:
    """The ItemLog fields one message states, from the first of `_FACT_LINES` that matches it."""
    for find, fields in _FACT_LINES:
        if found := find(message):
            return fields(found)
    return None


def _token_totals(message: str) -> re.Match[str] | None:
    """TRAE's printed `Input: N Output: M` totals (the substring test keeps the regex off most lines)."""
    return TOKEN_LINE.search(message) if "Input:" in message else None


_Finder = Callable[[str], re.Match[str] | None]
_Fields = Callable[[re.Match[str]], dict[str, Any]]
_FACT_LINES: tuple[tuple[_Finder, _Fields], ...] = (
    (_CONFIG.search, lambda m: {"human_commit": _sha(m.group(1)), "pre_commit": _sha(m.group(2))}),
    (_RC.match, lambda m: {"return_code": int(m.group(1))}),
    (_STATUS.match, lambda m: {"status": m.group(1)}),
    (_JOURNAL_STATUS.match, lambda m: {"journal_status": m.group(1)}),
    (_DURATION.search, lambda m: {"duration_s": float(m.group(1))}),
    (_token_totals, lambda m: {"token_input": int(m.group(1)), "token_output": int(m.group(2))}),
)
"""Message patterns that state facts, tried in order: only the first that matches a message counts."""


def _sha(value: str | None) -> str | None:
    return value.lower() if value and value != "None" else None


def _parse_ts(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.strptime(ts, TS_FORMAT)
    except ValueError:
        return None
