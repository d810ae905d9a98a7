"""Import throughput and memory: 434 runs (< 10 s), 20,000 runs (< 5 min, peak < 500 MB), one 200 MB
trajectory (peak < 200 MB). Each import runs `track import` in a child process and reads its peak RSS.

Usage: python benchmarks/bench_import.py [--small 434] [--large 20000] [--trajectory-mb 200] [--workdir DIR]
                                         [--baseline CHECKOUT] [--rounds N]

With `--baseline` (another checkout of this repository, e.g. `git worktree add ../baseline <commit>`),
every tree is also imported by that checkout's code into its own store, and both figures are printed
side by side from the same run on the same files. With `--rounds N` the large tree is imported N times by
each side, alternating, and the best and median CPU seconds are compared (the machine's load varies).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.big_files import write_big_trajectory  # noqa: E402
from tracker.demo.sample_tree import RunSpec, generate_tree, write_run_folder  # noqa: E402

BASELINE: Path | None = None


CPU_SECONDS: list[float] = []
"""The child's user+system CPU time of each import, in order: on a shared, loaded machine wall time swings by 2x
between identical runs, CPU time by a few per cent, so the side-by-side comparison prints both."""


def timed_import(tree: Path, db: Path, campaign: str, code: Path | None = None,
                 ) -> tuple[float, float, dict]:  # type: ignore[type-arg]
    """Run the real CLI in a child process (of checkout `code`, default this one); return
    (seconds, peak RSS MB, summary JSON); the child's CPU seconds go to CPU_SECONDS."""
    start = time.perf_counter()
    # `python -m` puts the working directory first on sys.path: run in the checkout whose code is measured
    code = code or Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(code)}
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "runners.cli", "--db", f"sqlite:///{db}", "import", str(tree), "--campaign",
             campaign, "--json", "--no-sync"], stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=code,
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS, not the max of all children
        child.returncode = os.waitstatus_to_exitcode(status)
        CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
        seconds = time.perf_counter() - start
        if child.returncode != 0:
            raise SystemExit(f"track import exited {child.returncode}")
        out.seek(0)
        return seconds, usage.ru_maxrss / 1024, json.loads(out.read())


def bench_tree(workdir: Path, runs: int, rounds: int = 1) -> None:
    tree = workdir / f"tree-{runs}"
    start = time.perf_counter()
    generated = generate_tree(tree, runs=runs, seed=runs)
    print(f"generated {len(generated.runs):,} runs in {time.perf_counter() - start:.1f}s "
          f"({sum(f.stat().st_size for f in tree.rglob('*') if f.is_file()) / 1e6:,.0f} MB)")
    sides = [("this", None)] + ([("baseline", BASELINE)] if BASELINE is not None else [])
    cpu: dict[str, list[float]] = {label: [] for label, _ in sides}
    for round_number in range(1, rounds + 1):  # the sides alternate, so a loaded machine weighs on both alike
        for label, code in sides:
            db = workdir / f"events-{runs}-{label}.db"
            for leftover in workdir.glob(f"events-{runs}-{label}.db*"):
                leftover.unlink()
            seconds, peak, summary = timed_import(tree, db, f"bench-{runs}", code)
            cpu[label].append(CPU_SECONDS[-1])
            print(f"[{label}{f' round {round_number}' if rounds > 1 else ''}] import {summary['runs']:,} runs: "
                  f"{seconds:.1f}s ({summary['runs'] / seconds:,.0f} runs/s), CPU {CPU_SECONDS[-1]:.1f}s, "
                  f"peak RSS {peak:,.0f} MB, {summary['events_appended']:,} events, {summary['problems']} problems")
            seconds, peak, summary = timed_import(tree, db, f"bench-{runs}", code)
            print(f"[{label}] re-import (nothing new): {seconds:.1f}s, CPU {CPU_SECONDS[-1]:.1f}s, "
                  f"{summary['events_appended']} events appended")
    if BASELINE is not None:
        print(side_by_side(runs, cpu["this"], cpu["baseline"]))


def side_by_side(runs: int, this: list[float], baseline: list[float]) -> str:
    """Best and median CPU seconds of each side's imports, and this one's change against the baseline."""
    best, base_best = min(this), min(baseline)
    median, base_median = statistics.median(this), statistics.median(baseline)
    return (f"import of {runs:,} runs, CPU s over {len(this)} round(s): this best {best:.1f} / median {median:.1f}, "
            f"baseline best {base_best:.1f} / median {base_median:.1f}: "
            f"{(best / base_best - 1) * 100:+.1f} % (best), {(median / base_median - 1) * 100:+.1f} % (median)")


def bench_big_trajectory(workdir: Path, megabytes: int) -> None:
    tree = workdir / "tree-big-trajectory"
    spec = RunSpec(repo="vllm", item_id="vllm_core-0000", commit="a" * 40, pre_commit="b" * 40, outcome="success",
                   run_timestamp="2025-12-01_09-00-00")
    run_dir = tree / "state/runs/vllm/trae/gpt-5-2025-08-07" / spec.run_timestamp / spec.item_id
    write_run_folder(run_dir, spec)
    sums = write_big_trajectory(run_dir / "trajectory.json", megabytes)
    size = (run_dir / "trajectory.json").stat().st_size / 1e6
    seconds, peak, summary = timed_import(tree, workdir / "events-big.db", "bench-big")
    print(f"import one {size:,.0f} MB trajectory: {seconds:.1f}s, peak RSS {peak:,.0f} MB "
          f"(input tokens summed: {sums['input_tokens']:,})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=434)
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--trajectory-mb", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to measure side by side")
    parser.add_argument("--rounds", type=int, default=1,
                        help="imports of the large tree per side, alternating (best and median are compared)")
    args = parser.parse_args()
    global BASELINE
    BASELINE = args.baseline.resolve() if args.baseline else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="track-bench-import-"))
    try:
        if args.small:
            bench_tree(workdir, args.small)
        if args.trajectory_mb:
            bench_big_trajectory(workdir, args.trajectory_mb)
        if args.large:
            bench_tree(workdir, args.large, args.rounds)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
