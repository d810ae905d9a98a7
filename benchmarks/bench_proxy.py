"""Metering proxy overhead: the same requests to the API double directly and through `track proxy`.

Targets (issue 17, on a 2-core machine): the proxy adds < 5 ms per request at p50 and sustains >= 200
requests/s. The double, the proxy (the real `track proxy` command, writing its facts to a SQLite store)
and the load generator each run in a process of their own, as the agents, `track run` and the API do.
Latency is measured one request at a time (Responses, plain and streamed); throughput with `--clients`
requests in flight for `--seconds`. Every figure is printed beside the direct-to-double one.

Usage: python benchmarks/bench_proxy.py [--requests 400] [--seconds 5] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
DOUBLE = ("import sys, time\nfrom tests.support.fake_openai import FakeOpenAI\n"
          "with FakeOpenAI(usage={'input': 1200, 'cached': 200, 'output': 300, 'reasoning': 120}) as api:\n"
          "    print(api.base_url, flush=True)\n    sys.stdin.read()\n")
BODY = {"model": "gpt-5", "input": "Say OK."}
HEADERS = {"Authorization": "Bearer sk-proj-BENCHKEY0000000000000000000000000000"}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def start_double() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", DOUBLE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=_env(), cwd=ROOT)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def start_proxy(upstream: str, db: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "runners.cli", "--db", f"sqlite:///{db}", "proxy",
                                "--campaign", "bench", "--upstream", upstream, "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"on (http://\S+/v1)", line)
    if not match:
        process.kill()
        raise SystemExit(f"the proxy did not start: {line}{process.stderr.read()}")
    return process, match.group(1)


def latency_ms(base: str, n: int, stream: bool) -> list[float]:
    """One request at a time, each timed from send to the last byte."""
    times = []
    with httpx.Client(timeout=30) as client:
        for i in range(n + 20):
            start = time.perf_counter()
            with client.stream("POST", f"{base}/responses", json={**BODY, "stream": stream}, headers=HEADERS) as r:
                for _ in r.iter_raw():
                    pass
                assert r.status_code == 200
            if i >= 20:  # warm-up: connections opened, code paths warm
                times.append((time.perf_counter() - start) * 1000)
    return times


async def _throughput(base: str, seconds: float, clients: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def one_client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                r = await client.post(f"{base}/responses", json=BODY, headers=HEADERS)
                assert r.status_code == 200
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return done / (time.perf_counter() - start)


def throughput(base: str, seconds: float, clients: int) -> float:
    return asyncio.run(_throughput(base, seconds, clients))


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        double, upstream = start_double()
        proxy, via = start_proxy(upstream, Path(tmp) / "events.db")
        try:
            rows = []
            for label, stream in (("latency p50, Responses", False), ("latency p50, Responses streamed", True)):
                direct, proxied = latency_ms(upstream, args.requests, stream), latency_ms(via, args.requests, stream)
                rows.append((label, "ms", statistics.median(direct), statistics.median(proxied)))
                rows.append((label.replace("p50", "p95"), "ms", p(direct, 95), p(proxied, 95)))
            direct_rps = throughput(upstream, args.seconds, args.clients)
            proxied_rps = throughput(via, args.seconds, args.clients)
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)
            double.kill()
        recorded = _recorded(Path(tmp) / "events.db")
    print(f"{'measure':<36}{'direct':>12}{'via proxy':>12}{'added':>10}   target")
    for label, unit, a, b in rows:
        target = "   < 5 ms added" if label.startswith("latency p50") else ""
        print(f"{label:<36}{a:>10.2f}{unit}{b:>10.2f}{unit}{b - a:>8.2f}{unit}{target}")
    print(f"{f'throughput, {args.clients} in flight':<36}{direct_rps:>8.0f} r/s{proxied_rps:>8.0f} r/s"
          f"{'':>10}   >= 200 r/s via proxy")
    print(f"facts recorded by the proxy: {recorded} (on {os.cpu_count()} cores)")
    added = rows[0][3] - rows[0][2]
    ok = added < 5 and rows[2][3] - rows[2][2] < 5 and proxied_rps >= 200
    print("targets met" if ok else "TARGETS MISSED")


def _recorded(db: Path) -> int:
    from tracker.eventstore.store import EventStore

    with EventStore.open(f"sqlite:///{db}") as store:
        return store.stream_version("meter:bench")


if __name__ == "__main__":
    main()
