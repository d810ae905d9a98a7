"""A small ISO-Bench checkout in the shapes the team's real files have (written by hand from a study
of the public snapshot; no real file is copied). Each folder is there for one behaviour:

- a TRAE run that *succeeded* with a patch but hit the tool-output bug three times (stdout retries,
  trajectory step error) and has the asyncio exit traceback in stderr (noise);
- a run that failed on an exhausted quota, whose only stdout is `openhands_stdout.txt` (newer TRAE
  folders), with an identical `trae_stdout.txt` beside it in another run (a duplicate, counted once);
- a run whose TRAE never started: `Config file not found` (harness);
- a run in the dated model folder with an 8-character sha in its journal, the full one in `prompt.json`,
  and a 401 printed inside the lakeview console block of stderr (real evidence, kept);
- a run with only lakeview noise and asyncio noise in stderr and no patch (no_patch, not other);
- a later run of an evaluated commit, never evaluated itself (the "evaluated" scope leaves it out);
- a Codex CLI run in a hash-named run folder whose stderr transcript shows a ModuleNotFoundError of the
  agent's own test run (not a harness error), and a Codex run whose wrapper itself crashed on a missing
  module in `codex_stderr.txt` (a harness error);
- an interrupted Sonnet run on Bedrock (prompt + trajectory only, misspelt repo `sglan`) with the
  Anthropic twin of the bug;
- a Claude Code run whose stdout ends with its JSON result (usage, `total_cost_usd`);
- a folder with nothing that names its commit (unidentified);
- two folders of older layouts that name neither agent nor model in their path
  (`state/runs/moe_align_opt-3a3ac0e4/moe_align_opt-0000/`, `state/runs/_misc/gpt-5/<ts>/<item>/`): their
  journal's agent block, prediction and trajectory say where they belong; a third says nothing (unidentified);
- `archive/analysis/eval_results_v2/` results at the run paths, and an `evaluation_report.json` whose
  figures disagree with them (as the real, stale one does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHA_OK = "8aa1485fcff7be3e42300c0615ee0f3f3cbce9a8"
SHA_QUOTA = "0d243f2a54fbd1c56da8a571f0899c30b6aba5d9"
SHA_HARNESS = "19d98e0c7db96713f0e2201649159431177a56e2"
SHA_SHORT = "6b7038babd562de099b583957ff19b78c4689a37"
SHA_NOISE = "2a0309a646b1ed83a0c40974e08c8dc628726d3c"
SHA_CODEX = "021f76e4f49861b2e9ea9ccff06a46d577e3c548"
SHA_SONNET = "10189d08dde1096f5759316c0a6ff05962714c4b"
SHA_CLAUDE = "3a243095e5e7b655b63ab08fbd5936cb40850415"
SHA_OLD = "0ec82edda59aaf5cf3b07aadf4ecce1aa1131add"
PRE = "89ac266b262f08d25ebf25fc66122d1b2367ae64"

TOOL_OUTPUT = ("Error code: 400 - {'error': {'message': 'No tool output found for function call "
               "call_{id}.', 'type': 'invalid_request_error', 'param': 'input', 'code': None}}")
QUOTA = ("Error code: 429 - {'error': {'message': 'You exceeded your current quota, please check your plan and "
         "billing details.', 'type': 'insufficient_quota', 'param': None, 'code': 'insufficient_quota'}}")
BAD_KEY = ("Error code: 401 - {'error': {'message': 'Incorrect API key provided: sk-proj-****B7cA. You can find "
           "your API key at https://platform.openai.com/account/api-keys.', 'type': 'invalid_request_error', "
           "'code': 'invalid_api_key'}}")
ASYNCIO_NOISE = """Exception ignored in: <function BaseSubprocessTransport.__del__ at 0x755f26f37ba0>
Traceback (most recent call last):
  File "/usr/lib/python3.12/asyncio/base_subprocess.py", line 126, in __del__
    self.close()
  File "/usr/lib/python3.12/asyncio/base_events.py", line 541, in _check_closed
    raise RuntimeError('Event loop is closed')
RuntimeError: Event loop is closed
"""
LAKEVIEW_START = """Task exception was never retrieved
future: <Task finished name='Task-39' coro=<SimpleCLIConsole._create_lakeview_step_display() done>
Traceback (most recent call last):
  File "trae_agent/utils/lake_view.py", line 169, in extract_tag_in_step
    tags: list[str] = [tag.strip() for tag in matched_tags[0].split(",")]
