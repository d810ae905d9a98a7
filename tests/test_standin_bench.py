"""The stand-in bench behaves like ISO-Bench's `bench.cli prepare`: arguments, exit codes, printed lines,
where run folders and worktrees go, its crashes, `--resume`, and the journal of a missing agent program.

Each test runs the module as the runner does: a subprocess whose current folder is a bench root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracker.demo.standin_bench import lay_out_bench_root

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = "vllm/trae/gpt-5/2025-12-22_21-40-38"
ITEM = "vllm_core-0001"
COMMIT = "f092153fbe349a9a1742940e3703bfcff6aa0a6d"
LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - bench\.prepare - (INFO|WARNING|ERROR) - .+$")


def bench(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m tracker.demo.standin_bench ARGS` in the bench root, with no STANDIN_* from outside."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
    environment.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "tracker.demo.standin_bench", *args], cwd=root, env=environment,
                          capture_output=True, text=True, timeout=60)


def prepare(root: Path, *extra: str, task: str = "tasks/vllm.yaml", plan: str = "plan.json",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The runner's command line."""
    return bench(root, "prepare", task, "--from-plan", plan, "--bench-cfg", "bench.yaml", "--max-workers", "1",
                 *extra, env=env)


def write_plan(root: Path, repo: str, task_id: str = "vllm_core", items: tuple[str, ...] = (ITEM,),
               name: str = "plan.json") -> Path:
    plan = {"repo": repo, "task_id": task_id,
            "items": [{"item_id": item, "human": COMMIT, "pre": None, "pre_parent_index": 1} for item in items]}
    path = root / name
    path.write_text(json.dumps(plan))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A bench root laid out like ISO-Bench's, with a one-item vLLM plan in plan.json."""
    bench_root = tmp_path / "bench"
    checkouts = lay_out_bench_root(bench_root)
    write_plan(bench_root, str(checkouts["vllm"]))
    return bench_root


def journal(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "journal.json").read_text()))


def test_lay_out_bench_root_writes_the_real_layout(tmp_path: Path) -> None:
    checkouts = lay_out_bench_root(tmp_path / "b", agent_cli="/opt/trae/bin/python")
    root = (tmp_path / "b").resolve()
    assert checkouts == {"vllm": root / "repos" / "vllm", "sglang": root / "repos" / "sglang"}
    assert all((path / ".git").is_dir() for path in checkouts.values())
    cfg = yaml.safe_load((root / "bench.yaml").read_text())
    assert cfg["paths"] == {"state_root": "state", "work_root": ".work"}
    assert cfg["agents"]["default"] == "trae" and cfg["agents"]["trae"]["cli"] == "/opt/trae/bin/python"
    tasks = {p.name: yaml.safe_load(p.read_text()) for p in (root / "tasks").iterdir()}
    assert {name: (t["id"], t["repo"]["url"]) for name, t in tasks.items()} == {
        "vllm.yaml": ("vllm_core", "https://github.com/vllm-project/vllm.git"),
        "sglang.yaml": ("sglang_core", "https://github.com/sgl-project/sglang.git")}
    assert set(lay_out_bench_root(tmp_path / "c", repos=("vllm",))) == {"vllm"}
    assert not (tmp_path / "c" / "tasks" / "sglang.yaml").exists()


def test_success_writes_the_folder_at_the_run_id_path(root: Path) -> None:
    result = prepare(root, "--resume", "--run-id", RUN_ID)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"Run path: {RUN_ID}", "  Repo:   vllm", "  Agent:  trae",
                                          "  Model:  gpt-5-2025-08-07", f"✓ Prepare completed: state/runs/{RUN_ID}"]
    folder = root / "state" / "runs" / RUN_ID / ITEM
    got = journal(folder)
    assert got["status"] == "success" and got["task_id"] == "vllm_core"
    assert got["commits"]["human"] == COMMIT and re.fullmatch(r"[0-9a-f]{40}", got["commits"]["pre"])
    assert got["run_metadata"] == {"repo": "vllm", "agent": "trae", "model": "gpt-5",
                                   "run_timestamp": "2025-12-22_21-40-38", "run_path": RUN_ID}
    assert got["trae"]["cli"] == sys.executable and got["trae"]["returncode"] == 0
    trajectory = json.loads((folder / "trajectory.json").read_text())
    assert trajectory["start_time"].startswith("2025-12-22T21:40:38")
    assert json.loads((folder / "prompt.json").read_text())["commits"]["human"] == COMMIT
    assert (folder / "model_patch.diff").read_text().startswith("diff --git")
    assert (root / ".work" / "worktrees" / "vllm_core" / ITEM / ".git").is_dir()
    lines = result.stderr.splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), result.stderr
    messages = [line.split(" - ", 3)[3] for line in lines]
    assert messages[0] == f"Starting task processing: {ITEM}"
    assert {"Task status determined as: success", "Writing journal with final status: success",
            "Process return code: 0"} <= set(messages)
    (log,) = root.glob("pipeline_run_*.log")
    assert log.read_text().splitlines() == lines


