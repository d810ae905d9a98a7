"""What an attempt's MLflow run carries as files: its captured evidence and its own events.

The evidence (patch, logs, trajectory, journal, evaluation result) comes from the store's blobs, named by
the attempt's latest `evidence.captured` event: captured redacted at import or run time, so the bench
tree is never read again. A blob that is not there or no longer matches its address, and a source file
that vanished after capture, are written into `MISSING_EVIDENCE.txt` and counted by the sync: never a
silent gap. Attempts imported before evidence was captured fall back to their run folder (copied line
by line through the redactor) and are counted as read from disk. The failure history (every
classification, in log order, with its timestamp and evidence) is written as `failure_history.json`,
so the UI shows why a run failed and how that judgement changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from tracker.classify.redaction import LineRedactor, redact
from tracker.domain.events import RecordedEvent, decode
from tracker.domain.import_events import EvidenceCaptured, FailureClassified
from tracker.eventstore.blobs import BlobRead
from tracker.safe_names import UnsafeName, within

MISSING_FILE = "MISSING_EVIDENCE.txt"

RUN_FILES = {
    "model_patch.diff": "model_patch.diff.txt",
    "journal.json": "journal.json",
    "trajectory.json": "trajectory.json",
    "trae_stdout.txt": "logs/trae_stdout.txt",
    "trae_stderr.txt": "logs/trae_stderr.txt",
}
"""Run-folder file -> artifact path, for attempts imported before evidence was captured."""


class BlobSource(Protocol):
    def read_blobs(self, addresses: Iterable[str]) -> BlobRead: ...


@dataclass
class Staged:
    """What `stage` wrote, and what it could not."""

    written: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One line per gap, a file not logged: its blob missing or changed, or too large to have been kept."""
    vanished: list[str] = field(default_factory=list)
    """One line per file gone from the bench tree since it was captured (its captured copy was logged)."""
    from_disk: bool = False
    """No capture event: the run folder was read (an import made before evidence was captured)."""


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


def latest_capture(events: Iterable[RecordedEvent]) -> EvidenceCaptured | None:
    captured = None
    for event in events:
        if event.event_type == EvidenceCaptured.TYPE:
            captured = decode(event)
    assert captured is None or isinstance(captured, EvidenceCaptured)
    return captured


def stage(blobs: BlobSource, folder: Path | None, events: list[RecordedEvent], target: Path) -> Staged:
    """Write the attempt's artifacts into `target`: its captured evidence (else its run folder), its events
    and its failure history, and `MISSING_EVIDENCE.txt` naming every gap."""
    captured = latest_capture(events)
    staged = _from_capture(blobs, captured, target) if captured is not None else _from_folder(folder, target)
    lines = [redact(orjson.dumps(e._asdict()).decode()) + "\n" for e in events]
    (target / "events.jsonl").write_text("".join(lines), encoding="utf-8")
    history = failure_history(events)
    (target / "failure_history.json").write_text(
        redact(orjson.dumps(history, option=orjson.OPT_INDENT_2).decode()), encoding="utf-8")
    staged.written += ["events.jsonl", "failure_history.json"]
    if staged.problems or staged.vanished:
        lines = staged.problems + staged.vanished
        (target / MISSING_FILE).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        staged.written.append(MISSING_FILE)
    return staged


def _from_capture(blobs: BlobSource, captured: EvidenceCaptured, target: Path) -> Staged:
    staged = Staged()
    read = blobs.read_blobs(entry["sha256"] for entry in captured.files)
    for entry in captured.files:
        artifact, sha = entry["artifact"], entry["sha256"]
        content = read.found.get(sha)
        if content is None:
            why = "changed in the store (no longer matches its hash)" if sha in read.corrupt else "not in the store"
            staged.problems.append(f"{artifact}: captured as {sha[:12]} from {entry['source']}, but {why}")
            continue
        try:
            path = within(target, target / artifact, "artifact")
        except UnsafeName as exc:  # a name from the log never writes outside the staging folder
            staged.problems.append(f"{artifact}: not written ({exc})")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        staged.written.append(artifact)
    staged.vanished += [f"{artifact}: its source file is gone since it was captured (the capture is shown)"
                        for artifact in captured.missing]
    staged.problems += [f"{entry['artifact']}: {entry['source']} is {entry['bytes']} bytes, too large to keep"
                        for entry in captured.oversize]
    return staged


def _from_folder(folder: Path | None, target: Path) -> Staged:
    staged = Staged(from_disk=True)
    if folder is None:
        staged.problems.append("no evidence was captured for this attempt and its run folder is not on disk")
        return staged
    for name, artifact in RUN_FILES.items():
        source = folder / name
        if source.is_file():
            copy_redacted(source, target / artifact)
            staged.written.append(artifact)
    return staged
