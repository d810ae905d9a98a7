"""Every `track compare --format` round-trips, through the library and through the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from runners.cli import cli
from tests.conftest import run_track
from tests.support import tables
from tests.support.campaign_builders import build_pair
from tests.test_compare import BASELINE, ESTIMATE, RERUN
from tracker.analysis.compare import SCHEMAS, Comparison, compare
from tracker.analysis.criteria import example_path
from tracker.errors import TrackerError
from tracker.eventstore.store import EventStore
from tracker.reports import charts, display, html_report, markdown
from tracker.reports.export import export


@pytest.fixture
def db(sqlite_url: str) -> str:
    with EventStore.open(sqlite_url) as store:
        build_pair(store, BASELINE, RERUN, estimate=ESTIMATE)
    return sqlite_url


@pytest.fixture
def known(db: str) -> Comparison:
    with EventStore.open(db) as store:
        return compare(store, "orig", "rerun", criteria=example_path())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_files_load_back_into_the_same_frames(known: Comparison, tmp_path: Path, fmt: str) -> None:
    paths = export(known, fmt, tmp_path / "out").paths
    assert sorted(p.name for p in paths) == sorted(f"{name}.{fmt}" for name in SCHEMAS)
    for path in paths:
        pd.testing.assert_frame_equal(tables.read_table(path), known.tables()[path.stem])
    single = export(known, fmt, tmp_path / f"commits-only.{fmt}").paths
    assert [p.name for p in single] == [f"commits-only.{fmt}"]
    pd.testing.assert_frame_equal(tables.read_table(single[0], "commits"), known.commits)


def test_json_loads_back_into_the_same_frames(known: Comparison) -> None:
    text = export(known, "json").text
    assert text is not None
    for name, frame in tables.tables_from_json(text).items():
        pd.testing.assert_frame_equal(frame, known.tables()[name])
    doc = json.loads(text)
    assert doc["estimate"] == ESTIMATE and doc["rerun"]["agent_fix_commit"] == "a1c6d41"
    assert doc["meta"]["best_attempt_rule"].startswith("success beats failure")


def test_markdown_tables_say_what_the_frames_say(known: Comparison) -> None:
    text = markdown.render(known)
    for heading, table in (("Success per repo", display.summary(known)), ("Cost", display.cost(known)),
                           ("Success criteria", display.criteria(known)), ("Commits", display.commits(known)),
                           ("Failure category transitions (baseline → rerun)", display.transition_matrix(known))):
        headers, rows = tables.parse_table(text, heading)
        assert (headers, rows) == (table[0], table[1]), heading
    headers, rows = tables.parse_table(text, "Success per repo")
    overall = dict(zip(headers, rows[-1], strict=True))
    assert overall["before (baseline)"] == "3/7 = 42.9% [15.8%, 75.0%]"
    assert overall["fixed"] == "1" and overall["McNemar p (exact)"] == "1.000"
    assert "| quota_exceeded |" in text  # a category name reaches the report as it is


def test_html_is_self_contained_with_its_charts(known: Comparison) -> None:
    page = html_report.render(known)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page.lower()
    external = re.findall(r'(?:src|href)\s*=\s*"([^"]+)"', page)
    assert external == []  # no stylesheet, image or script fetched from anywhere
    assert "@import" not in page and "url(" not in page
    charts = re.findall(r'data-chart="([a-z-]+)"', page)
    assert charts == ["success-rates", "transitions", "category-matrix", "criteria", "cost"]
    commit_rows = re.search(r'data-table="commits".*?<tbody>(.*?)</tbody>', page, re.S)
    assert commit_rows and commit_rows.group(1).count("<tr") == len(known.commits)


def test_html_escapes_what_it_shows(known: Comparison) -> None:
    known.notes.append("<img src=x onerror=alert(1)>")
    page = html_report.render(known)
    assert "<img" not in page and "&lt;img src=x" in page


def _cli(db: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    """The real command in-process (Click's runner); library errors are re-raised as the CLI's exit 2."""
    result = CliRunner().invoke(cli, ["--db", db, "compare", "orig", "rerun", "--no-mlflow", *args])
    if isinstance(result.exception, TrackerError):
        return 2, result.stdout, f"error: {result.exception}"
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_every_format_round_trips(db: str, known: Comparison, tmp_path: Path) -> None:
    criteria = ("--criteria", str(example_path()))
    code, out, err = _cli(db, *criteria, "--json", cwd=tmp_path)
    assert code == 1, err  # the tiny rerun is below every minimum of the seed's criteria
    assert "below the criteria's minimum: vllm, sglang, all" in err
    for name, frame in tables.tables_from_json(out).items():
        pd.testing.assert_frame_equal(frame, known.tables()[name])
    code, out_flag, _ = _cli(db, *criteria, "--json", cwd=tmp_path)
    assert json.loads(out_flag)["tables"] == json.loads(out)["tables"]

    for fmt in ("csv", "parquet"):
        code, _, err = _cli(db, "--format", fmt, "--out", str(tmp_path / fmt), cwd=tmp_path)
        assert code == 0, err
        for name in ("commits", "summary", "transitions", "cost"):
            pd.testing.assert_frame_equal(tables.read_table(tmp_path / fmt / f"{name}.{fmt}"), known.tables()[name])
    code, out, _ = _cli(db, "--format", "csv", cwd=tmp_path)
    (tmp_path / "stdout.csv").write_text(out)
    pd.testing.assert_frame_equal(tables.read_table(tmp_path / "stdout.csv", "commits"), known.commits)

    code, out, _ = _cli(db, *criteria, "--format", "md", cwd=tmp_path)
    assert tables.parse_table(out, "Cost") == display.cost(known)
    code, _, err = _cli(db, *criteria, "--format", "html", "--out", str(tmp_path / "r" / "report.html"), cwd=tmp_path)
    page = (tmp_path / "r" / "report.html").read_text()
    assert f"wrote {tmp_path / 'r' / 'report.html'}" in err
    assert page.count("<svg") == 5 and known.commits["commit"].iloc[0][:12] in page

    code, out, _ = _cli(db, cwd=tmp_path)
    assert code == 0 and "The rerun fixed 1 of 3 commits that had failed, and 1 of 3 that had succeeded " in out
    assert re.search(r"^vllm\s+" + known.commits[known.commits.repo == "vllm"]["commit"].iloc[0][:12], out, re.M)


def test_cli_errors_are_one_line_with_exit_2(db: str, tmp_path: Path) -> None:
    done = run_track("--db", db, "compare", "orig", "missing", "--no-mlflow", cwd=tmp_path, process=True)
    assert done.returncode == 2 and done.stderr.strip().startswith("error: no campaign named 'missing'")
    assert "Traceback" not in done.stderr and done.stdout == ""
    code, _, err = _cli(db, "--format", "parquet", cwd=tmp_path)
    assert code == 2 and err.strip() == (
        "error: --format parquet needs --out (a folder, or a file name ending in .parquet)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("repos: {vllm: {minimum: 9, target: 3}}")
    code, _, err = _cli(db, "--criteria", str(bad), cwd=tmp_path)
    assert code == 2 and "must not decrease" in err and "Traceback" not in err
    code, _, err = _cli(db, "--format", "html", "--out", str(tmp_path), cwd=tmp_path)
    assert code == 2 and "is a folder" in err
    code, _, err = _cli(db, "--format", "xml", cwd=tmp_path)
    assert code == 2 and "xml" in err


def test_markdown_table_escapes_cells_and_right_aligns_numbers() -> None:
    text = markdown.table(["repo", "cost", "rate"], [["a|b", "$1,234.50", "3/5"], ["multi\nline", "–", "-2"]])
    assert text.splitlines() == ["| repo | cost | rate |", "|---|---:|---:|", "| a\\|b | $1,234.50 | 3/5 |",
                                 "| multi line | – | -2 |"]
    assert markdown.table([], []) == "_none_"
    assert markdown.table(["n"], []).splitlines()[1] == "|---|"  # no rows: nothing says the column is numeric


def test_cost_chart_marks_a_missing_amount_and_small_amounts_in_cents() -> None:
    frame = pd.DataFrame({"repo": ["vllm", "all"], "rerun_cost_usd": [1.5, float("nan")], "estimate_usd": [None, 2.0]})
    svg = charts.cost(frame)
    assert svg.count('class="bar"') == 2 and svg.count(">none</text>") == 2
    assert ">$2.00</text>" in svg and ">$0.50</text>" in svg  # peak under $20: ticks in cents
    assert "vllm actual: $1.50" in svg and "all estimate: $2.00" in svg
    assert ">$20</text>" in charts.cost(frame.assign(estimate_usd=[None, 20.0]))  # whole dollars from $20


def test_category_matrix_cells_count_and_shade() -> None:
    matrix = pd.DataFrame([[0, 3], [5, 0]], index=["quota_exceeded", "none"], columns=["none", "other"])
    svg = charts.category_matrix(matrix)
    assert svg.count('class="cell"') == 4
    assert "quota_exceeded → other: 3" in svg and "none → none: 5" in svg
    assert 'fill="rgba(47,158,68,1.00)"' in svg  # the largest count, in the `none` (success) column
    assert 'fill="rgba(76,120,168,0.00)"' in svg  # an empty cell is unshaded
    assert "no commit was run in both campaigns" in charts.category_matrix(pd.DataFrame())
