"""Combine every reader into the facts of one run folder (`RunFacts`).

Each fact has one preferred source and documented fallbacks, so a run with a broken journal still
gets its status and commit (from the pipeline log), and every fallback used is visible through the
`*_source` fields. Token usage prefers the complete trajectory; without one, TRAE's printed totals
(`Input: N Output: M`, stdout then pipeline log) give input and output but no cached split; a
truncated trajectory's partial sums come last.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tracker.readers.common import EvidenceLine, Problem, clip
from tracker.readers.discovery import RunFolder, discover_runs
from tracker.readers.evaluation import EvalFacts, EvaluationIndex, index_evaluations
from tracker.readers.journal import JournalFacts, read_journal
from tracker.readers.patch import PatchFacts, read_patch
from tracker.readers.pipeline_log import ItemLog, PipelineLogIndex, index_pipeline_logs
from tracker.readers.textlog import TextScan, scan_text
from tracker.readers.trajectory import TrajectoryFacts, read_trajectory
from tracker.redaction import redact

STATUSES = ("success", "error", "max_steps_exceeded")
_STATUS_ALIASES = {"failed": "error", "failure": "error", "max_steps": "max_steps_exceeded"}
_SHA_SUFFIX = re.compile(r"(?:^|[_-])([0-9a-f]{7,40})$")


@dataclass(frozen=True)
class TokenUsage:
    """Token totals of a run; None = unknown (not zero). `source` names where they came from."""

    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    interactions: int | None = None
    source: str | None = None


@dataclass(frozen=True)
class RunFacts:
    """Everything the ISO-Bench files say about one run folder."""

    folder: RunFolder
    commit: str | None
    commit_source: str | None
    pre_commit: str | None
    status: str
    status_source: str | None
    return_code: int | None
    duration_s: float | None
    time_budget_minutes: float | None
    tokens: TokenUsage
    patch: PatchFacts
    journal: JournalFacts | None
    trajectory: TrajectoryFacts | None
    stdout: TextScan
    stderr: TextScan
    log: ItemLog | None
    evaluation: EvalFacts | None
    evidence: tuple[EvidenceLine, ...]
    problems: tuple[Problem, ...]

    @property
    def has_patch(self) -> bool:
        return self.patch.has_patch


def read_tree(root: Path, problems: list[Problem] | None = None) -> Iterator[RunFacts]:
    """Index logs and evaluations once, then yield the facts of every run folder in order.

    Tree-level problems (unreadable folders, bad logs or result files) go to `problems`.
    """
    sink: list[Problem] = problems if problems is not None else []
    logs = index_pipeline_logs(Path(root))
    evals = index_evaluations(Path(root))
    sink.extend(logs.problems)
    sink.extend(evals.problems)
    for folder in discover_runs(Path(root), sink):
        yield read_run(folder, logs, evals)


def read_run(folder: RunFolder, logs: PipelineLogIndex, evals: EvaluationIndex) -> RunFacts:
    """Read one run folder and join it with its pipeline-log block and evaluation result."""
    problems: list[Problem] = []
    journal, p = read_journal(folder.path)
    problems += p
    trajectory, p = read_trajectory(folder.path)
    problems += p
    patch, p = read_patch(folder.path)
    problems += p
    stdout = scan_text(folder.path / "trae_stdout.txt", "trae_stdout.txt", "stdout")
    stderr = scan_text(folder.path / "trae_stderr.txt", "trae_stderr.txt", "stderr")
    problems += [*stdout.problems, *stderr.problems]
    journal_commit = journal.human_commit.lower() if journal and journal.human_commit else None
    log = logs.find(folder.item_id, folder.timestamp, journal_commit)
    evaluation = evals.find(journal_commit or (log.human_commit if log else None), folder.item_id,
                            folder.timestamp)
    commit, commit_source = _commit(folder, journal, log, evaluation, problems)
    status, status_source = _status(journal, log, problems)
    return RunFacts(
        folder=folder,
        commit=commit,
        commit_source=commit_source,
        pre_commit=(journal.pre_commit if journal else None) or (log.pre_commit if log else None),
        status=status,
        status_source=status_source,
        return_code=_first_int(journal.returncode if journal else None, log.return_code if log else None),
        duration_s=_first_float(journal.duration_s if journal else None, log.duration_s if log else None),
        time_budget_minutes=journal.time_budget_minutes if journal else None,
        tokens=_tokens(trajectory, stdout, log),
        patch=patch,
        journal=journal,
        trajectory=trajectory,
        stdout=stdout,
        stderr=stderr,
        log=log,
        evaluation=evaluation,
        evidence=_evidence(journal, trajectory, stdout, stderr, log),
        problems=tuple(problems),
    )


def normalise_status(raw: str | None) -> str | None:
    """Lowercase and map aliases; None for anything that is not a known status."""
    if not raw:
        return None
    value = raw.strip().lower()
    value = _STATUS_ALIASES.get(value, value)
    return value if value in STATUSES else None


def _status(
    journal: JournalFacts | None, log: ItemLog | None, problems: list[Problem]
) -> tuple[str, str | None]:
    """Journal status, else the pipeline log's determined (or journal-written) status."""
    candidates = [
        ("journal", journal.status if journal else None),
        ("pipeline_log", log.status if log else None),
        ("pipeline_log", log.journal_status if log else None),
    ]
    for source, raw in candidates:
        value = normalise_status(raw)
        if value:
            return value, source
        if raw:
            where = "journal.json" if source == "journal" or log is None else log.log_file
            problems.append(Problem(where, "unexpected", f"unknown status {raw!r}"))
    return "unknown", None


