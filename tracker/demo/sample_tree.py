"""Realistic ISO-Bench trees on demand: for the demo, the benchmarks, the tests and the stand-in bench.

`write_run_folder` writes one run folder in the real formats (journal, trajectory, patch, TRAE
stdout/stderr, prediction) with the error signatures of its outcome, and returns the pipeline-log
lines of that item. `generate_tree` builds a whole checkout: run folders, pipeline logs and
evaluation results, with outcomes drawn like the first TRAE + GPT-5 evaluation (DESIGN.md §1) and
a few deliberately broken files, and returns what it wrote so tests can compare.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ERRORS: dict[str, str] = {
    "tool_output_missing": (
        "openai.BadRequestError: Error code: 400 - {'error': {'message': 'No tool output found for function call "
        "call_{tag}.', 'type': 'invalid_request_error', 'param': 'input', 'code': None}}"
    ),
    "quota_exceeded": (
        "openai.RateLimitError: Error code: 429 - {'error': {'message': 'You exceeded your current quota, please "
        "check your plan and billing details.', 'type': 'insufficient_quota', 'param': None, "
        "'code': 'insufficient_quota'}}"
    ),
    "invalid_api_key": (
        "openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided: "
        "sk-proj-{tag}. You can find your API key at https://platform.openai.com/account/api-keys.', "
        "'type': 'invalid_request_error', 'param': None, 'code': 'invalid_api_key'}}"
    ),
    "rate_limited": (
        "openai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-5 in "
        "organization org-demo on tokens per min (TPM): Limit 30000, Used 29000, Requested 3000.', "
        "'type': 'tokens', 'param': None, 'code': 'rate_limit_exceeded'}}"
    ),
    "json_parse_error": "json.decoder.JSONDecodeError: Unterminated string starting at: line 1 column 3920 (char 3483)",
    "context_length_exceeded": (
        "openai.BadRequestError: Error code: 400 - {'error': {'message': \"This model's maximum context length is "
        "272000 tokens. However, your messages resulted in 280123 tokens.\", 'type': 'invalid_request_error', "
        "'param': 'input', 'code': 'context_length_exceeded'}}"
    ),
    "aws_sso_expired": (
        "botocore.exceptions.TokenRetrievalError: Error when retrieving token from sso: Token has expired and "
        "refresh failed"
    ),
    "other": "RuntimeError: git apply failed: error: patch failed: vllm/worker/model_runner.py:412",
}
"""The error line each failure category leaves in TRAE's stderr (as seen in the first evaluation)."""

RETRIED = {"tool_output_missing", "quota_exceeded", "invalid_api_key", "rate_limited", "json_parse_error",
           "context_length_exceeded"}
"""TRAE retries API errors, printing `OpenAI API call failed: ... Will sleep ...` before giving up."""

FIRST_EVALUATION_MIX = {
    "success": 55, "tool_output_missing": 142, "quota_exceeded": 71, "invalid_api_key": 33, "no_patch": 40,
    "other": 22, "json_parse_error": 19, "max_steps_exceeded": 15, "context_length_exceeded": 12,
    "rate_limited": 10, "timeout": 14, "aws_sso_expired": 1,
}
"""Outcome counts of a 434-run evaluation shaped like DESIGN.md's first TRAE + GPT-5 evaluation."""

SAMPLE_PATCH = """diff --git a/{path} b/{path}
index 3f2a1c0..9b8e7d1 100644
--- a/{path}
+++ b/{path}
@@ -40,7 +40,8 @@ def forward(self, x):
-    out = torch.cat([a, b], dim=0)
-    return out.contiguous()
+    # preallocate instead of concatenating on the hot path
+    out = torch.empty((a.shape[0] + b.shape[0],) + a.shape[1:], device=a.device, dtype=a.dtype)
+    out[: a.shape[0]].copy_(a)
+    return out
"""


