"""Find and read the agents' own output files: `<agent>_stdout.txt` / `<agent>_stderr.txt`.

Every agent writes its own pair (`trae_`, `claude_code_`, `codex_`, `openhands_`), and the bench has
used several names for the same stream over time: older TRAE folders hold `openhands_stdout.txt`
byte-identical to `trae_stdout.txt`, Codex CLI writes `openhands_std*`. All present files are
scanned, the run's own agent first, but a file identical to one already scanned is skipped, so a
duplicate never doubles an incident count.

Claude Code ends its stdout with one JSON result object holding its token usage and the cost it
reports itself (`total_cost_usd`); `read_agent_result` keeps those as the agent-reported figures.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.isobench.common import as_dict, as_float, as_int, as_str, file_size, int_or_text, open_regular
from tracker.isobench.textlog import TextScan, scan_text

OUTPUT_PREFIXES = ("trae", "claude_code", "codex", "openhands")
TRANSCRIPT_FILES = {("codex", "openhands_stderr.txt"), ("codex_cli", "openhands_stderr.txt")}
"""Codex CLI (`codex exec`) prints its whole session, the agent's own test runs included, to stderr,
which the bench saves as `openhands_stderr.txt`: read as agent output (like stdout), not as the
process's error stream. The Codex wrapper's own `codex_stderr.txt` stays stderr (its crash is there)."""
RESULT_TAIL_BYTES = 4 * 1024 * 1024
"""Claude Code's result is the last line; a longer tail than this is not read for it."""


@dataclass(frozen=True)
class AgentResult:
    """The agent's own closing report (Claude Code's `{"type": "result", ...}` line)."""

    file: str
    is_error: bool | None
    subtype: str | None
    errors: tuple[str, ...]
    input_tokens: int | None
    cache_read_input_tokens: int | None
    cache_creation_input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    turns: int | None
    models: tuple[str, ...]
    """The models the agent used, the one it spent most on first (Claude Code's `modelUsage`)."""


def output_candidates(agent: str) -> list[tuple[str, str]]:
    """(file name, source) pairs to scan, the run's own agent first."""
    prefixes = [agent] if agent in OUTPUT_PREFIXES else []
    prefixes += [p for p in OUTPUT_PREFIXES if p not in prefixes]
    return [(name, "stdout" if kind == "stdout" or (agent, name) in TRANSCRIPT_FILES else "stderr")
            for kind in ("stdout", "stderr") for prefix in prefixes for name in [f"{prefix}_{kind}.txt"]]


def scan_outputs(run_dir: Path, agent: str) -> tuple[TextScan, ...]:
    """Scan every distinct agent output file of a run folder (duplicates by content are skipped)."""
    scans: list[TextScan] = []
    kept: dict[tuple[str, int], list[Path]] = {}  # (stream, size) -> files scanned
    for name, source in output_candidates(agent):
        path = run_dir / name
        size = file_size(path)
        if size is None:
            continue
        same_size = kept.setdefault((source, size), [])
        # same stream, same bytes: the same output under another agent's name (hashed only on a size match)
        if same_size and (size == 0 or any(_same_bytes(path, other) for other in same_size)):
            continue
        same_size.append(path)
        scans.append(scan_text(path, name, source))
    return tuple(scans)


def _same_bytes(a: Path, b: Path) -> bool:
    digest = _digest(a)
    return digest is not None and digest == _digest(b)


def _digest(path: Path) -> str | None:
    """Content hash (None if unreadable: the scan then reports the problem)."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open_regular(path) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def read_agent_result(run_dir: Path, agent: str) -> AgentResult | None:
    """The closing JSON report of an agent that writes one (Claude Code), else None."""
    name = f"{agent}_stdout.txt"
    path = run_dir / name
    size = file_size(path)
    if not size:
        return None
    try:
        with open_regular(path) as fh:
            fh.seek(max(0, size - RESULT_TAIL_BYTES))
            tail = fh.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        stripped = line.strip()
        if not stripped.startswith(b"{"):
            continue
        try:
            doc = json.loads(stripped, parse_int=int_or_text)
        except (ValueError, RecursionError):
            return None
        return _result(doc, name) if isinstance(doc, dict) and doc.get("type") == "result" else None
    return None


def _result(doc: dict[str, Any], name: str) -> AgentResult:
    usage = as_dict(doc.get("usage"))
    errors = doc.get("errors")
    return AgentResult(
        file=name,
        is_error=doc.get("is_error") if isinstance(doc.get("is_error"), bool) else None,
        subtype=as_str(doc.get("subtype")),
        errors=tuple(str(e) for e in errors) if isinstance(errors, list) else (),
        input_tokens=as_int(usage.get("input_tokens")),
        cache_read_input_tokens=as_int(usage.get("cache_read_input_tokens")),
        cache_creation_input_tokens=as_int(usage.get("cache_creation_input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
        cost_usd=as_float(doc.get("total_cost_usd")),
        turns=as_int(doc.get("num_turns")),
        models=_models_by_cost(as_dict(doc.get("modelUsage"))),
    )


def _models_by_cost(usage: dict[str, Any]) -> tuple[str, ...]:
    def cost(name: str) -> float:
        return as_float(as_dict(usage[name]).get("costUSD")) or 0.0

    return tuple(sorted(usage, key=lambda name: (-cost(name), name)))
