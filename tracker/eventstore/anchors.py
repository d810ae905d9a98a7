"""Anchors: the head of the log (position, hash, time, store id), written outside the database.

A hash chain proves that every event follows the one before it, not how far the log went: a tail cut
off, or the whole store swapped for a shorter valid one, leaves a chain that verifies. So after every
append batch the new head is appended as one JSON line to an anchor file the database does not hold
(beside a SQLite file; under the user's state folder for PostgreSQL), and `verify` holds the chain
against every anchor it can read (immudb keeps the client's last verified state in the same spirit).

Writes: one `write()` of one line on a descriptor opened with `O_APPEND`, so processes appending to
the same store at once never tear each other's lines; lines may land out of position order, and the
highest position of a store is its newest anchor. The file is fsynced at most once a second and when
the store closes: an fsync per append costs ~2 ms here (a single-event append takes ~1 ms), and the
SQLite store itself (WAL, `synchronous=NORMAL`) does not fsync each commit either. A power cut can
therefore lose the last second of anchors (then verify checks an older head), never add a false one.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy.engine import URL, make_url

ANCHOR_FILE_ENV = "TRACK_ANCHOR_FILE"
STATE_DIR_ENV = "TRACK_STATE_DIR"
FSYNC_EVERY_S = 1.0

log = logging.getLogger("tracker.anchors")


@dataclass(frozen=True)
class Anchor:
    """The log's head as one writer saw it just after its append committed."""

    store_id: str | None  # None: a bare `POSITION:HASH` anchor (e.g. copied from the MLflow tag)
    position: int
    hash: str
    at: str = ""
    retired: bool = False  # written when the store was deliberately deleted (`db downgrade` past the log)
    export: str | None = None

    def line(self) -> bytes:
        body = {"store_id": self.store_id, "position": self.position, "hash": self.hash, "at": self.at}
        if self.retired:
            body.update(retired=True, export=self.export)
        return orjson.dumps(body) + b"\n"


def state_dir() -> Path:
    """The user's state folder for track: $TRACK_STATE_DIR, else $XDG_STATE_HOME/track, else ~/.local/state/track."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "track"


def anchor_path(url: URL | str) -> Path | None:
    """Where this store's anchors live: $TRACK_ANCHOR_FILE; else `<file>.anchor.jsonl` beside a SQLite
    file; else `<state dir>/anchors/<host>_<port>_<database>.anchor.jsonl`. None for an in-memory store."""
    explicit = os.environ.get(ANCHOR_FILE_ENV)
    if explicit:
        return Path(explicit)
    url = make_url(url) if isinstance(url, str) else url
    if url.get_backend_name() == "sqlite":
        return _beside_sqlite(url.database or "")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{url.host or 'local'}_{url.port or 5432}_{url.database or ''}")
    return state_dir() / "anchors" / f"{slug}.anchor.jsonl"


def _beside_sqlite(database: str) -> Path | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).absolute().with_name(Path(database).name + ".anchor.jsonl")


@dataclass
class AnchorWriter:
    """Appends anchor lines to one file, for every thread and process writing the same store."""

    path: Path
    _fd: int | None = field(default=None, repr=False)
    _synced_at: float = field(default=0.0, repr=False)
    _failed: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def write(self, anchor: Anchor) -> None:
        """Append one line; a file that cannot be written is logged once and does not fail the append,
        which has already committed (verify then reports the store as unanchored past that point)."""
        if self._failed:
            return
        try:
            fd = self._open()
            os.write(fd, anchor.line())
            now = time.monotonic()
            if now - self._synced_at >= FSYNC_EVERY_S:
                self._synced_at = now
                os.fsync(fd)
        except OSError as exc:
            self._failed = True
            log.warning("cannot write the anchor file %s: %s; the log's head is not anchored", self.path, exc)

    def _open(self) -> int:
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = None


@dataclass
class AnchorSet:
    """Every anchor read from one file (lines that do not parse are counted, not fatal: a torn write)."""

    path: Path
    anchors: list[Anchor]
    unreadable_lines: int = 0

    def by_position(self) -> dict[int, list[Anchor]]:
        table: dict[int, list[Anchor]] = {}
        for anchor in self.anchors:
            table.setdefault(anchor.position, []).append(anchor)
        return table


_BARE = re.compile(r"^\s*(\d+):([0-9a-f]{64})\s*$")


def _parse(line: str) -> Anchor | None:
    bare = _BARE.match(line)
    if bare:
        return Anchor(None, int(bare.group(1)), bare.group(2))
    try:
        body = orjson.loads(line)
        return Anchor(body.get("store_id"), int(body["position"]), str(body["hash"]), str(body.get("at", "")),
                      bool(body.get("retired", False)), body.get("export"))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def read_anchors(path: Path) -> AnchorSet:
    """The anchors in a file: JSON lines as track writes them, or `POSITION:HASH` lines (the MLflow tag)."""
    anchors: list[Anchor] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            anchor = _parse(line)
            if anchor is None:
                bad += 1
            else:
                anchors.append(anchor)
    return AnchorSet(path, anchors, bad)


@dataclass(frozen=True)
class AnchorProblem:
    """One way the log disagrees with its anchors; `missing` is the range of positions it no longer has."""

    kind: str  # "cut_tail" | "rewritten" | "other_store"
    detail: str
    store_id: str | None
    anchored_position: int
    missing: tuple[int, int] | None = None


@dataclass
class AnchorTally:
    """What the chain walk saw of one store's anchors: the last that matched, the first that did not."""

    newest: Anchor
    matched_upto: int = 0
    first_mismatch: tuple[int, str, str] | None = None  # position, hash in the log, hash anchored
    retired: bool = False

    def see(self, anchor: Anchor, stored_hash: str) -> None:
        if anchor.hash == stored_hash:
            self.matched_upto = max(self.matched_upto, anchor.position)
        elif self.first_mismatch is None or anchor.position < self.first_mismatch[0]:
            self.first_mismatch = (anchor.position, stored_hash, anchor.hash)


