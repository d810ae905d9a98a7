"""`track preflight` with the real `openai` SDK against a local server answering like the API."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import run_track
from tests.support.fake_openai import FakeOpenAI
from tracker.rerun.preflight import PreflightReport, _check_key, categorise, run_preflight

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def _preflight(api: FakeOpenAI, *extra: str, key: str = KEY):  # type: ignore[no-untyped-def]
    env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": api.base_url}
    return run_track("preflight", "--timeout", "1", "--retry-wait", "0.01", *extra, env=env)


@pytest.mark.parametrize(("scenario", "category", "exit_code", "hits"), [
    ({}, None, 0, {"models": 1, "responses": 1}),
    ({"models": ["invalid_api_key"]}, "invalid_api_key", 1, {"models": 1}),
    ({"responses": ["insufficient_quota"]}, "quota_exceeded", 1, {"models": 1, "responses": 1}),
    ({"responses": ["rate_limit_exceeded", "rate_limit_exceeded", "ok"]}, None, 0, {"models": 1, "responses": 3}),
    ({"responses": ["rate_limit_exceeded"]}, "rate_limited", 1, {"models": 1, "responses": 3}),
    ({"models": ["server_error", "ok"]}, None, 0, {"models": 2, "responses": 1}),
    ({"models": ["server_error"]}, "server_error", 1, {"models": 3}),
    ({"responses": ["hang"]}, "timeout", 1, {"models": 1, "responses": 3}),
])
def test_each_answer_gets_its_category_retry_and_exit_code(scenario: dict[str, list[str]], category: str | None,
                                                           exit_code: int, hits: dict[str, int]) -> None:
    with FakeOpenAI(scenario, hang_s=3) as api:
        report = run_preflight("gpt-5", api_key=KEY, base_url=api.base_url, timeout_s=1, wait_s=0.01)
        seen = dict(api.hits)
    assert report.exit_code == exit_code and report.category == category
    assert seen == hits  # transient errors retried (3 tries), auth and quota never
    text = json.dumps(report.to_dict())
    assert KEY not in text and KEY[8:20] not in text


def test_cli_exit_code_and_json_for_an_invalid_key() -> None:
    with FakeOpenAI({"models": ["invalid_api_key"]}) as api:
        result = _preflight(api, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["category"] == "invalid_api_key"
    assert KEY not in result.stdout + result.stderr


def test_human_output_is_one_line_per_check_and_never_the_key() -> None:
    with FakeOpenAI({"responses": ["insufficient_quota"]}) as api:
        result = _preflight(api)
        assert api.auth_headers and all(h == f"Bearer {KEY}" for h in api.auth_headers)
    lines = result.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["api_key", "endpoint", "auth", "model", "generation"]
    assert lines[-1].startswith("FAIL") and "[quota_exceeded]" in lines[-1]
    assert "exceeded your current quota" in lines[-1]
    assert KEY not in result.stdout + result.stderr


def test_a_missing_key_is_a_configuration_error() -> None:
    with FakeOpenAI() as api:
        result = _preflight(api, "--json", key="")
        assert sum(api.hits.values()) == 0  # nothing was sent
    assert result.returncode == 2
    assert json.loads(result.stdout)["category"] == "missing_api_key"


@pytest.mark.parametrize("key", ["not-a-key", KEY + " ", "EMPTY"])
def test_a_malformed_key_is_refused_against_the_openai_api_itself(key: str) -> None:
    """Checked locally before anything is sent (the OpenAI API is never reached from a test)."""
    result = run_track("preflight", "--json", env={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": "https://api.openai.com/v1"})
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["category"] == "malformed_api_key" and "api.openai.com" in report["checks"][0]["detail"]
    assert "--no-key-check" in result.stderr
    assert key.strip() not in result.stdout + result.stderr or key.strip() == "EMPTY"


@pytest.mark.parametrize("key", ["EMPTY", "token-abc123", "not-a-key"])
def test_a_compatible_endpoint_takes_its_own_keys(key: str) -> None:
    """vLLM or Azure-compatible servers (OPENAI_BASE_URL elsewhere): no key-shape check; every other check runs."""
    with FakeOpenAI() as api:
        result = _preflight(api, "--json", key=key)
        seen = dict(api.hits)
        assert api.auth_headers and all(h == f"Bearer {key}" for h in api.auth_headers)
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert [c["ok"] for c in report["checks"]] == [True] * 5
    assert "shape not checked" in report["checks"][0]["detail"]
    assert seen == {"models": 1, "responses": 1}  # the quota probe still runs


def test_no_key_check_lets_another_key_shape_reach_the_api() -> None:
    with FakeOpenAI({"responses": ["insufficient_quota"]}) as api:
        report = run_preflight("gpt-5", api_key="EMPTY", base_url=api.base_url, timeout_s=1, wait_s=0.01,
                               key_check=False)
    assert report.category == "quota_exceeded"  # the quota probe is kept
    shaped = PreflightReport("https://api.openai.com/v1", "gpt-5")
    assert _check_key(shaped, "EMPTY", shape=False) and shaped.checks[0].ok


@pytest.mark.parametrize("secret_url", [False, True])
def test_a_connection_failure_names_the_url_tried_never_the_key(secret_url: bool) -> None:
    with FakeOpenAI() as api:
        url = api.base_url
    if secret_url:  # a URL carrying credentials is shown without them
        url = url.replace("http://", f"http://user:{KEY}@") + f"?api-key={KEY}"
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url}
    result = run_track("preflight", "--timeout", "1", "--retries", "1", "--json", env=env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    endpoint = report["checks"][1]
    assert endpoint["category"] == "connection_error"
    port = url.split(":")[-1].split("/")[0]
    assert f"tried http://127.0.0.1:{port}/v1/models" in endpoint["detail"]
    assert KEY not in result.stdout + result.stderr and KEY[8:20] not in result.stdout + result.stderr


def test_an_unknown_model_and_an_unreachable_endpoint() -> None:
    with FakeOpenAI() as api:
        missing = run_preflight("gpt-9", api_key=KEY, base_url=api.base_url, timeout_s=1, wait_s=0.01)
    assert missing.category == "model_not_listed" and missing.exit_code == 1
    with FakeOpenAI() as api:
        url = api.base_url
    down = run_preflight("gpt-5", api_key=KEY, base_url=url, timeout_s=1, retries=2, wait_s=0.01)
    assert down.category == "connection_error" and down.checks[1].attempts == 2


def _sdk_error(cls: type[BaseException], message: str = "boom", *, status: int | None = None,
               code: str | None = None, type_: str | None = None) -> BaseException:
    """An SDK exception with the attributes `categorise` reads, without building HTTP requests and responses."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    vars(exc).update(message=message, code=code, type=type_, body=None)
    if status is not None:
        vars(exc)["status_code"] = status
    return exc


