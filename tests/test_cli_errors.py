"""Bad store configuration: one line naming the problem, no traceback, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_track


def _assert_one_line_error(result, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_unreachable_database(tmp_path: Path) -> None:
    result = run_track("--db", "postgresql://track:s3cret@127.0.0.1:1/track", "verify", cwd=tmp_path)
    _assert_one_line_error(result, "cannot reach the database", "127.0.0.1:1")
    assert "s3cret" not in result.stderr


def test_non_database_file_as_sqlite_path(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("these are my notes, not a database\n" * 100)
    result = run_track("--db", f"sqlite:///{bogus}", "verify", cwd=tmp_path)
    _assert_one_line_error(result, "not a SQLite database", "notes.txt")
    assert bogus.read_text().startswith("these are my notes")


@pytest.mark.parametrize("url", ["garbage", "://nothing", "mysql://root@localhost/x"])
def test_garbage_url(tmp_path: Path, url: str) -> None:
    result = run_track("--db", url, "verify", cwd=tmp_path)
    _assert_one_line_error(result)
    assert result.stderr.startswith("error: ")


def test_env_var_and_default_location(tmp_path: Path) -> None:
    result = run_track("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mlruns" / "events.db").exists()
    assert run_track("verify", cwd=tmp_path).returncode == 0
    other = tmp_path / "elsewhere.db"
    assert run_track("db", "upgrade", cwd=tmp_path, env={"TRACK_DB_URL": f"sqlite:///{other}"}).returncode == 0
    assert other.exists()
    assert run_track("verify", cwd=tmp_path, env={"TRACK_DB_URL": f"sqlite:///{other}"}).returncode == 0


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run_track("verify", "--no-such-flag", cwd=tmp_path)
    assert result.returncode == 2
    assert "no such option" in result.stderr.lower()


def test_library_errors_speak_library_the_cli_adds_what_to_type(sqlite_url: str, tmp_path: Path) -> None:
    """A notebook user is not told to type a command; the terminal user is."""
    from tracker.errors import UnknownCampaign
    from tracker.eventstore.store import EventStore
    from tracker.projections.read_model.queries import attempts_frame

    with EventStore.open(sqlite_url) as store, pytest.raises(UnknownCampaign) as caught:
        attempts_frame(store, "ghost")
    assert "track" not in str(caught.value) and caught.value.name == "ghost"
    result = run_track("--db", sqlite_url, "failures", "ghost", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: no campaign named 'ghost' in this store: see `track campaigns`"


@pytest.fixture
def vllm_only(tmp_path: Path) -> str:
    """A store holding campaign `v` (the small fixture's vllm runs only) and `a` (both repos)."""
    from tests.conftest import FIXTURES

    url = f"sqlite:///{tmp_path / 'events.db'}"
    tree = str(FIXTURES / "isobench-small-a")
    for campaign, extra in (("v", ["--repo", "vllm"]), ("a", [])):
        result = run_track("--db", url, "import", tree, "--campaign", campaign, *extra, "--no-mlflow", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    return url


@pytest.mark.parametrize("args, needles", [
    (["attempts", "a", "--category", "quota"], ["'quota'", "quota_exceeded"]),
    (["attempts", "a", "--status", "weird"], ["'weird'", "max_steps_exceeded", "abandoned"]),
    (["attempts", "a", "--repo", "foo"], ["'foo'", "vllm", "sglang"]),
    (["failures", "a", "--evidence", "quota"], ["'quota'", "tool_output_missing"]),
    (["plan", "a", "--repo", "foo", "--out", "plans"], ["'foo'", "vllm"]),
    (["plan", "a", "--category", "quota", "--out", "plans"], ["'quota'", "quota_exceeded"]),
    (["compare", "v", "a", "--repo", "foo"], ["'foo'", "sglang"]),
    (["compare", "v", "a", "--level", "fast"], ["'fast'", "faster"]),
    (["campaigns", "--level", "fast"], ["'fast'", "faster"]),
])
def test_unknown_filter_value_is_a_usage_error_listing_the_known_ones(
        vllm_only: str, tmp_path: Path, args: list[str], needles: list[str]) -> None:
    result = run_track("--db", vllm_only, *args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    for needle in needles:
        assert needle in result.stderr
    assert not (tmp_path / "plans").exists()


@pytest.mark.parametrize("args", [
    ["attempts", "v", "--repo", "sglang"],
    ["plan", "v", "--repo", "sglang", "--out", "plans"],
    ["attempts", "ghost"], ["status", "ghost"], ["log", "ghost", "--commit", "abc"], ["folders", "ghost"],
    ["compare", "v", "ghost", "--no-mlflow"], ["plan", "ghost", "--out", "plans"],
])
def test_a_repo_or_campaign_the_store_does_not_hold_is_an_error(vllm_only: str, tmp_path: Path,
                                                               args: list[str]) -> None:
    result = run_track("--db", vllm_only, *args, cwd=tmp_path)
    _assert_one_line_error(result)
    line = result.stderr.strip()
    assert ("no campaign named 'ghost'" in line and "see `track campaigns`" in line) or \
        line == "error: unknown repo 'sglang' in campaign 'v' (known: vllm)", line
    assert not (tmp_path / "plans").exists()


def test_a_repo_one_of_the_compared_campaigns_holds_is_no_error(vllm_only: str, tmp_path: Path) -> None:
    result = run_track("--db", vllm_only, "compare", "v", "a", "--repo", "sglang", "--no-mlflow", "--json",
                       cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout.strip().startswith("{")
