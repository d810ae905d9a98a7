"""Readers of ISO-Bench trees: the sample fixtures match their truth files run by run, and bad input
(truncated, binary, missing, looping, unreadable) becomes named problems instead of crashes."""

from __future__ import annotations

import collections
import json
import os
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tracker.classify.classifier import classify
from tracker.isobench import (
    Problem,
    RunFacts,
    discover_runs,
    index_evaluations,
    index_pipeline_logs,
    normalise_model,
    normalise_repo,
    read_patch,
    read_run,
    read_trajectory,
    read_tree,
    scan_text,
)
from tracker.isobench.textlog import MAX_EVIDENCE_PER_FILE

REPO_ROOT = Path(__file__).resolve().parent.parent
SHA = "8319002d3167d53e5753dc98fa36a1009aecac22"
PRE = "ae386fb856967b282e2a7c91a5a97a327707c282"
TREES = ("isobench-small-a", "isobench-small-b")


# ---------------------------------------------------------------- builders (also used by test_classifier)


def fixtures_dir() -> Path | None:
    """The sample trees: $TRACK_FIXTURES, tests/fixtures, or the shared copy."""
    for candidate in (
        os.environ.get("TRACK_FIXTURES"),
        REPO_ROOT / "tests" / "fixtures",
        "/work/shared/fixtures",
    ):
        if candidate and (Path(candidate) / "isobench-small-a").is_dir():
            return Path(candidate)
    return None


def journal(status: str = "error", human: str = SHA, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "task_id": "vllm_core",
        "commits": {"pre": PRE, "human": human},
        "agent_branch": "agent/vllm_core/83190024",
        "status": status,
        "trae": {"cli": "python", "time_budget_minutes": 120, "returncode": 1, "duration_s": 200.0},
        "timestamps": {"written": 1764921682.0},
    }
    doc.update(extra)
    return doc


def trajectory(usages: Sequence[tuple[int, int, int]], step_errors: Sequence[str] = ()) -> dict[str, Any]:
    """A TRAE trajectory with one interaction per (input, cached, output) triple."""
    return {
        "task": "t",
        "start_time": "2025-12-14T14:51:00+00:00",
        "end_time": "2025-12-14T14:59:30+00:00",
        "provider": "openai",
        "model": "gpt-5",
        "max_steps": 120,
        "llm_interactions": [
            {
                "response": {
                    "content": "",
                    "usage": {
                        "input_tokens": i,
                        "output_tokens": o,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": c,
                        "reasoning_tokens": 1,
                    },
                }
            }
            for i, c, o in usages
        ],
        # agent steps repeat the usage of their call: it must not be counted twice
        "agent_steps": [
            {"step_number": n, "error": e, "llm_response": {"usage": {"input_tokens": 10**9}}}
            for n, e in enumerate(step_errors)
        ],
        "success": False,
        "final_result": "done",
        "execution_time": 10.0,
    }


def make_run(
    root: Path,
    item: str = "vllm_core-0003",
    ts: str = "2025-12-03_17-40-02",
    repo: str = "vllm",
    model: str = "gpt-5",
    files: dict[str, Any] | None = None,
) -> Path:
    """Create one run folder with the given files (dicts are written as JSON)."""
    folder = root / "state" / "runs" / repo / "trae" / model / ts / item
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        path = folder / name
        if isinstance(content, dict):
            path.write_text(json.dumps(content))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def pipeline_block(
    item: str, status: str, rc: int = 1, human: str = SHA, stderr: Sequence[str] = ()
) -> list[str]:
    """The lines the bench writes for one item."""
    info = "2025-12-03 17:40:02,006 - bench.prepare - INFO - "
    warn = "2025-12-03 17:40:02,006 - bench.prepare - WARNING - "
    return [
        info + f"Starting task processing: {item}",
        info + f"Task configuration - Human commit: {human}, Pre commit: {PRE}",
        info + "TRAE STDOUT: Input: 1000 Output: 50",
        *[warn + f"TRAE STDERR: {x}" for x in stderr],
        info + "TRAE agent execution completed in 207.5 seconds",
        info + f"Process return code: {rc}",
        info + f"Task status determined as: {status}",
        info + f"Writing journal with final status: {status}",
    ]


