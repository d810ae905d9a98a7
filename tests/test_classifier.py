"""The failure classifier: data-driven precedence (root cause wins), evidence from matched
signatures only, noise ignored, and an override table that is validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_readers import journal, make_run, pipeline_block, read_one, trajectory, write_log
from tracker.classify.classifier import Classification, classify, excerpt
from tracker.classify.rules import CATEGORIES, RuleTableError, load_rule_table, parse_rule_table
from tracker.isobench.textlog import ERROR_SIGNATURE

TOOL = (
    "openai.BadRequestError: Error code: 400 - {'error': {'message': 'No tool output found for function call "
    "call_zQtvmrtYDPHI7KBakRAljJnE.', 'type': 'invalid_request_error', 'param': 'input', 'code': None}}"
)
QUOTA = (
    "openai.RateLimitError: Error code: 429 - {'error': {'message': 'You exceeded your current quota, please "
    "check your plan and billing details.', 'type': 'insufficient_quota', 'code': 'insufficient_quota'}}"
)
RATE = (
    "openai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-5 in "
    "organization org-x on tokens per min (TPM)', 'code': 'rate_limit_exceeded'}}"
)
LAKEVIEW = (
    "Task exception was never retrieved\n"
    "future: <Task finished name='Task-48' coro=<SimpleCLIConsole._create_lakeview_step_display() done> "
    "exception=IndexError('list index out of range')>\n"
    "Traceback (most recent call last):\n"
    '  File "trae_agent/utils/lake_view.py", line 169, in extract_tag_in_step\n'
    '    tags: list[str] = [tag.strip() for tag in matched_tags[0].split(",")]\n'
    "IndexError: list index out of range\n"
)
PATCH = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"


def run_of(tmp_path: Path, **files: Any) -> Classification:
    make_run(tmp_path, files={k.replace("__", "."): v for k, v in files.items()})
    return classify(read_one(tmp_path))


def stderr_of(*errors: str) -> str:
    return "".join(
        f"OpenAI API call failed: {e}. Will sleep for 5 seconds and will retry.\n"
        f'Traceback (most recent call last):\n  File "retry_utils.py", line 31\n{e}\n'
        for e in errors
    )


# ---------------------------------------------------------------- the table itself


def test_default_table_is_versioned_and_ordered() -> None:
    table = load_rule_table()
    assert table.version and table.source.endswith("failure_rules.json")
    order: list[str] = []
    for rule in table.rules:
        if rule.category not in order:
            order.append(rule.category)
    assert order == [
        "none",
        "tool_output_missing",
        "tool_result_missing",
        "empty_error_content",
        "quota_exceeded",
        "invalid_api_key",
        "aws_sso_expired",
        "connection_error",
        "harness_error",
        "context_length_exceeded",
        "json_parse_error",
        "rate_limited",
        "max_steps_exceeded",
        "timeout",
        "other",
        "no_patch",
    ]
    assert set(order) == set(CATEGORIES)


def test_rule_examples_reach_the_classifier() -> None:
    """Each example line passes the readers' broad filter (so it is kept) and matches its own rule."""
    for rule in load_rule_table().rules:
        for example in rule.examples:
            assert ERROR_SIGNATURE.search(example.lower()), (rule.id, example)
            assert any(p.search(example) for p in rule.patterns), (rule.id, example)


# ---------------------------------------------------------------- precedence


def test_tool_output_missing_beats_max_steps(tmp_path: Path) -> None:
    got = run_of(
        tmp_path, journal__json=journal(status="max_steps_exceeded"), trae_stderr__txt=stderr_of(TOOL)
    )
    assert (got.category, got.rule_id) == ("tool_output_missing", "tool_output_missing")
    assert got.evidence[0].file == "trae_stderr.txt" and got.evidence[0].line == 1


def test_quota_beats_rate_limit(tmp_path: Path) -> None:
    assert run_of(tmp_path, journal__json=journal(), trae_stderr__txt=stderr_of(RATE, QUOTA)).category == (
        "quota_exceeded"
    )


def test_rate_limited_only_when_nothing_worse(tmp_path: Path) -> None:
    got = run_of(tmp_path, journal__json=journal(), trae_stderr__txt=stderr_of(RATE))
    assert got.category == "rate_limited"


def test_api_error_beats_timeout(tmp_path: Path) -> None:
    doc = journal(trae={"time_budget_minutes": 60, "returncode": 124, "duration_s": 3601.0})
    assert run_of(tmp_path, journal__json=doc, trae_stderr__txt=stderr_of(QUOTA)).category == "quota_exceeded"


