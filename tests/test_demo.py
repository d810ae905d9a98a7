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
    key = out["commit_runs_url"].split("viewStateShareKey=")[1]
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
