"""Talking to MLflow: where a tracking URI keeps its artifacts, and calls that retry, then fail clearly.

A tracking server can be down or restarting. Every call goes through `Tracking.call`, which retries
transient failures a bounded number of times (tenacity, exponential wait) and then raises
`MlflowUnavailable`: one line saying what to do, with the projection's checkpoint left where it was.
MLflow's own HTTP retries (7 by default, minutes of back-off) are turned down for the same reason by
`MLFLOW_QUIET_DEFAULTS`, which the program that owns the process applies (the CLI does; the library never
changes `os.environ`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from tracker.errors import TrackerError

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")

MLFLOW_QUIET_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
                         "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
"""MLflow settings (environment variables only) that let tenacity own the retries, so a dead server fails in
seconds, not minutes, and keep MLflow's "View run at" lines off stdout, which belongs to `--json`."""

_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}


class MlflowUnavailable(TrackerError):
    """The tracking store could not be reached (after retries) or refused a write."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_wait_s: float = 0.25
    max_wait_s: float = 2.0


def checkpoint_name(tracking_uri: str) -> str:
    """One checkpoint per tracking URI: projecting into a second server starts from the beginning."""
    return "mlflow:" + hashlib.sha256(tracking_uri.encode()).hexdigest()[:16]


def safe_uri(uri: str) -> str:
    """The URI without a password, fit for messages."""
    parts = urlsplit(uri)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def is_sqlite(uri: str) -> bool:
    return uri.startswith("sqlite:")


def sqlite_path(tracking_uri: str) -> Path:
    """The database file of a `sqlite:///` tracking URI."""
    return Path(tracking_uri.split(":///", 1)[1]) if ":///" in tracking_uri else Path("mlruns/mlflow.db")


def artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """SQLite store `<dir>/mlflow.db` keeps artifacts in `<dir>/artifacts/<experiment>`; a server decides itself."""
    if not is_sqlite(tracking_uri):
        return None
    return (sqlite_path(tracking_uri).resolve().parent / "artifacts" / experiment_name.replace("/", "_")).as_uri()


UI_PORT = 5000
"""`track ui`'s default loopback port."""


def ui_link(tracking_uri: str, route: str, ui_port: int | None = None) -> str:
    """`route` on the UI that shows this tracking store: on the server's own address; for an embedded store on
    `track ui`'s loopback port when it is known, else the route alone (relative: it fits whatever port the UI
    is opened on, where a hard-wired one would point at nothing)."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/") + route
    return f"http://127.0.0.1:{ui_port}{route}" if ui_port else route


def run_route(experiment_id: str, run_id: str) -> str:
    return f"/#/experiments/{experiment_id}/runs/{run_id}"


def compare_route(experiment_id: str, run_ids: list[str]) -> str:
    """The run-compare page for these runs (e.g. every attempt of one commit, original and rerun)."""
    runs = ",".join(f'"{run_id}"' for run_id in run_ids)
    return f'/#/compare-runs?runs=[{runs}]&experiments=["{experiment_id}"]'


def commit_attempts(tracking_uri: str, experiment_name: str, commit: str) -> tuple[str, list[str]] | None:
    """(experiment id, run ids of every attempt at this commit, originals first, oldest first)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], filter_string=f"params.commit = '{commit}'",
                              max_results=1000)
    ordered = sorted(runs, key=lambda r: (r.data.params.get("phase") == "rerun", r.info.start_time or 0))
    return experiment.experiment_id, [run.info.run_id for run in ordered]


def _is_transient(exc: BaseException) -> bool:
    from mlflow.exceptions import MlflowException
    from requests import RequestException

    if isinstance(exc, RequestException | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, MlflowException):
        message = str(exc)
        return exc.error_code in _TRANSIENT_CODES or "failed with exception" in message or "locked" in message
    return False


class Tracking:
    """An MlflowClient whose calls retry transient failures and end in `MlflowUnavailable`."""

    def __init__(self, tracking_uri: str, retry: RetryPolicy | None = None) -> None:
        # MLflow announces its own schema set-up at INFO on stderr; our progress output is enough.
        for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow import MlflowClient

        self.uri = tracking_uri
        self.retry = retry or RetryPolicy()
        self.client: MlflowClient = MlflowClient(tracking_uri=tracking_uri)

    def call(self, what: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential(multiplier=self.retry.first_wait_s, max=self.retry.max_wait_s),
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        try:
            return retrying(func, *args, **kwargs)
        except Exception as exc:
            from mlflow.exceptions import MlflowException
            from requests import RequestException

            if not isinstance(exc, MlflowException | RequestException | OSError):
                raise
            tried = f" after {self.retry.attempts} attempts" if _is_transient(exc) else ""
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise MlflowUnavailable(
                f"MLflow at {safe_uri(self.uri)} failed to {what}{tried}: {first}; nothing was lost"
            ) from None


def ui_command(tracking_uri: str, port: int = UI_PORT, python: str | None = None) -> list[str]:
    """The `mlflow server` command line serving the UI over a SQLite store, on loopback only."""
    import sys

    if not is_sqlite(tracking_uri):
        raise TrackerError(f"{safe_uri(tracking_uri)} is not an embedded store: open the server's own UI instead")
    artifacts = (sqlite_path(tracking_uri).resolve().parent / "artifacts").as_uri()
    return [python or sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
            "--default-artifact-root", artifacts, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