@pytest.mark.parametrize(
    ("trae", "rule"),
    [
        ({"time_budget_minutes": 120, "returncode": 124, "duration_s": 100.0}, "timeout_return_code"),
        ({"time_budget_minutes": 60, "returncode": 1, "duration_s": 3600.0}, "timeout_budget"),
    ],
)
def test_timeout(tmp_path: Path, trae: dict[str, Any], rule: str) -> None:
    got = run_of(tmp_path, journal__json=journal(trae=trae), model_patch__diff=PATCH)
    assert (got.category, got.rule_id) == ("timeout", rule)
    assert got.evidence and got.evidence[0].file == "journal.json"


def test_evidence_from_trajectory_step_error(tmp_path: Path) -> None:
    got = run_of(tmp_path, journal__json=journal(), trajectory__json=trajectory([(1, 0, 1)], ["", TOOL]))
    assert got.category == "tool_output_missing" and got.evidence[0].file == "trajectory.json"


def test_evidence_from_pipeline_log_when_folder_is_bare(tmp_path: Path) -> None:
    make_run(tmp_path)
    write_log(
        tmp_path,
        "pipeline_run_20251203_174002.log",
        pipeline_block("vllm_core-0003", "error", stderr=[f"OpenAI API call failed: {QUOTA}"]),
    )
    got = classify(read_one(tmp_path))
    assert got.category == "quota_exceeded"
    assert got.evidence[0].file == "pipeline_run_20251203_174002.log" and got.evidence[0].line == 4


# ---------------------------------------------------------------- noise and "no evidence"


def test_success_ignores_stderr_noise_and_return_code(tmp_path: Path) -> None:
    doc = journal(status="success", trae={"time_budget_minutes": 120, "returncode": 1, "duration_s": 10.0})
    got = run_of(
        tmp_path, journal__json=doc, trae_stderr__txt=LAKEVIEW + stderr_of(TOOL), model_patch__diff=PATCH
    )
    assert (got.category, got.rule_id) == ("none", "success")


def test_console_noise_is_not_error_evidence(tmp_path: Path) -> None:
    got = run_of(tmp_path, journal__json=journal(), trae_stderr__txt=LAKEVIEW, model_patch__diff="")
    assert (got.category, got.rule_id) == ("no_patch", "no_patch")
    assert [e.excerpt for e in got.evidence] == ["journal status: error", "model_patch.diff is empty"]


ASYNCIO_EXIT = (
    "Exception ignored in: <function BaseSubprocessTransport.__del__ at 0x755f26f37ba0>\n"
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3.12/asyncio/base_subprocess.py", line 126, in __del__\n'
    "    self.close()\n"
    '  File "/usr/lib/python3.12/asyncio/base_events.py", line 541, in _check_closed\n'
    "    raise RuntimeError('Event loop is closed')\n"
    "RuntimeError: Event loop is closed\n"
)


@pytest.mark.parametrize("noise", [
    ASYNCIO_EXIT,
    ASYNCIO_EXIT.rsplit("RuntimeError: Event loop is closed", 1)[0],  # cut off at exit, as in most real files
    "fatal: bad object 0ec82edda59aaf5cf3b07aadf4ecce1aa1131add\n",
])
def test_exit_noise_is_not_error_evidence(tmp_path: Path, noise: str) -> None:
    got = run_of(tmp_path, journal__json=journal(), trae_stderr__txt=noise, model_patch__diff="")
    assert (got.category, got.rule_id) == ("no_patch", "no_patch")


def test_a_401_inside_the_lakeview_block_is_evidence(tmp_path: Path) -> None:
    """Noise removes the lakeview IndexError block it is for, never a real error printed inside it."""
    key = ("openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided: "
           "sk-proj-****B7cA.', 'code': 'invalid_api_key'}}\n")
    head, _ = LAKEVIEW.split("IndexError: list index out of range\n")
    stderr = head + key + "IndexError: list index out of range\n"
    got = run_of(tmp_path, journal__json=journal(), trae_stderr__txt=stderr)
    assert got.category == "invalid_api_key"
    assert got.evidence[0].file == "trae_stderr.txt" and "B7cA" not in got.evidence[0].excerpt


def test_a_lakeview_start_without_its_index_error_is_not_noise(tmp_path: Path) -> None:
    """`Task exception was never retrieved` followed by another exception is a real failure."""
    other = LAKEVIEW.replace("IndexError: list index out of range", "OSError: [Errno 28] No space left on device")
    got = run_of(tmp_path, journal__json=journal(), trae_stderr__txt=other, model_patch__diff="")
    assert (got.category, got.rule_id) == ("other", "other_error_evidence")


def test_real_traceback_is_other(tmp_path: Path) -> None:
    got = run_of(
        tmp_path, journal__json=journal(), trae_stderr__txt=LAKEVIEW + stderr_of("OSError: [Errno 24] x")
    )
    assert (got.category, got.rule_id) == ("other", "other_error_evidence")
    assert got.evidence[0].line is not None and got.evidence[0].line > 6