@dataclass
class RunSpec:
    """One run folder to write: which commit, how it ends, and what it consumed."""

    repo: str
    item_id: str
    commit: str
    pre_commit: str
    outcome: str
    run_timestamp: str
    input_tokens: int = 400_000
    cached_input_tokens: int = 250_000
    output_tokens: int = 20_000
    reasoning_tokens: int = 8_000
    llm_calls: int = 20
    duration_s: float = 900.0
    model_raw: str = "gpt-5-2025-08-07"
    agent: str = "trae"
    time_budget_minutes: int = 120
    speedup: float | None = None
    broken: str | None = None
    """None, or `journal_truncated` / `journal_missing` / `trajectory_truncated` to plant a broken file."""

    @property
    def status(self) -> str:
        if self.outcome == "success":
            return "success"
        return "max_steps_exceeded" if self.outcome == "max_steps_exceeded" else "error"

    @property
    def has_patch(self) -> bool:
        return self.outcome in ("success", "max_steps_exceeded", "timeout", "other")

    @property
    def return_code(self) -> int:
        return {"success": 0, "timeout": 124}.get(self.outcome, 1)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    weights = [rng.random() + 0.2 for _ in range(parts)]
    scale = total / sum(weights)
    values = [int(w * scale) for w in weights]
    values[-1] += total - sum(values)
    return values


def _error_line(spec: RunSpec) -> str | None:
    template = ERRORS.get(spec.outcome)
    if template is None:
        return None
    tag = hashlib.sha1(spec.item_id.encode()).hexdigest()[:20]
    return template.replace("{tag}", tag)


def trajectory_document(spec: RunSpec, rng: random.Random) -> dict[str, Any]:
    """A TRAE trajectory whose usage sums to the spec's token buckets."""
    calls = max(1, spec.llm_calls)
    inputs = _split(spec.input_tokens, calls, rng)
    cached = [min(i, c) for i, c in zip(inputs, _split(spec.cached_input_tokens, calls, rng), strict=True)]
    cached[-1] += spec.cached_input_tokens - sum(cached)
    outputs = _split(spec.output_tokens, calls, rng)
    reasoning = _split(spec.reasoning_tokens, calls, rng)
    start = datetime.strptime(spec.run_timestamp, "%Y-%m-%d_%H-%M-%S").replace(tzinfo=UTC)
    interactions, steps = [], []
    for i in range(calls):
        at = (start + timedelta(seconds=30 * i)).isoformat()
        interactions.append({
            "timestamp": at, "provider": "openai", "model": spec.model_raw,
            "input_messages": [{"role": "user", "content": "…"}],
            "response": {
                "content": "", "model": spec.model_raw, "finish_reason": "completed",
                "usage": {"input_tokens": inputs[i], "output_tokens": outputs[i], "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": cached[i], "reasoning_tokens": reasoning[i]},
                "tool_calls": [{"call_id": f"call_{i:04d}", "name": "bash", "arguments": "{\"command\": \"ls\"}",
                                "id": f"fc_{i}"}],
            },
            "tools_available": ["bash", "str_replace_based_edit_tool", "task_done"],
        })
        steps.append({"step_number": i + 1, "timestamp": at, "state": "completed", "llm_response": None,
                      "tool_calls": None, "tool_results": None, "reflection": None, "error": None})
    error = _error_line(spec)
    if error:
        steps.append({"step_number": calls + 1, "timestamp": (start + timedelta(seconds=30 * calls)).isoformat(),
                      "state": "error", "llm_response": None, "tool_calls": None, "tool_results": None,
                      "reflection": None, "error": error})
    return {
        "task": "Optimize the performance of the target repository…", "start_time": start.isoformat(),
        "end_time": (start + timedelta(seconds=spec.duration_s)).isoformat(), "provider": "openai",
        "model": spec.model_raw, "max_steps": 120, "llm_interactions": interactions, "agent_steps": steps,
        "success": spec.outcome == "success",
        "final_result": f"Agent execution failed: {error}" if error else "Task completed",
        "execution_time": spec.duration_s,
    }


