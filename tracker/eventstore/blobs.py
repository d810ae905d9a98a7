"""Evidence blobs: the redacted files behind an attempt, stored once in the store, by content hash.

Kept in the database (table `evidence_blobs`, migration 0005), not on one host's disk, so every host of a
shared PostgreSQL store and a rebuilt MLflow read the same evidence, and a cleaned bench tree loses nothing.
A blob is addressed by the SHA-256 of its (redacted) content and is insert-only like the log; the
`evidence.captured` event that names the address is in the hash chain. Reading checks the address
again: a blob altered underneath no longer matches and is reported as corrupt, never handed out.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from tracker.eventstore.schema import evidence_blobs

COMPRESSION = "zlib"


@dataclass(frozen=True)
class Blob:
    """One captured file: its address, its size and its compressed content."""

    sha256: str
    size: int
    content: bytes
    """zlib-compressed."""


@dataclass(frozen=True)
class BlobRead:
    """What the store gave back for the addresses asked: contents, and the addresses it could not give."""

    found: dict[str, bytes]
    missing: list[str]
    corrupt: list[str]
    """Stored, but the content no longer hashes to its address (changed underneath)."""


def put_many(connection: Connection, blobs: Iterable[Blob], *, stored_at: str) -> None:
    """Insert the blobs not stored yet, inside the caller's write transaction (one statement; a blob another
    host stored first is skipped by its address)."""
    rows = {b.sha256: (b.sha256, b.size, COMPRESSION, b.content, stored_at) for b in blobs}
    if rows:
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        connection.exec_driver_sql(
            f"INSERT INTO evidence_blobs (sha256, bytes, compression, content, stored_at) "
            f"VALUES ({', '.join([mark] * 5)}) ON CONFLICT (sha256) DO NOTHING", list(rows.values()))


def get_many(connection: Connection, addresses: Iterable[str]) -> BlobRead:
    """The contents at these addresses, each checked against its address."""
    wanted = sorted(set(addresses))
    found: dict[str, bytes] = {}
    corrupt: list[str] = []
    if wanted:
        query = select(evidence_blobs.c.sha256, evidence_blobs.c.compression, evidence_blobs.c.content).where(
            evidence_blobs.c.sha256.in_(wanted))
        for sha, compression, content in connection.execute(query).all():
            data = _decompressed(compression, bytes(content))
            if data is None or hashlib.sha256(data).hexdigest() != sha:
                corrupt.append(sha)
            else:
                found[sha] = data
    seen = set(found) | set(corrupt)
    return BlobRead(found, [sha for sha in wanted if sha not in seen], sorted(corrupt))


def _decompressed(compression: str, content: bytes) -> bytes | None:
    if compression != COMPRESSION:
        return None
    try:
        return zlib.decompress(content)
    except zlib.error:
        return None