def write_log(root: Path, name: str, lines: Sequence[str]) -> Path:
    path = root / name
    path.write_text("\n".join(lines) + "\n")
    return path


def read_one(root: Path) -> RunFacts:
    runs = list(read_tree(root))
    assert len(runs) == 1
    return runs[0]


def kinds(problems: Sequence[Problem]) -> set[tuple[str, str]]:
    return {(p.file, p.kind) for p in problems}


# ---------------------------------------------------------------- the sample trees against their truth


FIXTURES = fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="ISO-Bench sample trees not found")


@pytest.fixture(scope="module", params=TREES)
def tree(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[RunFacts], list[Problem]]:
    if FIXTURES is None:
        pytest.skip("ISO-Bench sample trees not found")
    root = FIXTURES / request.param
    truth = json.loads((FIXTURES / f"{request.param}.truth.json").read_text())
    problems: list[Problem] = []
    return truth, list(read_tree(root, problems)), problems


@needs_fixtures
def test_every_run_matches_truth(tree: tuple[dict[str, Any], list[RunFacts], list[Problem]]) -> None:
    truth, runs, tree_problems = tree
    detail = truth["runs_detail"]
    assert tree_problems == []
    assert sorted(r.folder.key for r in runs) == sorted(detail), "every truth run found, nothing else"
    assert len(runs) == truth["runs"]
    mismatches = []
    for run in runs:
        exp = detail[run.folder.key]
        got = {
            "commit": run.commit,
            "repo": run.folder.repo,
            "item_id": run.folder.item_id,
            "status": run.status,
            "category": _category(run),
            "has_patch": run.has_patch,
            "input_tokens": run.tokens.input_tokens,
            "output_tokens": run.tokens.output_tokens,
        }
        want = {k: exp[k] for k in got}
        want["category"] = exp["category"] or "none"
        if exp["trajectory"]:
            got["cached_input_tokens"] = run.tokens.cached_input_tokens
            want["cached_input_tokens"] = exp["cached_input_tokens"]
            assert run.tokens.source == "trajectory"
        else:
            # No trajectory: TRAE's printed totals give input/output; the cached split is written
            # nowhere on disk, so it is unknown (None), never a guessed number.
            assert run.tokens.source == "stdout"
            assert run.tokens.cached_input_tokens is None
        if got != want:
            mismatches.append((run.folder.key, got, want))
    assert mismatches == []


@needs_fixtures
def test_counts_match_truth(tree: tuple[dict[str, Any], list[RunFacts], list[Problem]]) -> None:
    truth, runs, _ = tree
    assert dict(collections.Counter(r.status for r in runs)) == truth["status"]
    categories = collections.Counter(_category(r) for r in runs)
    assert categories.pop("none") == truth["status"]["success"]
    assert dict(categories) == truth["category"]
    commits = {r.commit or "" for r in runs}
    assert "" not in commits and len(commits) == truth["commits"]
    ok = {r.commit for r in runs if r.status == "success"}
    assert sorted(commits - ok) == truth["failed_commits"]
    per_repo = collections.Counter(r.folder.repo for r in runs if r.commit not in ok and r.commit)
    assert {
        repo: len({r.commit for r in runs if r.folder.repo == repo and r.commit not in ok})
        for repo in per_repo
    } == truth["never_ok"]


@needs_fixtures
def test_broken_journals_are_named(tree: tuple[dict[str, Any], list[RunFacts], list[Problem]]) -> None:
    truth, runs, _ = tree
    broken = collections.Counter(
        f"journal_{p.kind}" for r in runs for p in r.problems if p.file == "journal.json"
    )
    assert broken.get("journal_truncated", 0) == truth["broken"]["journal_truncated"]
    assert broken.get("journal_missing", 0) == truth["broken"]["journal_missing"]
    for run in runs:
        note = truth["runs_detail"][run.folder.key]["note"]
        if note:
            assert (
                run.journal is None
                and run.status_source == "pipeline_log"
                and run.commit_source == "pipeline_log"
            )


