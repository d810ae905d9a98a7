"""The tamper-evident hash chain over the event log.

The chain is *global* (one chain in position order), not per stream. Appends are already serialised
to give positions in commit order, so a global chain costs nothing more, and it also exposes what a
per-stream chain cannot: a whole stream deleted, or events moved between streams. Each event's hash
is SHA-256 over the previous hash and the canonical JSON of every stored field.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept as is (orjson: fast and strict).

    The chain hashes the stored text itself, so verification never depends on re-encoding.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def event_hash(
    prev_hash: str,
    *,
    position: int,
    stream_id: str,
    stream_version: int,
    event_id: str,
    event_type: str,
    schema_version: int,
    payload: str,
    metadata: str,
    recorded_at: str,
) -> str:
    """Hash of one stored event, chained to its predecessor's hash."""
    body = canonical_json(
        [position, stream_id, stream_version, event_id, event_type, schema_version, payload, metadata,
         recorded_at]
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()
