"""Preflight: is the API usable right now, before a campaign spends hours failing on it?

Checks, in order (a failure skips the rest): the key is set (and, for the OpenAI API itself, shaped like
an OpenAI key: a vLLM or Azure-compatible endpoint takes keys such as `EMPTY`), the endpoint answers,
the key is accepted, the model is listed, and a tiny generation succeeds. The generation is the
only way to see an exhausted quota: listing models works on an empty account. Uses the real
`openai` SDK (so `OPENAI_BASE_URL` is honoured) with its own retries off: tenacity retries
transient errors (connection, timeout, 5xx, rate limit) a bounded number of times and never an
auth or quota error, which no wait will fix. A connection error names the URL tried; the key never
appears in any output.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import openai
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from tracker.classify.redaction import redact

T = TypeVar("T")
KEY_SHAPE = re.compile(r"^sk-[A-Za-z0-9_\-]{20,}$")
OPENAI_URL = "https://api.openai.com/v1"
OPENAI_HOSTS = frozenset({"api.openai.com"})
"""Where the key must look like OpenAI's; any other base URL is a compatible server with keys of its own."""
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


def _rate_limit_category(exc: openai.RateLimitError) -> str:
    """A 429 is either a passing rate limit or an exhausted quota, which never recovers."""
    quota = "insufficient_quota" in (str(exc.code), str(exc.type)) or "exceeded your current quota" in str(exc)
    return "quota_exceeded" if quota else "rate_limited"


def _bad_request_category(exc: openai.BadRequestError) -> str:
    return "context_length_exceeded" if exc.code == "context_length_exceeded" else "bad_request"


def _status_category(exc: openai.APIStatusError) -> str:
    """Any other HTTP error: a 5xx is the server's, the rest is not known."""
    return "server_error" if exc.status_code >= 500 else "other"


_CATEGORIES: tuple[tuple[type[BaseException], str | Callable[[Any], str]], ...] = (
    # subclasses before their bases: a timeout is a connection error, every HTTP error an APIStatusError
    (openai.APITimeoutError, "timeout"),
    (openai.APIConnectionError, "connection_error"),
    (openai.AuthenticationError, "invalid_api_key"),
    (openai.RateLimitError, _rate_limit_category),
    (openai.PermissionDeniedError, "permission_denied"),
    (openai.NotFoundError, "not_found"),
    (openai.BadRequestError, _bad_request_category),
    (openai.InternalServerError, "server_error"),
    (openai.APIStatusError, _status_category),
)
"""SDK exception class -> failure category (or the function that tells it from the exception), first match wins."""


def categorise(exc: BaseException) -> str:
    """The failure category of an SDK exception (429 is split by its code: quota never recovers)."""
    for cls, category in _CATEGORIES:
        if isinstance(exc, cls):
            return category if isinstance(category, str) else category(exc)
    return "other"


def is_openai_api(url: str) -> bool:
    """Is this base URL the OpenAI API itself (not a compatible server: vLLM, Azure, a proxy)?"""
    return (urlsplit(url).hostname or "").lower() in OPENAI_HOSTS


