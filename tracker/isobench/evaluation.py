"""Index `eval_results_v2/**/test_results.json`: the benchmark result of an agent's patch.

The folder is at the checkout root or under `archive/analysis/`. Real results mirror the run
folders (`<repo>/<agent>/<model>/<ts>/<item_id>/test_results.json`, `metadata.run_id` =
`<repo>/<agent>/<model>/<ts>`), so a result belongs to the run at the same path; older layouts
give `run_id` as the bare timestamp and are matched by timestamp plus commit (or item id).
`evaluation_report.json` beside them holds the team's own aggregate per `"<agent>/<model>"`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.classify.redaction import redact
from tracker.isobench.common import Problem, as_dict, as_float, as_str, os_problem, read_json_object

EVAL_DIR = "eval_results_v2"
EVAL_DIRS = (Path(EVAL_DIR), Path("archive") / "analysis" / EVAL_DIR)
RESULT_FILE = "test_results.json"
REPORT_FILE = "evaluation_report.json"


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
    agent_status: str | None
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
    by_run_path: dict[str, EvalFacts] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    reports: list[EvaluationReport] = field(default_factory=list)

    def find(self, commit: str | None, item_id: str, run_timestamp: str, run_path: str = "") -> EvalFacts | None:
        """The result of this run: at the same path, else same run id and commit (or item when no commit)."""
        if run_path and run_path in self.by_run_path:
            return self.by_run_path[run_path]
        pool = self.by_commit.get(commit[:8], []) if commit else self.by_item.get(item_id, [])
        hits = [e for e in pool if _is_result_of(e, commit, item_id, run_timestamp)]
        return hits[-1] if hits else None

    def full_sha(self, short: str) -> str | None:
        """The one full sha of the evaluation that starts with `short`, if exactly one does."""
        found = {e.human_commit for e in self.by_commit.get(short[:8], [])
                 if e.human_commit and len(e.human_commit) == 40 and e.human_commit.startswith(short)}
        return found.pop() if len(found) == 1 else None

    def for_commit(self, commit: str) -> list[EvalFacts]:
        """Every result of a commit, whatever run it came from."""
        return [e for e in self.by_commit.get(commit[:8], []) if e.human_commit
                and _same_commit(commit, e.human_commit)]


@dataclass(frozen=True)
class EvaluationReport:
    """One `evaluation_report.json`: the team's own figures per `"<agent>/<model>"` run key."""

    file: str
    generated_at: str | None
    runs: dict[str, dict[str, Any]]


def _is_result_of(e: EvalFacts, commit: str | None, item_id: str, run_timestamp: str) -> bool:
    """Same run timestamp (the last part of `run_id`); item and commit agree wherever the result names them."""
    if e.run_id is None or e.run_id.rsplit("/", 1)[-1] != run_timestamp:
        return False
    if e.item_id not in (None, item_id):
        return False
    return not commit or not e.human_commit or _same_commit(commit, e.human_commit)


def _same_commit(a: str, b: str) -> bool:
    """Two shas name the same commit when one is a prefix of the other (real files mix 8 and 40)."""
    return a.startswith(b) or b.startswith(a)


def index_evaluations(root: Path) -> EvaluationIndex:
    """Walk every `eval_results_v2` folder (no symlink following) and parse every result file."""
    index = EvaluationIndex()
    for rel_base in EVAL_DIRS:
        base = Path(root) / rel_base
        if not base.is_dir():
            continue
        _read_report(index, base / REPORT_FILE, root)
        for dirpath, dirnames, filenames in os.walk(base, onerror=_collect(index, root)):
            dirnames.sort()
            if RESULT_FILE in filenames:
                _add(index, Path(dirpath) / RESULT_FILE, root, base)
    return index


def _read_report(index: EvaluationIndex, path: Path, root: Path) -> None:
    """Parse `evaluation_report.json` if present (a bad one is a problem, not a crash)."""
    rel = path.relative_to(root).as_posix()
    doc, problem, _present = read_json_object(path, rel)
    if doc is None:
        index.problems.extend([problem] if problem else [])
        return
    runs = {str(key): value for key, value in as_dict(doc.get("runs")).items() if isinstance(value, dict)}
    index.reports.append(EvaluationReport(rel, as_str(doc.get("generated_at")), runs))


def _collect(index: EvaluationIndex, root: Path) -> Any:
    """os.walk error hook: an unreadable folder becomes a problem."""

    def onerror(exc: OSError) -> None:
        rel = Path(exc.filename).relative_to(root).as_posix() if exc.filename else EVAL_DIR
        index.problems.append(os_problem(rel, exc))

    return onerror


def _add(index: EvaluationIndex, path: Path, root: Path, base: Path) -> None:
    """Parse one result file into the index, or record why not."""
    rel = path.relative_to(root).as_posix()
    doc, problem, _present = read_json_object(path, rel)
    if doc is None:
        index.problems.append(problem or Problem(rel, "missing", "vanished while the evaluation was read"))
        return
    facts = eval_facts(doc, rel)
    run_path = path.parent.relative_to(base).as_posix()
    if run_path.count("/") == 4:  # <repo>/<agent>/<model>/<ts>/<item_id>: mirrors state/runs
        index.by_run_path[run_path] = facts
    if facts.human_commit:
        index.by_commit.setdefault(facts.human_commit[:8], []).append(facts)
    if facts.item_id:
        index.by_item.setdefault(facts.item_id, []).append(facts)


def eval_facts(doc: dict[str, Any], rel: str) -> EvalFacts:
    """Typed view of one result document."""
    meta, res = as_dict(doc.get("metadata")), as_dict(doc.get("result"))
    return EvalFacts(
        file=rel,
        item_id=as_str(meta.get("item_id")),
        human_commit=(as_str(meta.get("human_commit")) or "").lower() or None,
        run_id=as_str(meta.get("run_id")),
        agent=as_str(meta.get("agent")),
        model=as_str(meta.get("model")),
        repo=as_str(meta.get("repo")),
        status=as_str(res.get("status")),
        agent_status=as_str(meta.get("agent_status")),
        baseline_ms=as_float(res.get("baseline_ms")),
        patched_ms=as_float(res.get("patched_ms")),
        speedup=as_float(res.get("speedup")),
        improvement=res.get("improvement") if isinstance(res.get("improvement"), bool) else None,
        error_message=redact(as_str(res.get("error_message")) or "") or None,
    )
