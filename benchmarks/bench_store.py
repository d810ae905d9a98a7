"""Event store throughput: batched appends vs a naive one-row-per-transaction insert, and full reads.

Targets (issue 2, on a 2-core machine): append >= 20,000 events/s on SQLite and >= 10,000 events/s
on local PostgreSQL in batches of 100; read 1,000,000 events from position 0 at >= 100,000 events/s.

Usage: python benchmarks/bench_store.py [--events 100000] [--read-events 1000000] [--pg URL] [--baseline CHECKOUT]

With `--baseline` (another checkout, e.g. `git worktree add ../baseline <commit>`) the same figures are measured
with that checkout's store in a child process, and each is printed beside this one's (anchors are written per
append batch now: the append figures show what that costs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

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


def run_backend(label: str, url: str, events: int, naive_events: int, read_events: int,
                quiet: bool = False) -> dict[str, float]:
    """Measure one backend; print its figures unless `quiet`; return them by name (events/s)."""
    figures: dict[str, float] = {}

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    with EventStore.open(url) as store:
        figures["append"] = rate = bench_append(store, events, 100)
        figures["naive"] = naive = bench_naive(store, naive_events)
        say(f"{label:10s} append, batches of 100: {rate:12,.0f} events/s  ({events:,} events)")
        say(f"{label:10s} naive, 1 per transaction: {naive:10,.0f} events/s  ({naive_events:,} events)"
            f"  -> batched is {rate / naive:.1f}x")
        fill(store, read_events, label, say)
        count, figures["read"] = bench_read(store)
        say(f"{label:10s} read all from position 0: {figures['read']:10,.0f} events/s  ({count:,} events)")
        start = time.perf_counter()
        report = store.verify()
        figures["verify"] = report.events_checked / (time.perf_counter() - start)
        say(f"{label:10s} verify hash chain: {figures['verify']:,.0f} events/s (ok={report.ok})")
    return figures


def fill(store: EventStore, read_events: int, label: str, say: Any) -> None:
    have = store.count()
    if have >= read_events:
        return
    fill_start = time.perf_counter()
    remaining = read_events - have
    chunk = make_events(1000)
    while remaining > 0:
        n = min(1000, remaining)
        store.append(f"fill-{remaining}", [NewEvent(e.event_type, e.payload, metadata=e.metadata) for e in chunk[:n]])
        remaining -= n
    say(f"{label:10s} (filled to {read_events:,} events in {time.perf_counter() - fill_start:.1f}s)")


def measure(args: argparse.Namespace, quiet: bool) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run_backend("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.events,
                                        args.naive_events, args.read_events, quiet)
    if not args.skip_pg:
        url, name = fresh_pg(args.pg)
        try:
            results["postgres"] = run_backend("postgres", url, args.events, args.naive_events, args.read_events, quiet)
        finally:
            drop_pg(args.pg, name)
    return results


def baseline_figures(checkout: Path, argv: list[str]) -> dict[str, dict[str, float]]:
    """The same measurement with the baseline checkout's code, in a child process (its own imports)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv, "--json"], env=env, cwd=checkout,
                         capture_output=True, text=True, check=True)
    figures: dict[str, dict[str, float]] = json.loads(out.stdout)
    return figures


def print_side_by_side(this: dict[str, dict[str, float]], baseline: dict[str, dict[str, float]]) -> None:
    print(f"{'':10s} {'figure (events/s)':22s} {'this':>12s} {'baseline':>12s} {'change':>8s}")
    for backend, figures in this.items():
        for name, value in figures.items():
            base = baseline.get(backend, {}).get(name)
            change = f"{(value / base - 1) * 100:+7.1f}%" if base else "       -"
            shown = f"{base:12,.0f}" if base else f"{'-':>12s}"
            print(f"{backend:10s} {name:22s} {value:12,.0f} {shown} {change}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=5_000)
    parser.add_argument("--read-events", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to measure side by side")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args()
    os.environ.setdefault("TRACK_STATE_DIR", tempfile.mkdtemp(prefix="track-bench-state-"))  # PG anchors: not ~
    if args.json:
        print(json.dumps(measure(args, quiet=True)))
        return
    this = measure(args, quiet=False)
    if args.baseline is not None:
        argv = [a for a in sys.argv[1:] if a != "--json"]
        skip = argv.index("--baseline")
        print_side_by_side(this, baseline_figures(args.baseline.resolve(), argv[:skip] + argv[skip + 2:]))


if __name__ == "__main__":
    main()