@pytest.mark.parametrize(("args", "message"), [
    (("tasks/no.yaml", "--from-plan", "no.json", "--bench-cfg", "no.yaml"), "Task file not found: tasks/no.yaml"),
    (("tasks/vllm.yaml", "--from-plan", "no.json", "--bench-cfg", "no.yaml"), "Plan file not found: no.json"),
    (("tasks/vllm.yaml", "-p", "plan.json", "--bench-cfg", "no.yaml"), "Bench config not found: no.yaml"),
    (("tasks/vllm.yaml",), "Plan file not found: state/plan.json"),
])
def test_a_missing_file_is_named_and_exits_1(root: Path, args: tuple[str, ...], message: str) -> None:
    result = bench(root, "prepare", *args)
    assert (result.returncode, result.stdout) == (1, message + "\n")
    assert not (root / "state").exists()


def test_usage_errors_exit_2(root: Path) -> None:
    assert bench(root, "prepare").returncode == 2
    assert bench(root, "prepare", "tasks/vllm.yaml", "--max-workers", "many").returncode == 2
    assert bench(root, "prepare", "tasks/vllm.yaml", "--bogus").returncode == 2
    assert bench(root, "evaluate").returncode == 2


@pytest.mark.parametrize(("broken", "error"), [("paths", "'paths'"), ("agents", "'agents'"), ("items", "'items'")])
def test_a_config_without_a_section_is_a_prepare_error(root: Path, broken: str, error: str) -> None:
    cfg = yaml.safe_load((root / "bench.yaml").read_text())
    plan = json.loads((root / "plan.json").read_text())
    (cfg if broken != "items" else plan).pop(broken)
    (root / "bench.yaml").write_text(yaml.safe_dump(cfg))
    (root / "plan.json").write_text(json.dumps(plan))
    result = prepare(root, "--run-id", RUN_ID)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"Run path: {RUN_ID}"
    assert result.stdout.splitlines()[-1] == f"Prepare error: {error}"
    assert not list(root.glob("state/runs/**/journal.json"))


def test_a_repo_path_that_does_not_exist_fails_as_git_clone(root: Path) -> None:
    write_plan(root, "repos/missing")
    result = prepare(root, "--run-id", RUN_ID)
    clone = (root / ".work").resolve() / "repos" / "vllm_core"
    assert result.returncode == 1
    assert "fatal: repository 'repos/missing' does not exist" in result.stderr
    assert result.stdout.splitlines()[-1] == (f"Prepare error: Command '['git', 'clone', 'repos/missing', '{clone}']' "
                                              "returned non-zero exit status 128.")
    assert not list(root.glob("state/runs/**/journal.json"))


def test_a_second_prepare_of_the_same_item_crashes_on_the_detached_worktree(root: Path) -> None:
    assert prepare(root, "--run-id", RUN_ID).returncode == 0
    second = RUN_ID.replace("21-40-38", "22-00-00")
    result = prepare(root, "--run-id", second)
    git = (root / ".work").resolve() / "worktrees" / "vllm_core" / ITEM / ".git"
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == f"Prepare error: [Errno 21] Is a directory: '{git}'"
    folder = root / "state" / "runs" / second / ITEM
    assert folder.is_dir() and not list(folder.iterdir())
    assert journal(root / "state" / "runs" / RUN_ID / ITEM)["status"] == "success"


def test_resume_skips_only_a_success_in_the_same_run_path(root: Path) -> None:
    assert prepare(root, "--run-id", RUN_ID).returncode == 0
    first = (root / "state" / "runs" / RUN_ID / ITEM / "journal.json").read_text()
    again = prepare(root, "--resume", "--run-id", RUN_ID)
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == f"✓ Prepare completed: state/runs/{RUN_ID}"
    assert f"Skipping {ITEM} - task already completed successfully" in again.stderr
    assert "Task status determined" not in again.stderr
    assert (root / "state" / "runs" / RUN_ID / ITEM / "journal.json").read_text() == first
    shutil.rmtree(root / ".work" / "worktrees")  # what a runner must do before rerunning an item
    other = RUN_ID.replace("21-40-38", "22-00-00")
    fresh = prepare(root, "--resume", "--run-id", other)
    assert fresh.returncode == 0 and "Skipping" not in fresh.stderr
    assert journal(root / "state" / "runs" / other / ITEM)["status"] == "success"
    shutil.rmtree(root / ".work" / "worktrees")
    forced = prepare(root, "--no-resume", "--run-id", RUN_ID)
    assert forced.returncode == 0 and "Skipping" not in forced.stderr and "Task status determined" in forced.stderr


