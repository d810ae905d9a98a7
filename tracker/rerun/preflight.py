"""Preflight: is the API usable right now, before a campaign spends hours failing on it?

Checks, in order (a failure skips the rest): the key is set and well-formed, the endpoint answers,
the key is accepted, the model is listed, and a tiny generation succeeds. The generation is the
only way to see an exhausted quota: listing models works on an empty account. Uses the real
`openai` SDK (so `OPENAI_BASE_URL` is honoured) with its own retries off: tenacity retries
transient errors (connection, timeout, 5xx, rate limit) a bounded number of times and never an
auth or quota error, which no wait will fix. The key never appears in any output.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import openai
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from tracker.classify.redaction import redact

T = TypeVar("T")
KEY_SHAPE = re.compile(r"^sk-[A-Za-z0-9_\-]{20,}$")
TRANSIENT = {"connection_error", "timeout", "server_error", "rate_limited"}
"""Categories worth retrying; everything else (auth, quota, not found, bad request) is final."""


@dataclass
class Check:
    name: str
    ok: bool | None
    """True passed, False failed, None skipped (an earlier check failed)."""
    category: str | None = None
    detail: str = ""
    attempts: int = 0
    seconds: float = 0.0


@dataclass
class PreflightReport:
    base_url: str
    model: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 every check passed; 2 no usable key configured; 1 the API refused or failed."""
        if self.ok:
            return 0
        first = next(c for c in self.checks if not c.ok)
        return 2 if first.name == "api_key" else 1

    @property
    def category(self) -> str | None:
        return next((c.category for c in self.checks if c.ok is False), None)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "exit_code": self.exit_code, "category": self.category, "base_url": self.base_url,
                "model": self.model, "checks": [asdict(c) for c in self.checks]}


def categorise(exc: BaseException) -> str:
    """The failure category of an SDK exception (429 is split by its code: quota never recovers)."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error"
    if isinstance(exc, openai.AuthenticationError):
        return "invalid_api_key"
    if isinstance(exc, openai.RateLimitError):
        quota = "insufficient_quota" in (str(exc.code), str(exc.type)) or "exceeded your current quota" in str(exc)
        return "quota_exceeded" if quota else "rate_limited"
    if isinstance(exc, openai.PermissionDeniedError):
        return "permission_denied"
    if isinstance(exc, openai.NotFoundError):
        return "not_found"
    if isinstance(exc, openai.BadRequestError):
        return "context_length_exceeded" if exc.code == "context_length_exceeded" else "bad_request"
    if isinstance(exc, openai.InternalServerError):
        return "server_error"
    if isinstance(exc, openai.APIStatusError):
        return "server_error" if exc.status_code >= 500 else "other"
    return "other"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        message = exc.message
        return redact(f"HTTP {exc.status_code} {type(exc).__name__}: {message}")[:300]
    return redact(f"{type(exc).__name__}: {exc}")[:300]


def _call(func: Callable[[], T], check: Check, retries: int, wait_s: float) -> T:
    """Run `func`, retrying transient SDK errors; count attempts into `check`."""
    def transient(exc: BaseException) -> bool:
        return isinstance(exc, openai.OpenAIError) and categorise(exc) in TRANSIENT

    retrying = Retrying(stop=stop_after_attempt(max(1, retries)), wait=wait_exponential(multiplier=wait_s, max=30),
                        retry=retry_if_exception(transient), reraise=True)
    for attempt in retrying:
        with attempt:
            check.attempts += 1
            return func()
    raise RetryError(None)  # type: ignore[arg-type]  # unreachable: reraise=True


def run_preflight(model: str = "gpt-5", *, api_key: str | None = None, base_url: str | None = None,
                  timeout_s: float = 20.0, retries: int = 3, wait_s: float = 1.0) -> PreflightReport:
    """Run every check; stop at the first failure (later checks are reported as skipped)."""
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
    url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    report = PreflightReport(base_url=redact(url), model=model)
    names = ["api_key", "endpoint", "auth", "model", "generation"]

    def fail(check: Check, exc: BaseException | None = None, category: str | None = None, detail: str = "") -> None:
        check.ok = False
        check.category = category or (categorise(exc) if exc else "other")
        check.detail = detail or (_describe(exc) if exc else "")
        report.checks.append(check)
        report.checks.extend(Check(n, None) for n in names[len(report.checks):])

    key_check = Check("api_key", True, detail=f"OPENAI_API_KEY set ({len(key)} chars, sk-…)")
    if not key:
        fail(key_check, category="missing_api_key", detail="OPENAI_API_KEY is not set")
        return report
    if not KEY_SHAPE.match(key.strip()) or key != key.strip():
        fail(key_check, category="malformed_api_key",
             detail=f"OPENAI_API_KEY does not look like an OpenAI key (sk-… with 20+ letters/digits; {len(key)} chars)")
        return report
    report.checks.append(key_check)

    client = openai.OpenAI(api_key=key, base_url=url, max_retries=0, timeout=timeout_s)
    endpoint, auth, listed = Check("endpoint", True), Check("auth", True), Check("model", True)
    started = time.perf_counter()
    try:
        ids = [m.id for m in _call(lambda: list(client.models.list()), endpoint, retries, wait_s)]
    except openai.APIStatusError as exc:
        if categorise(exc) in TRANSIENT or categorise(exc) == "other":  # answered, but is not working
            endpoint.seconds = time.perf_counter() - started
            fail(endpoint, exc)
            return report
        endpoint.detail, endpoint.seconds = f"answered HTTP {exc.status_code}", time.perf_counter() - started
        report.checks.append(endpoint)
        auth.attempts = endpoint.attempts
        fail(auth, exc)
        return report
    except openai.OpenAIError as exc:
        endpoint.seconds = time.perf_counter() - started
        fail(endpoint, exc)
        return report
    endpoint.seconds = time.perf_counter() - started
    endpoint.detail = f"{url} answered ({len(ids)} models)"
    auth.detail = "key accepted"
    report.checks += [endpoint, auth]

    wanted = [i for i in ids if i == model or i.startswith(model + "-20")]
    if not wanted:
        fail(listed, category="model_not_listed", detail=f"{model} is not in the {len(ids)} models this key can use")
        return report
    listed.detail = f"{model} listed ({', '.join(sorted(wanted)[:3])})"
    report.checks.append(listed)

    generation = Check("generation", True)
    started = time.perf_counter()
    try:
        response = _call(lambda: client.responses.create(model=model, input="Reply with OK.", max_output_tokens=16),
                         generation, retries, wait_s)
    except openai.OpenAIError as exc:
        generation.seconds = time.perf_counter() - started
        fail(generation, exc)
        return report
    generation.seconds = time.perf_counter() - started
    usage = getattr(response, "usage", None)
    total = getattr(usage, "total_tokens", None) if usage is not None else None
    generation.detail = f"tiny generation succeeded ({total if total is not None else '?'} tokens)"
    report.checks.append(generation)
    return report