def journal_document(spec: RunSpec) -> dict[str, Any]:
    run_path = f"{spec.repo}/{spec.agent}/{spec.model_raw}/{spec.run_timestamp}"
    written = datetime.strptime(spec.run_timestamp, "%Y-%m-%d_%H-%M-%S").replace(tzinfo=UTC).timestamp()
    doc: dict[str, Any] = {
        "task_id": f"{spec.repo}_core", "commits": {"pre": spec.pre_commit, "human": spec.commit},
        "agent_branch": f"agent/{spec.repo}_core/{spec.commit[:8]}", "status": spec.status,
        "experiment": {"hints_enabled": False, "preflight_enabled": False}, "preflight": {"attempted": False},
        "metrics": {"time_to_first_edit_s": 120.5 if spec.has_patch else None, "commit_count": int(spec.has_patch),
                    "patch_size_loc": 8 if spec.has_patch else None, "changed_files_count": int(spec.has_patch),
                    "violations_count": 0},
        "trae": {"cli": "/home/ubuntu/ISO-Bench/bench-env/bin/python", "time_budget_minutes": spec.time_budget_minutes,
                 "returncode": spec.return_code, "duration_s": spec.duration_s},
        "timestamps": {"written": written + spec.duration_s},
        "run_metadata": {"repo": spec.repo, "agent": spec.agent, "model": spec.model_raw,
                         "run_timestamp": spec.run_timestamp, "run_path": run_path},
    }
    return doc