@needs_fixtures
def test_evaluations_attach_to_their_run(tree: tuple[dict[str, Any], list[RunFacts], list[Problem]]) -> None:
    truth, runs, _ = tree
    evaluated = [r for r in runs if r.evaluation is not None]
    assert evaluated, "the sample trees have evaluation results"
    for run in evaluated:
        assert run.evaluation is not None
        assert run.evaluation.speedup == truth["runs_detail"][run.folder.key]["speedup"]
        assert run.evaluation.run_id == run.folder.timestamp


def _category(run: RunFacts) -> str:
    return classify(run).category


# ---------------------------------------------------------------- discovery and normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("vllm", "vllm"),
        ("sglang", "sglang"),
        ("sglan", "sglang"),
        ("SGLang", "sglang"),
        ("slgang", "sglang"),
        ("vlm", "vllm"),
        ("vllm-main", "vllm"),
        ("tensorrt", "tensorrt"),
        ("sg", "sg"),
    ],
)
def test_normalise_repo(raw: str, expected: str) -> None:
    assert normalise_repo(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gpt-5", "gpt-5"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("openai-gpt-5", "gpt-5"),
        ("openai/gpt-4o", "gpt-4o"),
        ("claude-sonnet-45", "claude-sonnet-4-5"),
        ("us-anthropic-claude-sonnet-4-5-20250929-v1-0", "claude-sonnet-4-5"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("o4-mini", "o4-mini"),
        ("GPT-5", "gpt-5"),
    ],
)
def test_normalise_model(raw: str, expected: str) -> None:
    assert normalise_model(raw) == expected


def test_discovery_fields_and_order(tmp_path: Path) -> None:
    make_run(tmp_path, "vllm_core-0002", "2025-12-05_08-01-09")
    make_run(tmp_path, "sglang_002_2265d0bf", "2025-12-03_17-40-02", repo="sglan", model="gpt-5-2025-08-07")
    make_run(tmp_path, "vllm_core-0001", "2025-12-05_08-01-09")
    folders = list(discover_runs(tmp_path))
    assert [f.run_path for f in folders] == [
        "sglan/trae/gpt-5-2025-08-07/2025-12-03_17-40-02/sglang_002_2265d0bf",
        "vllm/trae/gpt-5/2025-12-05_08-01-09/vllm_core-0001",
        "vllm/trae/gpt-5/2025-12-05_08-01-09/vllm_core-0002",
    ]
    first = folders[0]
    assert (
        first.repo_raw,
        first.repo,
        first.agent,
        first.model_raw,
        first.model,
        first.timestamp,
        first.item_id,
    ) == (
        "sglan",
        "sglang",
        "trae",
        "gpt-5-2025-08-07",
        "gpt-5",
        "2025-12-03_17-40-02",
        "sglang_002_2265d0bf",
    )


def test_missing_tree_is_a_problem(tmp_path: Path) -> None:
    problems: list[Problem] = []
    assert list(discover_runs(tmp_path / "nope", problems)) == []
    assert kinds(problems) == {("state/runs", "missing")}
    assert list(read_tree(tmp_path / "nope")) == []


def test_symlink_loops_terminate(tmp_path: Path) -> None:
    run = make_run(tmp_path, files={"journal.json": journal()})
    ts_dir = run.parent
    (ts_dir / "loop_item").symlink_to(ts_dir.parent, target_is_directory=True)  # item -> model dir
    (tmp_path / "state" / "runs" / "again").symlink_to(tmp_path / "state" / "runs")  # repo -> runs
    (ts_dir.parent / "2025-12-04_00-00-00").symlink_to(ts_dir)  # a second name for the same run
    (ts_dir / "self").symlink_to(ts_dir / "self")  # a link to itself
    problems: list[Problem] = []
    folders = list(discover_runs(tmp_path, problems))
    assert [f.item_id for f in folders] == ["vllm_core-0003"]
    assert any(p.kind == "symlink_loop" for p in problems)