@pytest.mark.parametrize("cli", ["/nonexistent/bench-env/bin/python", "no-such-agent-program-4f1c"])
def test_a_missing_agent_program_leaves_an_error_journal_and_exits_0(tmp_path: Path, cli: str) -> None:
    root = tmp_path / "bench"
    write_plan(root, str(lay_out_bench_root(root, agent_cli=cli)["vllm"]))
    result = prepare(root, "--run-id", RUN_ID)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"✓ Prepare completed: state/runs/{RUN_ID}"
    folder = root / "state" / "runs" / RUN_ID / ITEM
    got = journal(folder)
    assert (got["status"], got["error"], got["error_type"]) == (
        "error", f"[Errno 2] No such file or directory: '{cli}'", "FileNotFoundError")
    assert got["task_id"] == "vllm_core" and got["commits"]["human"] == COMMIT
    assert got["run_metadata"]["run_path"] == RUN_ID
    assert {p.name for p in folder.iterdir()} == {"prompt.json", "journal.json"}
    assert f"Task failed with exception: error:{ITEM}" in result.stderr


def test_without_run_id_the_run_path_names_sglang_sglan(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    write_plan(root, str(lay_out_bench_root(root)["sglang"]), "sglang_core", ("sglang_000_abcdef12",))
    result = prepare(root, task="tasks/sglang.yaml", env={"STANDIN_MODEL_DIR": "gpt-5"})
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.fullmatch(r"Run path: sglan/trae/gpt-5/(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)", result.stdout.splitlines()[0])
    assert match and result.stdout.splitlines()[1:4] == ["  Repo:   sglan", "  Agent:  trae", "  Model:  gpt-5"]
    folder = root / "state" / "runs" / "sglan" / "trae" / "gpt-5" / match.group(1) / "sglang_000_abcdef12"
    got = journal(folder)
    assert got["task_id"] == "sglang_core" and got["run_metadata"]["repo"] == "sglan"
    assert got["run_metadata"]["run_timestamp"] == match.group(1)
    assert (root / ".work" / "worktrees" / "sglang_core" / "sglang_000_abcdef12" / ".git").is_dir()


def test_bench_yaml_expands_env_vars_with_defaults(root: Path) -> None:
    (root / "bench.yaml").write_text(
        "paths:\n  state_root: ${STANDIN_TEST_STATE:-alt-state}\n  work_root: \"${STANDIN_TEST_UNSET}wk\"\n"
        "agents:\n  default: ${STANDIN_TEST_AGENT:-trae}\n  trae:\n    cli: ${STANDIN_TEST_CLI}\n")
    result = prepare(root, "--run-id", RUN_ID, env={"STANDIN_TEST_CLI": sys.executable})
    assert result.returncode == 0, result.stdout + result.stderr
    got = journal(root / "alt-state" / "runs" / RUN_ID / ITEM)
    assert got["status"] == "success" and got["trae"]["cli"] == sys.executable
    assert (root / "wk" / "worktrees" / "vllm_core" / ITEM / ".git").is_dir()
    write_plan(root, str(root / "repos" / "vllm"), items=("vllm_core-0002",))
    given = prepare(root, "--run-id", RUN_ID, env={"STANDIN_TEST_CLI": sys.executable, "STANDIN_TEST_STATE": "given"})
    assert journal(root / "given" / "runs" / RUN_ID / "vllm_core-0002")["status"] == "success", given.stdout


def test_the_nth_attempt_of_an_item_gets_the_nth_outcome_whatever_the_run_id(root: Path) -> None:
    outcomes = {"STANDIN_OUTCOMES": json.dumps({ITEM: ["quota_exceeded", "success"]})}
    statuses = []
    for n, run_id in enumerate(["a/trae/m/2025-01-01_00-00-00", "b/trae/m/2025-01-01_00-00-01", RUN_ID]):
        shutil.rmtree(root / ".work" / "worktrees", ignore_errors=True)
        result = prepare(root, "--run-id", run_id, env=outcomes)
        assert result.returncode == 0, result.stdout + result.stderr
        statuses.append(journal(root / "state" / "runs" / run_id / ITEM)["status"])
        if n == 0:
            assert "TRAE STDERR: OpenAI API call failed" in result.stderr
    assert statuses == ["error", "success", "success"]


def test_crash_and_chatter_outcomes(root: Path) -> None:
    crashed = prepare(root, "--run-id", RUN_ID, env={"STANDIN_DEFAULT": "crash", "STANDIN_LINES": "3"})
    assert crashed.returncode == 1 and "RuntimeError: CUDA error" in crashed.stderr
    assert "✓ Prepare completed" not in crashed.stdout
    folder = root / "state" / "runs" / RUN_ID / ITEM
    assert not (folder / "journal.json").exists() and (folder / "prompt.json").exists()
    chatter = [line for line in crashed.stderr.splitlines() if "STDOUT: step" in line]
    assert len(chatter) == 3 and all(LOG_LINE.match(line) for line in chatter)


def test_the_bench_needs_nothing_but_the_standard_library_pyyaml_and_tracker() -> None:
    """Like the real bench under its own interpreter: no typer or other tool of track's environment."""
    code = ("import json, sys; before = set(sys.modules); import tracker.demo.standin_bench; "
            "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    third_party = {m for m in loaded - set(sys.stdlib_module_names) if "cython" not in m}  # PyYAML's C loader
    assert third_party <= {"tracker", "yaml", "_yaml"} and "tracker" in third_party