def test_stdout_chatter_is_not_other(tmp_path: Path) -> None:
    """The agent's own tool output mentions errors all the time; it is no failure evidence."""
    stdout = "grep -n 'raise ValueError' x.py\nValueError: bad input\nTraceback (most recent call last):\n"
    got = run_of(tmp_path, journal__json=journal(), trae_stdout__txt=stdout)
    assert got.category == "no_patch"


def test_journal_error_is_other(tmp_path: Path) -> None:
    doc = journal(error="RuntimeError: CUDA error: out of memory", error_type="RuntimeError")
    got = run_of(tmp_path, journal__json=doc)
    assert (got.category, got.rule_id) == ("other", "other_journal_error")
    assert got.evidence[0].excerpt == "RuntimeError: CUDA error: out of memory"


def test_error_with_patch_and_no_evidence(tmp_path: Path) -> None:
    assert run_of(tmp_path, journal__json=journal(), model_patch__diff=PATCH).rule_id == "other_unexplained"


def test_excerpt_is_short_centred_and_redacted() -> None:
    text = "x" * 500 + " sk-proj-Zq9TfVb3LmN8xWc2RtY7uIo0PaSdFgHjKl1 insufficient_quota " + "y" * 500
    start = text.index("insufficient_quota")
    cut = excerpt(text, start, start + 18)
    assert len(cut) <= 300 and "insufficient_quota" in cut and "Zq9T" not in cut and "sk-[REDACTED]" in cut


def test_long_line_signature_past_300_chars(tmp_path: Path) -> None:
    line = (
        "OpenAI API call failed: openai.RateLimitError: Error code: 429 - "
        + "z" * 400
        + " insufficient_quota"
    )
    got = run_of(tmp_path, journal__json=journal(), trae_stderr__txt=line + "\n")
    assert got.category == "quota_exceeded" and all(len(e.excerpt) <= 300 for e in got.evidence)
    assert "insufficient_quota" in got.evidence[0].excerpt


# ---------------------------------------------------------------- override tables


def test_override_table_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": "test-7",
                "rules": [
                    {"id": "ok", "category": "none", "when": {"status": ["success"]}},
                    {"id": "oom", "category": "other", "when": {"patterns": ["out of memory"]}},
                    {"id": "rest", "category": "no_patch", "when": {}},
                ],
            }
        )
    )
    table = load_rule_table(path)
    got = run_of(
        tmp_path, journal__json=journal(), trae_stderr__txt="RuntimeError: CUDA error: out of memory\n"
    )
    assert got.table_version == load_rule_table().version
    again = classify(read_one(tmp_path), table)
    assert (again.category, again.rule_id, again.table_version) == ("other", "oom", "test-7")


@pytest.mark.parametrize(
    "doc",
    [
        {"rules": [{"id": "a", "category": "none"}]},
        {"version": "1", "rules": []},
        {"version": "1", "rules": [{"id": "a", "category": "weird"}]},
        {"version": "1", "rules": [{"id": "a", "category": "other", "when": {"colour": "red"}}]},
        {"version": "1", "rules": [{"id": "a", "category": "other", "when": {"patterns": ["("]}}]},
        {"version": "1", "rules": [{"id": "a", "category": "other", "when": {"sources": ["email"]}}]},
        {"version": "1", "rules": [{"id": "a", "category": "other"}, {"id": "a", "category": "none"}]},
    ],
)
def test_bad_tables_are_rejected(doc: dict[str, Any]) -> None:
    with pytest.raises(RuleTableError):
        parse_rule_table(doc)


def test_unreadable_table_file(tmp_path: Path) -> None:
    with pytest.raises(RuleTableError):
        load_rule_table(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(RuleTableError):
        load_rule_table(tmp_path / "bad.json")


def test_default_table_file_is_plain_json() -> None:
    doc = json.loads(Path(load_rule_table().source).read_text())
    assert doc["version"] == load_rule_table().version


# ---------------------------------------------------------------- the sample trees


@pytest.mark.parametrize("name", ["isobench-small-a", "isobench-small-b"])
def test_fixture_failures_carry_redacted_evidence(name: str) -> None:
    from tests.test_readers import fixtures_dir
    from tracker.isobench import read_tree

    base = fixtures_dir()
    if base is None:
        pytest.skip("ISO-Bench sample trees not found")
    for run in read_tree(base / name):
        got = classify(run)
        if got.category == "none":
            continue
        assert got.evidence, run.folder.key
        for ev in got.evidence:
            assert len(ev.excerpt) <= 300
            assert "sk-proj-" not in ev.excerpt  # the fixtures plant real-looking keys in stderr
        if got.rule_id not in ("no_patch", "max_steps_status", "timeout_return_code", "other_unexplained"):
            assert any(
                ev.file in ("trae_stderr.txt", "trajectory.json", "journal.json") for ev in got.evidence
            )
