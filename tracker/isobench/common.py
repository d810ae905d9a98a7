"""Shared small types and helpers of the ISO-Bench readers.

Readers never raise for a bad file: they return what they could read plus `Problem`s, so an import
names every bad file and still keeps everything that was good.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

SNIFF_BYTES = 8192
"""How much of a file is looked at to decide whether it is binary."""

MAX_SMALL_JSON_BYTES = 32 * 1024 * 1024
"""Journals and test results are small; anything bigger is read as a problem, not into memory."""

MAX_JSON_DEPTH = 256
"""Nesting deeper than this is no ISO-Bench file: a document nested deeper is one `too_deep` problem (a
streaming parser's paths grow with the depth, so 100 KB of brackets would otherwise take gigabytes)."""

PARSE_CHUNK = 4096
"""Bytes the streaming JSON parser takes at a time. Its C backend turns a whole chunk into events (each with
its full path) before the first is seen, so the chunk bounds what a hostile file costs before the depth
limit stops it: 4 KiB of brackets is ~40 MB of paths at worst; 64 KiB would be gigabytes."""

INT64 = (-(2**63), 2**63 - 1)
"""Integers a store column and the canonical JSON can hold; a number outside is kept as its text."""


@dataclass(frozen=True)
class Problem:
    """A file that exists but could not be (fully) read, or a required file that is absent.

    `file` is relative to the run folder for per-run files and to the tree root for tree-level
    files (pipeline logs, evaluation results, discovery). `kind` is one of: missing, truncated,
    invalid_json, binary, unreadable, too_large, too_deep, not_a_file (a FIFO, device, socket or folder
    where a file was expected: never opened for reading), unexpected, symlink_loop, guessed (a fallback value).
    """

    file: str
    kind: str
    detail: str


@dataclass(frozen=True)
class EvidenceLine:
    """One line that matched an error signature, already redacted.

    `source` is stderr | stdout | trajectory | journal | pipeline_log; `line` is 1-based, or None
    for values inside a JSON document. `text` is capped at `MAX_EVIDENCE_CHARS`: longer than an
    excerpt so that a signature late in a long line is still seen; the classifier cuts the excerpt.
    """

    source: str
    file: str
    line: int | None
    text: str
    count: int = 1
    last_line: int | None = None
    """How often this line (digits and ids aside) occurred in the file, and where the last one was."""


MAX_EVIDENCE_CHARS = 1000


def looks_binary(block: bytes) -> bool:
    """NUL bytes never occur in the text files ISO-Bench writes, so one means binary content."""
    return b"\x00" in block


class NotAFile(OSError):
    """A FIFO, device, socket or folder where a file was expected (reading it would hang or never end)."""


def os_problem(rel: str, exc: OSError) -> Problem:
    """Map an OSError to a problem: a vanished file is 'missing', a non-file 'not_a_file', else 'unreadable'."""
    if isinstance(exc, NotAFile):
        return Problem(rel, "not_a_file", str(exc.strerror))
    kind = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
    return Problem(rel, kind, f"{type(exc).__name__}: {exc.strerror or exc}")


_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder"))


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading, following symlinks; `NotAFile` for anything else.

    Opened non-blocking and checked on the open descriptor: a FIFO never blocks the import and a
    symlink to /dev/zero is refused before a byte is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "special file")
            raise NotAFile(errno.EINVAL, f"a {kind}, not a regular file: skipped")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def int_or_text(digits: str) -> int | str:
    """A JSON integer, or its text when it would not fit 64 bits (kept, never a failed import)."""
    value = int(digits)
    return value if INT64[0] <= value <= INT64[1] else digits


def is_file(path: Path) -> bool:
    """True for a regular file (following symlinks); never raises."""
    try:
        return path.is_file()
    except OSError:
        return False


def file_size(path: Path) -> int | None:
    """Size in bytes, or None when it cannot be stat'ed."""
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def clip(text: str, limit: int = MAX_EVIDENCE_CHARS) -> str:
    """Cut a string to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_json_object(path: Path, rel: str) -> tuple[dict[str, Any] | None, Problem | None, bool]:
    """A small JSON object file: (object, None, True), (None, problem, True) when it exists but cannot
    be used (too large, unreadable, truncated, not JSON, not an object), or (None, None, False) when absent."""
    size = file_size(path)
    if size is None:
        return None, None, False
    if size > MAX_SMALL_JSON_BYTES:
        return None, Problem(rel, "too_large", f"{size} bytes; expected a few KB"), True
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_SMALL_JSON_BYTES + 1)
    except OSError as exc:
        return None, os_problem(rel, exc), True
    doc, problem = parse_json_document(raw, rel)
    if problem is not None:
        return None, problem, True
    if not isinstance(doc, dict):
        return None, Problem(rel, "invalid_json", f"top level is {type(doc).__name__}, not an object"), True
    return doc, None, True


def parse_json_document(raw: bytes, rel: str) -> tuple[Any, Problem | None]:
    """Decode a whole small JSON file, telling truncated from otherwise invalid from binary."""
    if looks_binary(raw[:8192]):
        return None, Problem(rel, "binary", "NUL bytes where JSON text was expected")
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text, parse_int=int_or_text), None
    except RecursionError:
        return None, Problem(rel, "too_deep", "nested deeper than any ISO-Bench file (the parser's limit)")
    except json.JSONDecodeError as exc:
        kind = "truncated" if _stops_early(text, exc) else "invalid_json"
        return None, Problem(rel, kind, f"{exc.msg} at line {exc.lineno} column {exc.colno}")


def _stops_early(text: str, exc: json.JSONDecodeError) -> bool:
    """A JSON document cut short: it starts like JSON, and fails at its end or lacks its closing bracket."""
    stripped = text.strip()
    if stripped[:1] not in ("{", "["):
        return not stripped
    if exc.pos >= len(text.rstrip()) - 1:
        return True
    return stripped[-1] not in "}]" and not exc.msg.startswith("Extra data")


# Coercers: a field of the wrong type in a real file is absent, never a crash.


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """A count as the store keeps it: an integer within 64 bits (anything else is no count)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if INT64[0] <= value <= INT64[1] else None
    if isinstance(value, float) and value.is_integer() and INT64[0] <= value <= INT64[1]:
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
