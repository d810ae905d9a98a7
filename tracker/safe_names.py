"""Untrusted names made into path components: an item id from a plan file, a task id from a task file, a
repo or model folder name from a tree, a campaign name from the command line.

Two ways, by what the name is for. `checked` refuses a name that is no plain file name (a bench item id
must reach the bench unchanged, so it cannot be quietly rewritten); `component` rewrites one into a safe
name that stays distinct (a campaign's log folder). `within` is the last guard: a path built from names
must resolve under its root.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from tracker.errors import UnsafeName

__all__ = ["MAX_COMPONENT_BYTES", "UnsafeName", "checked", "component", "problem", "shown", "within"]

MAX_COMPONENT_BYTES = 128
"""Well under every file system's 255-byte limit, leaving room for suffixes such as `-a2` or `_plan.json`."""

_UNSAFE_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")


def problem(name: object) -> str | None:
    """Why `name` is no safe single path component (None: it is one)."""
    if not isinstance(name, str) or not name.strip():
        return "is empty"
    if "\x00" in name:
        return "holds a NUL byte"
    if "/" in name or "\\" in name:
        return "holds a path separator"
    if name in (".", ".."):
        return "is a relative folder name"
    if _UNSAFE_CHARS.search(name):
        return "holds a control character"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        return f"is longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def shown(name: object) -> str:
    """The name as a message may show it: repr, cut short."""
    text = repr(name)
    return text if len(text) <= 60 else text[:50] + "...'"


def checked(name: str, what: str) -> str:
    """`name` unchanged if it is a safe path component, else UnsafeName saying which `what` and why."""
    reason = problem(name)
    if reason is not None:
        raise UnsafeName(f"{what} {shown(name)} cannot be a file or folder name: it {reason}")
    return name


def component(name: str) -> str:
    """A safe path component for `name`: the name itself when safe, else its unsafe characters replaced
    and a hash of the original added, so two different names never share a folder."""
    if problem(name) is None:
        return name
    digest = hashlib.sha256(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    cleaned = _UNSAFE_CHARS.sub("_", str(name)).strip()
    cleaned = cleaned.encode("utf-8", "surrogatepass")[: MAX_COMPONENT_BYTES - 9].decode("utf-8", "ignore")
    return f"{cleaned}-{digest}" if cleaned.strip(".") else f"_-{digest}"


def within(root: Path, path: Path, what: str = "path") -> Path:
    """`path`, refused (UnsafeName) unless it lies under `root` once `..` and `.` are taken out.

    The check is on the names, not on links: a folder the user linked in on purpose (a tree on
    another disk) stays usable, while a name holding `..` can never climb out."""
    base = Path(os.path.normpath(root.absolute()))
    normal = Path(os.path.normpath(path.absolute()))
    if normal != base and base not in normal.parents:
        raise UnsafeName(f"{what} {path} is outside {base}")
    return path
