"""The HTML report in a real headless Chromium: offline, at 800 px, sortable, linked to a real MLflow UI.

The browser runs with every network path closed but loopback (a dead proxy), so a report that needed a CDN
would render without its styles or figures. A small script appended to a copy of the report plays the
reader: it measures the page's width, clicks table headers and writes what it saw into the DOM, which
`--dump-dom` returns. One commit's MLflow link is opened in the real MLflow UI (a `mlflow server` on
loopback): it must list that commit's runs only. Screenshots (800 px wide, in tiles) are kept in
test-artifacts/compare-report/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.support.browser import chromium
from tests.support.campaign_builders import build_pair, seed_like
from tests.support.mlflow_helpers import free_port, start_mlflow_server, stop
from tracker.analysis.compare import Comparison, compare
from tracker.analysis.criteria import example_path
from tracker.eventstore.store import EventStore
from tracker.reports import html_report, mlflow_links

ARTIFACTS = REPO_ROOT / "test-artifacts" / "compare-report"
WIDTH = 800


def _browse(profile: Path, *args: str, budget_ms: int = 5000, offline: bool = True) -> subprocess.CompletedProcess[str]:
    """Headless Chromium; `offline`: every request, loopback included (`<-loopback>`), goes to a dead proxy."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
    if offline:
        flags += ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
    return subprocess.run([chromium(), *flags, *args], capture_output=True, text=True, timeout=180)


