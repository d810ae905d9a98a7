"""Scan stdout/stderr-like text files line by line for error signatures and token totals.

Files can be tens of MB, so nothing is held but the matching lines: each is redacted, capped, and
deduplicated on a digit-blind key (an agent retrying the same API error 500 times leaves one line,
not 500). The signature here is deliberately broad ("looks like an error"): which line means which
failure is the classifier's job, on the kept lines. Lines are read with a length limit, so one
giant line cannot exhaust memory either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tracker.classify.redaction import redact
from tracker.isobench.common import (
    MAX_EVIDENCE_CHARS,
    EvidenceLine,
    Problem,
    clip,
    looks_binary,
    open_regular,
    os_problem,
)

MAX_EVIDENCE_PER_FILE = 300
READ_LIMIT = 64 * 1024
"""A longer physical line is scanned in pieces of at most this many characters (same line number)."""
CUT_BACK = 4096
"""How far back from a piece's end a separator is looked for: a piece never ends inside a token shorter than this."""
_SEPARATORS = (" ", "\t", '"', "'", ",", ";")

# Matched against the lowercased line: case-sensitive alternations are much faster in CPython.
ERROR_SIGNATURE = re.compile(
    r"error|exception|traceback|failed|fatal|expired|exceeded|exceeds|denied|refused|timed out|timeout"
    r"|quota|rate limit|invalid|incorrect|unterminated|expecting value|no tool output|maximum context"
    r"|maximum steps|out of memory|no space left|killed"
    r"|not found|no such file|does not exist|cannot start"  # a broken setup says so in these words
)
TOKEN_LINE = re.compile(r"\bInput:\s*(\d+)\s+Output:\s*(\d+)")
_DIGITS = re.compile(r"\d+")
_IDS = re.compile(r"\b(?:call|req|resp|msg|toolu|chatcmpl|fc)_[A-Za-z0-9_-]+|\b(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{8,}\b")


class EvidenceCollector:
    """Keeps distinct matching lines of one file, up to a cap, with how often each occurred.

    Two lines are the same when they differ only in digits and ids (`call_…`, request ids, hex):
    an agent retrying one API error 500 times leaves one line with count 500, not 500 lines, and
    the cap is spent on distinct errors. Past the cap, repeats of kept lines are still counted.
    """

    def __init__(self, source: str, rel: str, cap: int = MAX_EVIDENCE_PER_FILE) -> None:
        self.source = source
        self.rel = rel
        self.cap = cap
        self.dropped = 0
        self._kept: dict[str, list[Any]] = {}

    def offer(self, line_no: int | None, text: str) -> bool:
        """Keep `text` if it looks like an error; return whether it matched at all."""
        if not ERROR_SIGNATURE.search(text.lower()):
            return False
        self.add(line_no, text)
        return True

    def add(self, line_no: int | None, text: str) -> None:
        """Keep `text` unconditionally (subject to dedupe and cap)."""
        clean = clip(redact(text.strip()), MAX_EVIDENCE_CHARS)
        key = dedupe_key(clean)
        kept = self._kept.get(key)
        if kept is not None:
            kept[2] += 1
            kept[3] = line_no
            return
        if len(self._kept) >= self.cap:
            self.dropped += 1
            return
        self._kept[key] = [line_no, clean, 1, line_no]

    @property
    def lines(self) -> list[EvidenceLine]:
        return [EvidenceLine(self.source, self.rel, first, text, count, last)
                for first, text, count, last in self._kept.values()]


def dedupe_key(text: str) -> str:
    """The line with ids and numbers blanked: what stays the same when an error repeats."""
    return _DIGITS.sub("0", _IDS.sub("#", text))


@dataclass(frozen=True)
class TextScan:
    """What one text file told us."""

    file: str
    present: bool
    source: str = "stdout"
    lines: int = 0
    evidence: tuple[EvidenceLine, ...] = ()
    dropped_evidence: int = 0
    token_input: int | None = None
    token_output: int | None = None
    problems: tuple[Problem, ...] = field(default_factory=tuple)


def scan_text(path: Path, rel: str, source: str) -> TextScan:
    """Stream `path`; missing files give `present=False` and no problem (they are optional)."""
    collector = EvidenceCollector(source, rel)
    tokens: tuple[int, int] | None = None
    line_no = 0
    try:
        with open_regular(path) as raw:
            if looks_binary(raw.read(8192)):
                return TextScan(rel, True, source, problems=(Problem(rel, "binary", "NUL bytes in a text file"),))
            raw.seek(0)
            with open(raw.fileno(), encoding="utf-8", errors="replace", closefd=False) as fh:
                for line_no, chunk in iter_lines(fh):
                    collector.offer(line_no, chunk)
                    if "Input:" in chunk:
                        tokens = _token_pair(chunk) or tokens
    except FileNotFoundError:
        return TextScan(rel, False, source)
    except OSError as exc:
        return TextScan(rel, True, source, problems=(os_problem(rel, exc),))
    return TextScan(
        rel,
        True,
        source,
        lines=line_no,
        evidence=tuple(collector.lines),
        dropped_evidence=collector.dropped,
        token_input=tokens[0] if tokens else None,
        token_output=tokens[1] if tokens else None,
    )


def iter_lines(fh: TextIO) -> Iterator[tuple[int, str]]:
    """(line number, text) pairs; a line longer than READ_LIMIT comes as several pieces, each cut at a
    separator so that no token (a key) is split between two pieces: each piece is redacted on its own."""
    line_no = 1
    carry = ""
    while True:
        chunk = carry + fh.readline(READ_LIMIT - len(carry))
        carry = ""
        if not chunk:
            return
        if len(chunk) >= READ_LIMIT and not chunk.endswith("\n"):
            cut = safe_cut(chunk)
            chunk, carry = chunk[:cut], chunk[cut:]
        yield line_no, chunk
        if chunk.endswith("\n"):
            line_no += 1


def safe_cut(piece: str) -> int:
    """Where to end a piece of a long line: after the last separator (space, quote, comma) or before the last
    JSON escape within CUT_BACK characters of the end; the end itself when there is none (no token that long
    is a key)."""
    low = len(piece) - CUT_BACK
    after = max(piece.rfind(c, low) for c in _SEPARATORS) + 1
    before_escape = piece.rfind("\\", low)
    cut = max(after, before_escape)
    return cut if cut > low else len(piece)


def _token_pair(line: str) -> tuple[int, int] | None:
    """TRAE's summary line `Input: 332283 Output: 2188`."""
    match = TOKEN_LINE.search(line)
    return (int(match.group(1)), int(match.group(2))) if match else None
