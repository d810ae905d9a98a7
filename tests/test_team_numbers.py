"""The team's own questions on a tree in the real files' shapes (`tests/real_shapes.py`): every folder
accounted for, incidents beside root causes, outcome levels, the evaluation report beside the recount,
and the selection policies that give the team's rerun list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_track
from tests.support import real_shapes
from tracker.analysis.failures import failure_evidence, failure_table
from tracker.domain.outcomes import funnel
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.read_model.queries import attempts_frame, list_campaigns, unidentified_folders
from tracker.rerun.planning import select_commits

TRUTH = real_shapes.TRUTH


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return real_shapes.build(tmp_path / "ISO-Bench")


@pytest.fixture
def imported(tree: Path, store_url: str) -> str:
    with EventStore.open(store_url) as store:
        import_tree(store, tree, "trae-gpt5", agent="trae", model="gpt-5")
    return store_url


def test_every_folder_is_an_attempt_a_named_filter_or_a_visible_record(tree: Path, store_url: str,
                                                                       tmp_path: Path) -> None:
    result = run_track("--db", store_url, "import", str(tree), "--campaign", "trae-gpt5", "--agent", "trae",
                       "--model", "gpt-5", "--no-mlflow", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    folders = summary["folders"]
    assert folders["seen"] == TRUTH["folders"] and folders["accounted"]
    assert folders["attempts"] == TRUTH["trae_gpt5_attempts"]
    assert folders["filtered"] == {"agent codex (importing trae)": 2, "agent claude_code (importing trae)": 1,
                                   "agent openhands (importing trae)": 1,
                                   "model claude-sonnet-4-5 (importing gpt-5)": 1}
    assert [u["run_path"] for u in summary["unidentified"]] == TRUTH["unidentified"]
    assert all(u["files"] == ["task.txt"] for u in summary["unidentified"])
    assert "neither the layout nor any file says the agent or model" in summary["unidentified"][0]["reason"]
    shown = run_track("--db", store_url, "folders", "trae-gpt5", cwd=tmp_path)
    assert shown.returncode == 0 and all(path in shown.stdout for path in TRUTH["unidentified"])
    assert "no file names the commit" in shown.stdout
    again = run_track("--db", store_url, "import", str(tree), "--campaign", "trae-gpt5", "--no-mlflow", "--json",
                      cwd=tmp_path)
    assert json.loads(again.stdout)["events_appended"] == 0  # the unidentified record is not repeated


def test_a_folder_that_gains_its_commit_becomes_an_attempt(tree: Path, sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        import_tree(store, tree, "trae-gpt5")
        assert len(unidentified_folders(store, "trae-gpt5")) == 2
        folder = tree / "state/runs" / TRUTH["unidentified"][1]
        (folder / "prompt.json").write_text(json.dumps(real_shapes._prompt(real_shapes.SHA_CLAUDE)))
        summary = import_tree(store, tree, "trae-gpt5")
        assert len(summary.unidentified) == 1 and summary.runs == TRUTH["trae_gpt5_attempts"] + 1
        assert [u["run_path"] for u in unidentified_folders(store, "trae-gpt5")] == TRUTH["unidentified"][:1]
        assert store.verify().ok


def test_incidents_are_counted_whatever_the_outcome(imported: str) -> None:
    with EventStore.open(imported) as store:
        table = {row["category"]: row for row in failure_table(store, "trae-gpt5")}
        frame = attempts_frame(store, "trae-gpt5")
        evidence = failure_evidence(store, "trae-gpt5", "tool_output_missing")
    assert {c: r["affected_runs"] for c, r in table.items() if r["affected_runs"]} == TRUTH["affected"]
    assert {c: r["root_cause_runs"] for c, r in table.items() if r["root_cause_runs"]} == TRUTH["root_cause"]
    # the run that hit the bug three times still succeeded: affected, never a root cause
    ok = frame[frame["item_id"] == "vllm_core-0010"].iloc[0]
    assert ok["failure_category"] == "none" and ok["outcome_level"] == "faster"
    [incident] = ok["incidents"]
    assert (incident["category"], incident["count"]) == ("tool_output_missing", 3)
    assert incident["first"] == {"file": "trae_stdout.txt", "line": 1}
    assert incident["last"] == {"file": "trae_stdout.txt", "line": 3}
    assert incident["files"] == {"trae_stdout.txt": 3, "trajectory.json": 1}
    assert "No tool output found" in incident["excerpt"]
    assert [e["run_path"] for e in evidence] == ["vllm/trae/gpt-5/2025-11-06_03-26-11/vllm_core-0010"]
    # an identical stdout under two names counts once
    dup = frame[frame["item_id"] == "vllm_core-0014"].iloc[0]
    assert [(i["category"], i["count"]) for i in dup["incidents"]] == [("quota_exceeded", 1)]


def test_noise_is_not_evidence_but_never_hides_a_real_error(imported: str) -> None:
    with EventStore.open(imported) as store:
        frame = attempts_frame(store, "trae-gpt5").set_index("item_id")
    # only the lakeview IndexError block and the asyncio exit traceback in stderr: no error evidence
    assert frame.loc["vllm_core-0013", "failure_category"] == "no_patch"
    assert frame.loc["vllm_core-0013", "incidents"] == []
    # a 401 printed inside the lakeview block is the real root cause
    assert frame.loc["vllm_core-0020", "failure_category"] == "invalid_api_key"


def test_short_sha_is_completed_and_formats_of_other_agents_are_read(tree: Path, sqlite_url: str) -> None:
    with EventStore.open(sqlite_url) as store:
        summary = import_tree(store, tree, "iso-{agent}-{model}", agent="*", model="*")
        assert summary.accounted and sum(summary.filtered.values()) == 0
        assert set(summary.campaigns) == {"iso-trae-gpt-5", "iso-codex-gpt-5", "iso-claude_code-default",
                                          "iso-trae-claude-sonnet-4-5", "iso-openhands-gpt-5"}
        old_layout = attempts_frame(store, "iso-openhands-gpt-5").iloc[0]
        assert (old_layout["run_timestamp"], old_layout["repo"]) == ("2025-09-17_04-26-22", "unknown")
        trae = attempts_frame(store, "iso-trae-gpt-5").set_index("item_id")
        codex_runs = attempts_frame(store, "iso-codex-gpt-5").set_index("item_id")
        codex = codex_runs.loc["sglang_core-0001"]
        crashed = codex_runs.loc["vllm_core-0002"]
        claude = attempts_frame(store, "iso-claude_code-default").iloc[0]
        sonnet = attempts_frame(store, "iso-trae-claude-sonnet-4-5").iloc[0]
    short = trae.loc["vllm_core-0020"]
    assert short["commit"] == real_shapes.SHA_SHORT and short["eval_status"] == "no_patch"
    # a hash-named run folder is a run; the agent's own test run in its transcript is no harness error
    assert (codex["run_timestamp"], codex["status"], codex["failure_category"]) == ("389be848", "success", "none")
    assert codex["incidents"] == []
    assert crashed["failure_category"] == "harness_error"  # the wrapper's own stderr is real stderr
    # Claude Code: usage and the cost it reported itself, beside the price-table cost
    assert claude["agent_reported_cost_usd"] == pytest.approx(0.97802385)
    assert claude["output_tokens"] == 15536 and claude["cached_input_tokens"] == 1648357
    assert claude["cost_usd"] is not None and claude["cost_usd"] > 0
    # an interrupted Bedrock run with only prompt and trajectory: an attempt, the Anthropic twin of the bug
    assert (sonnet["repo"], sonnet["commit"], sonnet["status"]) == ("sglang", real_shapes.SHA_SONNET, "unknown")
    assert sonnet["failure_category"] == "tool_result_missing"


def test_campaigns_show_the_funnel_and_the_report_beside_the_recount(imported: str, tmp_path: Path) -> None:
    listed = run_track("--db", imported, "campaigns", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    funnel = row["funnel"]
    assert {k: funnel[k] for k in ("runs", "agent_succeeded", "patch_produced", "evaluated", "tests_run",
                                   "tests_passed", "no_patch", "errors", "baseline_failed", "no_test", "faster")} == {
        "runs": 8, "agent_succeeded": 2, "patch_produced": 2, "evaluated": 6, "tests_run": 1, "tests_passed": 1,
        "no_patch": 4, "errors": 0, "baseline_failed": 1, "no_test": 0, "faster": 1}
    assert funnel["basis"] == "evaluation"
    report = row["evaluation_report"]
    assert report["figures"]["total_commits"] == 7 and report["figures"]["tests_passed"] == 2
    assert "total_commits: report 7, recount 6" in " | ".join(report["differences"])
    assert "tests_passed: report 2, recount 1" in " | ".join(report["differences"])
    assert report["note"] and "disagrees" in report["note"]
    assert set(row["funnel_by_model_folder"]) == {"gpt-5", "gpt-5-2025-08-07"}
    old = next(a for a in json.loads(run_track("--db", imported, "attempts", "trae-gpt5", "--json",
                                               cwd=tmp_path).stdout) if a["item_id"] == "moe_align_opt-0000")
    assert (old["repo"], old["run_timestamp"], old["failure_category"]) == ("vllm", "moe_align_opt-3a3ac0e4",
                                                                           "quota_exceeded")
    text = run_track("--db", imported, "campaigns", cwd=tmp_path)
    assert "beside the recount" in text.stdout and "tests_passed" in text.stdout


@pytest.mark.parametrize(("policy", "level", "scope", "expected"), [
    ("any-failed", "agent", "evaluated", "any_failed_evaluated"),
    ("any-failed", "agent", "all", "any_failed_all"),
    ("never-succeeded", "agent", "all", "never_succeeded"),
    ("any-failed", "tests", "evaluated", "tests_failed_at_tests_level"),
])
def test_selection_policies(imported: str, policy: str, level: str, scope: str, expected: str) -> None:
    with EventStore.open(imported) as store:
        plan = select_commits(store, "trae-gpt5", policy=policy, level=level, scope=scope)
    assert {i.commit for i in plan.items} == TRUTH[expected]
    assert plan.selection["policy"] == policy and plan.selection["level"] == level
    assert all(i.item_id == f"vllm_gpt5_rerun_{i.commit[:8]}" for i in plan.items)


def test_plan_cli_names_its_policy_in_every_file(imported: str, tmp_path: Path) -> None:
    out = tmp_path / "plans"
    result = run_track("--db", imported, "plan", "trae-gpt5", "--scope", "evaluated", "--out", str(out),
                       "--repo-root", "/home/ubuntu/repos", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "at least one failed attempt" in result.stdout and "evaluated attempts only" in result.stdout
    bench = json.loads((out / "trae_gpt-5_vllm_plan.json").read_text())
    assert bench["repo"] == "/home/ubuntu/repos/vllm" and bench["task_id"] == "vllm_gpt5_rerun"
    assert "at least one failed attempt" in bench["selection"]
    assert sorted(i["human"] for i in bench["items"]) == sorted(TRUTH["any_failed_evaluated"])
    everything = run_track("--db", imported, "plan", "trae-gpt5", "--out", str(tmp_path / "all"),
                           "--json", cwd=tmp_path)
    selection = json.loads(everything.stdout)["selection"]
    assert (selection["policy"], selection["scope"]) == ("any-failed", "all")  # the defaults
    assert selection["selected"] == len(TRUTH["any_failed_all"])


def test_failures_cli_prints_the_table_and_its_evidence(imported: str, tmp_path: Path) -> None:
    table = run_track("--db", imported, "failures", "trae-gpt5", "--json", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    rows = {r["category"]: r for r in json.loads(table.stdout)}
    assert rows["quota_exceeded"]["affected_runs"] == 3 and rows["quota_exceeded"]["commits"] == 2
    assert set(rows["quota_exceeded"]) >= {"category", "affected_runs", "root_cause_runs", "commits", "models"}
    evidence = run_track("--db", imported, "failures", "trae-gpt5", "--evidence", "invalid_api_key", cwd=tmp_path)
    assert "trae_stderr.txt:" in evidence.stdout and "ROOT CAUSE" in evidence.stdout
    assert "B7cA" not in evidence.stdout and "sk-proj-****" not in evidence.stdout  # redacted
    human = run_track("--db", imported, "failures", "trae-gpt5", cwd=tmp_path)
    assert "affected_runs" in human.stdout and "harness_error" in human.stdout


def test_compare_counts_success_at_the_level_asked(tree: Path, sqlite_url: str, tmp_path: Path) -> None:
    """The same two campaigns compared at the agent level and at the tests level: a commit whose agent
    finished but whose tests never passed is a success only at the agent level."""
    from tracker.analysis.compare import compare

    with EventStore.open(sqlite_url) as store:
        import_tree(store, tree, "orig")
        import_tree(store, tree, "again", kind="rerun", agent_fix_commit="a1c6d41", baseline_campaign="orig")
        agent = compare(store, "orig", "again").commits.set_index("commit")
        tests = compare(store, "orig", "again", level="tests").commits.set_index("commit")
    quota = real_shapes.SHA_QUOTA  # 0014 finished (agent success) but its evaluation failed on its own
    assert agent.loc[quota, "rerun_status"] == "success"
    assert tests.loc[quota, "rerun_status"] == "below_tests"
    assert tests.loc[quota, "rerun_category"] in ("eval:baseline_failed", "quota_exceeded")
    assert tests.loc[real_shapes.SHA_OK, "rerun_status"] == "success"  # tests passed and faster
    shown = run_track("--db", sqlite_url, "compare", "orig", "again", "--level", "tests", "--no-mlflow",
                      cwd=tmp_path)
    assert shown.returncode in (0, 1), shown.stderr
    assert "reached level tests" in shown.stdout


def test_broken_new_files_are_named_and_the_rest_is_kept(tree: Path, sqlite_url: str) -> None:
    """A truncated run summary, a binary prompt, a Claude Code result cut mid-line and an evaluation
    report that is not JSON: each is a named problem; nothing else of the run is lost."""
    runs = tree / "state" / "runs"
    harness = runs / "vllm/trae/gpt-5/2025-11-06_03-26-11/vllm_core-0012"
    (harness / "run_summary.json").write_text('{"schema_version": "1.0", "meta": {"repo": "vl')
    (harness / "prompt.json").write_bytes(b"\x00\x01binary")
    claude = runs / "vllm/claude_code/default/2025-12-22_20-31-26/vllm_core-0000"
    (claude / "claude_code_stdout.txt").write_text('{"type":"result","subtype":"success","total_cost_usd":0.9')
    (tree / "archive/analysis/eval_results_v2/evaluation_report.json").write_text("<html>not json</html>")
    with EventStore.open(sqlite_url) as store:
        summary = import_tree(store, tree, "iso-{agent}-{model}", agent="*", model="*")
        frame = attempts_frame(store, "iso-trae-gpt-5").set_index("item_id")
        claude_row = attempts_frame(store, "iso-claude_code-default").iloc[0]
        rows = list_campaigns(store)
    assert summary.accounted
    problems = {(p["file"], p["kind"]) for p in frame.loc["vllm_core-0012", "problems"]}
    assert ("run_summary.json", "truncated") in problems and ("prompt.json", "binary") in problems
    assert frame.loc["vllm_core-0012", "commit"] == real_shapes.SHA_HARNESS  # the journal still names it
    assert frame.loc["vllm_core-0012", "failure_category"] == "harness_error"
    assert claude_row["status"] == "success" and claude_row["agent_reported_cost_usd"] is None
    assert {(p["file"], p["kind"]) for p in summary.to_dict()["tree_problems"]} == {
        ("archive/analysis/eval_results_v2/evaluation_report.json", "invalid_json")}
    assert all(row["evaluation_report"] is None for row in rows)


def test_funnel_without_evaluations_is_the_agents() -> None:
    rows = [{"status": "success", "patch_sha256": "p"},
            {"status": "success", "patch_sha256": None, "patch_bytes": 0, "patch_generated": True},
            {"status": "error"}]
    assert funnel(rows) == {
        "runs": 3, "agent_succeeded": 2, "patch_produced": 2, "evaluated": 0, "basis": "agent", "tests_run": 0,
        "tests_passed": 0, "no_patch": 1, "errors": 1, "baseline_failed": 0, "no_test": 0, "faster": 0,
        "evaluation_status": {}}
    assert list(funnel(rows))[:5] == ["runs", "agent_succeeded", "patch_produced", "evaluated", "basis"]
    assert funnel([])["basis"] == "agent" and funnel([])["runs"] == 0
