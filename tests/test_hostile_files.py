"""Every file read with limits: a hostile or odd file is one named problem, never a hang, a blown memory
or a failed import, and everything good beside it is still imported.

Shapes seen when the tree was attacked on purpose: a 97 KiB deeply nested `trajectory.json` (took 6 GB), a
deeply nested `journal.json` and an integer over 64 bits (each aborted the whole import), a FIFO as
`journal.json` (hung forever), a symlink to `/dev/zero` (read until memory ran out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT
from tests.test_readers import journal, kinds, make_run, trajectory
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.projections.read_model.queries import attempts_frame

MEMORY_LIMIT_KB = 500 * 1024


def _import_in_child(root: Path, db: Path) -> tuple[dict[str, object], int]:
    """`track import` in a fresh child process: its JSON summary and its peak memory (KB)."""
    code = (
        "import resource, subprocess, sys\n"
        f"done = subprocess.run([sys.executable, '-m', 'runners.cli', '--db', 'sqlite:///{db}', 'import', "
        f"'{root}', '--campaign', 'orig', '--no-mlflow', '--json'], capture_output=True, text=True, timeout=120)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(done.returncode)\n"
        "print(done.stdout)\n"
        "print(done.stderr, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    peak, rc, summary = out.stdout.split("\n", 2)
    assert rc.strip() == "0", out.stderr
    return json.loads(summary), int(peak)


def _good_run(root: Path) -> None:
    make_run(root, item="vllm_core-0001", files={"journal.json": journal(status="success"),
                                                  "trajectory.json": trajectory([(1000, 100, 50)])})


def test_a_deeply_nested_trajectory_is_one_problem_in_little_memory(tmp_path: Path) -> None:
    _good_run(tmp_path)
    folder = make_run(tmp_path, item="vllm_core-0002", files={"journal.json": journal()})
    depth = 97 * 1024 // 2
    (folder / "trajectory.json").write_text('{"llm_interactions": ' + "[" * depth + "]" * depth + "}")
    summary, peak_kb = _import_in_child(tmp_path, tmp_path / "events.db")
    assert summary["runs"] == 2 and peak_kb < MEMORY_LIMIT_KB, peak_kb
    with EventStore.open(f"sqlite:///{tmp_path / 'events.db'}") as store:
        frame = attempts_frame(store, "orig")
    problems = {p["file"]: p["kind"] for row in frame["problems"] for p in row}
    assert problems == {"trajectory.json": "too_deep"}


def test_a_deeply_nested_journal_and_a_huge_integer_are_problems_not_a_failed_import(tmp_path: Path,
                                                                                    sqlite_url: str) -> None:
    _good_run(tmp_path)
    deep = make_run(tmp_path, item="vllm_core-0002")
    (deep / "journal.json").write_text('{"status": "error", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    huge = make_run(tmp_path, item="vllm_core-0003", files={"trajectory.json": trajectory([(1000, 100, 50)])})
    doc = journal(status="success")
    doc["trae"]["duration_s"] = 2**70  # beyond 64 bits: kept as its text, never a crash
    (huge / "journal.json").write_text(json.dumps(doc))
    with EventStore.open(sqlite_url) as store:
        summary = import_tree(store, tmp_path, "orig")
        frame = attempts_frame(store, "orig")
    assert summary.folders_seen == 3 and summary.runs == 2  # the deep journal names no commit: unidentified
    [deep_record] = summary.unidentified
    assert "journal.json: too_deep" in deep_record["reason"]
    by_item = {row.item_id: row for row in frame.itertuples()}
    assert by_item["vllm_core-0003"].status == "success" and pd.isna(by_item["vllm_core-0003"].duration_s)
    assert by_item["vllm_core-0001"].status == "success"


def test_a_huge_token_count_in_a_streamed_trajectory_is_no_count(tmp_path: Path, sqlite_url: str) -> None:
    folder = make_run(tmp_path, files={"journal.json": journal(status="success")})
    doc = trajectory([(1000, 100, 50), (2**70, 0, 10)])
    text = json.dumps(doc) + " " * (9 * 1024 * 1024)  # big enough to be streamed, not parsed whole
    (folder / "trajectory.json").write_text(text)
    with EventStore.open(sqlite_url) as store:
        assert import_tree(store, tmp_path, "orig").runs == 1
        [row] = attempts_frame(store, "orig").to_dict(orient="records")
    assert row["input_tokens"] is None or row["input_tokens"] < 2**63


@pytest.mark.timeout(60)
def test_a_fifo_and_a_device_are_named_and_skipped_never_read(tmp_path: Path, sqlite_url: str) -> None:
    _good_run(tmp_path)
    fifo_run = make_run(tmp_path, item="vllm_core-0002")
    os.mkfifo(fifo_run / "journal.json")  # nobody ever writes it: reading would block forever
    zero_run = make_run(tmp_path, item="vllm_core-0003", files={"journal.json": journal()})
    (zero_run / "trajectory.json").symlink_to("/dev/zero")  # reading would never end
    (zero_run / "trae_stdout.txt").symlink_to("/dev/zero")
    with EventStore.open(sqlite_url) as store:
        summary = import_tree(store, tmp_path, "orig")
        frame = attempts_frame(store, "orig")
    assert summary.folders_seen == 3 and summary.runs + len(summary.unidentified) == 3
    problems = {(row.item_id, p["file"], p["kind"]) for row in frame.itertuples() for p in row.problems}
    assert ("vllm_core-0003", "trajectory.json", "not_a_file") in problems
    assert ("vllm_core-0003", "trae_stdout.txt", "not_a_file") in problems
    # with its journal a FIFO, nothing names the run's commit: an unidentified folder that says why
    [fifo] = [u for u in summary.unidentified if u["run_path"].endswith("vllm_core-0002")]
    assert "journal.json: not_a_file (a FIFO, not a regular file: skipped)" in fifo["reason"]


def test_readers_name_what_kind_of_non_file_they_met(tmp_path: Path) -> None:
    from tracker.isobench.common import NotAFile, open_regular
    from tracker.isobench.run import read_run  # noqa: F401  (the readers share one opener)

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotAFile, match="a FIFO, not a regular file"):
        open_regular(tmp_path / "fifo")
    with pytest.raises(NotAFile, match="a character device"):
        open_regular(Path("/dev/zero"))
    with pytest.raises(NotAFile, match="a folder"):
        open_regular(tmp_path)
    (tmp_path / "ok.txt").write_text("fine")
    with open_regular(tmp_path / "ok.txt") as fh:
        assert fh.read() == b"fine"
    assert kinds([]) == set()
