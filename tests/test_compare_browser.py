"""The HTML report in a real headless Chromium: it renders offline, with its charts, and looks right.

The browser runs with every network path closed (a dead proxy), so a report that needed a CDN
would render without its styles or charts. The screenshot is kept in test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.support.browser import chromium
from tests.support.campaign_builders import build_pair, seed_like
from tracker.analysis.compare import compare
from tracker.analysis.criteria import example_path
from tracker.eventstore.store import EventStore
from tracker.reports import html_report

ARTIFACTS = REPO_ROOT / "test-artifacts"


def _browse(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
    return subprocess.run([chromium(), *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    with EventStore.open(f"sqlite:///{folder / 'events.db'}") as store:
        baseline, rerun = seed_like()
        build_pair(store, baseline, rerun, names=("trae-gpt5-original", "trae-gpt5-a1c6d41"),
                   estimate={"cost_usd": 60.0, "per_repo": {"vllm": 31.0, "sglang": 29.0}})
        result = compare(store, "trae-gpt5-original", "trae-gpt5-a1c6d41", criteria=example_path())
    return html_report.write(result, folder / "report.html")


def test_report_renders_with_its_charts(report: Path, tmp_path: Path) -> None:
    done = _browse(tmp_path / "profile", "--dump-dom", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<title>trae-gpt5-a1c6d41 vs trae-gpt5-original</title>" in dom
    charts = re.findall(r'<svg[^>]*data-chart="([a-z-]+)"', dom)
    assert charts == ["success-rates", "transitions", "category-matrix", "criteria", "cost"]
    # the browser parsed the charts' shapes: bars for every repo and side, error bars, heat-map cells
    success = re.search(r'data-chart="success-rates".*?</svg>', dom, re.S)
    assert success and success.group(0).count('class="bar"') == 9  # 3 sides x (vllm, sglang, all)
    assert success.group(0).count('class="ci"') == 9
    matrix = re.search(r'data-chart="category-matrix".*?</svg>', dom, re.S)
    assert matrix and matrix.group(0).count('class="cell"') >= 6
    assert dom.count('<tr class="fixed">') > 50  # the per-commit table, with transitions marked


def test_report_screenshot_is_kept(report: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "compare-report.png"
    shot.unlink(missing_ok=True)
    done = _browse(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2600",
                   "--hide-scrollbars", report.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1200, 2600)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 16) or []
        # Charts drew: the palette's bar colours are on the page (CSS and SVG applied without network).
        present = {colour for _, colour in colours}
        for bar in ((76, 120, 168), (47, 158, 68), (154, 165, 177)):  # rerun, after, baseline
            assert bar in present, f"colour {bar} missing: the charts did not render"
