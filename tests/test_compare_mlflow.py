"""The comparison run in a real MLflow tracking store: tables, reports, metrics, idempotency, failure."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from runners.cli import cli
from tests.support.campaign_builders import Attempt, add_attempts, build_pair, sha
from tests.test_compare import BASELINE, ESTIMATE, RERUN
from tracker.analysis.compare import compare
from tracker.analysis.criteria import example_path
from tracker.eventstore.store import EventStore
from tracker.projections.mlflow import comparison
from tracker.projections.mlflow.comparison import KEY_TAG, ComparisonNotLogged, log_comparison


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the module (creating one takes seconds); comparisons never collide in it."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def store(sqlite_url: str) -> EventStore:
    with EventStore.open(sqlite_url) as opened:
        build_pair(opened, BASELINE, RERUN, estimate=ESTIMATE)
        yield opened


def test_comparison_run_holds_tables_reports_and_metrics(store: EventStore, tmp_path: Path, uri: str) -> None:
    result = compare(store, "orig", "rerun", criteria=example_path())
    logged = log_comparison(result, uri)
    assert logged.created and logged.experiment == "iso-bench/trae/gpt-5"
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logged.run_id)
    assert run.info.status == "FINISHED" and run.info.experiment_id == logged.experiment_id
    tags = run.data.tags
    assert (tags["track.kind"], tags["track.baseline"], tags["track.rerun"]) == ("comparison", "orig", "rerun")
    assert tags["track.agent_fix_commit"] == "a1c6d41" and tags["track.level.all"] == "below_minimum"
    assert run.data.params["baseline"] == "orig" and run.data.params["criteria"] == "trae-gpt5-a1c6d41-rerun"
    assert run.data.metrics["all/fixed"] == 1 and run.data.metrics["all/after_successes"] == 4
    assert run.data.metrics["all/estimate_usd"] == 1.0
    artifacts = {f.path for folder in ("report", "tables") for f in client.list_artifacts(logged.run_id, folder)}
    assert artifacts == {"report/report.html", "report/report.md", "report/comparison.json",
                         *(f"tables/{name}.json" for name in result.tables())}
    # (MlflowClient.load_table searches the *default* tracking URI, so read the table artifact itself)
    table = json.loads(Path(client.download_artifacts(logged.run_id, "tables/commits.json", str(tmp_path))).read_text())
    commits = pd.DataFrame(table["data"], columns=table["columns"])
    assert sorted(commits["commit"]) == sorted(result.commits["commit"])
    assert dict(zip(commits["commit"], commits["transition"], strict=True)) == dict(
        zip(result.commits["commit"], result.commits["transition"], strict=True))
    page = Path(client.download_artifacts(logged.run_id, "report/report.html", str(tmp_path))).read_text()
    assert page.count('data-chart="') == 6  # the five figures and the speedups (the rerun measured some)


def test_same_data_logs_once_new_data_logs_again(store: EventStore, tmp_path: Path, uri: str) -> None:
    first = log_comparison(compare(store, "orig", "rerun"), uri)
    again = log_comparison(compare(store, "orig", "rerun"), uri)
    assert (again.created, again.run_id) == (False, first.run_id)
    add_attempts(store, "rerun", [Attempt("vllm", sha("late"), "success", timestamp="2026-02-01_00-00-00")])
    newer = log_comparison(compare(store, "orig", "rerun"), uri)
    assert newer.created and newer.run_id != first.run_id
    client = MlflowClient(tracking_uri=uri)
    live = client.search_runs([first.experiment_id])
    assert [r.info.run_id for r in live] == [newer.run_id]  # one run per pair: the older one is replaced
    assert client.get_run(first.run_id).info.lifecycle_stage == "deleted"
    assert client.get_run(newer.run_id).data.tags[KEY_TAG] != client.get_run(first.run_id).data.tags[KEY_TAG]
    other_level = log_comparison(compare(store, "orig", "rerun", level="patch"), uri)
    assert other_level.created and len(client.search_runs([first.experiment_id])) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_is_a_warning_not_a_crash(store: EventStore, sqlite_url: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ComparisonNotLogged, match="MLflow at http://127.0.0.1"):
        log_comparison(compare(store, "orig", "rerun"), dead)
    out = tmp_path / "report.md"
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["--db", sqlite_url, "compare", "orig", "rerun", "--format", "md", "--out",
                                      str(out), "--mlflow-uri", dead])
    assert time.monotonic() - started < 60
    assert result.exit_code == 1, result.output
    assert "warning: could not" in result.stderr and out.read_text().startswith("# rerun vs orig")


def test_cli_logs_by_default(store: EventStore, sqlite_url: str, uri: str) -> None:
    result = CliRunner().invoke(cli, ["--db", sqlite_url, "compare", "orig", "rerun", "--json", "--mlflow-uri", uri])
    assert result.exit_code == 0, result.output
    assert "logged to MLflow: experiment iso-bench/trae/gpt-5, run " in result.stderr
    assert result.stdout.lstrip().startswith("{")  # stdout stays machine-readable
    skipped = CliRunner().invoke(cli, ["--db", sqlite_url, "compare", "orig", "rerun", "--no-mlflow",
                                       "--mlflow-uri", uri])
    assert skipped.exit_code == 0 and "MLflow" not in skipped.stderr


def _bare_comparison(**meta: object) -> Any:
    """What the run's params, tags and metrics are made from, without a store (no MLflow needed)."""
    summary_keys = ("baseline_successes", "baseline_commits", "baseline_rate", "rerun_successes", "rerun_commits",
                    "rerun_rate", "after_successes", "after_rate", "fixed", "regressed", "still_failing", "not_rerun",
                    "mcnemar_p")
    summary = pd.DataFrame([{"repo": "all", **dict.fromkeys(summary_keys, 2.0), "mcnemar_p": float("nan")},
                            {"repo": "vllm", **dict.fromkeys(summary_keys, 1), "fixed": None}])
    cost = pd.DataFrame([{"repo": "all", "rerun_cost_usd": 1.5, "estimate_usd": None, "tokens_per_success": 10,
                          "cost_per_success_usd": pd.NA}])
    criteria = pd.DataFrame({"scope": ["all", "vllm"], "level_reached": ["below_minimum", "target"]})
    return SimpleNamespace(baseline={"name": "orig"}, summary=summary, cost=cost, criteria=criteria, meta=meta,
                           rerun={"name": "rerun", "agent": "trae", "model": "gpt-5", "agent_fix_commit": None})


def test_comparison_values_leave_missing_ones_out() -> None:
    c = _bare_comparison(repo_filter=None, price_table="p-1", criteria=None, store_position=0)
    params = comparison.params(c)
    assert params == {"baseline": "orig", "rerun": "rerun", "agent": "trae", "model": "gpt-5", "price_table": "p-1",
                      "store_position": "0"}
    assert comparison.params(_bare_comparison(criteria={"name": "crit"}))["criteria"] == "crit"
    assert comparison.level_tags(c) == {"track.level.all": "below_minimum", "track.level.vllm": "target"}
    assert comparison.run_tags(c)["track.agent_fix_commit"] == ""
    assert comparison.run_name(c) == "compare rerun vs orig"
    metrics = comparison.metrics(c)
    assert "all/mcnemar_p" not in metrics and "vllm/fixed" not in metrics and "all/estimate_usd" not in metrics
    assert "all/cost_per_success_usd" not in metrics
    assert (metrics["all/fixed"], metrics["vllm/regressed"], metrics["all/rerun_cost_usd"]) == (2.0, 1.0, 1.5)
    assert metrics["all/tokens_per_success"] == 10.0 and all(isinstance(v, float) for v in metrics.values())
    assert len(metrics) == 12 + 12 + 2