def test_run_folder_named_by_hash_is_a_run(tmp_path: Path) -> None:
    """Older benches named the run folder after the run's short hash (`sglang/codex/gpt-5/389be848/`):
    it is a run like any other, never skipped for its name."""
    make_run(tmp_path, ts="389be848")
    problems: list[Problem] = []
    folders = list(discover_runs(tmp_path, problems))
    assert [(f.timestamp, f.timestamp_is_time) for f in folders] == [("389be848", False)]
    assert problems == []


def test_unreadable_directory_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads any directory whatever its mode, so the permission error is injected."""
    make_run(tmp_path, "vllm_core-0001")
    make_run(tmp_path, "vllm_core-0002", ts="2025-12-05_08-01-09")
    blocked = tmp_path / "state/runs/vllm/trae/gpt-5/2025-12-03_17-40-02"
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if Path(path) == blocked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    problems: list[Problem] = []
    assert [f.item_id for f in discover_runs(tmp_path, problems)] == ["vllm_core-0002"]
    assert kinds(problems) == {("state/runs/vllm/trae/gpt-5/2025-12-03_17-40-02", "unreadable")}


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: chmod 000 does not stop root from reading")
def test_chmod_000_directory_is_a_problem(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.parent.chmod(0)
    try:
        problems: list[Problem] = []
        assert list(discover_runs(tmp_path, problems)) == []
        assert any(p.kind == "unreadable" for p in problems)
    finally:
        run.parent.chmod(0o755)


# ---------------------------------------------------------------- bad files inside a run


def test_truncated_journal_recovers_status_from_log(tmp_path: Path) -> None:
    text = json.dumps(journal(status="error"))
    make_run(tmp_path, files={"journal.json": text[:60], "trae_stderr.txt": ""})
    write_log(tmp_path, "pipeline_run_20251203_174002.log", pipeline_block("vllm_core-0003", "error", rc=124))
    run = read_one(tmp_path)
    assert run.journal is None
    assert kinds(run.problems) == {("journal.json", "truncated")}
    assert (run.status, run.status_source) == ("error", "pipeline_log")
    assert (run.commit, run.commit_source) == (SHA, "pipeline_log")
    assert run.return_code == 124 and run.duration_s == 207.5
    assert classify(run).category == "timeout"


def test_non_json_journal(tmp_path: Path) -> None:
    make_run(tmp_path, files={"journal.json": "status: success\nthis is yaml, not json\n"})
    write_log(tmp_path, "pipeline_run_20251203_174002.log", pipeline_block("vllm_core-0003", "success", rc=0))
    run = read_one(tmp_path)
    assert kinds(run.problems) == {("journal.json", "invalid_json")}
    assert run.status == "success"


def test_journal_not_an_object_and_binary(tmp_path: Path) -> None:
    make_run(tmp_path, "a-1", files={"journal.json": "[1, 2]"})
    make_run(tmp_path, "b-1", files={"journal.json": b"\x00\x01\x02binary\xff"})
    runs = {r.folder.item_id: r for r in read_tree(tmp_path)}
    assert kinds(runs["a-1"].problems) >= {("journal.json", "invalid_json")}
    assert kinds(runs["b-1"].problems) >= {("journal.json", "binary")}
    assert runs["b-1"].status == "unknown" and runs["b-1"].commit is None


def test_missing_journal_only_problem_for_optional_files(tmp_path: Path) -> None:
    make_run(tmp_path)
    run = read_one(tmp_path)
    assert kinds(run.problems) == {("journal.json", "missing"), (".", "missing")}
    assert run.status == "unknown"
    assert run.trajectory is None and not run.patch.present and not run.stderr.present
    assert run.tokens.input_tokens is None  # unknown, not zero
    assert classify(run).category == "other"


def test_commit_guessed_from_item_id(tmp_path: Path) -> None:
    make_run(tmp_path, "sglang_044_9c064bf7", repo="sglang")
    run = read_one(tmp_path)
    assert (run.commit, run.commit_source) == ("9c064bf7", "item_id")
    assert (".", "guessed") in kinds(run.problems)


def test_short_journal_sha_is_completed_from_the_prompt(tmp_path: Path) -> None:
    make_run(tmp_path, files={"journal.json": journal(human=SHA[:8]), "prompt.json": {"commits": {"human": SHA}}})
    run = read_one(tmp_path)
    assert (run.commit, run.commit_source) == (SHA, "journal")
    assert (".", "guessed") not in kinds(run.problems)


def test_short_journal_sha_is_completed_from_the_evaluation(tmp_path: Path) -> None:
    base = tmp_path / "eval_results_v2" / "vllm_trae_gpt5-83190024" / "vllm_core-0003"
    base.mkdir(parents=True)
    (base / "test_results.json").write_text(json.dumps({"metadata": {
        "run_id": "2025-12-03_17-40-02", "item_id": "vllm_core-0003", "human_commit": SHA}, "result": {}}))
    make_run(tmp_path, files={"journal.json": journal(human=SHA[:8])})
    run = read_one(tmp_path)
    assert (run.commit, run.commit_source) == (SHA, "journal")
    assert run.evaluation is not None and run.evaluation.human_commit == SHA


def test_short_sha_nobody_completes_is_kept_and_reported(tmp_path: Path) -> None:
    make_run(tmp_path, files={"journal.json": journal(human=SHA[:8])})
    run = read_one(tmp_path)
    assert (run.commit, run.commit_source) == (SHA[:8], "journal")
    assert (".", "guessed") in kinds(run.problems)


def test_binary_where_text_expected(tmp_path: Path) -> None:
    blob = b"\x7fELF\x00\x00\x00" + os.urandom(4096)
    make_run(
        tmp_path,
        files={
            "journal.json": journal(),
            "trae_stderr.txt": blob,
            "trae_stdout.txt": blob,
            "trajectory.json": blob,
            "model_patch.diff": blob,
        },
    )
    run = read_one(tmp_path)
    assert kinds(run.problems) == {
        ("trae_stderr.txt", "binary"),
        ("trae_stdout.txt", "binary"),
        ("trajectory.json", "binary"),
        ("model_patch.diff", "binary"),
    }
    assert run.evidence == () and run.trajectory is None
    assert run.status == "error"


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    """A directory where a file should be is named for what it is ('not_a_file': a folder), not a crash."""
    folder = make_run(tmp_path, files={"journal.json": journal()})
    for name in ("trae_stderr.txt", "trajectory.json", "model_patch.diff"):
        (folder / name).mkdir()
    run = read_one(tmp_path)
    assert kinds(run.problems) == {
        ("trae_stderr.txt", "not_a_file"),
        ("trajectory.json", "not_a_file"),
        ("model_patch.diff", "not_a_file"),
    }
    assert all("a folder, not a regular file" in p.detail for p in run.problems)


def test_journal_that_is_a_directory(tmp_path: Path) -> None:
    folder = make_run(tmp_path)
    (folder / "journal.json").mkdir()
    run = read_one(tmp_path)
    assert ("journal.json", "not_a_file") in kinds(run.problems)


def test_planted_secret_never_in_evidence(tmp_path: Path) -> None:
    secret = "sk-proj-Zq9TfVb3LmN8xWc2RtY7uIo0PaSdFgHjKl1"
    stderr = (
        f"Using OPENAI_API_KEY={secret}\n"
        "OpenAI API call failed: openai.AuthenticationError: Error code: 401 - {'error': {'message': "
        f"'Incorrect API key provided: {secret}.', 'code': 'invalid_api_key'}}}}\n"
        f"Traceback: Authorization header Bearer {secret} rejected\n"
    )
    make_run(
        tmp_path,
        files={
            "journal.json": journal(error=f"AuthenticationError with {secret}"),
            "trae_stderr.txt": stderr,
            "trae_stdout.txt": f"key={secret} error\n",
        },
    )
    write_log(
        tmp_path,
        "pipeline_run_20251203_174002.log",
        pipeline_block("vllm_core-0003", "error", stderr=[f"API call failed: bad key {secret}"]),
    )
    run = read_one(tmp_path)
    verdict = classify(run)
    assert verdict.category == "invalid_api_key"
    texts = [e.text for e in run.evidence] + [e.excerpt for e in verdict.evidence]
    assert texts and all(secret not in t and "Zq9TfVb3" not in t for t in texts)
    assert secret not in repr(run.evidence) + repr(verdict)


# ---------------------------------------------------------------- individual readers


def test_trajectory_sums_only_interactions(tmp_path: Path) -> None:
    make_run(
        tmp_path, files={"trajectory.json": trajectory([(100, 40, 10), (200, 150, 20)], ["", "boom Error"])}
    )
    facts, problems = read_trajectory(next(discover_runs(tmp_path)).path)
    assert problems == [] and facts is not None
    assert (facts.input_tokens, facts.cached_input_tokens, facts.output_tokens, facts.reasoning_tokens) == (
        300,
        190,
        30,
        2,
    )
    assert facts.interactions == 2 and facts.steps == 2 and facts.max_steps == 120 and facts.success is False
    assert [e.text for e in facts.evidence] == ["boom Error"]


def test_truncated_trajectory_keeps_partial_sums(tmp_path: Path) -> None:
    text = json.dumps(trajectory([(100, 40, 10), (200, 150, 20), (400, 0, 40)]))
    cut = text.index('"input_tokens": 400')
    folder = make_run(
        tmp_path, files={"trajectory.json": text[:cut], "trae_stdout.txt": "Input: 700 Output: 70\n"}
    )
    facts, problems = read_trajectory(folder)
    assert facts is not None and not facts.complete
    assert (facts.input_tokens, facts.cached_input_tokens, facts.output_tokens) == (300, 190, 30)
    assert [(p.file, p.kind) for p in problems] == [("trajectory.json", "truncated")]
    run = read_one(tmp_path)
    assert (run.tokens.source, run.tokens.input_tokens, run.tokens.output_tokens) == ("stdout", 700, 70)


def test_truncated_trajectory_sums_are_the_last_token_source(tmp_path: Path) -> None:
    text = json.dumps(trajectory([(100, 40, 10), (200, 150, 20), (400, 0, 40)]))
    make_run(tmp_path, files={"trajectory.json": text[:text.index('"input_tokens": 400')]})
    run = read_one(tmp_path)
    assert (run.tokens.source, run.tokens.input_tokens, run.tokens.cached_input_tokens) == (
        "trajectory_partial", 300, 190)


def test_invalid_trajectory(tmp_path: Path) -> None:
    folder = make_run(tmp_path, files={"trajectory.json": '{"llm_interactions": [} garbage ]'})
    facts, problems = read_trajectory(folder)
    assert [(p.file, p.kind) for p in problems] == [("trajectory.json", "invalid_json")]


def test_trajectory_streams_in_flat_memory(tmp_path: Path) -> None:
    """~50 MB of trajectory; tracemalloc's peak stays a small fraction of the file size."""
    path = tmp_path / "trajectory.json"
    filler = "x" * 20_000
    n = 2_500
    with open(path, "w") as fh:
        fh.write('{"task": "t", "max_steps": 200, "llm_interactions": [')
        for i in range(n):
            if i:
                fh.write(",")
            fh.write(
                json.dumps(
                    {
                        "input_messages": [{"role": "user", "content": filler}],
                        "response": {
                            "content": filler,
                            "usage": {
                                "input_tokens": 1000 + i,
                                "output_tokens": 10,
                                "cache_read_input_tokens": 500,
                                "cache_creation_input_tokens": 0,
                                "reasoning_tokens": 3,
                            },
                        },
                    }
                )
            )
        fh.write('], "agent_steps": [], "success": true}')
    assert path.stat().st_size > 49_000_000
    tracemalloc.start()
    try:
        facts, problems = read_trajectory(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problems == [] and facts is not None
    assert facts.interactions == n
    assert facts.input_tokens == sum(1000 + i for i in range(n))
    assert facts.cached_input_tokens == 500 * n
    assert peak < 5_000_000, f"peak {peak} bytes"


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        ("", (False, 0, 0, 0)),
        ("\n  \n", (False, 0, 0, 0)),
        (
            "diff --git a/x.py b/x.py\nindex 1..2 100644\n--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n ctx\n"
            "--- removed line that looks like a header\n+++ added line that looks like a header\n ctx\n"
            "diff --git a/y.py b/y.py\n--- a/y.py\n+++ b/y.py\n@@ -1 +1,2 @@\n-old\n+new\n+more\n"
            "\\ No newline at end of file\n",
            (True, 2, 3, 2),
        ),
        ("--- a/z\n+++ b/z\n@@ -0,0 +1 @@\n+only\n", (True, 1, 1, 0)),
    ],
)
def test_patch_stats(tmp_path: Path, diff: str, expected: tuple[bool, int, int, int]) -> None:
    folder = make_run(tmp_path, files={"model_patch.diff": diff})
    facts, problems = read_patch(folder)
    assert problems == []
    assert (facts.has_patch, facts.files_changed, facts.lines_added, facts.lines_removed) == expected
    assert facts.present and facts.bytes == len(diff.encode())
    assert (facts.sha256 is not None) == bool(diff)


