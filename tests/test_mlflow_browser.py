"""The MLflow UI (served by `track ui` over the embedded store) compares the original and the rerun
attempt of one commit: headless Chromium renders the run-compare page, which must name the commit,
both statuses and the failure category. The screenshot is kept in test-artifacts/."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from tests.conftest import REPO_ROOT, run_track
from tests.support.browser import chromium as chromium_binary
from tests.support.mlflow_helpers import COMMIT, EXPERIMENT, ORIGINAL_TREE, free_port, rerun_tree, stop, wait_http

ARTIFACTS = REPO_ROOT / "test-artifacts"


def chromium(url: str, tmp: Path, *mode: str) -> str:
    """Run headless Chromium on a page, letting its JavaScript run (virtual time) before `mode` acts."""
    result = subprocess.run(
        [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp / 'chromium-profile'}", "--window-size=1600,3000", "--virtual-time-budget=25000",
         *mode, url],
        capture_output=True, text=True, timeout=180,
    )
    return result.stdout


def row_text(dom: str, label: str) -> str:
    """The visible text of the compare table's row whose header is `label`."""
    match = re.search(rf">{re.escape(label)}</th>(.*?)</tr>", dom, re.S)
    assert match, f"no row {label!r} on the page"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def test_compare_page_shows_original_and_rerun_of_one_commit(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'events.db'}"
    assert run_track("--db", db, "import", str(ORIGINAL_TREE), "--campaign", "orig", cwd=tmp_path).returncode == 0
    rerun = run_track("--db", db, "import", str(rerun_tree(tmp_path / "rr")), "--campaign", "rerun1", "--kind",
                      "rerun", "--fix-commit", "a1c6d41", "--baseline", "orig", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    wanted = "params.campaign = 'rerun1' and params.repo = 'sglang'"
    rerun_run = client.search_runs([experiment.experiment_id], wanted)[0]
    baseline_id = rerun_run.data.tags["track.baseline_run_id"]
    baseline_category = client.get_run(baseline_id).data.tags["failure_category"]
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "runners.cli", "ui", "--port", str(port)], cwd=tmp_path,
                          stdout=subprocess.DEVNULL, stderr=(tmp_path / "ui.log").open("wb"), start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", ui)
        runs = json.dumps([baseline_id, rerun_run.info.run_id]).replace(" ", "")
        url = f"http://127.0.0.1:{port}/#/compare-runs?runs={runs}&experiments=[\"{experiment.experiment_id}\"]"
        dom = chromium(url, tmp_path, "--dump-dom")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "mlflow-compare.html").write_text(dom)
        shot = ARTIFACTS / "mlflow-compare.png"
        shot.unlink(missing_ok=True)
        chromium(url, tmp_path, f"--screenshot={shot}")
    finally:
        stop(ui)
    assert COMMIT in dom
    statuses = row_text(dom, "status").split()
    assert sorted(statuses) == ["error", "success"], statuses
    categories = row_text(dom, "failure_category").split()
    assert sorted(categories) == sorted([baseline_category, "none"]) and baseline_category != "none"
    assert shot.exists() and shot.stat().st_size > 10_000
