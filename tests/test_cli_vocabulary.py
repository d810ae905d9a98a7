"""One vocabulary across commands: shared flags, checked values, old spellings, and track.toml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_track
from tests.support.campaign_builders import Attempt, build_pair, sha
from tracker.eventstore.store import EventStore


@pytest.fixture
def imported(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'events.db'}"
    with EventStore.open(db) as store:
        build_pair(store, [Attempt("vllm", sha(1), "success", "none"), Attempt("vllm", sha(2), "error", "no_patch"),
                           Attempt("sglang", sha(3), "error", "quota_exceeded")],
                   [Attempt("vllm", sha(2), "success", "none")])
    return db


@pytest.mark.parametrize("args", [
    ["plan", "orig", "--repo", "vlm", "--out", "plans"],
    ["attempts", "orig", "--repo", "foo"],
    ["attempts", "orig", "--category", "quota"],
    ["compare", "orig", "rerun", "--repo", "foo", "--no-mlflow"],
])
def test_a_value_outside_the_vocabulary_is_a_usage_error_not_an_empty_result(imported: str, tmp_path: Path,
                                                                             args: list[str]) -> None:
    result = run_track("--db", imported, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert "Invalid value" in result.stderr and result.stdout == ""


def test_old_spellings_still_work_and_say_the_new_one(imported: str, tmp_path: Path) -> None:
    new = run_track("--db", imported, "attempts", "orig", "--json", cwd=tmp_path)
    old = run_track("--db", imported, "attempts", "--campaign", "orig", "--json", cwd=tmp_path)
    assert old.returncode == new.returncode == 0
    assert json.loads(old.stdout) == json.loads(new.stdout) and len(json.loads(new.stdout)) > 0
    assert "`track attempts --campaign NAME` is now `track attempts NAME`" in old.stderr
    plan = run_track("--db", imported, "plan", "--from", "orig", "--out", str(tmp_path / "p"), "--json", cwd=tmp_path)
    assert plan.returncode == 0 and json.loads(plan.stdout)["from_campaign"] == "orig"
    imported_again = run_track("--db", imported, "import", str(FIXTURES / "isobench-small-a"), "--campaign", "x",
                               "--no-sync", "--json", cwd=tmp_path)
    assert imported_again.returncode == 0 and json.loads(imported_again.stdout)["mlflow"] is None
    assert "note: --no-sync is now --no-mlflow" in imported_again.stderr


def test_track_toml_fills_options_and_the_command_line_wins(imported: str, tmp_path: Path) -> None:
    (tmp_path / "track.toml").write_text(f'db = "{imported}"\n\n[attempts]\ncategory = "none"\n')
    from_file = run_track("attempts", "orig", "--json", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    rows = json.loads(from_file.stdout)
    assert rows and {r["failure_category"] for r in rows} == {"none"}
    failed = run_track("attempts", "orig", "--category", "no_patch", "--json", cwd=tmp_path)
    assert {r["failure_category"] for r in json.loads(failed.stdout)} == {"no_patch"}
    (tmp_path / "elsewhere").mkdir()
    everything = run_track("--db", imported, "attempts", "orig", "--json", cwd=tmp_path / "elsewhere")
    assert len(json.loads(everything.stdout)) == 3 > len(rows)


@pytest.mark.parametrize("text, needle", [
    ('[run]\nbudget_usdd = 3\n', "[run] has no setting 'budget_usdd'"),
    ('[runn]\nworkers = 2\n', "[runn] is not a track command"),
    ('dbb = "x"\n', "unknown setting 'dbb'"),
    ('[run\n', "is not valid TOML"),
])
def test_a_wrong_track_toml_names_what_is_wrong(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "track.toml").write_text(text)
    result = run_track("campaigns", cwd=tmp_path)
    assert result.returncode == 2 and needle in result.stderr, result.stderr
    assert not (tmp_path / "mlruns").exists()  # refused before anything was opened


def test_every_option_has_help() -> None:
    import click

    from runners.cli import COMMANDS, cli

    ctx = click.Context(cli)
    missing = []
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        commands = list(command.commands.values()) if isinstance(command, click.Group) else [command]
        for each in commands:
            missing += [f"{each.name} {p.opts[0]}" for p in each.params
                        if isinstance(p, click.Option) and not p.help and p.opts[0] not in ("--help",)]
    assert missing == []
