"""`track import` end to end: fixture trees against their truth files, idempotency, redaction, bad input."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_track
from tests.support.events import read_all
from tracker.eventstore.store import EventStore
from tracker.ingest.importer import import_tree

TREES = ["isobench-small-a", "isobench-small-b"]
SECRET = re.compile(rb"sk-proj-[A-Za-z0-9]{6,}")


def _truth(tree: str) -> dict:  # type: ignore[type-arg]
    return json.loads((FIXTURES / f"{tree}.truth.json").read_text())


def _truth_key(row: dict) -> str:  # type: ignore[type-arg]
    """Truth files key runs by normalised repo + the rest of the raw run path."""
    return row["repo"] + "/" + row["run_path"].split("/", 1)[1]


@pytest.mark.parametrize("tree", TREES)
def test_every_run_matches_the_truth_file(tree: str, store_url: str, tmp_path: Path) -> None:
    result = run_track("--db", store_url, "import", str(FIXTURES / tree), "--campaign", "orig", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    truth = _truth(tree)
    assert summary["runs"] == truth["runs"]
    assert summary["by_status"] == truth["status"]
    assert {k: v for k, v in summary["by_category"].items() if k != "none"} == truth["category"]

    listed = run_track("--db", store_url, "attempts", "orig", "--json", cwd=tmp_path)
    rows = {_truth_key(row): row for row in json.loads(listed.stdout)}
    assert set(rows) == set(truth["runs_detail"])
    for key, expected in truth["runs_detail"].items():
        row = rows[key]
        assert row["commit"] == expected["commit"], key
        assert row["repo"] == expected["repo"] and row["item_id"] == expected["item_id"], key
        assert row["status"] == expected["status"], key
        assert row["failure_category"] == (expected["category"] or "none"), key
        assert (row["patch_bytes"] > 0) == expected["has_patch"], key
        assert row["input_tokens"] == expected["input_tokens"], key
        assert row["output_tokens"] == expected["output_tokens"], key
        if expected.get("trajectory", True):
            assert row["cached_input_tokens"] == expected["cached_input_tokens"], key
        else:  # no trajectory: TRAE's printed totals give input and output only (see test_readers)
            assert row["cached_input_tokens"] is None, key
        if row["cost_usd"] is not None:
            assert row["cost_usd"] >= 0

    never_ok = Counter()
    by_commit: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for row in rows.values():
        by_commit.setdefault(row["commit"], []).append(row)
    failed = sorted(c for c, runs in by_commit.items() if all(r["status"] != "success" for r in runs))
    for commit in failed:
        never_ok[by_commit[commit][0]["repo"]] += 1
    assert failed == sorted(truth["failed_commits"])
    assert dict(never_ok) == truth["never_ok"]

    campaigns = json.loads(run_track("--db", store_url, "campaigns", "--json", cwd=tmp_path).stdout)
    assert campaigns[0]["name"] == "orig" and campaigns[0]["attempts"] == truth["runs"]
    assert campaigns[0]["commits"] == truth["commits"]


def test_reimport_adds_nothing_and_a_change_adds_only_the_change(tmp_path: Path, sqlite_url: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "isobench-small-a", tree)
    with EventStore.open(sqlite_url) as store:
        first = import_tree(store, tree, "orig")
        count = store.count()
        assert first.events_appended == count - 1  # plus campaign.created
        again = import_tree(store, tree, "orig")
        assert again.events_appended == 0 and store.count() == count

        patch = next(tree.glob("state/runs/vllm/trae/*/*/vllm_core-0000/model_patch.diff"))
        patch.write_text("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n")
        changed = import_tree(store, tree, "orig")
        assert changed.attempts_changed == 1
        new_events = list(read_all(store, from_position=count))
        assert {e.event_type for e in new_events} <= {"patch.observed", "failure.classified", "evidence.captured"}
        assert any(e.event_type == "patch.observed" and e.payload["lines_added"] == 1 for e in new_events)
        captured = [e for e in new_events if e.event_type == "evidence.captured"]
        assert len(captured) == 1  # the new patch, captured again; the other files were not
        patch_entry = next(f for f in captured[0].payload["files"] if f["artifact"] == "model_patch.diff.txt")
        assert patch_entry["source_sha256"] == hashlib.sha256(patch.read_bytes()).hexdigest()
        assert store.verify().ok


def test_planted_secrets_never_reach_the_store(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "isobench-small-a", tree)
    planted = "sk-proj-PLANTEDsecretKEY1234567890abcdef"
    stderr = next(tree.glob("state/runs/vllm/trae/*/*/vllm_core-0000/trae_stderr.txt"))
    stderr.write_text(stderr.read_text()
                      + f"openai.AuthenticationError: Error code: 401 - Incorrect API key provided: {planted}\n"
                      f"Authorization: Bearer {planted}\n")
    journal = stderr.parent / "journal.json"
    doc = json.loads(journal.read_text())
    doc["error"], doc["error_type"] = f"Incorrect API key provided: {planted} (Authorization: Bearer {planted})", "Auth"
    journal.write_text(json.dumps(doc))
    results = next(tree.glob("eval_results_v2/*/*/test_results.json"))
    doc = json.loads(results.read_text())
    doc["result"]["error_message"] = f"failed with OPENAI_API_KEY={planted}"
    results.write_text(json.dumps(doc))
    db = tmp_path / "events.db"
    result = run_track("--db", f"sqlite:///{db}", "import", str(tree), "--campaign", "orig", "--no-mlflow",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for path in tmp_path.glob("events.db*"):
        assert planted.encode() not in path.read_bytes()
        assert not SECRET.search(path.read_bytes()), "a fixture's planted key reached the store"
    log = run_track("--db", f"sqlite:///{db}", "log", "orig", "--commit", "4283fefc", cwd=tmp_path)
    assert "REDACTED" in log.stdout and planted not in log.stdout + result.stdout + result.stderr


def test_bad_files_are_problems_not_crashes(tmp_path: Path, sqlite_url: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "isobench-small-a", tree)
    runs = sorted(tree.glob("state/runs/vllm/trae/*/*/vllm_core-0000"))
    (runs[0] / "journal.json").write_bytes(b'{"task_id": "vllm_core", "status": "succ')
    (runs[0] / "trae_stderr.txt").write_bytes(b"\x00\x01\x02binary\xff" * 100)
    loop = tree / "state/runs/vllm/trae/gpt-5-2025-08-07/loop"
    loop.symlink_to(loop.parent, target_is_directory=True)
    result = run_track("--db", sqlite_url, "import", str(tree), "--campaign", "orig", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["runs"] == 40
    assert summary["problems"] >= 4
    rows = json.loads(run_track("--db", sqlite_url, "attempts", "orig", "--json").stdout)
    broken = [r for r in rows if r["run_path"].endswith(runs[0].relative_to(tree / "state/runs").as_posix())][0]
    kinds = {(p["file"], p["kind"]) for p in broken["problems"]}
    assert ("journal.json", "truncated") in kinds or ("journal.json", "invalid_json") in kinds
    assert any(file == "trae_stderr.txt" and kind == "binary" for file, kind in kinds)
    assert broken["status"] in ("error", "success", "max_steps_exceeded")  # recovered from the pipeline log


def test_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert run_track("import", str(tmp_path / "empty"), "--campaign", "c", cwd=tmp_path).returncode == 1
    missing = run_track("import", str(tmp_path / "nope"), "--campaign", "c", cwd=tmp_path)
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    bad_name = run_track("import", str(FIXTURES / TREES[0]), "--campaign", "bad name", cwd=tmp_path)
    assert bad_name.returncode == 2 and "invalid campaign name" in bad_name.stderr
    assert "Traceback" not in missing.stderr + bad_name.stderr
    no_such = run_track("attempts", "ghost", cwd=tmp_path)
    assert no_such.returncode == 2 and "no campaign named" in no_such.stderr


def test_reclassifying_with_a_new_table_appends_and_keeps_history(tmp_path: Path, sqlite_url: str) -> None:
    """A new rule-table version adds failure.classified and incidents.observed events (incidents are
    read by the table too); the old classifications stay in the log."""
    from tracker.classify.rules import load_rule_table, parse_rule_table

    table = load_rule_table()
    raw = json.loads((Path(__file__).resolve().parent.parent / "tracker/data/failure_rules.json").read_text())
    raw["version"] = table.version + "-next"
    newer = parse_rule_table(raw)
    with EventStore.open(sqlite_url) as store:
        import_tree(store, FIXTURES / "isobench-small-a", "orig")
        before = [e for e in read_all(store) if e.event_type == "failure.classified"]
        again = import_tree(store, FIXTURES / "isobench-small-a", "orig", rules=newer)
        after = [e for e in read_all(store) if e.event_type == "failure.classified"]
        assert again.events_appended == 2 * len(before) == 80
        assert len(after) == 80
        assert {e.payload["table_version"] for e in after} == {table.version, newer.version}
        history = store.read_stream(before[0].stream_id)
        assert [e.payload["table_version"] for e in history if e.event_type == "failure.classified"] == [
            table.version, newer.version]
        assert store.verify().ok


def test_a_rerun_name_cannot_be_reused_for_another_fix_or_baseline(sqlite_url: str) -> None:
    from tracker.domain.import_events import CampaignCreated
    from tracker.errors import TrackerError
    from tracker.ingest.importer import ensure_campaign

    with EventStore.open(sqlite_url) as store:
        def rerun(fix: str, baseline: str) -> CampaignCreated:
            return CampaignCreated(name="rr", kind="rerun", agent="trae", model="gpt-5", agent_fix_commit=fix,
                                   baseline_campaign=baseline)

        ensure_campaign(store, rerun("a1c6d41", "orig"), {})
        ensure_campaign(store, rerun("a1c6d41", "orig"), {})  # the same campaign again: fine
        with pytest.raises(TrackerError, match="agent_fix_commit"):
            ensure_campaign(store, rerun("ffff000", "orig"), {})
        with pytest.raises(TrackerError, match="baseline_campaign"):
            ensure_campaign(store, rerun("a1c6d41", "other"), {})


def test_an_empty_folder_leaves_no_campaign_behind(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "empty" / "state" / "runs").mkdir(parents=True)
    result = run_track("--db", sqlite_url, "import", str(tmp_path / "empty"), "--campaign", "c", "--no-mlflow")
    assert result.returncode == 1
    assert json.loads(run_track("--db", sqlite_url, "campaigns", "--json").stdout) == []
