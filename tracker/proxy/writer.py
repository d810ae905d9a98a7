"""Batched appends of metered facts: the agent's request never waits on the store.

The proxy hands each fact to `FactWriter.put` (a deque append); a background thread appends what
has gathered every `every_s` seconds, or sooner when `batch` facts wait, as one append to the
campaign's meter stream. A store that cannot be reached keeps the facts for the next flush (event ids
are fixed, so an append retried after a lost answer adds nothing twice).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from tracker.domain.events import JsonDict, NewEvent
from tracker.domain.run_events import ApiRequestMetered
from tracker.errors import TrackerError
from tracker.eventstore.store import ANY, EventStore

_LOG = logging.getLogger("track.proxy")


class FactWriter:
    """Appends facts to `stream` in batches from a thread of its own."""

    def __init__(self, store: EventStore, stream: str, metadata: JsonDict, every_s: float = 0.5,
                 batch: int = 200) -> None:
        self.store, self.stream, self.metadata = store, stream, metadata
        self.every_s, self.batch = every_s, batch
        self.appended = 0
        self._pending: deque[NewEvent] = deque()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="track-proxy-writer", daemon=True)

    def start(self) -> FactWriter:
        self._thread.start()
        return self

    @property
    def pending(self) -> int:
        """Facts queued and not appended yet."""
        return len(self._pending)

    def put(self, fact: ApiRequestMetered) -> None:
        """Queue one fact (never blocks on the store)."""
        self._pending.append(fact.to_new_event(metadata=self.metadata))
        if len(self._pending) >= self.batch:
            self._wake.set()

    def flush(self) -> int:
        """Append what is queued now, as one batch; on a store error keep it for the next flush."""
        with self._flush_lock:
            events: list[NewEvent] = []
            while self._pending and len(events) < 5000:
                events.append(self._pending.popleft())
            if not events:
                return 0
            try:
                self.store.append(self.stream, events, expected_version=ANY)
            except TrackerError as exc:
                self._pending.extendleft(reversed(events))
                _LOG.warning("metered facts not appended yet (%d waiting): %s", len(self._pending), exc)
                return 0
            self.appended += len(events)
            return len(events)

    def close(self) -> None:
        """Stop the thread and append everything still queued."""
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        while self._pending and self.flush():
            pass
        if self._pending:
            _LOG.error("%d metered facts could not be appended: the store stayed unreachable", len(self._pending))

    def _loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(self.every_s)
            self._wake.clear()
            while self.flush() >= self.batch:
                pass
