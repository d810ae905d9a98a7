"""MLflow projection throughput: `track sync` (log_batch, diffed upserts, traces built in memory) vs a naive
fluent-API loop, side by side on the same store.

Targets (issues 4 and 15): project >= 434 attempts with their artifacts and traces into the embedded store in
< 60 s; be at least 4x faster than `mlflow.start_run` / `log_param` / `log_metric` / `set_tag` /
`log_artifact` per value and `mlflow.start_span` per span on the same data; a re-sync with nothing new in
< 2 s. `--no-traces` measures runs and artifacts only.

Usage: python benchmarks/bench_mlflow.py [--campaigns 11] [--no-traces]   (11 x 40 fixture runs = 440 attempts)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

from tracker.domain.pricing import load_price_table  # noqa: E402
from tracker.eventstore.store import EventStore  # noqa: E402
from tracker.ingest.importer import import_tree  # noqa: E402
from tracker.projections.mlflow import artifacts, mapping  # noqa: E402
from tracker.projections.mlflow.runs import _Projection, run_name, sync  # noqa: E402
from tracker.projections.mlflow.traces import Transcript, read_transcript  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def build_store(folder: Path, campaigns: int) -> EventStore:
    store = EventStore.open(f"sqlite:///{folder / 'events.db'}")
    for i in range(campaigns):
        tree = FIXTURES / ("isobench-small-a" if i % 2 == 0 else "isobench-small-b")
        import_tree(store, tree, f"bench-{i:02d}")
    return store


def naive_trace(transcript: Transcript, name: str) -> None:
    """The trajectory the fluent way: one `mlflow.start_span` per span, inside the active run."""
    import mlflow

    with mlflow.start_span(name, span_type="AGENT") as root:
        root.set_inputs({"task": transcript.task})
        for number, call in enumerate(transcript.calls, 1):
            with mlflow.start_span(f"llm call {number}", span_type="CHAT_MODEL") as span:
                span.set_inputs({"last_message": call.prompt})
                span.set_attributes({"mlflow.chat.tokenUsage": call.usage, "model": call.model})
                for tool in call.tool_calls:
                    with mlflow.start_span(tool.name, span_type="TOOL") as child:
                        child.set_inputs({"arguments": tool.arguments})
                        child.set_outputs({"result": tool.result})
                span.set_outputs({"content": call.answer})
        root.set_outputs({"final_result": transcript.final_result})


def naive(store: EventStore, uri: str, traces: bool) -> tuple[int, float]:
    """The same runs, the fluent way: one call per param, metric, tag, artifact file and span."""
    import mlflow

    from tracker.projections.mlflow.client import Tracking

    prices = load_price_table()
    projection = _Projection(store, Tracking(uri), prices, None)  # type: ignore[arg-type]
    projection._load({f"bench-{i:02d}" for i in range(1000)})
    mlflow.set_tracking_uri(uri)
    started = time.perf_counter()
    for stream_id, row in projection.rows.items():
        campaign = projection.campaigns[row["campaign"]]
        mlflow.set_experiment(f"naive/{campaign['agent']}/{campaign['model']}")
        events = store.read_stream(stream_id)
        with mlflow.start_run(run_name=run_name(row, campaign["kind"])):
            for key, value in mapping.attempt_params(row, campaign, campaign["kind"]).items():
                mlflow.log_param(key, value)
            for key, value in mapping.attempt_metrics(row, prices).items():
                mlflow.log_metric(key, value)
            for key, value in projection._attempt_tags(row, campaign, events, None).items():
                mlflow.set_tag(key, value)
            with tempfile.TemporaryDirectory() as tmp:
                staged = artifacts.stage(store, artifacts.run_folder(campaign["source"], row), events, Path(tmp))
                for path in staged.written:
                    mlflow.log_artifact(str(Path(tmp) / path), str(Path(path).parent) if "/" in path else None)
                transcript = read_transcript(Path(tmp) / "trajectory.json") if traces else None
                if transcript is not None:
                    naive_trace(transcript, run_name(row, campaign["kind"]))
    return len(projection.rows), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--campaigns", type=int, default=11)
    parser.add_argument("--no-traces", dest="traces", action="store_false")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = build_store(folder, args.campaigns)
        uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
        (folder / "mlruns").mkdir()
        from mlflow import MlflowClient

        MlflowClient(uri).search_experiments()  # create MLflow's schema outside the timings
        started = time.perf_counter()
        summary = sync(store, uri, traces=args.traces)
        projected = time.perf_counter() - started
        started = time.perf_counter()
        again = sync(store, uri, traces=args.traces)
        idle = time.perf_counter() - started
        naive_uri = f"sqlite:///{folder / 'naive' / 'mlflow.db'}"
        (folder / "naive").mkdir()
        MlflowClient(naive_uri).search_experiments()
        count, naive_s = naive(store, naive_uri, args.traces)
        store.close()
    print(f"attempts projected:        {summary.attempts_touched} (+{summary.summary_runs} summary runs), "
          f"{summary.traces} traces")
    print(f"track sync (log_batch):    {projected:.1f} s  ({summary.attempts_touched / projected:.0f} attempts/s)"
          f"  target < 60 s")
    print(f"naive fluent loop:         {naive_s:.1f} s for {count} attempts")
    print(f"speed-up:                  {naive_s / projected:.1f}x  target >= 4x")
    print(f"re-sync, nothing new:      {idle:.3f} s  target < 2 s  (touched {again.attempts_touched})")


if __name__ == "__main__":
    main()