def _commit(
    folder: RunFolder,
    journal: JournalFacts | None,
    log: ItemLog | None,
    evaluation: EvalFacts | None,
    problems: list[Problem],
) -> tuple[str | None, str | None]:
    """Full human sha: journal, pipeline log, evaluation metadata, then the item id's sha suffix."""
    j = journal.human_commit.lower() if journal and journal.human_commit else None
    lg = log.human_commit if log else None
    if j and lg and j != lg:
        problems.append(Problem(log.log_file if log else "", "unexpected",
                                f"pipeline log names commit {lg}, journal {j}; journal wins"))
    for value, source in ((j, "journal"), (lg, "pipeline_log"),
                          (evaluation.human_commit if evaluation else None, "evaluation")):
        if value:
            return value, source
    suffix = _SHA_SUFFIX.search(folder.item_id.lower())
    if suffix:
        problems.append(Problem(".", "guessed", f"commit taken from the item id suffix {suffix.group(1)!r}"))
        return suffix.group(1), "item_id"
    problems.append(Problem(".", "missing", "no source names this run's commit"))
    return None, None


def _tokens(trajectory: TrajectoryFacts | None, stdout: TextScan, log: ItemLog | None) -> TokenUsage:
    """Pick the best token source (see module docstring)."""
    if trajectory is not None and trajectory.complete:
        return _from_trajectory(trajectory, "trajectory")
    if stdout.token_input is not None:
        return TokenUsage(stdout.token_input, None, stdout.token_output, source="stdout")
    if log is not None and log.token_input is not None:
        return TokenUsage(log.token_input, None, log.token_output, source="pipeline_log")
    if trajectory is not None:
        return _from_trajectory(trajectory, "trajectory_partial")
    return TokenUsage()


def _from_trajectory(t: TrajectoryFacts, source: str) -> TokenUsage:
    return TokenUsage(t.input_tokens, t.cached_input_tokens, t.output_tokens, t.reasoning_tokens,
                      t.interactions, source)


def _evidence(
    journal: JournalFacts | None,
    trajectory: TrajectoryFacts | None,
    stdout: TextScan,
    stderr: TextScan,
    log: ItemLog | None,
) -> tuple[EvidenceLine, ...]:
    """All signature-matching lines, root-cause sources first (journal error, stderr, trajectory)."""
    lines: list[EvidenceLine] = []
    if journal and journal.error:
        text = journal.error
        if journal.error_type and not text.startswith(journal.error_type):
            text = f"{journal.error_type}: {text}"
        lines.append(EvidenceLine("journal", "journal.json", None, clip(redact(text))))
    lines += stderr.evidence
    if trajectory is not None:
        lines += trajectory.evidence
    if log is not None:
        lines += log.evidence
    lines += stdout.evidence
    return tuple(lines)


def _first_int(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _first_float(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
