"""Shared fixtures: a fresh store on every backend (SQLite file, real PostgreSQL database).

PostgreSQL tests need the server at $TRACK_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test).
Where it is missing they skip with a visible reason, unless TRACK_REQUIRE_POSTGRES=1 (CI), where
they fail: CI must never skip them silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tracker.projections.mlflow.client import MLFLOW_QUIET_DEFAULTS

for _key, _value in MLFLOW_QUIET_DEFAULTS.items():  # as the CLI sets them for its process
    os.environ.setdefault(_key, _value)
# PostgreSQL stores keep their anchors under the state folder: the tests' own, not the user's.
os.environ.setdefault("TRACK_STATE_DIR", tempfile.mkdtemp(prefix="track-test-state-"))

pytest_plugins = ["tests.support.mlflow_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("TRACK_FIXTURES", REPO_ROOT / "tests" / "fixtures"))
PG_ADMIN_URL = os.environ.get("TRACK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_reason() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: no server here
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}"


_PG_REASON = _postgres_reason()


def require_postgres() -> None:
    if _PG_REASON is None:
        return
    if os.environ.get("TRACK_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"TRACK_REQUIRE_POSTGRES=1 but {_PG_REASON}")
    pytest.skip(_PG_REASON)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for one test, dropped afterwards."""
    require_postgres()
    name = f"track_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The same test on each backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


def run_track(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 300, process: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `track` with these arguments: in this process (Click's runner, the same entry as the console
    script, exit codes and stderr included), or with `process=True` as the real console entry point in a
    child process (for what only a process shows: signals, start-up cost, the interpreter's exit)."""
    if process:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "runners.cli", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
            timeout=timeout,
        )
    return _run_in_process(list(args), cwd, env)


def _run_in_process(args: list[str], cwd: Path | None, env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    from click.testing import CliRunner

    from runners.cli import run

    before = os.getcwd()
    runner = CliRunner()
    with runner.isolation(env=env) as (stdout, stderr, _):
        try:
            if cwd is not None:
                os.chdir(cwd)
            code = run(args)
        except SystemExit as exc:  # a command that exits on its own (e.g. `track ui`)
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            os.chdir(before)
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    return subprocess.CompletedProcess(["track", *args], code, out, err)
