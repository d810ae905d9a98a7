"""How much `track run` itself costs: per-item overhead, parallel throughput, live log parsing speed.

    python benchmarks/bench_run.py

1. 40 items, 1 worker, a stand-in bench that takes 0 s: runner overhead per item = (wall time - time
   inside the agent processes) / items (claims, events, reading and classifying the run folder).
2. 40 items, 4 workers, a stand-in that sleeps 1 s per item: total wall time (target < 15 s).
3. Log parsing: lines per second through redaction + parser + log file, in-process and from a real
   child process printing 200,000 lines (target >= 50,000 lines/s).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tracker.demo.standin_bench import lay_out_bench_root  # noqa: E402
from tracker.domain.import_events import CampaignCreated  # noqa: E402
from tracker.eventstore.store import EventStore  # noqa: E402
from tracker.ingest.importer import ensure_campaign  # noqa: E402
from tracker.rerun.execution import RunConfig, run_campaign  # noqa: E402
from tracker.rerun.process import AgentProcess, LineParser  # noqa: E402


def _plan(path: Path, n: int) -> None:
    items = [{"item_id": f"vllm_core-{i:04d}", "human": hashlib.sha1(str(i).encode()).hexdigest(), "pre": None}
             for i in range(n)]
    path.write_text(json.dumps({"repo": "repos/vllm", "task_id": "vllm_core", "items": items}))


def _campaign(tmp: Path, n: int, workers: int, sleep: float) -> tuple[float, float, int]:
    url = f"sqlite:///{tmp / 'events.db'}"
    _plan(tmp / "plan.json", n)
    lay_out_bench_root(tmp / "bench")  # laid out like the real ISO-Bench checkout
    config = RunConfig(campaign="bench", baseline="orig", fix_commit="a1c6d41", bench_root=tmp / "bench",
                       bench_module="tracker.demo.standin_bench", log_dir=tmp / "logs", workers=workers,
                       env={"PYTHONPATH": str(ROOT), "STANDIN_SLEEP": str(sleep)})
    with EventStore.open(url) as store:
        ensure_campaign(store, CampaignCreated(name="orig", kind="original", agent="trae", model="gpt-5"), {})
        started = time.perf_counter()
        result = run_campaign(store, [tmp / "plan.json"], config)
        wall = time.perf_counter() - started
        inside = sum(e.payload["wall_time_s"] for e in store.read_prefix("attempt:bench:")
                     if e.event_type == "attempt.finished")
    return wall, inside, result.succeeded


def overhead() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wall, inside, ok = _campaign(Path(tmp), 40, 1, 0.0)
    per_item = (wall - inside) / 40
    print(f"runner overhead: 40 items (0 s agent, 1 worker) in {wall:.2f} s, {inside:.2f} s inside the agent "
          f"processes -> {per_item * 1000:.0f} ms per item (target < 100 ms); {ok} succeeded")


def parallel() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wall, inside, ok = _campaign(Path(tmp), 40, 4, 1.0)
    print(f"parallel: 40 items (1 s agent, 4 workers) in {wall:.2f} s (target < 15 s; ideal 10 s); {ok} succeeded")


def parsing() -> None:
    line = ("2025-12-01 09:12:44,000 - bench.prepare - INFO - TRAE STDOUT: step 17: running bash tool in the "
            "sandbox, nothing to see here\n")
    special = ("2025-12-01 09:12:44,000 - bench.prepare - WARNING - TRAE STDERR: OpenAI API call failed: "
               "openai.RateLimitError: Error code: 429 - rate_limit_exceeded. Will sleep for 12 seconds\n")
    lines = [special if i % 100 == 0 else line for i in range(500_000)]
    from tracker.classify.redaction import redact

    parser = LineParser()
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.txt", "w") as log:
        started = time.perf_counter()
        for text in lines:
            clean = redact(text)
            log.write(clean)
            parser.feed(clean)
        seconds = time.perf_counter() - started
    print(f"log parsing in-process: {len(lines) / seconds:,.0f} lines/s (redact + parse + write; target >= 50,000)")
    with tempfile.TemporaryDirectory() as tmp:
        lay_out_bench_root(Path(tmp))
        plan = Path(tmp) / "plan.json"
        _plan(plan, 1)
        command = [sys.executable, "-m", "tracker.demo.standin_bench", "prepare", "tasks/vllm.yaml", "--from-plan",
                   str(plan), "--bench-cfg", "bench.yaml"]
        process = AgentProcess(command, Path(tmp), Path(tmp) / "out.log", LineParser(),
                               env={"PYTHONPATH": str(ROOT), "STANDIN_LINES": "200000"})
        result = process.run()
    print(f"log parsing from a child process: {result.live.lines:,} lines in {result.wall_time_s:.2f} s = "
          f"{result.live.lines / result.wall_time_s:,.0f} lines/s (the child's own printing included)")


if __name__ == "__main__":
    overhead()
    parallel()
    parsing()
