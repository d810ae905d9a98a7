"""Reading a whole store in position order: what tests check, never what the tool does."""

from __future__ import annotations

from collections.abc import Iterator

from tracker.domain.events import RecordedEvent
from tracker.eventstore.store import EventStore


def read_all(store: EventStore, from_position: int = 0, batch_size: int = 5000) -> Iterator[RecordedEvent]:
    for batch in store.read_batches(from_position, batch_size):
        yield from batch
