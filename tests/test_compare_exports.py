"""Every `track compare --format` round-trips, through the library and through the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

from runners.cli import cli
from tests.conftest import run_track
from tests.support import tables
from tests.support.campaign_builders import build_pair
from tests.test_compare import BASELINE, ESTIMATE, RERUN
from tracker.analysis.compare import SCHEMAS, Comparison, compare
from tracker.analysis.criteria import example_path
from tracker.classify.rules import default_rule_table
from tracker.errors import TrackerError
from tracker.eventstore.store import EventStore
from tracker.reports import display, figures, html_report, latex, markdown
from tracker.reports.export import export
from tracker.reports.mlflow_links import RunLinks, commit_runs_url, ui_address


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


CHARTS = ["success-rates", "transitions", "category-matrix", "criteria", "cost", "speedups"]


def test_html_is_self_contained_with_its_charts(known: Comparison) -> None:
    page = html_report.render(known)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts == [""]  # one inline script (the table sorter), nothing loaded
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]+)"', page)
    assert [r for r in refs if not r.startswith("#")] == []  # nothing fetched, no link without an MLflow URL
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)) and {r[1:] for r in refs} <= set(ids)  # the figures' own refs, unique
    assert set(re.findall(r"url\(#([^)]+)\)", page)) <= set(ids)
    assert "@import" not in page and re.findall(r"url\((?!#)", page) == []
    assert re.findall(r'<figure class="chart" data-chart="([a-z-]+)"><svg', page) == CHARTS
    assert "font-family" in page and "@font-face" not in page  # text stays text, in a generic family
    commit_rows = re.search(r'data-table="commits".*?<tbody>(.*?)</tbody>', page, re.S)
    assert commit_rows and commit_rows.group(1).count("<tr") == len(known.commits)
    assert page.count('aria-sort="none"><button type="button">') == page.count("<th ")


def test_html_links_each_commit_row_to_its_mlflow_runs(known: Comparison) -> None:
    links = RunLinks("http://mlflow.example:5000", {"baseline": "7", "rerun": "7"})
    page = html_report.render(known, links=links)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", re.search(r'data-table="commits".*?</table>', page, re.S).group(0))
    body = rows[1:]
    assert len(body) == len(known.commits)
    for row, commit in zip(body, known.commits["commit"], strict=True):
        hrefs = re.findall(r'href="([^"]+)"', row)
        assert hrefs == [f"http://mlflow.example:5000/#/experiments/7/runs?searchFilter=params.commit%20%3D%20"
                         f"&#x27;{commit}&#x27;"]
    split = RunLinks("https://ml.example", {"baseline": "1", "rerun": "2"}).for_commit("abc")
    assert [label for label, _ in split] == ["baseline runs", "rerun runs"]
    assert RunLinks("https://ml.example", {}).for_commit("abc") == []
    assert ' href="' not in html_report.render(known, links=RunLinks("https://ml.example", {}))


def test_mlflow_address_is_an_http_server_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert ui_address(None, None) is None and ui_address(None, "sqlite:///mlruns/mlflow.db") is None
    assert ui_address("http://user:secret@ml.example:5000/") == "http://ml.example:5000"
    assert ui_address(None, "https://ml.example/") == "https://ml.example"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env.example:5000")
    assert ui_address(None, None) == "http://env.example:5000"
    with pytest.raises(TrackerError, match="not an http"):
        ui_address("mlruns/mlflow.db")
    assert commit_runs_url("http://h:1", "3", "ab12") == (
        "http://h:1/#/experiments/3/runs?searchFilter=params.commit%20%3D%20'ab12'")


def test_report_metadata_in_header_and_json(known: Comparison) -> None:
    meta = known.meta
    assert meta["rules_versions"] == {"baseline": ["test-1"], "rerun": ["test-1"]}
    assert meta["rule_table"] == default_rule_table().version and meta["agent_fix_commit"] == "a1c6d41"
    assert meta["hosts"] == [] and meta["bench_commit"] is None and meta["level"] == "agent"
    facts = dict(display.run_metadata(known))
    assert facts["rerun hosts"] == "not recorded (imported from files)"
    assert facts["rule table"] == f"{default_rule_table().version} today; classified by baseline test-1, rerun test-1"
    page = html_report.render(known)
    assert "<dt>agent fix commit</dt><dd>a1c6d41</dd>" in page and "<dt>bench commit</dt><dd>not recorded</dd>" in page
    assert json.loads(export(known, "json").text or "")["meta"]["hosts"] == []


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
    assert page.count("<svg") == 6 and known.commits["commit"].iloc[0][:12] in page

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


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in [*ax.texts, *ax.get_xticklabels(), *ax.get_yticklabels()]]


def _gids(fig: Figure, prefix: str) -> list[str]:
    found = {a.get_gid() for ax in fig.axes for a in ax.findobj() if a.get_gid()}
    return sorted(g for g in found if g.startswith(prefix))


def test_cost_figure_marks_a_missing_amount_and_small_amounts_in_cents() -> None:
    frame = pd.DataFrame({"repo": ["vllm", "all"], "rerun_cost_usd": [1.5, float("nan")], "estimate_usd": [None, 2.0]})
    fig = figures.cost(frame)
    assert _gids(fig, "bar-") == ["bar-all-estimate", "bar-vllm-actual"]
    fig.canvas.draw()
    texts = _texts(fig)
    assert texts.count("none") == 2 and "$1.50" in texts and "$2.00" in texts  # under a $20 peak: cents
    assert [label.get_text() for label in fig.axes[0].get_legend().get_texts()] == ["actual", "estimate"]
    big = figures.cost(frame.assign(estimate_usd=[None, 20.0]))
    big.canvas.draw()
    assert "$20" in _texts(big)  # whole dollars from $20


def test_category_matrix_counts_every_cell_and_wraps_long_names() -> None:
    matrix = pd.DataFrame([[0, 3], [5, 0]], index=["context_length_exceeded", "none"], columns=["none", "other"])
    fig = figures.category_matrix(matrix)
    assert _gids(fig, "cell-") == ["cell-0-0", "cell-0-1", "cell-1-0", "cell-1-1"]
    texts = _texts(fig)
    assert "3" in texts and "5" in texts and "0" not in fig.axes[0].texts  # an empty cell is left blank
    assert "context_length_\nexceeded" in texts  # wrapped at `_`, never cut short
    assert figures.wrap_label("eval:baseline_failed", 10) == "eval:\nbaseline_\nfailed"
    empty = figures.category_matrix(pd.DataFrame())
    assert [t.get_text() for t in empty.texts] == ["no commit was run in both campaigns"]


def test_figures_axes_ticks_and_files(known: Comparison, tmp_path: Path) -> None:
    figs = figures.figures(known)
    assert list(figs) == CHARTS
    rates = figs["success-rates"].axes[0]
    assert rates.get_ylim()[0] == 0 and list(rates.get_yticks()) == [0, 0.25, 0.5, 0.75, 1.0]
    figs["success-rates"].canvas.draw()
    assert [t.get_text() for t in rates.get_yticklabels()] == ["0%", "25%", "50%", "75%", "100%"]
    assert len(_gids(figs["success-rates"], "ci-")) == 9  # every side of vllm, sglang and all has its interval
    transitions = figs["transitions"].axes[0]
    assert all(float(t).is_integer() for t in transitions.get_xticks())
    speed = figs["speedups"].axes[0]
    assert speed.get_xscale() == "log" and _gids(figs["speedups"], "geomean")
    for fig in figs.values():
        assert fig.get_size_inches()[0] * 96 <= 700  # fits an 800 px page (CSS px are 96 per inch)
    paths = figures.write_files(figs, tmp_path / "f")
    assert sorted(p.name for p in paths) == sorted(f"{n}.{ext}" for n in CHARTS for ext in ("png", "pdf"))
    assert all(p.read_bytes()[:4] in (b"\x89PNG", b"%PDF") for p in paths)
    svg = figures.inline_svg(figs["cost"], "cost")
    assert svg.startswith("<svg ") and "<?xml" not in svg and "<text" in svg


def test_figures_leave_no_global_state(known: Comparison) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    before = dict(matplotlib.rcParams)
    figures.figures(known)
    html_report.render(known)
    assert dict(matplotlib.rcParams) == before and plt.get_fignums() == []


def test_latex_tables_are_booktabs_with_every_special_escaped(known: Comparison) -> None:
    tex = export(known, "tex").text or ""
    assert "\\documentclass" not in tex and "\\begin{document}" not in tex
    names = re.findall(r"\\label\{tab:track-([a-z]+)\}", tex)
    assert names == ["summary", "attribution", "criteria", "cost"]
    for block in re.findall(r"\\begin\{tabular\}\{([lr]+)\}\n(.*?)\\end\{tabular\}", tex, re.S):
        align, body = block
        lines = body.strip().splitlines()
        assert lines[0] == "\\toprule" and lines[2] == "\\midrule" and lines[-1] == "\\bottomrule"
        for row in [lines[1], *lines[3:-1]]:
            assert row.endswith(" \\\\") and len(re.split(r"(?<!\\)&", row)) == len(align), row
    overall = next(line for line in tex.splitlines() if line.startswith("all & "))
    assert overall.startswith("all & 3/7 & 42.9 [15.8, 75.0] & ")
    assert "McNemar p \\\\" in tex and "95\\% CI" in tex and "\\$" in tex
    assert latex.escape("a_b & 5% #1 $2 {x} ~^\\") == (
        "a\\_b \\& 5\\% \\#1 \\$2 \\{x\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}")
    assert latex.escape("[1, 2]") == "{}[1, 2]" and latex.escape("1–2 × → ✓") == "1--2 $\\times$ $\\rightarrow$ yes"


def test_cli_html_and_markdown_files_bring_their_figures(db: str, tmp_path: Path) -> None:
    code, _, err = _cli(db, "--format", "html", "--out", str(tmp_path / "out" / "report.html"), cwd=tmp_path)
    assert code == 0, err
    folder = tmp_path / "out" / "report_figures"
    written = [line.removeprefix("wrote ") for line in err.splitlines() if line.startswith("wrote ")]
    assert written[0] == str(tmp_path / "out" / "report.html")
    assert sorted(written[1:]) == sorted(str(folder / f"{n}.{ext}") for n in CHARTS if n != "criteria"
                                         for ext in ("png", "pdf"))
    code, _, err = _cli(db, "--format", "md", "--out", str(tmp_path / "paper.md"), cwd=tmp_path)
    text = (tmp_path / "paper.md").read_text()
    assert "![Success rate per repo with 95% Wilson intervals](paper_figures/success-rates.png)" in text
    assert (tmp_path / "paper_figures" / "success-rates.png").exists()
    code, out, _ = _cli(db, "--format", "md", cwd=tmp_path)
    assert "![" not in out  # on stdout there is no file to show
    code, _, err = _cli(db, "--format", "tex", "--out", str(tmp_path / "tables.tex"), cwd=tmp_path)
    assert code == 0 and err.strip() == f"wrote {tmp_path / 'tables.tex'}"
    assert (tmp_path / "tables.tex").read_text().count("\\begin{table}") == 3  # summary, attribution, cost
    code, _, err = _cli(db, "--format", "html", "--mlflow-url", "ftp://x", cwd=tmp_path)
    assert code == 2 and "not an http(s) address" in err
    code, out, err = _cli(db, "--format", "html", "--mlflow-url", "http://127.0.0.1:9", cwd=tmp_path)
    assert code == 0 and "warning: no MLflow links" in err and ' href="' not in out  # server down: no broken links


def test_meta_names_the_rerun_hosts_and_the_bench_commit(sqlite_url: str) -> None:
    from tests.support.campaign_builders import create_campaign
    from tracker.domain.events import deterministic_event_id
    from tracker.domain.import_events import PlanCreated
    from tracker.domain.run_events import AttemptStarted
    from tracker.domain.streams import attempt_stream, campaign_stream
    from tracker.projections.read_model import fold

    def started(store: EventStore, campaign: str, commit: str, host: str) -> None:
        stream = attempt_stream(campaign, "vllm", commit, "2026-01-01_00-00-00")
        event = AttemptStarted(campaign=campaign, repo="vllm", agent="trae", model="gpt-5", item_id="i", commit=commit,
                               pre_commit=None, run_timestamp="2026-01-01_00-00-00", attempt_number=1, host=host,
                               command=["python"], log_file="x.log", claim_token="t")
        store.append(stream, [event.to_new_event(deterministic_event_id(stream, 1, event.TYPE), {})])

    with EventStore.open(sqlite_url) as store:
        build_pair(store, BASELINE, RERUN, estimate=ESTIMATE)
        create_campaign(store, "rerun2", "rerun", baseline="orig")
        for campaign, commit, host in (("rerun", "c" * 40, "gpu-b"), ("rerun", "d" * 40, "gpu-a"),
                                       ("rerun", "e" * 40, "gpu-a"), ("orig", "f" * 40, "laptop"),
                                       ("rerun2", "a" * 40, "elsewhere")):
            started(store, campaign, commit, host)
        stream = campaign_stream("rerun")
        plan = PlanCreated(plan_id="p2", from_campaign="orig", selection={"bench_commit": "0badc0de"}, items=[])
        store.append(stream, [plan.to_new_event(deterministic_event_id(stream, 99, plan.TYPE), {})])
        fold.catch_up(store)
        result = compare(store, "orig", "rerun")
    assert result.meta["hosts"] == ["gpu-a", "gpu-b"]  # the rerun's own runners, not the baseline's or rerun2's
    assert result.meta["bench_commit"] == "0badc0de"
    facts = dict(display.run_metadata(result))
    assert facts["rerun hosts"] == "gpu-a, gpu-b" and facts["bench commit"] == "0badc0de"