def write_run_folder(run_dir: Path, spec: RunSpec, seed: int = 0) -> list[str]:
    """Write one run folder in the real formats; return the item's pipeline-log messages."""
    rng = random.Random(f"{seed}:{spec.item_id}:{spec.run_timestamp}")
    run_dir.mkdir(parents=True, exist_ok=True)
    error = _error_line(spec)
    journal = json.dumps(journal_document(spec), indent=2)
    if spec.broken == "journal_truncated":
        journal = journal[: len(journal) // 2]
    if spec.broken != "journal_missing":
        (run_dir / "journal.json").write_text(journal)
    trajectory = json.dumps(trajectory_document(spec, rng))
    if spec.broken == "trajectory_truncated":
        trajectory = trajectory[: len(trajectory) // 2]
    (run_dir / "trajectory.json").write_text(trajectory)
    patch = SAMPLE_PATCH.format(path=f"{spec.repo}/layers/fused_{spec.commit[:6]}.py") if spec.has_patch else ""
    (run_dir / "model_patch.diff").write_text(patch)
    stdout = [f"Task: optimize {spec.item_id}", "…", "Token Usage",
              f"Input: {spec.input_tokens} Output: {spec.output_tokens}"]
    if spec.outcome == "max_steps_exceeded":
        stdout.append("Agent exceeded maximum steps (120) without calling task_done")
    (run_dir / "trae_stdout.txt").write_text("\n".join(stdout) + "\n")
    stderr: list[str] = []
    if error and spec.outcome in RETRIED:
        stderr.append(f"OpenAI API call failed: {error}. Will sleep for 15 seconds and will retry.")
    if error:
        stderr += ["Traceback (most recent call last):",
                   '  File "trae_agent/utils/llm_clients/retry_utils.py", line 31, in wrapper', error]
    (run_dir / "trae_stderr.txt").write_text("\n".join(stderr) + ("\n" if stderr else ""))
    prediction = {"instance_id": spec.item_id, "model_name_or_path": f"{spec.agent}-{spec.model_raw}",
                  "model_patch": patch}
    (run_dir / "prediction.jsonl").write_text(json.dumps(prediction) + "\n")
    return pipeline_messages(spec, error)


def pipeline_messages(spec: RunSpec, error: str | None = None) -> list[str]:
    """What bench.prepare logs about one item (messages only; `pipeline_log` adds the prefix)."""
    lines = [f"Starting task processing: {spec.item_id}",
             f"Task configuration - Human commit: {spec.commit}, Pre commit: {spec.pre_commit}",
             "TRAE STDOUT: Token Usage", f"TRAE STDOUT: Input: {spec.input_tokens} Output: {spec.output_tokens}"]
    if error and spec.outcome in RETRIED:
        lines.append(f"TRAE STDERR: OpenAI API call failed: {error}. Will sleep for 12 seconds and will retry.")
    lines += [f"TRAE agent execution completed in {spec.duration_s:.1f} seconds",
              f"Process return code: {spec.return_code}", f"Task status determined as: {spec.status}",
              f"Writing journal with final status: {spec.status}"]
    return lines


def pipeline_log_text(at: datetime, messages: list[str]) -> str:
    stamp = at.strftime("%Y-%m-%d %H:%M:%S,000")
    return "".join(f"{stamp} - bench.prepare - {'WARNING' if 'STDERR' in m else 'INFO'} - {m}\n" for m in messages)


def test_results_document(spec: RunSpec) -> dict[str, Any]:
    speedup = spec.speedup or 1.0
    baseline = 40.0
    return {
        "metadata": {"run_id": spec.run_timestamp, "item_id": spec.item_id, "task_id": f"{spec.repo}_core",
                     "human_commit": spec.commit, "pre_commit": None, "agent_status": spec.status, "repo": spec.repo,
                     "agent": spec.agent, "model": spec.model_raw},
        "result": {"status": "success", "baseline_ms": baseline, "patched_ms": round(baseline / speedup, 3),
                   "speedup": speedup, "improvement": speedup > 1.0, "error_message": None,
                   "duration_s": 300.0},
    }


@dataclass
class GeneratedTree:
    """What `generate_tree` wrote: the truth to compare an import with."""

    root: Path
    runs: list[RunSpec] = field(default_factory=list)

    def counts(self) -> dict[str, Counter[str]]:
        return {"outcome": Counter(s.outcome for s in self.runs), "status": Counter(s.status for s in self.runs),
                "repo": Counter(s.repo for s in self.runs)}


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _outcomes(runs: int, rng: random.Random) -> list[str]:
    total = sum(FIRST_EVALUATION_MIX.values())
    outcomes: list[str] = []
    for name, count in FIRST_EVALUATION_MIX.items():
        outcomes += [name] * max(1 if runs >= len(FIRST_EVALUATION_MIX) else 0, round(count * runs / total))
    while len(outcomes) < runs:
        outcomes.append("tool_output_missing")
    while len(outcomes) > runs:
        outcomes.remove(Counter(outcomes).most_common(1)[0][0])
    rng.shuffle(outcomes)
    return outcomes


def generate_tree(root: Path, runs: int = 434, seed: int = 0, runs_per_folder: int = 20,
                  broken: int = 3, calls: tuple[int, int] = (8, 40)) -> GeneratedTree:
    """Write a whole ISO-Bench checkout of `runs` run folders (vLLM and SGLang) under `root`.

    Every random draw comes from one generator in a fixed order, so a seed always gives the same tree.
    """
    rng = random.Random(seed)
    root = Path(root)
    commits = _commits(runs, runs_per_folder, rng)
    tree = GeneratedTree(root)
    start = datetime(2025, 12, 1, 9, 0, 0, tzinfo=UTC)
    outcomes = _outcomes(runs, rng)
    log_lines: dict[str, list[str]] = {}
    used: set[tuple[str, str]] = set()
    for index, outcome in enumerate(outcomes):
        folder_start = start + timedelta(hours=7 * (index // runs_per_folder))
        timestamp = folder_start.strftime("%Y-%m-%d_%H-%M-%S")
        repo, (item_id, commit, pre) = _pick_commit(commits, timestamp, used, rng)
        spec = RunSpec(repo=repo, item_id=item_id, commit=commit, pre_commit=pre, outcome=outcome,
                       run_timestamp=timestamp, **_draw_usage(outcome, calls, rng),
                       broken=_broken_kind(index, broken))
        spec.model_raw = "gpt-5-2025-08-07" if rng.random() < 0.8 else "gpt-5"
        messages = write_run_folder(_run_dir(root, spec, index), spec, seed)
        log_lines.setdefault(timestamp, []).append(pipeline_log_text(folder_start, messages))
        if spec.outcome == "success":
            _write_evaluation(root, spec)
        tree.runs.append(spec)
    for timestamp, chunks in log_lines.items():
        (root / f"pipeline_run_{timestamp.replace('-', '')}.log").write_text("".join(chunks))
    return tree


_BROKEN_KINDS = ("journal_truncated", "journal_missing", "trajectory_truncated")
"""The broken files `generate_tree` plants, in turn, in its first `broken` runs."""

_Item = tuple[str, str, str]
"""A commit to run: (item id, commit, pre-commit)."""


def _commits(runs: int, runs_per_folder: int, rng: random.Random) -> dict[str, list[_Item]]:
    """Per repo, its (item id, commit, pre-commit): about 4 runs per commit (as in the first
    evaluation), and enough commits to fill one run folder."""
    shares = (("vllm", 0.51), ("sglang", 0.49))
    per_repo = {repo: max(runs_per_folder, round(runs / 4.2 * share)) for repo, share in shares}
    return {repo: [_commit(repo, i, rng) for i in range(count)] for repo, count in per_repo.items()}


def _commit(repo: str, i: int, rng: random.Random) -> _Item:
    """The repo's i-th item: vLLM ids are numbered, SGLang ids end with the commit's first 8 hex digits."""
    sha = _sha(rng)
    item = f"{repo}_core-{i:04d}" if repo == "vllm" else f"sglang_{i:03d}_{sha[:8]}"
    return item, sha, _sha(rng)


def _free(commits: list[_Item], timestamp: str, used: set[tuple[str, str]]) -> list[_Item]:
    """The repo's items not yet run in this run folder."""
    return [c for c in commits if (timestamp, c[0]) not in used]


def _pick_commit(commits: dict[str, list[_Item]], timestamp: str, used: set[tuple[str, str]],
                 rng: random.Random) -> tuple[str, _Item]:
    """The next run's repo and item (about half vLLM). An item runs at most once per run folder (the
    bench's own rule): when all of a repo's items are taken, the other repo's are used."""
    repo = "vllm" if rng.random() < 0.51 else "sglang"
    free = _free(commits[repo], timestamp, used)
    if not free:
        repo = "sglang" if repo == "vllm" else "vllm"
        free = _free(commits[repo], timestamp, used)
    chosen = rng.choice(free)
    used.add((timestamp, chosen[0]))
    return repo, chosen


def _draw_usage(outcome: str, calls: tuple[int, int], rng: random.Random) -> dict[str, Any]:
    """What a run consumed and measured, as `RunSpec` fields; drawn in this order, one draw each."""
    input_tokens = rng.randint(40_000, 1_800_000) if outcome != "invalid_api_key" else rng.randint(0, 30_000)
    cached_input_tokens = int(input_tokens * rng.uniform(0.4, 0.8))
    output_tokens = rng.randint(1_000, 60_000)
    llm_calls = rng.randint(*calls)
    duration_s = 7200.0 if outcome == "timeout" else rng.uniform(60, 4000)
    speedup = round(rng.uniform(0.8, 1.6), 4) if outcome == "success" else None
    return {"input_tokens": input_tokens, "cached_input_tokens": cached_input_tokens, "output_tokens": output_tokens,
            "reasoning_tokens": output_tokens // 3, "llm_calls": llm_calls, "duration_s": duration_s,
            "speedup": speedup}


def _broken_kind(index: int, broken: int) -> str | None:
    """The broken file planted in run `index` (the first `broken` runs get one each, in turn), or None."""
    return _BROKEN_KINDS[index % len(_BROKEN_KINDS)] if index < broken else None


def _run_dir(root: Path, spec: RunSpec, index: int) -> Path:
    """Where the run folder goes; now and then under the misspelt repo folder `sglan`, as in the real trees."""
    repo_dir = "sglan" if spec.repo == "sglang" and index % 97 == 5 else spec.repo
    return root / "state" / "runs" / repo_dir / "trae" / spec.model_raw / spec.run_timestamp / spec.item_id


def _write_evaluation(root: Path, spec: RunSpec) -> None:
    """The evaluation result of a successful run, where ISO-Bench's evaluation writes it."""
    eval_dir = root / "eval_results_v2" / f"{spec.repo}_trae_gpt5-{spec.commit[:8]}" / spec.item_id
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "test_results.json").write_text(json.dumps(test_results_document(spec), indent=2))
