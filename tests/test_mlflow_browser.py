"""The MLflow UI as a person sees it, in headless Chromium against `track ui`'s own server command: a commit's
saved view lists its original and rerun attempts with their categories in view, the compare page takes every
attempt of the commit, a trace shows its LLM calls with the attempt's token count, and the patch opens in the
artifact viewer. Screenshots are kept in test-artifacts/mlflow-ui/ (gitignored) for a person to look at."""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import REPO_ROOT
from tests.support.browser import chromium
from tests.support.mlflow_helpers import COMMIT, EXPERIMENT, ORIGINAL_TREE, free_port, rerun_tree, stop, wait_http
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.mlflow import views
from tracker.projections.mlflow.client import compare_route, ui_command
from tracker.projections.mlflow.runs import sync

SHOTS = REPO_ROOT / "test-artifacts" / "mlflow-ui"


@dataclass(frozen=True)
class Ui:
    address: str
    uri: str
    experiment_id: str
    profile: Path

    def page(self, route: str, shot: str, budget_ms: int = 20000) -> str:
        """The text `route` renders (the DOM without its tags, spaces collapsed), and a screenshot under `shot`."""
        url = self.address + route
        flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={self.profile}", f"--virtual-time-budget={budget_ms}", "--window-size=1900,1000"]
        SHOTS.mkdir(parents=True, exist_ok=True)
        subprocess.run([*flags, f"--screenshot={SHOTS / shot}", url], capture_output=True, timeout=180)
        done = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", done.stdout)).split())


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    folder = tmp_path_factory.mktemp("mlflow-ui")
    (folder / "mlruns").mkdir()
    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    with EventStore.open(f"sqlite:///{folder / 'events.db'}") as store:
        import_tree(store, ORIGINAL_TREE, "orig")
        import_tree(store, rerun_tree(folder / "rerun-tree"), "rerun1", kind="rerun", agent_fix_commit="a1c6d41",
                    baseline_campaign="orig")
        sync(store, uri)
    port = free_port()
    with (folder / "ui.log").open("ab") as log:
        server = subprocess.Popen(ui_command(uri, port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", server)
        experiment = MlflowClient(uri).get_experiment_by_name(EXPERIMENT)
        assert experiment is not None
        yield Ui(f"http://127.0.0.1:{port}", uri, experiment.experiment_id, folder / "profile")
    finally:
        stop(server)


def _attempts(ui: Ui) -> list[object]:
    runs = MlflowClient(ui.uri).search_runs([ui.experiment_id], filter_string=f"params.commit = '{COMMIT}'")
    assert {r.data.params["phase"] for r in runs} == {"original", "rerun"}
    return list(runs)


def test_a_commits_saved_view_lists_its_attempts_with_their_categories(ui: Ui) -> None:
    attempts = _attempts(ui)
    dom = ui.page(views.view_route(ui.experiment_id, views.commit_view_key(COMMIT)), "runs-table-commit.png")
    for run in attempts:
        assert run.info.run_name in dom, f"{run.info.run_name} not shown in full"
    assert "failure_category" in dom and "outcome_level" in dom and "total_tokens" in dom  # the view's columns
    assert "tool_output_missing" in dom and "quota_exceeded" in dom
    assert f"{len(attempts)} matching runs" in dom  # the commit's attempts only
    assert "vllm@" not in dom


def test_the_compare_page_takes_every_attempt_of_the_commit(ui: Ui) -> None:
    attempts = _attempts(ui)
    dom = ui.page(compare_route(ui.experiment_id, [r.info.run_id for r in attempts]), "compare-commit.png")
    assert f"Comparing {len(attempts)} Runs" in dom
    for run in attempts:
        assert run.info.run_name in dom


def test_a_trace_shows_its_llm_calls_with_the_attempts_tokens(ui: Ui) -> None:
    run = next(r for r in _attempts(ui) if "track.trace_id" in r.data.tags)
    route = run.data.tags["track.trace_url"]  # relative on the embedded store
    assert route == views.trace_route(ui.experiment_id, run.data.tags["track.trace_id"])
    dom = ui.page(route, "trace.png", budget_ms=40000)
    assert "llm call 1" in dom and "bash" in dom  # LLM calls, tool calls under them
    assert f"{int(run.data.metrics['total_tokens']):,} tokens" in dom  # the trace's total is the run's


def test_the_patch_opens_in_the_artifact_viewer(ui: Ui) -> None:
    rerun = next(r for r in _attempts(ui) if r.data.params["phase"] == "rerun")
    route = f"/#/experiments/{ui.experiment_id}/runs/{rerun.info.run_id}/artifacts/model_patch.diff.txt"
    dom = ui.page(route + "?workflowType=machine_learning", "patch-preview.png")
    assert "+fast = 1" in dom and "-slow = 1" in dom
