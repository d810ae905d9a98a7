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


# -- the catalogue: one test per rule, in the forms a secret arrives in ------------------------------------------

import json  # noqa: E402
import tomllib  # noqa: E402

from tests.support.planted_secrets import fragments, normalise  # noqa: E402
from tracker.classify.redaction import RULES, RULES_FILE, LineRedactor, redact_value  # noqa: E402

CATALOGUE = tomllib.loads(RULES_FILE.read_text())["rule"]
WRAPPING = [r for r in CATALOGUE if r["wraps"]]


def _survives(secret: str, text: str) -> bool:
    hay = normalise(text.encode())
    return any(f in hay for f in fragments(secret))


def test_every_rule_has_an_example_with_its_secret() -> None:
    assert [r["id"] for r in CATALOGUE] == [r.id for r in RULES]
    for rule in CATALOGUE:
        assert rule["secret"] in rule["example"] and rule["triggers"], rule["id"]
        assert all(t == t.lower() for t in rule["triggers"]), f"{rule['id']}: triggers are matched lowercased"


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda r: r["id"])
def test_rule_removes_its_example(rule: dict) -> None:  # type: ignore[type-arg]
    out = redact(rule["example"])
    assert not _survives(rule["secret"], out), out
    assert MARK in out
    assert redact(out) == out  # idempotent


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda r: r["id"])
def test_rule_in_a_json_string_after_an_escaped_newline(rule: dict) -> None:  # type: ignore[type-arg]
    """As a trajectory or an event's JSON holds it: `\\n` (or `\\t`) right before the key."""
    for sep in ("\n", "\t"):
        line = json.dumps({"role": "tool", "content": "$ env" + sep + rule["example"]})
        assert not _survives(rule["secret"], redact(line)), redact(line)


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda r: r["id"])
def test_rule_with_unicode_escapes_inside_the_key(rule: dict) -> None:  # type: ignore[type-arg]
    body = json.dumps(rule["example"])[1:-1]
    secret = json.dumps(rule["secret"])[1:-1]
    escaped = body.replace(secret, secret.replace("-", "\\u002d").replace("_", "\\u005f"))
    line = '{"output": "' + escaped + '"}'
    assert not _survives(rule["secret"], redact(line)), redact(line)


@pytest.mark.parametrize("rule", WRAPPING, ids=lambda r: r["id"])
def test_rule_wrapped_across_two_lines(rule: dict) -> None:  # type: ignore[type-arg]
    """A terminal wraps the key: the tail (which holds a digit) starts the next line. Caught in one text, in a
    JSON string, and line by line (`LineRedactor`, as artifacts and the runner's log are written)."""
    secret = rule["secret"]
    cut = next(i for i in range(len(secret) // 2, len(secret)) if any(c.isdigit() for c in secret[i:])
               and secret[i - 1].isalnum())
    wrapped = rule["example"].replace(secret, secret[:cut] + "\n" + secret[cut:])
    assert not _survives(secret, redact(wrapped)), redact(wrapped)
    assert not _survives(secret, redact(json.dumps({"m": wrapped})))
    by_line = "".join(map(LineRedactor(), wrapped.splitlines(keepends=True)))
    assert not _survives(secret, by_line), by_line


def test_wrap_does_not_eat_the_next_log_line_or_a_word() -> None:
    text = "export HF_TOKEN=hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567\n2025-12-03 19:00:02,007 - x - INFO - done\n"
    assert redact(text).endswith("\n2025-12-03 19:00:02,007 - x - INFO - done\n")
    assert redact("export X_TOKEN=abc123\nexport Y=1") == f"export X_TOKEN={MARK}\nexport Y=1"


def test_pem_block_line_by_line_and_cut_short() -> None:
    lines = ["start\n", "-----BEGIN OPENSSH PRIVATE KEY-----\n", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n",
             "AAAAC3NzaC1lZDI1NTE5AAAAIExAMPLE\n", "-----END OPENSSH PRIVATE KEY-----\n", "after\n"]
    out = "".join(map(LineRedactor(), lines))
    assert "b3BlbnNz" not in out and "AAAAC3Nz" not in out
    assert out.startswith("start\n-----BEGIN OPENSSH PRIVATE KEY-----") and out.endswith("-----\nafter\n")
    assert out.count("\n") == len(lines)  # line structure kept
    cut = redact("log: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIEvQ")
    assert "MIIEvQ" not in cut


def test_ordinary_code_and_logs_are_not_secrets() -> None:
    for text in ["APPEND_LOCK_KEY = 0x7472_6163_6B00", "LOCK_KEY = zlib.crc32(b'track')", "MAX_TOKENS=4096",
                 "python bench.py --max-tokens 200 --no-key-check", "OPENAI_BASE_URL=http://127.0.0.1:8000/v1",
                 "KeyError: 'usage'", "see https://github.com/org/repo/pull/12 and task-0012"]:
        assert redact(text) == text


def test_structured_values_redact_by_name_and_by_flag() -> None:
    value = {"env": {"HF_TOKEN": "plainvalue", "OPENAI_API_KEY": "EMPTY", "PATH": "/usr/bin"},
             "claim_token": "kept-token-7", "command": ["vllm", "serve", "--hf-token", "abc", "--port", "8000",
                                                        "--api-key=xyz123"]}
    out = redact_value(value)
    assert out["env"] == {"HF_TOKEN": MARK, "OPENAI_API_KEY": MARK, "PATH": "/usr/bin"}
    assert out["claim_token"] == "kept-token-7"  # a claim's own token is an id, not a credential
    assert out["command"] == ["vllm", "serve", "--hf-token", MARK, "--port", "8000", f"--api-key={MARK}"]


@pytest.mark.parametrize("offset", [-30, -12, -1, 0, 5])
def test_key_across_the_64_kib_read_boundary_is_caught(tmp_path, offset: int) -> None:  # type: ignore[no-untyped-def]
    """Long lines are read in READ_LIMIT pieces; a piece never ends inside a token, so each is redacted whole."""
    from tracker.isobench.textlog import READ_LIMIT, scan_text

    key = "sk-proj-4fGh8JkL2mN6pQ9rS3tV7wX0yZ1aB5cD8eF2gH4iJ6kL"
    head = "x " * ((READ_LIMIT + offset - 40) // 2)
    line = head + "error: Incorrect API key provided: " + key + " (401) " + "y " * 40_000 + "failed\n"
    path = tmp_path / "trae_stderr.txt"
    path.write_text(line + "error after\n")
    scan = scan_text(path, "trae_stderr.txt", "stderr")
    assert scan.evidence and scan.lines == 2
    text = " ".join(e.text for e in scan.evidence)
    assert not _survives(key, text) and "error after" in text