"""
LAKEVIEW_END = "IndexError: list index out of range\n"


def _retry(error: str, seconds: int) -> str:
    return f"OpenAI API call failed: {error}. Will sleep for {seconds} seconds and will retry.\n"


def _journal(status: str, human: str, *, rc: int = 0, agent: str = "trae", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "task_id": "vllm_core", "commits": {"pre": PRE, "human": human},
        "agent_branch": f"agent/vllm_core/{human[:8]}", "status": status,
        agent: {"cli": "python", "time_budget_minutes": 120, "returncode": rc, "duration_s": 812.4},
        "timestamps": {"written": 1762400000.0},
    }
    doc.update(extra)
    return doc


def _prompt(human: str) -> dict[str, Any]:
    return {"task": "Optimise the hot path", "description": "", "constraints": [], "target_files": [],
            "success": {}, "commits": {"pre": PRE, "human": human}}


def _trajectory(step_errors: list[str], usage: tuple[int, int, int] = (120_000, 80_000, 4_000),
                end_time: str = "2025-11-06T04:01:00") -> dict[str, Any]:
    inp, cached, out = usage
    return {
        "task": "t", "start_time": "2025-11-06T03:30:00", "end_time": end_time, "provider": "openai",
        "model": "gpt-5", "max_steps": 120,
        "llm_interactions": [{"response": {"usage": {"input_tokens": inp, "output_tokens": out,
                                                     "cache_read_input_tokens": cached,
                                                     "cache_creation_input_tokens": 0, "reasoning_tokens": 900}}}],
        "agent_steps": [{"step_number": i + 1, "state": "completed", "error": e} for i, e in enumerate(step_errors)],
        "success": not step_errors, "final_result": None, "execution_time": 812.4,
    }


PATCH = "diff --git a/vllm/x.py b/vllm/x.py\n--- a/vllm/x.py\n+++ b/vllm/x.py\n@@ -1 +1,2 @@\n-a\n+b\n+c\n"


def _write(folder: Path, files: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, dict):
            path.write_text(json.dumps(content))
        else:
            path.write_text(content)


def _result(run_id: str, item: str, human: str, agent_status: str, status: str, *,
            speedup: float | None = None, improvement: bool = False, error: str | None = None) -> dict[str, Any]:
    repo, agent, model, ts = run_id.split("/")
    return {"metadata": {"run_id": run_id, "item_id": item, "task_id": "vllm_core", "human_commit": human,
                         "pre_commit": PRE, "agent_status": agent_status, "repo": repo, "agent": agent,
                         "model": model, "timestamp": ts},
            "result": {"status": status, "baseline_ms": 10.0 if speedup else None,
                       "patched_ms": 10.0 / speedup if speedup else None, "speedup": speedup,
                       "improvement": improvement, "error_message": error}}


def build(root: Path) -> Path:
    """Write the tree under `root` (the ISO-Bench folder) and return it."""
    runs = root / "state" / "runs"
    batch = runs / "vllm" / "trae" / "gpt-5" / "2025-11-06_03-26-11"
    stdout_ok = "".join(_retry(TOOL_OUTPUT.replace("{id}", f"zQtv{n}Xa9"), 7 + n) for n in range(3))
    stdout_ok += "Input: 332283 Output: 2188\nTrajectory saved to: trajectory.json\n"
    _write(batch / "vllm_core-0010", {
        "journal.json": _journal("success", SHA_OK), "prompt.json": _prompt(SHA_OK), "model_patch.diff": PATCH,
        "trae_stdout.txt": stdout_ok, "trae_stderr.txt": ASYNCIO_NOISE,
        "trajectory.json": _trajectory(["", TOOL_OUTPUT.replace("{id}", "q1w2e3r4t5")]),
    })
    quota = "".join(_retry(QUOTA, s) for s in (3, 9, 27)) + f"openai.RateLimitError: {QUOTA}\n"
    _write(batch / "vllm_core-0011", {
        "journal.json": _journal("error", SHA_QUOTA, rc=1), "prompt.json": _prompt(SHA_QUOTA),
        "model_patch.diff": "", "openhands_stdout.txt": quota, "openhands_stderr.txt": "",
    })
    _write(batch / "vllm_core-0012", {
        "journal.json": _journal("error", SHA_HARNESS, rc=1), "prompt.json": _prompt(SHA_HARNESS),
        "trae_stdout.txt": "Error: Config file not found. Please specify a valid config file in the command "
                           "line option --config-file\n", "trae_stderr.txt": "",
        "run_summary.json": {"schema_version": "1.0", "meta": {"repo": "vllm", "agent": "trae", "model": "gpt-5"},
                             "commits": {"human": SHA_HARNESS, "pre": PRE},
                             "agent": {"status": "error", "patch_generated": False, "duration_s": 1.2}},
    })
    _write(batch / "vllm_core-0013", {
        "journal.json": _journal("error", SHA_NOISE, rc=1), "prompt.json": _prompt(SHA_NOISE),
        "trae_stderr.txt": LAKEVIEW_START + LAKEVIEW_END + ASYNCIO_NOISE, "trae_stdout.txt": "working...\n",
    })
    # the same tool output in both names: one file's worth of incidents
    _write(batch / "vllm_core-0014", {
        "journal.json": _journal("success", SHA_QUOTA), "prompt.json": _prompt(SHA_QUOTA), "model_patch.diff": PATCH,
        "trae_stdout.txt": _retry(QUOTA, 5), "openhands_stdout.txt": _retry(QUOTA, 5),
    })
    # no file names this run's commit
    _write(batch / "vllm_core-0099", {"task.txt": "Optimise the hot path of the scheduler.\n"})
    dated = runs / "vllm" / "trae" / "gpt-5-2025-08-07" / "2025-11-14_21-05-32" / "vllm_core-0020"
    _write(dated, {
        "journal.json": _journal("error", SHA_SHORT[:8], rc=1), "prompt.json": _prompt(SHA_SHORT),
        "trae_stderr.txt": LAKEVIEW_START + f"openai.AuthenticationError: {BAD_KEY}\n" + LAKEVIEW_END,
    })
    later = runs / "vllm" / "trae" / "gpt-5" / "2026-01-29_16-05-49" / "vllm_core-0000"
    _write(later, {
        "journal.json": _journal("error", SHA_OK, rc=1, error="[Errno 2] No such file or directory: "
                                 "'../bench-env/bin/python'", error_type="FileNotFoundError"),
        "prompt.json": _prompt(SHA_OK),
    })
    codex = runs / "sglang" / "codex" / "gpt-5" / "389be848" / "sglang_core-0001"
    _write(codex, {
        "journal.json": _journal("success", SHA_CODEX, agent="codex_cli"), "prompt.json": _prompt(SHA_CODEX),
        "model_patch.diff": PATCH, "openhands_stdout.txt": "**What I Changed**\n- Optimized the hot path.\n",
        "openhands_stderr.txt": "OpenAI Codex v0.60.1 (research preview)\n--------\nmodel: gpt-5\n"
                                "exec python -c 'import foo'\nModuleNotFoundError: No module named 'foo'\n"
                                "tokens used\n270,213\n",
    })
    _write(runs / "vllm" / "codex" / "gpt-5" / "2025-11-20_10-00-00" / "vllm_core-0002", {
        "journal.json": _journal("error", SHA_HARNESS, agent="codex", rc=1), "prompt.json": _prompt(SHA_HARNESS),
        "codex_stdout.txt": "", "codex_stderr.txt": 'Traceback (most recent call last):\n  File "codex_agent/cli.py", '
                                                     "line 20, in <module>\n    import click\n"
                                                     "ModuleNotFoundError: No module named 'click'\n",
    })
    sonnet = (runs / "sglan" / "trae" / "us-anthropic-claude-sonnet-4-5-20250929-v1-0" / "2025-12-24_09-35-05"
              / "sglang_sonnet45_rerun_10189d08")
    _write(sonnet, {
        "prompt.json": _prompt(SHA_SONNET), "task.txt": "Optimise.\n",
        "trajectory.json": _trajectory(["An error occurred (ValidationException) when calling the InvokeModel "
                                        "operation: messages.12: `tool_use` ids were found without `tool_result` "
                                        "blocks immediately after: toolu_bdrk_01AbC"], end_time=""),
    })
    claude = runs / "vllm" / "claude_code" / "default" / "2025-12-22_20-31-26" / "vllm_core-0000"
    result = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 35, "result": "Done.",
              "total_cost_usd": 0.97802385,
              "usage": {"input_tokens": 233, "cache_creation_input_tokens": 49409,
                        "cache_read_input_tokens": 1648357, "output_tokens": 15536},
              "modelUsage": {"us.anthropic.claude-sonnet-4-5-20250929-v1:0": {"costUSD": 0.95936385}}}
    _write(claude, {
        "journal.json": _journal("success", SHA_CLAUDE, agent="claude_code"), "prompt.json": _prompt(SHA_CLAUDE),
        "model_patch.diff": PATCH, "claude_code_stdout.txt": json.dumps(result), "claude_code_stderr.txt": "",
    })
    old = runs / "moe_align_opt-3a3ac0e4" / "moe_align_opt-0000"
    _write(old, {
        "journal.json": {**_journal("error", SHA_OLD, agent="trae"), "task_id": "moe_align_opt"},
        "prediction.jsonl": json.dumps({"instance_id": "/home/ubuntu/bench/vllm-project__vllm-005ae9b",
                                        "model_patch": "", "model_name_or_path": "gpt-5-2025-08-07"}) + "\n",
        "trajectory.json": {**_trajectory([QUOTA]), "model": "gpt-5"},
    })
    _write(runs / "_misc" / "gpt-5" / "2025-09-17_04-26-22" / "moe_align_opt-0000", {
        "journal.json": {**_journal("error", SHA_OLD, agent="openhands"), "task_id": "moe_align_opt"},
    })
    _write(runs / "prefix_caching_opt-e81973e8" / "prefix_caching_opt-0000", {"task.txt": "Speed up prefix caching.\n"})
    evals = root / "archive" / "analysis" / "eval_results_v2"
    for run_id, item, human, agent_status, status, kw in (
        ("vllm/trae/gpt-5/2025-11-06_03-26-11", "vllm_core-0010", SHA_OK, "success", "success",
         {"speedup": 1.25, "improvement": True}),
        ("vllm/trae/gpt-5/2025-11-06_03-26-11", "vllm_core-0011", SHA_QUOTA, "error", "no_patch", {}),
        ("vllm/trae/gpt-5/2025-11-06_03-26-11", "vllm_core-0012", SHA_HARNESS, "error", "no_patch", {}),
        ("vllm/trae/gpt-5/2025-11-06_03-26-11", "vllm_core-0013", SHA_NOISE, "error", "no_patch", {}),
        ("vllm/trae/gpt-5/2025-11-06_03-26-11", "vllm_core-0014", SHA_QUOTA, "success", "baseline_failed",
         {"error": "No module named 'IPython'"}),
        ("vllm/trae/gpt-5-2025-08-07/2025-11-14_21-05-32", "vllm_core-0020", SHA_SHORT[:8], "error", "no_patch", {}),
    ):
        _write(evals / run_id / item, {"test_results.json": _result(run_id, item, human, agent_status, status, **kw)})
    _write(evals, {"evaluation_report.json": {
        "generated_at": "2025-12-22T16:05:19", "total_runs": 1,
        "runs": {"trae/gpt-5": {"agent_name": "trae", "total_commits": 7, "tests_run": 2, "tests_passed": 2,
                                "no_patch": 3, "errors": 1, "no_test_available": 0}},
    }})
    return root


TRUTH: dict[str, Any] = {
    "folders": 15,
    "trae_gpt5_attempts": 8,          # 0010-0014, 0020 (dated folder), the later 0000, the old-layout one
    "unidentified": ["prefix_caching_opt-e81973e8/prefix_caching_opt-0000",
                     "vllm/trae/gpt-5/2025-11-06_03-26-11/vllm_core-0099"],
    "affected": {"tool_output_missing": 1, "quota_exceeded": 3, "invalid_api_key": 1, "harness_error": 2},
    "root_cause": {"quota_exceeded": 2, "harness_error": 2, "invalid_api_key": 1, "no_patch": 1},
    "any_failed_evaluated": {SHA_QUOTA, SHA_HARNESS, SHA_NOISE, SHA_SHORT},
    "any_failed_all": {SHA_QUOTA, SHA_HARNESS, SHA_NOISE, SHA_SHORT, SHA_OK, SHA_OLD},
    "never_succeeded": {SHA_HARNESS, SHA_NOISE, SHA_SHORT, SHA_OLD},
    "tests_failed_at_tests_level": {SHA_QUOTA, SHA_HARNESS, SHA_NOISE, SHA_SHORT},
}
