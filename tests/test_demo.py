"""`track demo` end to end in a temporary folder: campaigns, MLflow runs and reports, not only its exit code."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_track


def test_demo_does_the_whole_workflow(tmp_path: Path) -> None:
    result = run_track("demo", "--dir", "demo", "--runs", "60", "--json", cwd=tmp_path, timeout=600, process=True)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["imported_runs"] == 60 and out["planned_commits"] > 0
    assert out["rerun_succeeded"] + out["rerun_failed"] == out["planned_commits"]
    assert out["rerun_succeeded"] > 0, "the stand-in fixes most infrastructure failures"

    campaigns = {c["name"]: c for c in json.loads(run_track("campaigns", "--json", cwd=tmp_path).stdout)}
    assert campaigns["demo-original"]["attempts"] == 60 and campaigns["demo-original"]["kind"] == "original"
    rerun = campaigns["demo-rerun"]
    assert rerun["kind"] == "rerun" and rerun["agent_fix_commit"] == "a1c6d41"
    assert rerun["baseline_campaign"] == "demo-original" and rerun["attempts"] == out["planned_commits"]

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("iso-bench/trae/gpt-5")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    attempt_runs = [r for r in runs if r.data.tags.get("track.stream_id", "").startswith("attempt:")]
    assert sum("track.campaign_summary" in r.data.tags for r in runs) == 2
    assert len(attempt_runs) == 60 + out["planned_commits"]
    assert {r.data.params["phase"] for r in attempt_runs} == {"original", "rerun"}
    assert out["compare_url"].startswith("http://127.0.0.1:5000/#/compare-runs?runs=[")
    compared = set(json.loads(out["compare_url"].split("runs=")[1].split("&")[0]))
    commit = next(r.data.params["commit"] for r in attempt_runs if r.info.run_id in compared)
    at_commit = {r.info.run_id for r in attempt_runs if r.data.params["commit"] == commit}
    assert compared == at_commit and len(at_commit) >= 2, "every attempt of the commit, original and rerun"
    key = out["commit_runs_url"].split("viewStateShareKey=")[1].split("&")[0]
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.{key}"])
    assert view["searchFilter"] == f"params.commit = '{commit}'"
    assert "tags.`failure_category`" in view["selectedColumns"]
    assert "mlflow.sharedViewState.track" in experiment.tags

    html = Path(out["html_report"]).read_text()
    assert "<svg" in html and "demo-rerun" in html
    md = Path(out["markdown_report"]).read_text()
    assert "| repo" in md.lower() or "|" in md
    assert run_track("verify", cwd=tmp_path).returncode == 0

    again = run_track("demo", "--dir", "demo", "--runs", "60", "--json", cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rerun_succeeded"] == 0, "a second demo resumes: nothing that succeeded reruns"


def test_the_demo_rebuilds_mlflow_from_the_store_after_its_trees_are_deleted(tmp_path: Path) -> None:
    """Acceptance of issue 15: delete the generated ISO-Bench trees, sync into a fresh tracking store, and every
    attempt still gets its patch and logs, and every attempt with a readable trajectory a trace whose tokens are
    the attempt's."""
    import shutil

    from mlflow import MlflowClient

    from tracker.eventstore.store import EventStore
    from tracker.projections.mlflow.artifacts import latest_capture
    from tracker.projections.mlflow.traces import read_transcript

    result = run_track("demo", "--dir", "demo", "--runs", "60", "--json", cwd=tmp_path, timeout=600, process=True)
    assert result.returncode == 0, result.stderr
    for tree in ("ISO-Bench", "ISO-Bench-rerun"):
        shutil.rmtree(tmp_path / "demo" / tree)
    fresh = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    (tmp_path / "fresh").mkdir()
    synced = run_track("sync", "--mlflow-uri", fresh, "--json", cwd=tmp_path, timeout=600)
    assert synced.returncode == 0, synced.stderr
    summary = json.loads(synced.stdout)
    assert (summary["evidence_gaps"], summary["evidence_from_disk"]) == (0, 0)

    with EventStore.open(f"sqlite:///{tmp_path / 'mlruns' / 'events.db'}", create=False) as store:
        captures = {sid: latest_capture(store.read_stream(sid)) for sid in store.stream_ids("attempt:")}
        traceable = set()
        for sid, capture in captures.items():
            assert capture is not None, f"{sid} has no captured evidence"
            trajectory = next((f for f in capture.files if f["artifact"] == "trajectory.json"), None)
            if trajectory is not None:
                content = store.read_blobs([trajectory["sha256"]]).found[trajectory["sha256"]]
                (tmp_path / "t.json").write_bytes(content)
                traceable |= {sid} if read_transcript(tmp_path / "t.json") is not None else set()
    client = MlflowClient(fresh)
    experiment = client.get_experiment_by_name("iso-bench/trae/gpt-5")
    runs = [r for r in client.search_runs([experiment.experiment_id], max_results=1000)
            if r.data.tags.get("track.stream_id", "").startswith("attempt:")]
    assert len(runs) == len(captures)
    for n, run in enumerate(runs):
        local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / f"a{n}")))
        names = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
        assert {"model_patch.diff.txt", "logs/trae_stdout.txt"} <= names, names
    found = client.search_traces(locations=[experiment.experiment_id], max_results=1000, include_spans=False)
    assert {t.info.tags["track.stream_id"] for t in found} == traceable and traceable
    by_run = {r.info.run_id: r for r in runs}
    reruns = [t for t in found if by_run[t.info.request_metadata["mlflow.sourceRun"]].data.params["phase"] == "rerun"]
    assert reruns
    for trace in reruns:
        metrics = by_run[trace.info.request_metadata["mlflow.sourceRun"]].data.metrics
        assert (trace.info.token_usage["input_tokens"], trace.info.token_usage["output_tokens"]) == (
            metrics["input_tokens"], metrics["output_tokens"])
