"""Comparison speed: two campaigns of 20,000+ attempts each, from the store (warm), and their reports.

Targets (issue 6): `compare` under 2 s; the HTML report (matplotlib figures included) under 5 s. The
campaigns are built the way the tests build theirs (tests/campaign_builders.py: domain events appended
straight to the store, one stream per attempt), shaped like the real rerun (the rerun retries the baseline's failures).

Usage: python benchmarks/bench_compare.py [--commits 10000] [--attempts 2] [--db URL] [--repeat 5]
Pass --db to keep the built store (an existing store with the campaigns is reused as it is).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.campaign_builders import add_attempts, create_campaign, record_plan, seed_like  # noqa: E402
from tracker.analysis.compare import compare  # noqa: E402
from tracker.analysis.criteria import example_path  # noqa: E402
from tracker.analysis.side_by_side import compare_many  # noqa: E402
from tracker.eventstore.store import EventStore  # noqa: E402
from tracker.projections.read_model import fold  # noqa: E402
from tracker.projections.read_model.queries import campaign_exists  # noqa: E402
from tracker.reports import figures, html_report, markdown  # noqa: E402
from tracker.reports import side_by_side as side_report  # noqa: E402
from tracker.reports.export import export  # noqa: E402

BASELINE, RERUN = "bench-original", "bench-rerun"


def build(store: EventStore, commits: int, attempts: int) -> None:
    per_repo = commits // 2
    baseline, rerun = seed_like(failed={"vllm": per_repo, "sglang": commits - per_repo},
                                succeeded={"vllm": per_repo // 10, "sglang": (commits - per_repo) // 10},
                                attempts=attempts)
    create_campaign(store, BASELINE, "original")
    create_campaign(store, RERUN, "rerun", baseline=BASELINE, fix_commit="a1c6d41")
    record_plan(store, RERUN, {"cost_usd": 9000.0, "per_repo": {"vllm": 4500.0, "sglang": 4500.0}})
    started = time.perf_counter()
    for name, items in ((BASELINE, baseline), (RERUN, rerun)):
        for i in range(0, len(items), 2000):
            add_attempts(store, name, items[i:i + 2000], catch_up=False)
            print(f"  {name}: {min(i + 2000, len(items)):,}/{len(items):,} attempts appended", file=sys.stderr)
    fold.catch_up(store)
    print(f"built {len(baseline):,} + {len(rerun):,} attempts ({store.last_position():,} events) "
          f"in {time.perf_counter() - started:.1f}s")


def timed(label: str, func: Callable[[], Any], repeat: int) -> Any:
    times, cpu, result = [], [], None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = func()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    print(f"{label:<32} median {statistics.median(times):6.3f}s  min {min(times):6.3f}s  max {max(times):6.3f}s  "
          f"cpu median {statistics.median(cpu):6.3f}s ({repeat} runs)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10_000, help="failed baseline commits (rerun covers them)")
    parser.add_argument("--attempts", type=int, default=2, help="attempts per commit per campaign")
    parser.add_argument("--db", default=None, help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    url = args.db or f"sqlite:///{folder / 'events.db'}"
    with EventStore.open(url) as store:
        if not campaign_exists(store, RERUN):
            build(store, args.commits, args.attempts)
        compare(store, BASELINE, RERUN)  # warm: read model caught up, price table and imports loaded
        result = timed("compare (from the store, warm)", lambda: compare(
            store, BASELINE, RERUN, criteria=example_path()), args.repeat)
        counts = {name: int(n) for name, n in zip(result.cost["repo"], result.cost["rerun_attempts"], strict=True)}
        print(f"  {len(result.commits):,} commits; rerun attempts {counts}; baseline attempts "
              f"{int(result.cost['baseline_attempts'].iloc[-1]):,}")
        timed("HTML report (render + write)", lambda: html_report.write(result, folder / "report.html"), args.repeat)
        timed("compare + HTML report", lambda: html_report.write(
            compare(store, BASELINE, RERUN, criteria=example_path()), folder / "report.html"), args.repeat)
        print(f"  report.html: {(folder / 'report.html').stat().st_size / 1e6:.1f} MB")
        timed("figures (matplotlib, 6)", lambda: figures.figures(result), args.repeat)
        timed("HTML + PNG/PDF figure files", lambda: export(result, "html", folder / "paper.html"), args.repeat)
        timed("LaTeX tables", lambda: export(result, "tex", folder / "tables.tex"), args.repeat)
        timed("Markdown report", lambda: markdown.render(result), args.repeat)
        timed("CSV tables", lambda: export(result, "csv", folder / "csv"), args.repeat)
        timed("Parquet tables", lambda: export(result, "parquet", folder / "parquet"), args.repeat)
        timed("JSON document", lambda: export(result, "json", folder / "comparison.json"), args.repeat)
        side = timed("side by side (2 campaigns, bootstrap)", lambda: compare_many(store, [BASELINE, RERUN]),
                     args.repeat)
        print(f"  {len(side.commits) // 2:,} shared commits")
        timed("side by side HTML", lambda: side_report.render_html(side), args.repeat)


if __name__ == "__main__":
    main()
