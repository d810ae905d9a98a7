"""A broken setup is never a model failure: `track run` against a bench laid out like the real one.

Each broken setup the real ISO-Bench bench shows (task file, interpreter, repo checkout, a worktree of an
earlier run, the agent program) stops the campaign at once with exit 1 and a `harness_error` record that
names the cause, uses up no attempt, and `track run --check` finds it first, in seconds, spending nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_track
from tests.support.events import read_all
from tests.test_run import frame, make_baseline, outcomes_env, write_plan
from tracker.demo.standin_bench import lay_out_bench_root
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.rerun.status import campaign_status

STANDIN = "tracker.demo.standin_bench"


def _run(url: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None, plan: str = "plan.json"):  # type: ignore[no-untyped-def]
    return run_track("--db", url, "run", str(tmp_path / plan), "--campaign", "rerun", "--baseline", "orig",
                     "--fix-commit", "a1c6d41", "--bench-root", str(tmp_path / "bench"), "--bench-module", STANDIN,
                     "--log-dir", str(tmp_path / "logs"), "--no-mlflow", "--max-attempts", "1", *extra,
                     cwd=tmp_path, env=env or outcomes_env(tmp_path, {}))


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    root = tmp_path / "bench"
    lay_out_bench_root(root)
    return root


def _break_task(bench: Path) -> tuple[str, ...]:
    (bench / "tasks" / "vllm.yaml").unlink()
    return ()


def _break_python(bench: Path) -> tuple[str, ...]:
    return ("--bench-module", "bench.cli")  # no `bench` package here: the interpreter cannot import it


def _break_repo(bench: Path) -> tuple[str, ...]:
    shutil.rmtree(bench / "repos" / "vllm")
    return ()


def _break_agent(bench: Path) -> tuple[str, ...]:
    config = yaml.safe_load((bench / "bench.yaml").read_text())
    config["agents"]["trae"]["cli"] = "/nonexistent/trae-agent"
    (bench / "bench.yaml").write_text(yaml.safe_dump(config))
    return ()


BROKEN = {"task_file": _break_task, "bench_python": _break_python, "repo_checkout": _break_repo,
          "agent_program": _break_agent}


@pytest.mark.parametrize("cause", list(BROKEN))
def test_a_broken_setup_stops_at_once_as_harness_error_and_uses_no_attempt(
        sqlite_url: str, tmp_path: Path, bench: Path, cause: str) -> None:
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 3)
    extra = BROKEN[cause](bench)
    broken = _run(sqlite_url, tmp_path, "--json", *extra)
    assert broken.returncode == 1, broken.stderr
    summary = json.loads(broken.stdout)
    assert summary["stopped"].startswith("harness_error") and summary["setup_problem"]["cause"] == cause
    assert summary["done"] == 0 and summary["attempts"] == 1  # stopped at the first item: nothing else started
    rows = frame(sqlite_url)
    assert list(rows.failure_category) == ["harness_error"]  # recorded apart, never as the model's no_patch/other
    with EventStore.open(sqlite_url) as store:
        status = campaign_status(store, "rerun")
    assert status["harness_errors"] == 1 and status["failed"] == 0 and status["pending"] == 3
    human = _run(sqlite_url, tmp_path, *extra)
    assert "fix: " in human.stderr and "--check" in human.stderr
    # fixed: the same item runs, though --max-attempts is 1: a broken setup used up no attempt
    lay_out_bench_root(bench)
    fixed = _run(sqlite_url, tmp_path, "--json")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["succeeded"] == 3
    assert set(frame(sqlite_url).query("status == 'success'").commit) == {i["human"] for i in items}


@pytest.mark.parametrize("cause", list(BROKEN))
def test_run_check_finds_each_broken_setup_in_seconds_and_records_nothing(
        sqlite_url: str, tmp_path: Path, bench: Path, cause: str) -> None:
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 2)
    extra = BROKEN[cause](bench)
    with EventStore.open(sqlite_url) as store:
        before = len(list(read_all(store)))
    started = time.monotonic()
    result = _run(sqlite_url, tmp_path, "--check", "--json", *extra)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [c for c in json.loads(result.stdout) if c["ok"] is False]
    assert [c["cause"] for c in failed] == [cause]
    assert elapsed < 10
    with EventStore.open(sqlite_url) as store:
        assert len(list(read_all(store))) == before  # spent nothing, recorded nothing
    assert not (bench / "state").exists()


def test_run_check_passes_on_a_good_setup(sqlite_url: str, tmp_path: Path, bench: Path) -> None:
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 1)
    result = _run(sqlite_url, tmp_path, "--check")
    assert result.returncode == 0, result.stdout
    assert "FAIL" not in result.stdout and result.stdout.count("ok  ") >= 5


def test_a_template_whose_program_does_not_exist_is_a_harness_error(sqlite_url: str, tmp_path: Path,
                                                                     bench: Path) -> None:
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 4)
    result = _run(sqlite_url, tmp_path, "--json", "--", "no-such-agent-xyz", "--commit", "{human}")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["setup_problem"]["cause"] == "agent_program" and summary["attempts"] == 1
    assert list(frame(sqlite_url).failure_category) == ["harness_error"]


def test_a_rerun_beside_the_originals_worktrees_and_its_retries_get_fresh_worktrees(
        sqlite_url: str, tmp_path: Path, bench: Path) -> None:
    """A worktree of an earlier run where the item's would go is stepped around (the bench would crash on it:
    `[Errno 21] Is a directory: .../.git`), and a rate-limited retry is a new bench item too."""
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 2)
    (bench / ".work" / "worktrees" / "vllm_core" / items[1]["item_id"] / ".git").mkdir(parents=True)  # an old run's
    check = _run(sqlite_url, tmp_path, "--check")
    assert check.returncode == 0 and "fresh worktree" in check.stdout, check.stdout
    env = outcomes_env(tmp_path, {items[0]["item_id"]: ["rate_limited", "success"]})
    result = _run(sqlite_url, tmp_path, "--json", "--retry-wait", "0.01", "--max-attempts", "3", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["succeeded"] == 2
    rows = frame(sqlite_url)
    assert sorted(rows.item_id) == sorted([items[0]["item_id"], f"{items[0]['item_id']}-a2",
                                           f"{items[1]['item_id']}-a2"])
    assert (rows.failure_category != "harness_error").all()


def test_the_run_folder_is_named_by_the_attempt_and_reimporting_the_bench_root_adds_nothing(
        sqlite_url: str, tmp_path: Path, bench: Path) -> None:
    make_baseline(sqlite_url)
    items = write_plan(tmp_path / "plan.json", 3)
    assert _run(sqlite_url, tmp_path).returncode == 0
    rows = frame(sqlite_url)
    for row in rows.itertuples():  # exactly where --run-id put it: the attempt's own timestamp
        assert row.run_path == f"vllm/trae/gpt-5/{row.run_timestamp}/{row.item_id}"
        assert (bench / "state" / "runs" / row.run_path / "journal.json").is_file()
    with EventStore.open(sqlite_url) as store:
        before = len(list(read_all(store)))
        again = import_tree(store, bench, "orig")  # the bench root holds the rerun's folders now
        assert again.runs == 0 and again.filtered["recorded by rerun campaign rerun"] == len(items)
        assert again.folders_seen == again.runs + sum(again.filtered.values()) + len(again.unidentified)
        assert len(list(read_all(store))) == before  # nothing duplicated, nothing new
    assert len(frame(sqlite_url, "orig")) == 0 and len(frame(sqlite_url)) == len(items)


def test_the_bench_python_is_found_in_the_bench_checkout(tmp_path: Path, bench: Path) -> None:
    from tracker.rerun.execution import bench_python

    assert bench_python(bench, None) == sys.executable  # no venv there, no $TRAE_PYTHON: track's own
    venv = bench / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    assert bench_python(bench, None) == str(venv / "python")
    assert bench_python(bench, "/opt/py/bin/python") == "/opt/py/bin/python"


def test_run_check_looks_for_the_commit_in_a_real_checkout(sqlite_url: str, tmp_path: Path, bench: Path) -> None:
    import subprocess

    checkout = bench / "repos" / "vllm"
    shutil.rmtree(checkout)
    checkout.mkdir()
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "human"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    make_baseline(sqlite_url)
    write_plan(tmp_path / "plan.json", 1)  # a commit this checkout does not have
    missing = _run(sqlite_url, tmp_path, "--check", "--json")
    assert missing.returncode == 1
    [repo] = [c for c in json.loads(missing.stdout) if c["name"] == "repo checkout"]
    assert repo["ok"] is False and "has no commit" in repo["detail"]
    (tmp_path / "plan.json").write_text(json.dumps(
        {"repo": "repos/vllm", "task_id": "vllm_core", "items": [{"item_id": "vllm_core-0001", "human": head}]}))
    present = _run(sqlite_url, tmp_path, "--check", "--json")
    assert present.returncode == 0, present.stdout
    [repo] = [c for c in json.loads(present.stdout) if c["name"] == "repo checkout"]
    assert repo["ok"] is True and head[:12] in repo["detail"]