def shown_url(url: str) -> str:
    """The URL fit for output: no user or password, no query (either may carry a credential), redacted."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return redact(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def _route(url: str, route: str) -> str:
    """The URL the SDK called for `route`, as output may show it."""
    return f"{shown_url(url).rstrip('/')}/{route}"


def _describe(exc: BaseException, tried: str = "") -> str:
    if isinstance(exc, openai.APIStatusError):
        message = exc.message
        return redact(f"HTTP {exc.status_code} {type(exc).__name__}: {message}")[:300]
    where = f" (tried {tried})" if tried and isinstance(exc, openai.APIConnectionError) else ""
    return redact(f"{type(exc).__name__}: {exc}")[:300 - len(where)] + where


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


CHECKS = ("api_key", "endpoint", "auth", "model", "generation")
"""The checks in the order they run."""


def _fail(report: PreflightReport, check: Check, exc: BaseException | None = None, category: str | None = None,
          detail: str = "", tried: str = "") -> None:
    """Record `check` as failed (by `exc` on URL `tried`, or with `category` and `detail`) and every later check
    as skipped."""
    check.ok = False
    check.category = category or (categorise(exc) if exc else "other")
    check.detail = detail or (_describe(exc, tried) if exc else "")
    report.checks.append(check)
    report.checks.extend(Check(n, None) for n in CHECKS[len(report.checks):])


def _check_key(report: PreflightReport, key: str, shape: bool) -> bool:
    """Is a key set, and (with `shape`) well-formed? Checked locally: nothing is sent for a refused key."""
    if not key:
        _fail(report, Check("api_key", True), category="missing_api_key",
              detail="OPENAI_API_KEY is not set (a compatible server that needs none takes any value, e.g. EMPTY)")
        return False
    if shape and (not KEY_SHAPE.match(key.strip()) or key != key.strip()):
        detail = (f"OPENAI_API_KEY does not look like an OpenAI key (sk-… with 20+ letters/digits; {len(key)} chars), "
                  f"and {report.base_url} is the OpenAI API")
        _fail(report, Check("api_key", True), category="malformed_api_key", detail=detail)
        return False
    kind = "sk-…" if shape else "shape not checked"
    report.checks.append(Check("api_key", True, detail=f"OPENAI_API_KEY set ({len(key)} chars, {kind})"))
    return True


def _http_refusal(report: PreflightReport, endpoint: Check, auth: Check, exc: openai.APIStatusError,
                  started: float) -> None:
    """Listing models got an HTTP error: the endpoint is not working (transient or unknown), or refused the key."""
    if categorise(exc) in TRANSIENT or categorise(exc) == "other":  # answered, but is not working
        endpoint.seconds = time.perf_counter() - started
        _fail(report, endpoint, exc)
        return
    endpoint.detail, endpoint.seconds = f"answered HTTP {exc.status_code}", time.perf_counter() - started
    report.checks.append(endpoint)
    auth.attempts = endpoint.attempts
    _fail(report, auth, exc)


def _list_models(report: PreflightReport, client: openai.OpenAI, url: str, retries: int,
                 wait_s: float) -> list[str] | None:
    """The endpoint and auth checks: the model ids the key can use (None: a check failed)."""
    endpoint, auth = Check("endpoint", True), Check("auth", True)
    started = time.perf_counter()
    try:
        ids = [m.id for m in _call(lambda: list(client.models.list()), endpoint, retries, wait_s)]
    except openai.APIStatusError as exc:
        _http_refusal(report, endpoint, auth, exc, started)
        return None
    except openai.OpenAIError as exc:
        endpoint.seconds = time.perf_counter() - started
        _fail(report, endpoint, exc, tried=_route(url, "models"))
        return None
    endpoint.seconds = time.perf_counter() - started
    endpoint.detail = f"{shown_url(url)} answered ({len(ids)} models)"
    auth.detail = "key accepted"
    report.checks += [endpoint, auth]
    return ids


def _check_model(report: PreflightReport, ids: list[str], model: str) -> bool:
    """Is `model` (or a dated snapshot of it) among the models the key can use?"""
    listed = Check("model", True)
    wanted = [i for i in ids if i == model or i.startswith(model + "-20")]
    if not wanted:
        _fail(report, listed, category="model_not_listed",
              detail=f"{model} is not in the {len(ids)} models this key can use")
        return False
    listed.detail = f"{model} listed ({', '.join(sorted(wanted)[:3])})"
    report.checks.append(listed)
    return True


def _check_generation(report: PreflightReport, client: openai.OpenAI, url: str, model: str, retries: int,
                      wait_s: float) -> None:
    """A tiny generation: the only check that sees an exhausted quota."""
    generation = Check("generation", True)
    started = time.perf_counter()
    try:
        response = _call(lambda: client.responses.create(model=model, input="Reply with OK.", max_output_tokens=16),
                         generation, retries, wait_s)
    except openai.OpenAIError as exc:
        generation.seconds = time.perf_counter() - started
        _fail(report, generation, exc, tried=_route(url, "responses"))
        return
    generation.seconds = time.perf_counter() - started
    usage = getattr(response, "usage", None)
    total = getattr(usage, "total_tokens", None) if usage is not None else None
    generation.detail = f"tiny generation succeeded ({total if total is not None else '?'} tokens)"
    report.checks.append(generation)


def run_preflight(model: str = "gpt-5", *, api_key: str | None = None, base_url: str | None = None,
                  timeout_s: float = 20.0, retries: int = 3, wait_s: float = 1.0,
                  key_check: bool = True) -> PreflightReport:
    """Run every check; stop at the first failure (later checks are reported as skipped). The key's shape is
    checked only against the OpenAI API itself, and not at all with `key_check=False`."""
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
    url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    report = PreflightReport(base_url=shown_url(url), model=model)
    if not _check_key(report, key, shape=key_check and is_openai_api(url)):
        return report
    client = openai.OpenAI(api_key=key, base_url=url, max_retries=0, timeout=timeout_s)
    ids = _list_models(report, client, url, retries, wait_s)
    if ids is not None and _check_model(report, ids, model):
        _check_generation(report, client, url, model, retries, wait_s)
    return report
