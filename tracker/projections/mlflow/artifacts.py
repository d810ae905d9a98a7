"""What an attempt's MLflow run carries as files: its run folder's files (redacted) and its own events.

Files are copied line by line through `redact`, so an API key quoted in a log, a journal error or a
trajectory never reaches the artifact store. The failure history (every classification, in log
order, with its timestamp and evidence) is written as `failure_history.json`, so the UI shows why a
run failed and how that judgement changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from tracker.classify.redaction import LineRedactor, redact
from tracker.domain.events import RecordedEvent, decode
from tracker.domain.import_events import FailureClassified
from tracker.safe_names import UnsafeName, within

RUN_FILES = {
    "model_patch.diff": "model_patch.diff",
    "journal.json": "journal.json",
    "trajectory.json": "trajectory.json",
    "trae_stdout.txt": "logs/trae_stdout.txt",
    "trae_stderr.txt": "logs/trae_stderr.txt",
}
"""Run-folder file -> artifact path."""


def run_folder(source: str | None, row: dict[str, Any]) -> Path | None:
    """The attempt's folder on disk (the repo/model folder names may be the raw, misspelt ones)."""
    if not source or not row.get("run_path"):
        return None
    runs = Path(source) / "state" / "runs"
    folder = runs / row["run_path"]
    if not _under(runs, folder):  # a run path from the log never makes another folder an artifact
        return None
    if folder.is_dir():
        return folder
    parts = row["run_path"].split("/")
    if len(parts) == 5:
        repo, agent, model, timestamp, item = parts
        raw = runs / (row.get("repo_raw") or repo) / agent / (row.get("model_raw") or model) / timestamp / item
        if raw.is_dir() and _under(runs, raw):
            return raw
    return None


def _under(root: Path, path: Path) -> bool:
    try:
        within(root, path)
    except UnsafeName:
        return False
    return True


def copy_redacted(source: Path, target: Path) -> None:
    """Copy a text file line by line through a `LineRedactor` (a PEM block's body lines and a wrapped key's
    tail line go too; binary garbage is decoded with replacement)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("r", encoding="utf-8", errors="replace", newline="") as src, \
            target.open("w", encoding="utf-8", newline="") as dst:
        dst.writelines(map(LineRedactor(), src))


def failure_history(events: Iterable[RecordedEvent]) -> list[dict[str, Any]]:
    """Every classification of the attempt, oldest first."""
    history = []
    for event in events:
        if event.event_type == FailureClassified.TYPE:
            fact = decode(event)
            assert isinstance(fact, FailureClassified)
            history.append({"recorded_at": event.recorded_at, "position": event.position, "category": fact.category,
                            "rule_id": fact.rule_id, "table_version": fact.table_version, "evidence": fact.evidence})
    return history


def stage(folder: Path | None, events: list[RecordedEvent], target: Path) -> list[str]:
    """Write the attempt's artifacts into `target`; returns the artifact paths written."""
    written: list[str] = []
    if folder is not None:
        for name, artifact in RUN_FILES.items():
            source = folder / name
            if source.is_file():
                copy_redacted(source, target / artifact)
                written.append(artifact)
    lines = [redact(orjson.dumps(e._asdict()).decode()) + "\n" for e in events]
    (target / "events.jsonl").write_text("".join(lines), encoding="utf-8")
    history = failure_history(events)
    (target / "failure_history.json").write_text(
        redact(orjson.dumps(history, option=orjson.OPT_INDENT_2).decode()), encoding="utf-8")
    return [*written, "events.jsonl", "failure_history.json"]