def tallies(anchor_set: AnchorSet) -> dict[str | None, AnchorTally]:
    """One tally per store id in the file, each knowing its newest (highest) anchor."""
    out: dict[str | None, AnchorTally] = {}
    for anchor in anchor_set.anchors:
        tally = out.get(anchor.store_id)
        if tally is None:
            out[anchor.store_id] = tally = AnchorTally(anchor)
        elif anchor.position > tally.newest.position:
            tally.newest = anchor
        tally.retired = tally.retired or anchor.retired
    return out


def judge(found: dict[str | None, AnchorTally], store_id: str | None, last_position: int) -> list[AnchorProblem]:
    """The problems the anchors show, once the chain walk has fed every stored hash to the tallies.

    This store's anchors (or bare ones) must each match the log, and the log must reach the newest.
    Another store's anchors are a problem unless that store was retired on purpose, or this log is the
    same log (every anchor matches: the identity was re-created by a migration round trip).
    """
    problems: list[AnchorProblem] = []
    for sid, tally in found.items():
        if tally.retired:
            continue
        ours = sid is None or sid == store_id
        problem = _own_problem(tally, last_position) if ours else _foreign_problem(tally, store_id, last_position)
        if problem is not None:
            problems.append(problem)
    return problems


def _own_problem(tally: AnchorTally, last_position: int) -> AnchorProblem | None:
    newest = tally.newest
    if tally.first_mismatch is not None:
        position, stored, anchored = tally.first_mismatch
        return AnchorProblem(
            "rewritten", f"the event at position {position} has hash {stored[:12]}…, but the anchor recorded "
            f"{anchored[:12]}…: positions {tally.matched_upto + 1}..{position} were rewritten (the log still "
            f"matched its anchor at position {tally.matched_upto})", newest.store_id, newest.position,
            (tally.matched_upto + 1, position))
    if newest.position > last_position:
        return AnchorProblem(
            "cut_tail", f"the log ends at position {last_position}, but it reached position {newest.position} "
            f"(anchored {newest.at or 'earlier'}): events {last_position + 1}..{newest.position} are missing",
            newest.store_id, newest.position, (last_position + 1, newest.position))
    return None


def _foreign_problem(tally: AnchorTally, store_id: str | None, last_position: int) -> AnchorProblem | None:
    newest = tally.newest
    if tally.first_mismatch is None and newest.position <= last_position:
        return None  # the same log under a new identity
    if tally.first_mismatch is not None:
        position, stored, anchored = tally.first_mismatch
        how = f"its event at position {position} has hash {stored[:12]}…, the anchor {anchored[:12]}…"
        missing = (tally.matched_upto + 1, newest.position)
    else:
        how = f"this log ends at position {last_position}"
        missing = (last_position + 1, newest.position)
    return AnchorProblem(
        "other_store", f"the anchors record store {newest.store_id} up to position {newest.position} "
        f"(anchored {newest.at or 'earlier'}), but this database is store {store_id or 'without an identity'} and "
        f"does not hold that log ({how}): the store was swapped or recreated; positions "
        f"{missing[0]}..{missing[1]} of store {newest.store_id} are not here", newest.store_id, newest.position,
        missing)


def retire(path: Path | None, anchors: Iterable[Anchor]) -> None:
    """Record that a store was deleted on purpose, so its anchors no longer count against a new store."""
    if path is None:
        return
    writer = AnchorWriter(path)
    for anchor in anchors:
        writer.write(anchor)
    writer.close()
