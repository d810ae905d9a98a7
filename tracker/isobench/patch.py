"""Measure `model_patch.diff`: identity (sha256), size and unified-diff line counts.

Counting walks hunks by their `@@ -a,b +c,d @@` lengths, so a removed line that itself starts with
`--` or an added `++i` is counted as content, and only headers outside hunks are skipped. An empty
or whitespace-only file means the agent produced no patch.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from tracker.isobench.common import Problem, looks_binary, open_regular, os_problem

PATCH = "model_patch.diff"
_HUNK = re.compile(rb"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


@dataclass(frozen=True)
class PatchFacts:
    """`present` = the file exists; `has_patch` = it holds a non-blank diff."""

    present: bool
    has_patch: bool = False
    sha256: str | None = None
    bytes: int = 0
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0


class _DiffCounter:
    """Line-by-line unified diff state machine."""

    def __init__(self) -> None:
        self.git_files = 0
        self.plus_headers = 0
        self.added = 0
        self.removed = 0
        self.old_left = 0
        self.new_left = 0
        self.blank = True

    def feed(self, line: bytes) -> None:
        if self.blank and line.strip():
            self.blank = False
        if self.old_left > 0 or self.new_left > 0:
            self._hunk_line(line)
        elif line.startswith(b"diff --git "):
            self.git_files += 1
        elif line.startswith(b"+++ "):
            self.plus_headers += 1
        elif match := _HUNK.match(line):
            self.old_left = int(match.group(1) or b"1")
            self.new_left = int(match.group(2) or b"1")

    def _hunk_line(self, line: bytes) -> None:
        tag = line[:1]
        if tag == b"+":
            self.added += 1
            self.new_left -= 1
        elif tag == b"-":
            self.removed += 1
            self.old_left -= 1
        elif tag == b"\\":  # "\ No newline at end of file"
            return
        else:  # context (" ", or an empty line some tools write for a blank context line)
            self.old_left -= 1
            self.new_left -= 1

    @property
    def files(self) -> int:
        return self.git_files or self.plus_headers


def read_patch(run_dir: Path) -> tuple[PatchFacts, list[Problem]]:
    """Hash and count the patch in one streaming pass; a missing file is simply no patch."""
    path = run_dir / PATCH
    digest = hashlib.sha256()
    counter = _DiffCounter()
    size = 0
    problems: list[Problem] = []
    try:
        with open_regular(path) as fh:
            if looks_binary(fh.read(8192)):
                problems.append(Problem(PATCH, "binary", "NUL bytes in the patch; counts may be wrong"))
            fh.seek(0)
            for line in fh:
                digest.update(line)
                size += len(line)
                counter.feed(line)
    except FileNotFoundError:
        return PatchFacts(present=False), []
    except OSError as exc:
        return PatchFacts(present=True), [os_problem(PATCH, exc)]
    if counter.blank:
        return PatchFacts(present=True, bytes=size, sha256=digest.hexdigest() if size else None), problems
    facts = PatchFacts(
        present=True,
        has_patch=True,
        sha256=digest.hexdigest(),
        bytes=size,
        files_changed=counter.files,
        lines_added=counter.added,
        lines_removed=counter.removed,
    )
    return facts, problems
