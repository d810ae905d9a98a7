"""Event store throughput: batched appends vs a naive one-row-per-transaction insert, and full reads.

Targets (issue 2, on a 2-core machine): append >= 20,000 events/s on SQLite and >= 10,000 events/s
on local PostgreSQL in batches of 100; read 1,000,000 events from position 0 at >= 100,000 events/s.

Usage: python benchmarks/bench_store.py [--events 100000] [--read-events 1000000] [--pg URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from tracker.domain.events import NewEvent
from tracker.eventstore.store import EventStore

PAYLOAD = {"repo": "vllm", "commit": "4283fefc63f0cd0e873a0000c6d07ef7b77e90d3", "input_tokens": 332283,
           "output_tokens": 2188, "status": "error", "category": "tool_output_missing"}


def make_events(n: int) -> list[NewEvent]:
    return [NewEvent("usage.observed", {**PAYLOAD, "n": i}, metadata={"host": "gpu-1"}) for i in range(n)]


def bench_append(store: EventStore, total: int, batch: int) -> float:
    events = make_events(total)
    start = time.perf_counter()
    for i in range(0, total, batch):
        store.append(f"attempt-{i // 1000}", events[i:i + batch])
    return total / (time.perf_counter() - start)


def bench_naive(store: EventStore, total: int) -> float:
    """The baseline: one INSERT, one transaction per event, no batching."""
    start = time.perf_counter()
    for event in make_events(total):
        store.append("naive", [event])
    return total / (time.perf_counter() - start)


def bench_read(store: EventStore) -> tuple[int, float]:
    start = time.perf_counter()
    count = sum(len(batch) for batch in store.read_batches(0, batch_size=10_000))
    return count, count / (time.perf_counter() - start)


def fresh_pg(admin_url: str) -> tuple[str, str]:
    name = f"track_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name, name


def drop_pg(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run_backend(label: str, url: str, events: int, naive_events: int, read_events: int) -> None:
    with EventStore.open(url) as store:
        rate = bench_append(store, events, 100)
        naive = bench_naive(store, naive_events)
        print(f"{label:10s} append, batches of 100: {rate:12,.0f} events/s  ({events:,} events)")
        print(f"{label:10s} naive, 1 per transaction: {naive:10,.0f} events/s  ({naive_events:,} events)"
              f"  -> batched is {rate / naive:.1f}x")
        have = store.count()
        if have < read_events:
            fill_start = time.perf_counter()
            remaining = read_events - have
            chunk = make_events(1000)
            while remaining > 0:
                n = min(1000, remaining)
                store.append(f"fill-{remaining}", [NewEvent(e.event_type, e.payload, metadata=e.metadata)
                                                   for e in chunk[:n]])
                remaining -= n
            print(f"{label:10s} (filled to {read_events:,} events in {time.perf_counter() - fill_start:.1f}s)")
        count, read_rate = bench_read(store)
        print(f"{label:10s} read all from position 0: {read_rate:10,.0f} events/s  ({count:,} events)")
        start = time.perf_counter()
        report = store.verify()
        print(f"{label:10s} verify hash chain: {report.events_checked / (time.perf_counter() - start):,.0f} events/s "
              f"(ok={report.ok})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=5_000)
    parser.add_argument("--read-events", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_backend("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.events, args.naive_events, args.read_events)
    if not args.skip_pg:
        url, name = fresh_pg(args.pg)
        try:
            run_backend("postgres", url, args.events, args.naive_events, args.read_events)
        finally:
            drop_pg(args.pg, name)


if __name__ == "__main__":
    main()
