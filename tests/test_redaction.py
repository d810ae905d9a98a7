"""Secrets never survive `redact`; ordinary text is left exactly as it was."""

from __future__ import annotations

import time

import pytest

from tracker.classify.redaction import MARK, redact

SECRETS = [
    (
        "OPENAI_API_KEY=sk-proj-557fe9da6293008dc081bd204fc0638ee9eb100d",
        "557fe9da6293008dc081bd204fc0638ee9eb100d",
    ),
    ("key sk-svcacct-AbCdEf0123456789AbCdEf0123456789 here", "AbCdEf0123456789AbCdEf0123456789"),
    ("old style sk-0123456789abcdefABCDEF0123456789abcdefABCDEF", "0123456789abcdefABCDEF"),
    ("Incorrect API key provided: sk-proj-t3r0ki9u****************************ONFM.", "t3r0ki9u"),
    # the API's short masked echo (seen in real TRAE stdout): its visible tail is still a piece of the key
    ("Incorrect API key provided: sk-proj-****B7cA. You can find your API key at", "B7cA"),
    ("Incorrect API key provided: sk-proj***7cA.", "7cA"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x", "eyJhbGciOiJIUzI1NiJ9"),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("temporary ASIAZ3EXAMPLE0EXAMPL used", "ASIAZ3EXAMPLE0EXAMPL"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ('export AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "wJalrXUtnFEMI"),
    ('{"api_key": "abc123secretvalue", "model": "gpt-5"}', "abc123secretvalue"),
    ("client = OpenAI(api_key='hunter2hunter2')", "hunter2hunter2"),
    ("ANTHROPIC_API_KEY: some-other-provider-key", "some-other-provider-key"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secret_is_removed(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MARK in out


def test_openai_prefix_kept_short() -> None:
    out = redact("Using sk-proj-557fe9da6293008dc081bd204fc0638ee9eb100d now")
    assert out == f"Using sk-{MARK} now"


@pytest.mark.parametrize(
    "text",
    [
        "TRAE STDOUT: Token Usage",
        "Input: 332283 Output: 2188",
        "'type': 'invalid_request_error', 'code': 'invalid_api_key'}",
        "Incorrect API key provided",
        "scikit: sk-learn is a library",
        "Starting task processing: sglang_002_2265d0bf",
        "task-processing-something-quite-long-here",
        "Task configuration - Human commit: 8319002d3167d53e5753dc98fa36a1009aecac22, Pre commit: None",
    ],
)
def test_ordinary_text_untouched(text: str) -> None:
    assert redact(text) == text


def test_idempotent() -> None:
    once = redact("api_key=sk-abcdefghijklmnopqrstuvwx and Bearer abc.def")
    assert redact(once) == once


def test_non_ascii_text_keeps_alignment() -> None:
    assert redact("İİ api_key=s3cr3tvalue ü") == f"İİ api_key={MARK} ü"


def test_fast_on_many_lines() -> None:
    lines = [
        f"2025-12-03 19:00:02,007 - bench.prepare - INFO - TRAE STDOUT: step {i} Token Usage ok\n"
        for i in range(100_000)
    ]
    start = time.perf_counter()
    for line in lines:
        redact(line)
    assert time.perf_counter() - start < 5.0  # ~1-5 µs a line; generous for slow CI machines


def test_domain_events_redact_every_string_before_the_log() -> None:
    """The last boundary: whatever a reader or the runner forgot, no payload carries a key."""
    from tracker.domain.run_events import AttemptStarted

    key = "sk-proj-" + "Q" * 40
    started = AttemptStarted(
        campaign="c", repo="vllm", agent="trae", model="gpt-5", item_id="i", commit="a" * 40, pre_commit=None,
        run_timestamp="2025-12-01_00-00-00", attempt_number=1, host="h", command=["agent", "--api-key", key],
        log_file="/tmp/x.log", claim_token="t")
    payload = started.to_new_event().payload
    assert key not in repr(payload)
    assert payload["command"][:2] == ["agent", "--api-key"]