def _played(page: Path, script: str, profile: Path, width: int = WIDTH) -> dict[str, object]:
    """Open a copy of `page` with `script` appended, at `width` px; the JSON the script left in #probe."""
    copy = page.with_name(f"probe-{page.name}")
    copy.write_text(page.read_text().replace("</body>", f"<script>{script}</script></body>"), encoding="utf-8")
    done = _browse(profile, f"--window-size={width},1000", "--dump-dom", copy.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    return dict(json.loads(html.unescape(found.group(1))))


PROBE = """
function column(table, i) {
  return Array.from(document.querySelector('table[data-table="' + table + '"]').tBodies[0].rows,
                    function (r) { return r.cells[i].textContent.trim(); });
}
function click(table, i) {
  var th = document.querySelector('table[data-table="' + table + '"]').tHead.rows[0].cells[i];
  var t0 = performance.now(); th.querySelector('button').click();
  return {ms: performance.now() - t0, sort: th.getAttribute('aria-sort')};
}
var out = {scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
           figures: Array.from(document.querySelectorAll('figure[data-chart]'), function (f) {
             var box = f.querySelector('svg').getBoundingClientRect();
             return [f.dataset.chart, Math.round(box.right), Math.round(box.width)]; })};
out.commitsBefore = column('commits', 1);
out.first = click('commits', 1); out.commitsAsc = column('commits', 1);
out.second = click('commits', 1); out.commitsDesc = column('commits', 1);
out.fixed = click('summary', 4); out.fixedAsc = column('summary', 4);
out.links = Array.from(document.querySelectorAll('table[data-table="commits"] tbody tr'), function (r) {
  var a = r.querySelector('a'); return [r.cells[1].textContent, a ? a.getAttribute('href') : null]; });
var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
"""


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("mlflow-ui")
    port = free_port()
    server = start_mlflow_server(f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts", port, folder / "log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Comparison:
    folder = tmp_path_factory.mktemp("report")
    with EventStore.open(f"sqlite:///{folder / 'events.db'}") as store:
        baseline, rerun = seed_like()
        build_pair(store, baseline, rerun, names=("trae-gpt5-original", "trae-gpt5-a1c6d41"),
                   estimate={"cost_usd": 60.0, "per_repo": {"vllm": 31.0, "sglang": 29.0}})
        return compare(store, "trae-gpt5-original", "trae-gpt5-a1c6d41", criteria=example_path())


@pytest.fixture(scope="module")
def experiment(mlflow_ui: str, comparison: Comparison) -> str:
    """The runs the attempt projection writes for the first two commits (original and rerun), on the server."""
    commits = comparison.commits["commit"].tolist()[:2]
    client = MlflowClient(tracking_uri=mlflow_ui)
    experiment = client.create_experiment("iso-bench/trae/gpt-5")
    for commit in commits:
        for phase in ("original", "rerun"):
            run = client.create_run(experiment, run_name=f"{phase} · ok · vllm@{commit[:8]}")
            client.log_param(run.info.run_id, "commit", commit)
            client.log_param(run.info.run_id, "phase", phase)
            client.set_terminated(run.info.run_id)
    return str(experiment)


def test_report_at_800px_sorts_links_and_screenshots(comparison: Comparison, mlflow_ui: str, experiment: str,
                                                     tmp_path: Path) -> None:
    commits = comparison.commits["commit"].tolist()
    links = mlflow_links.resolve(comparison.baseline, comparison.rerun, mlflow_ui)
    assert links.experiments == {"baseline": experiment, "rerun": experiment}
    page = html_report.write(comparison, tmp_path / "report.html", links=links)
    seen = _played(page, PROBE, tmp_path / "profile")

    assert seen["scrollWidth"] == seen["clientWidth"] <= WIDTH  # the page never scrolls sideways
    charts = [name for name, _, _ in seen["figures"]]  # type: ignore[attr-defined]
    assert charts == ["success-rates", "transitions", "category-matrix", "criteria", "cost", "speedups"]
    assert all(0 < right <= WIDTH for _, right, _ in seen["figures"])  # type: ignore[attr-defined]
    shas = [c[:12] for c in commits]
    assert seen["commitsBefore"] == shas  # by repo, then commit
    assert seen["commitsAsc"] == sorted(shas) and seen["commitsDesc"] == sorted(shas, reverse=True)
    assert (seen["first"]["sort"], seen["second"]["sort"]) == ("ascending", "descending")  # type: ignore[index]
    fixed = [int(v) for v in seen["fixedAsc"]]  # type: ignore[union-attr]
    assert fixed == sorted(fixed) and seen["fixed"]["sort"] == "ascending"  # type: ignore[index]
    by_commit = dict(seen["links"])  # type: ignore[arg-type]
    for commit in commits:
        assert by_commit[commit[:12]] == mlflow_links.commit_runs_url(mlflow_ui, experiment, commit)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-800.png"
    shot.unlink(missing_ok=True)
    done = _browse(tmp_path / "profile", f"--screenshot={shot}", f"--window-size={WIDTH},6400", "--hide-scrollbars",
                   page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        present = {colour for _, colour in rgb.getcolors(maxcolors=1 << 18) or []}
        for bar in ((76, 120, 168), (47, 158, 68), (140, 150, 163)):  # rerun, after, baseline: figures drew
            assert bar in present, f"colour {bar} missing: the figures did not render"
        for i in range(0, image.height, 1200):  # tiles a person can read at full size
            rgb.crop((0, i, WIDTH, min(i + 1200, image.height))).save(ARTIFACTS / f"report-800-{i // 1200}.png")


def test_a_commit_link_opens_its_runs_in_the_mlflow_ui(comparison: Comparison, mlflow_ui: str, experiment: str,
                                                       tmp_path: Path) -> None:
    first, second = comparison.commits["commit"].tolist()[:2]
    url = mlflow_links.commit_runs_url(mlflow_ui, experiment, first)
    done = _browse(tmp_path / "profile", "--window-size=1600,1400", "--dump-dom", url, budget_ms=25000,
                   offline=False)
    dom = html.unescape(done.stdout)
    assert f"original · ok · vllm@{first[:8]}" in dom and f"rerun · ok · vllm@{first[:8]}" in dom, dom[-3000:]
    assert f"vllm@{second[:8]}" not in dom  # the filter from the URL applied: the other commit's runs are hidden
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _browse(tmp_path / "profile", "--window-size=1400,900", f"--screenshot={ARTIFACTS / 'mlflow-commit-runs.png'}",
            url, budget_ms=25000, offline=False)


def test_sorting_a_20k_row_table_is_quick(tmp_path: Path) -> None:
    rows = [[f"repo{i % 3}", f"{(i * 7919) % 20000:,}", f"${(i * 31) % 997 / 7:,.3f}", "–" if i % 50 == 0 else
             f"{i % 13}/{i % 7}"] for i in range(20_000)]
    table = html_report.html_table(["repo", "tokens", "cost", "attempts"], rows, name="big")
    page = tmp_path / "big.html"
    page.write_text(f"<!DOCTYPE html><html><body>{table}<script>{html_report.SORT_SCRIPT}</script></body></html>")
    probe = """
    var th = document.querySelectorAll('table[data-table="big"] th'), out = {};
    function col(i) { return Array.from(document.querySelector('table').tBodies[0].rows,
                                        function (r) { return r.cells[i].textContent; }); }
    var t0 = performance.now(); th[1].querySelector('button').click(); out.numeric = performance.now() - t0;
    out.tokens = col(1);
    t0 = performance.now(); th[2].querySelector('button').click(); th[2].querySelector('button').click();
    out.twice = performance.now() - t0; out.cost = col(2);
    th[3].querySelector('button').click(); out.attempts = col(3);
    var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
    """
    seen = _played(page, probe, tmp_path / "profile")
    tokens = [int(v.replace(",", "")) for v in seen["tokens"]]  # type: ignore[union-attr]
    assert tokens == sorted(tokens)  # numerically, not as text ("10,000" after "9,999")
    cost = [float(v.lstrip("$").replace(",", "")) for v in seen["cost"]]  # type: ignore[union-attr]
    assert cost == sorted(cost, reverse=True)  # the second click reverses
    attempts = seen["attempts"]
    assert attempts[-400:] == ["–"] * 400 and attempts[0].startswith("0/")  # type: ignore[index]
    assert float(seen["numeric"]) < 2000 and float(seen["twice"]) < 4000  # type: ignore[arg-type]
    print(f"sort 20k rows: {float(seen['numeric']):.0f} ms (numeric column)")  # type: ignore[arg-type]