@pytest.mark.parametrize(("exc", "category"), [
    (_sdk_error(openai.APITimeoutError), "timeout"),
    (_sdk_error(openai.APIConnectionError), "connection_error"),
    (_sdk_error(openai.AuthenticationError, status=401), "invalid_api_key"),
    (_sdk_error(openai.RateLimitError, status=429, code="insufficient_quota"), "quota_exceeded"),
    (_sdk_error(openai.RateLimitError, status=429, type_="insufficient_quota"), "quota_exceeded"),
    (_sdk_error(openai.RateLimitError, "You exceeded your current quota", status=429), "quota_exceeded"),
    (_sdk_error(openai.RateLimitError, status=429, code="rate_limit_exceeded"), "rate_limited"),
    (_sdk_error(openai.PermissionDeniedError, status=403), "permission_denied"),
    (_sdk_error(openai.NotFoundError, status=404), "not_found"),
    (_sdk_error(openai.BadRequestError, status=400, code="context_length_exceeded"), "context_length_exceeded"),
    (_sdk_error(openai.BadRequestError, status=400, code="invalid_value"), "bad_request"),
    (_sdk_error(openai.InternalServerError, status=500), "server_error"),
    (_sdk_error(openai.APIStatusError, status=503), "server_error"),
    (_sdk_error(openai.ConflictError, status=409), "other"),
    (_sdk_error(openai.OpenAIError), "other"),
    (ValueError("not from the SDK"), "other"),
])
def test_categorise_names_every_sdk_error(exc: BaseException, category: str) -> None:
    assert categorise(exc) == category
