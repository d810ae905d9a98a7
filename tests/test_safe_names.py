"""Untrusted names never become paths outside the tool's folders: item ids and task ids from files,
repo, model and campaign names, run paths from the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_track
from tracker.projections.mlflow import artifacts
from tracker.rerun.bench_layout import task_id, worktrees_dir
from tracker.rerun.planning import Plan, PlanItem, load_plan, write_plan_files
from tracker.rerun.run_folders import RunFolders, attempt_workdir
from tracker.safe_names import MAX_COMPONENT_BYTES, UnsafeName, checked, component, problem, within

SHA = "a" * 40
HOSTILE = ["../../etc/x", "/etc/passwd", "..", ".", "", "  ", "a\x00b", "a/b", "a\\b", "x\ny", "é" * 100, "x" * 300]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_refused_with_its_reason(name: str) -> None:
    assert problem(name) is not None
    with pytest.raises(UnsafeName) as caught:
        checked(name, "item_id")
    message = str(caught.value)
    assert message.startswith("item_id ") and "cannot be a file or folder name: it " in message
    assert len(message) < 200  # a very long name is cut short in the message


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_made_a_component_stays_one_folder_down(tmp_path: Path, name: str) -> None:
    safe = component(name)
    assert problem(safe) is None
    assert len(safe.encode()) <= MAX_COMPONENT_BYTES
    assert (tmp_path / safe).parent == tmp_path
    assert within(tmp_path, tmp_path / safe) == tmp_path / safe


@pytest.mark.parametrize("name", ["vllm_core-0012", "sglang_044_9c064bf7", "vllm_gpt5_rerun_0d243f2a",
                                  "gpt-5-2025-08-07", "us-anthropic-claude-sonnet-4-5-20250929-v1-0",
                                  "trae-gpt5.a1c6d41", "x" * 128])
def test_real_names_pass_unchanged(name: str) -> None:
    assert checked(name, "item_id") == name and component(name) == name


def test_different_hostile_names_never_share_a_folder() -> None:
    assert component("a/b") != component("a\\b") != component("a_b")
    assert component("x" * 300) != component("x" * 301)


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/x"])
def test_within_refuses_a_path_that_climbs_out(tmp_path: Path, path: str) -> None:
    with pytest.raises(UnsafeName, match="is outside"):
        within(tmp_path / "root", tmp_path / "root" / path)


def _plan_file(tmp_path: Path, item_id: object = "vllm_core-0001", **doc: object) -> Path:
    path = tmp_path / "plan.json"
    body = {"repo": "/repos/vllm", "task_id": "vllm_core", "items": [{"item_id": item_id, "human": SHA, "pre": None}]}
    path.write_text(json.dumps({**body, **doc}))
    return path


@pytest.mark.parametrize("item_id", ["../../etc/x", "/etc/passwd", "a\x00b", "x" * 300, ".."])
def test_a_plan_item_whose_id_is_no_file_name_is_refused(tmp_path: Path, item_id: str) -> None:
    with pytest.raises(UnsafeName, match=r"plan .*plan\.json: item #0: item_id .* cannot be a file or folder name"):
        load_plan(_plan_file(tmp_path, item_id))


@pytest.mark.parametrize("doc", [{"task_id": "../../x_core"}, {"repo": "/repos/..", "task_id": ""},
                                 {"task_id": "vllm/../../x"}])
def test_a_plan_whose_repo_or_task_is_no_file_name_is_refused(tmp_path: Path, doc: dict[str, str]) -> None:
    with pytest.raises(UnsafeName, match="cannot be a file or folder name"):
        load_plan(_plan_file(tmp_path, **doc))


def test_track_run_refuses_the_hostile_plan_before_writing_anything(tmp_path: Path) -> None:
    plan = _plan_file(tmp_path, "../../../escaped")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    result = run_track("--db", url, "run", str(plan), "--campaign", "r", "--baseline", "b", "--fix-commit", "a1",
                       "--log-dir", str(tmp_path / "logs" / "deep"), "--no-mlflow", "--", "true", "{item_id}",
                       cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "item_id '../../../escaped' cannot be a file or folder name" in result.stderr
    assert not (tmp_path / "logs").exists() and not (tmp_path / "escaped").exists()
    assert run_track("--db", url, "status", "r", cwd=tmp_path).returncode == 2  # nothing recorded


@pytest.mark.parametrize("campaign", ["../../up", "/abs/olute", "a\x00b", "c" * 300])
def test_the_attempt_log_folder_stays_under_log_dir(tmp_path: Path, campaign: str) -> None:
    log_dir = tmp_path / "logs"
    folder = attempt_workdir(log_dir, campaign, "vllm_core-0001", "2025-12-01_09-00-00")
    assert log_dir.resolve() in folder.parents and folder.parent.name == "vllm_core-0001"
    with pytest.raises(UnsafeName):
        attempt_workdir(log_dir, "ok", "../../x", "2025-12-01_09-00-00")


def test_the_bench_run_id_keeps_agent_and_model_one_folder_each(tmp_path: Path) -> None:
    folders = RunFolders(tmp_path, agent="../../agent", model="/etc/model")
    item = PlanItem("vllm", "vllm_core-0001", SHA, None)
    run_id = folders.run_id(item, "2025-12-01_09-00-00")
    parts = run_id.split("/")
    assert len(parts) == 4 and parts[0] == "vllm" and all(problem(p) is None for p in parts)
    assert folders.at(run_id, "vllm_core-0001", tmp_path / "work") is None
    with pytest.raises(UnsafeName):
        folders.at(run_id, "../../../x", tmp_path / "work")


def test_plan_files_from_hostile_agent_and_model_names_stay_in_out(tmp_path: Path) -> None:
    out = tmp_path / "plans"
    plan = Plan(from_campaign="c", agent="../../agent", model="/tmp/evil/model", selection={"rule": "test"},
                items=[PlanItem("vllm", "vllm_x_rerun_aaaaaaaa", SHA, None)])
    files = [Path(f) for f in write_plan_files(plan, out)]
    assert files and all(f.parent == out for f in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plans"]


def test_a_task_file_naming_a_hostile_task_id_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "vllm.yaml").write_text("id: ../../../outside\n")
    item = PlanItem("vllm", "vllm_core-0001", SHA, None, task_id="vllm_core")
    with pytest.raises(UnsafeName, match=r"task id \(in tasks/vllm.yaml\)"):
        task_id(tmp_path, "tasks/vllm.yaml", item)
    with pytest.raises(UnsafeName):
        worktrees_dir(tmp_path, None, "../x")


def test_a_run_path_from_the_log_never_makes_another_folder_an_artifact(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "journal.json").write_text("{}")
    source = tmp_path / "tree"
    (source / "state" / "runs").mkdir(parents=True)
    assert artifacts.run_folder(str(source), {"run_path": "../../secret"}) is None
    assert artifacts.run_folder(str(source), {"run_path": str(secret)}) is None
    inside = source / "state" / "runs" / "vllm" / "trae" / "gpt-5" / "ts" / "item"
    inside.mkdir(parents=True)
    assert artifacts.run_folder(str(source), {"run_path": "vllm/trae/gpt-5/ts/item"}) == inside
