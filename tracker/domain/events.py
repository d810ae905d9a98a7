"""Event envelopes and typed domain events, with a schema version and an upcasting hook.

`NewEvent` is what callers append; `RecordedEvent` is what the store gives back. Domain events are
frozen dataclasses registered by type name; `decode` upcasts an old payload step by step to the
current schema version, so events written by an older `track` stay readable forever.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypeVar

from tracker import __version__
from tracker.classify.redaction import redact_value

JsonDict = dict[str, Any]
Upcaster = Callable[[JsonDict], JsonDict]

EVENT_ID_NAMESPACE = uuid.UUID("7b0e4c52-4f0b-4f64-9a39-2d8f3f1f6a10")


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended to a stream."""

    event_type: str
    payload: JsonDict
    schema_version: int = 1
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    metadata: JsonDict = field(default_factory=dict)


class RecordedEvent(NamedTuple):
    """An event as stored: with its global position, stream version and chain hash.

    A NamedTuple rather than a frozen dataclass: replays build millions of these, and a tuple is
    built in C (immutable all the same).
    """

    position: int
    stream_id: str
    stream_version: int
    event_id: str
    event_type: str
    schema_version: int
    payload: JsonDict
    metadata: JsonDict
    recorded_at: str
    prev_hash: str
    hash: str


def deterministic_event_id(*parts: object) -> str:
    """A UUID derived from what an event says, so a retried import re-creates the same id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(str(part) for part in parts)))


def default_metadata(**extra: Any) -> JsonDict:
    """Who and where: host, user, tool version, process; plus correlation/causation ids if given."""
    try:
        user = getpass.getuser()
    except Exception:  # no user database entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    meta: JsonDict = {"host": socket.gethostname(), "user": user, "tool_version": __version__, "pid": os.getpid()}
    meta.update({key: value for key, value in extra.items() if value is not None})
    return meta


class DomainEvent:
    """Base of typed domain events: subclasses are frozen dataclasses with TYPE and VERSION."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def to_dict(self) -> JsonDict:
        """The event's fields as they are (no redaction: for a decoded, already stored event)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_payload(self) -> JsonDict:
        """The event's fields, with secrets redacted: the last boundary before the append-only log."""
        # a shallow read of the fields: redact_value builds fresh containers all the way down anyway
        # (payloads hold plain JSON values, never nested dataclasses), so asdict's deep copy is not needed
        payload: JsonDict = redact_value({name: getattr(self, name) for name in _field_names(type(self))})
        return payload

    def to_new_event(self, event_id: str | None = None, metadata: JsonDict | None = None) -> NewEvent:
        return NewEvent(
            event_type=self.TYPE,
            payload=self.to_payload(),
            schema_version=self.VERSION,
            event_id=event_id or str(uuid.uuid4()),
            metadata=metadata or {},
        )


_REGISTRY: dict[str, type[DomainEvent]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}

E = TypeVar("E", bound=type[DomainEvent])


def domain_event(cls: E) -> E:
    """Class decorator: register a domain event type so stored events decode to it."""
    if cls.TYPE in _REGISTRY and _REGISTRY[cls.TYPE] is not cls:
        raise ValueError(f"event type {cls.TYPE!r} registered twice")
    _REGISTRY[cls.TYPE] = cls
    return cls


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that turns a payload of `from_version` into `from_version + 1`."""

    def register(func: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = func
        return func

    return register


def upcast(event_type: str, schema_version: int, payload: JsonDict) -> tuple[int, JsonDict]:
    """Apply upcasters until the payload is at the registered class's current version."""
    target = _REGISTRY[event_type].VERSION if event_type in _REGISTRY else schema_version
    version = schema_version
    while version < target:
        step = _UPCASTERS.get((event_type, version))
        if step is None:
            raise ValueError(f"no upcaster for {event_type} v{version} -> v{version + 1}")
        payload = step(dict(payload))
        version += 1
    return version, payload


def decode(event: RecordedEvent) -> DomainEvent:
    """The typed domain event for a stored event (upcast to the current schema first)."""
    cls = _REGISTRY.get(event.event_type)
    if cls is None:
        raise KeyError(f"unknown event type {event.event_type!r}")
    _, payload = upcast(event.event_type, event.schema_version, event.payload)
    names = _field_names(cls)
    return cls(**{key: value for key, value in payload.items() if key in names})


def _field_names(cls: type[DomainEvent]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return names


def is_registered(event_type: str) -> bool:
    return event_type in _REGISTRY


_FIELD_NAMES: dict[type[DomainEvent], tuple[str, ...]] = {}
