"""Child-process bodies for the multi-process store tests (importable under the spawn start method)."""

from __future__ import annotations

import time

from tracker.domain.events import NewEvent
from tracker.eventstore.store import EventStore


def append_stream(url: str, stream_id: str, batches: int, batch_size: int) -> None:
    """Append `batches` batches to one stream, each at the version this writer last saw."""
    store = EventStore.open(url)
    version = 0
    for b in range(batches):
        events = [NewEvent("test.counted", {"writer": stream_id, "n": b * batch_size + i}) for i in range(batch_size)]
        version = store.append(stream_id, events, expected_version=version).stream_version
    store.close()


def tail(url: str, expected_total: int, out_path: str, deadline_s: float = 120) -> None:
    """Tail the log by position, as a projection would, and write every position seen."""
    store = EventStore.open(url)
    seen: list[int] = []
    position = 0
    stop = time.monotonic() + deadline_s
    while len(seen) < expected_total and time.monotonic() < stop:
        got = False
        for batch in store.read_batches(position, batch_size=257):
            seen.extend(event.position for event in batch)
            position = batch[-1].position
            got = True
        if not got:
            time.sleep(0.005)
    with open(out_path, "w") as handle:
        handle.write("\n".join(str(p) for p in seen))
    store.close()
