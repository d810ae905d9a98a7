"""Reads never create: a command that only reads refuses a store that does not exist, names the path and
the command that makes one, and leaves no folder, file or schema behind. Writers still create."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tests.conftest import run_track

PLAN = {"repo": "/repos/vllm", "task_id": "vllm_core",
        "items": [{"item_id": "vllm_core-0001", "human": "a" * 40, "pre": None}]}

READERS = [
    ["verify"],
    ["campaigns"],
    ["failures", "c1"],
    ["folders", "c1"],
    ["attempts", "c1"],
    ["log", "c1", "--commit", "aaaaaaaa"],
    ["status", "c1"],
    ["compare", "c1", "c2", "--no-mlflow"],
    ["compare", "c1", "c2", "--no-mlflow", "--format", "csv", "--out", "out.csv"],
    ["estimate", "PLAN", "--baseline", "c1"],
    ["db", "current"],
    ["db", "rebuild"],
    ["db", "downgrade", "base"],
]


def _args(command: list[str], tmp_path: Path) -> list[str]:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    return [str(plan) if part == "PLAN" else part for part in command]


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def _assert_refused(result, path: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: no store at") and path in line, line
    assert "`track import`" in line and "`track db upgrade`" in line, line
    assert "ok" not in result.stdout and "(none)" not in result.stdout


@pytest.mark.parametrize("command", READERS, ids=lambda c: " ".join(c[:2]))
def test_reader_refuses_a_missing_folder_and_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    args = _args(command, tmp_path)
    before = _files(tmp_path)
    missing = tmp_path / "nonexistent" / "x.db"
    result = run_track("--db", f"sqlite:///{missing}", *args, cwd=tmp_path)
    _assert_refused(result, str(missing))
    assert _files(tmp_path) == before


@pytest.mark.parametrize("command", READERS, ids=lambda c: " ".join(c[:2]))
def test_reader_in_the_wrong_folder_makes_no_mlruns(tmp_path: Path, command: list[str]) -> None:
    args = _args(command, tmp_path)
    result = run_track(*args, cwd=tmp_path, env={"TRACK_DB_URL": ""})
    _assert_refused(result, str(tmp_path / "mlruns" / "events.db"))
    assert not (tmp_path / "mlruns").exists()


def test_one_letter_off_is_not_an_empty_intact_store(tmp_path: Path) -> None:
    real = tmp_path / "mlruns" / "events.db"
    assert run_track("--db", f"sqlite:///{real}", "db", "upgrade", cwd=tmp_path).returncode == 0
    assert run_track("--db", f"sqlite:///{real}", "verify", cwd=tmp_path).returncode == 0
    result = run_track("--db", "sqlite:///mlruns/event.db", "verify", cwd=tmp_path)
    _assert_refused(result, str(tmp_path / "mlruns" / "event.db"))
    assert not (tmp_path / "mlruns" / "event.db").exists()


def test_empty_file_is_refused_and_left_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    result = run_track("--db", f"sqlite:///{empty}", "campaigns", cwd=tmp_path)
    _assert_refused(result, str(empty))
    assert empty.stat().st_size == 0
    assert _files(tmp_path) == {"empty.db"}


def test_postgres_database_without_schema_is_refused_and_left_bare(pg_url: str, tmp_path: Path) -> None:
    for command in (["verify"], ["campaigns"], ["status", "c1"], ["db", "rebuild"]):
        result = run_track("--db", pg_url, *command, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "no track schema" in result.stderr and "`track db upgrade`" in result.stderr
    engine = create_engine(pg_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def test_writers_still_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'events.db'}"
    result = run_track("--db", url, "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert run_track("--db", url, "campaigns", cwd=tmp_path).returncode == 0
    other = f"sqlite:///{tmp_path / 'other' / 'events.db'}"
    tree = tmp_path / "tree"
    (tree / "state" / "runs").mkdir(parents=True)
    result = run_track("--db", other, "import", str(tree), "--campaign", "c1", "--no-mlflow", cwd=tmp_path)
    assert result.returncode == 1  # an empty tree: nothing imported, but the store exists now
    assert (tmp_path / "other" / "events.db").exists()
    assert run_track("--db", other, "verify", cwd=tmp_path).returncode == 0


def test_library_reader_refuses_unless_asked_to_create(tmp_path: Path) -> None:
    import tracker
    from tracker.errors import StoreNotFound

    url = f"sqlite:///{tmp_path / 'lab' / 'events.db'}"
    with pytest.raises(StoreNotFound, match="no store at"):
        tracker.open_store(url)
    assert not (tmp_path / "lab").exists()
    with tracker.open_store(url, create=True) as store:
        assert store.count() == 0
    with tracker.open_store(url) as store:
        assert store.count() == 0
