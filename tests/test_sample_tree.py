"""The project's own generator writes trees that `track import` reads back exactly."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.support.big_files import write_big_trajectory
from tracker.demo.sample_tree import RunSpec, generate_tree, write_run_folder
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree
from tracker.isobench import read_trajectory
from tracker.projections.read_model.queries import attempts_frame


def test_generated_tree_imports_to_its_own_truth(tmp_path: Path, sqlite_url: str) -> None:
    tree = generate_tree(tmp_path / "tree", runs=120, seed=7, broken=3)
    assert len(tree.runs) == 120
    with EventStore.open(sqlite_url) as store:
        summary = import_tree(store, tree.root, "gen")
        frame = attempts_frame(store, "gen")
    assert summary.runs == 120
    expected = Counter("none" if s.outcome == "success" else s.outcome for s in tree.runs)
    assert Counter(frame["failure_category"]) == expected
    by_key = {(s.commit, s.run_timestamp): s for s in tree.runs}
    for row in frame.to_dict("records"):
        spec = by_key[(row["commit"], row["run_timestamp"])]
        assert row["status"] == spec.status
        assert row["input_tokens"] == spec.input_tokens and row["output_tokens"] == spec.output_tokens
        assert (row["patch_bytes"] > 0) == spec.has_patch
    broken = [p for problems in frame["problems"] for p in problems]
    assert {p["file"] for p in broken} >= {"journal.json", "trajectory.json"}


def test_big_trajectory_sums(tmp_path: Path) -> None:
    spec = RunSpec(repo="vllm", item_id="vllm_core-0001", commit="c" * 40, pre_commit="d" * 40, outcome="success",
                   run_timestamp="2025-12-01_09-00-00")
    write_run_folder(tmp_path, spec)
    sums = write_big_trajectory(tmp_path / "trajectory.json", 3)
    facts, problems = read_trajectory(tmp_path)
    assert not problems and facts is not None
    assert facts.input_tokens == sums["input_tokens"] and facts.output_tokens == sums["output_tokens"]