def test_text_scan_dedupes_caps_and_reads_tokens(tmp_path: Path) -> None:
    path = tmp_path / "trae_stdout.txt"
    lines = [f"OpenAI API call failed: RateLimitError. Will sleep for {i} seconds" for i in range(1000)]
    lines += [f"distinct error number {chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(400)]
    lines += ["Input: 5 Output: 1", "plain progress", "Input: 332283 Output: 2188", "x" * 200_000 + " error"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scan = scan_text(path, "trae_stdout.txt", "stdout")
    assert (scan.token_input, scan.token_output) == (332283, 2188)
    assert scan.lines == len(lines)
    assert len(scan.evidence) == MAX_EVIDENCE_PER_FILE and scan.dropped_evidence > 0
    retry = scan.evidence[0]  # the same retry line 1000 times is one line that knows how often it came
    assert (retry.line, retry.count, retry.last_line) == (1, 1000, 1000)
    assert scan.evidence[0].line == 1 and scan.evidence[1].line == 1001  # retries collapse into one
    assert all(len(e.text) <= 1000 for e in scan.evidence)


def test_text_scan_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "trae_stderr.txt"
    path.write_bytes(b"caf\xe9 error here\n\xff\xfe broken Traceback\n")
    scan = scan_text(path, "trae_stderr.txt", "stderr")
    assert scan.problems == () and len(scan.evidence) == 2


# ---------------------------------------------------------------- pipeline log index and evaluations


def test_pipeline_log_index_matches_by_name_and_tolerance(tmp_path: Path) -> None:
    write_log(
        tmp_path,
        "pipeline_run_20251203_174002.log",
        pipeline_block("vllm_core-0003", "error") + pipeline_block("vllm_core-0003", "success", rc=0),
    )
    write_log(
        tmp_path, "pipeline_run_20251205_080108.log", pipeline_block("vllm_core-0003", "max_steps_exceeded")
    )
    write_log(
        tmp_path,
        "pipeline_run.log",
        [
            "2025-12-07 10:00:00,000 - bench.prepare - INFO - "
            "Skipping vllm_core-0003 - task already completed successfully",
            *pipeline_block("vllm_core-0004", "error", human="a" * 40),
        ],
    )
    (tmp_path / "pipeline_run_bad.log").write_bytes(b"\x00\x00binary")
    index = index_pipeline_logs(tmp_path)
    assert kinds(index.problems) == {("pipeline_run_bad.log", "binary")}
    exact = index.find("vllm_core-0003", "2025-12-03_17-40-02")
    assert exact is not None and exact.status == "success" and exact.return_code == 0  # last block wins
    assert exact.human_commit == SHA and exact.pre_commit == PRE and exact.token_input == 1000
    near = index.find("vllm_core-0003", "2025-12-05_08-01-09")  # log named one second early
    assert near is not None and near.status == "max_steps_exceeded"
    assert index.find("vllm_core-0003", "2025-12-05_08-01-09", commit="b" * 40) is None
    assert index.find("vllm_core-0003", "2025-12-09_00-00-00") is None  # skip lines are not runs
    undated = index.find("vllm_core-0004", "2025-12-07_10-00-00")  # timestamp from the first line
    assert undated is not None and undated.human_commit == "a" * 40


def test_pipeline_log_evidence_is_limited_to_errors(tmp_path: Path) -> None:
    lines = pipeline_block(
        "vllm_core-0003",
        "error",
        stderr=[
            "OpenAI API call failed: openai.RateLimitError: Error code: 429 - Rate limit reached. Will sleep",
        ],
    )
    write_log(tmp_path, "pipeline_run_20251203_174002.log", lines)
    block = index_pipeline_logs(tmp_path).find("vllm_core-0003", "2025-12-03_17-40-02")
    assert block is not None
    assert [e.line for e in block.evidence] == [4]  # status lines ("... as: error") are facts, not evidence
    assert block.fact_lines["status"] == 7


def test_evaluation_index(tmp_path: Path) -> None:
    base = tmp_path / "eval_results_v2" / "vllm_trae_gpt5-83190024" / "vllm_core-0003"
    base.mkdir(parents=True)
    (base / "test_results.json").write_text(
        json.dumps(
            {
                "metadata": {
                    "run_id": "2025-12-03_17-40-02",
                    "item_id": "vllm_core-0003",
                    "human_commit": SHA.upper(),
                },
                "result": {
                    "status": "success",
                    "baseline_ms": 36.04,
                    "patched_ms": 26.7,
                    "speedup": 1.35,
                    "improvement": True,
                    "error_message": None,
                },
            }
        )
    )
    bad = tmp_path / "eval_results_v2" / "x" / "y"
    bad.mkdir(parents=True)
    (bad / "test_results.json").write_text('{"metadata": ')
    index = index_evaluations(tmp_path)
    assert kinds(index.problems) == {("eval_results_v2/x/y/test_results.json", "truncated")}
    hit = index.find(SHA, "vllm_core-0003", "2025-12-03_17-40-02")
    assert hit is not None and hit.speedup == 1.35 and hit.improvement is True
    assert index.find(SHA, "vllm_core-0003", "2025-12-04_00-00-00") is None
    assert index.find(None, "vllm_core-0003", "2025-12-03_17-40-02") == hit
    make_run(tmp_path, files={"journal.json": journal(status="success")})
    run = read_run(next(discover_runs(tmp_path)), index_pipeline_logs(tmp_path), index)
    assert run.evaluation == hit


def test_trajectory_parsed_whole_or_streamed_gives_the_same_facts(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Small trajectories are parsed whole (fast), large ones streamed: both ways read the same facts."""
    import tracker.isobench.trajectory as module

    doc = trajectory([(120, 80, 7), (300, 0, 11)], step_errors=["", "Unterminated string starting at: line 1"])
    doc["final_result"] = "Agent execution failed: exceeded maximum steps (120)"
    make_run(tmp_path, files={"trajectory.json": doc})
    folder = next(iter(discover_runs(tmp_path))).path
    whole, problems = read_trajectory(folder)
    monkeypatch.setattr(module, "WHOLE_PARSE_BYTES", 0)
    streamed, streamed_problems = read_trajectory(folder)
    assert problems == streamed_problems == [] and whole == streamed
    assert whole is not None and (whole.input_tokens, whole.interactions, whole.steps) == (420, 2, 2)
    assert [e.text for e in whole.evidence] == ["Unterminated string starting at: line 1",
                                                "Agent execution failed: exceeded maximum steps (120)"]
