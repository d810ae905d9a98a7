"""Capture an attempt's evidence files into the store once, redacted and by content hash.

The patch, the agent's logs, the trajectory, the journal, the run summary and the evaluation result are
read when the attempt is imported or run, passed line by line through the redactor, compressed and stored
as blobs (`tracker.eventstore.blobs`); the `evidence.captured` event names them. `track sync` and a
rebuilt MLflow read those blobs and never the bench tree, so a cleaned or moved tree loses nothing.

Cheap on a re-import: a file is hashed as read first, and redacted and stored again only when that hash
differs from its capture. A file that vanished keeps its earlier capture and is named in `missing`.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.classify.redaction import LineRedactor
from tracker.domain.events import JsonDict
from tracker.domain.import_events import EvidenceCaptured
from tracker.eventstore.blobs import Blob
from tracker.isobench import RunFacts

MAX_BYTES = 64 * 1024 * 1024
"""A file larger than this is recorded as oversize, not kept (real trajectories are a few MB)."""

RUN_FOLDER_FILES = {
    "model_patch.diff": "model_patch.diff.txt",  # .txt: the MLflow artifact viewer previews it then
    "journal.json": "journal.json",
    "run_summary.json": "run_summary.json",
    "trajectory.json": "trajectory.json",
}
"""Run-folder file -> artifact path; the agent's output files go under `logs/`."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Capture:
    """The attempt's `evidence.captured` fact and the blobs it names that are new."""

    event: EvidenceCaptured
    blobs: list[Blob]


def evidence_sources(facts: RunFacts, root: Path | None) -> list[tuple[str, str, Path]]:
    """(artifact, source as recorded, path) of each evidence file the attempt has on disk now."""
    folder = facts.folder.path
    sources = [(artifact, name, folder / name) for name, artifact in RUN_FOLDER_FILES.items()]
    sources += [(f"logs/{scan.file}", scan.file, folder / scan.file) for scan in facts.outputs if scan.present]
    evaluation = facts.evaluation.file if facts.evaluation else None
    if root is not None and evaluation:
        sources.append((f"evaluation/{Path(evaluation).name}", evaluation, root / evaluation))
    return [(artifact, source, path) for artifact, source, path in sources if path.is_file()]


def capture(facts: RunFacts, root: Path | None, previous: JsonDict | None) -> Capture:
    """The attempt's evidence now, given its latest capture (`previous` payload, or None)."""
    before = {entry["artifact"]: entry for entry in (previous or {}).get("files", [])}
    files: list[dict[str, Any]] = []
    oversize: list[dict[str, Any]] = []
    blobs: list[Blob] = []
    for artifact, source, path in evidence_sources(facts, root):
        try:
            entry, blob, too_large = _capture_file(artifact, source, path, before.get(artifact))
        except OSError:
            continue  # unreadable: the readers already recorded it as an import problem
        (oversize if too_large else files).append(entry)
        if blob is not None:
            blobs.append(blob)
    missing = _vanished(before, files + oversize)
    kept = sorted(files + [before[artifact] for artifact in missing], key=lambda entry: entry["artifact"])
    return Capture(EvidenceCaptured(files=kept, missing=missing, oversize=oversize), blobs)


def _vanished(before: dict[str, dict[str, Any]], now: list[dict[str, Any]]) -> list[str]:
    """Artifacts captured earlier whose source is gone: their old capture stays (nothing good is lost)."""
    present = {entry["artifact"] for entry in now}
    return sorted(artifact for artifact in before if artifact not in present)


def _capture_file(artifact: str, source: str, path: Path,
                  old: dict[str, Any] | None) -> tuple[dict[str, Any], Blob | None, bool]:
    """(entry, new blob or None, too large): the earlier capture when the file still hashes the same."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        return {"artifact": artifact, "source": source, "bytes": size}, None, True
    if old is not None and old["source"] == source and old["source_sha256"] == _file_sha256(path):
        return old, None, False
    entry, blob = _captured(path, artifact, source)
    return entry, blob, False


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _captured(path: Path, artifact: str, source: str) -> tuple[dict[str, Any], Blob]:
    """One pass over the file: its hash as read, and its redacted content hashed and compressed.

    Redacted a block of whole lines at a time (~1 MB): the regexes run in C over the block instead of once
    per line from Python, and `LineRedactor` carries a key wrapped or a PEM block cut at a block's end
    into the next one exactly as it does across lines."""
    raw, kept = hashlib.sha256(), hashlib.sha256()
    packer = zlib.compressobj(6)
    parts: list[bytes] = []
    redact = LineRedactor()
    size = 0
    pending = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            raw.update(chunk)
            pending += chunk
            cut = len(pending) if not chunk else pending.rfind(b"\n") + 1
            if cut:
                out = redact(pending[:cut].decode("utf-8", errors="replace")).encode("utf-8")
                pending = pending[cut:]
                kept.update(out)
                size += len(out)
                parts.append(packer.compress(out))
            if not chunk:
                break
    parts.append(packer.flush())
    sha = kept.hexdigest()
    entry = {"artifact": artifact, "source": source, "source_sha256": raw.hexdigest(), "sha256": sha, "bytes": size}
    return entry, Blob(sha, size, b"".join(parts))
