"""Index `eval_results_v2/**/test_results.json`: the benchmark result of an agent's patch.

A result belongs to a run when its `metadata.run_id` is the run's timestamp and its commit (or item
id) matches; a result without `run_id` cannot be tied to one run and is only found by commit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.readers.common import MAX_SMALL_JSON_BYTES, Problem, file_size, os_problem
from tracker.readers.journal import parse_json_document
from tracker.redaction import redact

EVAL_DIR = "eval_results_v2"
RESULT_FILE = "test_results.json"


@dataclass(frozen=True)
class EvalFacts:
    """One `test_results.json`."""

    file: str
    item_id: str | None
    human_commit: str | None
    run_id: str | None
    agent: str | None
    model: str | None
    repo: str | None
    status: str | None
    baseline_ms: float | None
    patched_ms: float | None
    speedup: float | None
    improvement: bool | None
    error_message: str | None


@dataclass
class EvaluationIndex:
    """Results by human commit and by item id."""

    by_commit: dict[str, list[EvalFacts]] = field(default_factory=dict)
    by_item: dict[str, list[EvalFacts]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def find(self, commit: str | None, item_id: str, run_timestamp: str) -> EvalFacts | None:
        """The result of this run: same run id, and same commit (or same item when no commit)."""
        pool = self.by_commit.get(commit, []) if commit else self.by_item.get(item_id, [])
        hits = [e for e in pool if e.run_id == run_timestamp and e.item_id in (None, item_id)]
        return hits[-1] if hits else None

    def for_commit(self, commit: str) -> list[EvalFacts]:
        """Every result of a commit, whatever run it came from."""
        return list(self.by_commit.get(commit, []))


def index_evaluations(root: Path) -> EvaluationIndex:
    """Walk `root/eval_results_v2` (no symlink following) and parse every result file."""
    index = EvaluationIndex()
    base = Path(root) / EVAL_DIR
    if not base.is_dir():
        return index
    for dirpath, dirnames, filenames in os.walk(base, onerror=_collect(index, root)):
        dirnames.sort()
        if RESULT_FILE in filenames:
            _add(index, Path(dirpath) / RESULT_FILE, root)
    return index


def _collect(index: EvaluationIndex, root: Path) -> Any:
    """os.walk error hook: an unreadable folder becomes a problem."""

    def onerror(exc: OSError) -> None:
        rel = Path(exc.filename).relative_to(root).as_posix() if exc.filename else EVAL_DIR
        index.problems.append(os_problem(rel, exc))

    return onerror


def _add(index: EvaluationIndex, path: Path, root: Path) -> None:
    """Parse one result file into the index, or record why not."""
    rel = path.relative_to(root).as_posix()
    size = file_size(path)
    if size is not None and size > MAX_SMALL_JSON_BYTES:
        index.problems.append(Problem(rel, "too_large", f"{size} bytes"))
        return
    try:
        raw = path.read_bytes()
    except OSError as exc:
        index.problems.append(os_problem(rel, exc))
        return
    doc, problem = parse_json_document(raw, rel)
    if problem is not None or not isinstance(doc, dict):
        index.problems.append(problem or Problem(rel, "invalid_json", "top level is not an object"))
        return
    facts = eval_facts(doc, rel)
    if facts.human_commit:
        index.by_commit.setdefault(facts.human_commit, []).append(facts)
    if facts.item_id:
        index.by_item.setdefault(facts.item_id, []).append(facts)


def eval_facts(doc: dict[str, Any], rel: str) -> EvalFacts:
    """Typed view of one result document."""
    meta, res = _d(doc.get("metadata")), _d(doc.get("result"))
    return EvalFacts(
        file=rel,
        item_id=_s(meta.get("item_id")),
        human_commit=(_s(meta.get("human_commit")) or "").lower() or None,
        run_id=_s(meta.get("run_id")),
        agent=_s(meta.get("agent")),
        model=_s(meta.get("model")),
        repo=_s(meta.get("repo")),
        status=_s(res.get("status")),
        baseline_ms=_f(res.get("baseline_ms")),
        patched_ms=_f(res.get("patched_ms")),
        speedup=_f(res.get("speedup")),
        improvement=res.get("improvement") if isinstance(res.get("improvement"), bool) else None,
        error_message=redact(_s(res.get("error_message")) or "") or None,
    )


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _f(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
