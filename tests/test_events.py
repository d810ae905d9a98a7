"""Typed domain events: round trip through the store, and upcasting of an old schema version."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.domain.events import DomainEvent, JsonDict, decode, domain_event, upcaster
from tracker.eventstore.store import EventStore


@domain_event
@dataclass(frozen=True)
class _Measured(DomainEvent):
    TYPE = "test.measured"
    VERSION = 2
    tokens: int
    unit: str


@upcaster("test.measured", 1)
def _v1_to_v2(payload: JsonDict) -> JsonDict:
    # v1 stored thousands of tokens as "ktokens"
    return {"tokens": payload.pop("ktokens") * 1000, "unit": "token"}


def test_old_events_stay_readable(sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        old = _Measured(tokens=0, unit="x").to_new_event()
        old = type(old)(event_type="test.measured", payload={"ktokens": 3}, schema_version=1)
        store.append("s", [old, _Measured(tokens=5, unit="token").to_new_event()])
        decoded = [decode(event) for event in store.read_stream("s")]
    assert decoded == [_Measured(tokens=3000, unit="token"), _Measured(tokens=5, unit="token")]
