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

from tracker.classify.redaction import redact
from tracker.isobench.agent_output import AgentResult, read_agent_result, scan_outputs
from tracker.isobench.common import EvidenceLine, Problem, clip
from tracker.isobench.discovery import RunFolder, discover_runs, identify_folder
from tracker.isobench.evaluation import EvalFacts, EvaluationIndex, index_evaluations
from tracker.isobench.journal import JournalFacts, read_journal
from tracker.isobench.patch import PatchFacts, read_patch
from tracker.isobench.pipeline_log import ItemLog, PipelineLogIndex, index_pipeline_logs
from tracker.isobench.summary import PromptFacts, RunSummaryFacts, read_prompt, read_run_summary
from tracker.isobench.textlog import TextScan
from tracker.isobench.trajectory import TrajectoryFacts, read_trajectory

STATUSES = ("success", "error", "max_steps_exceeded")
"""Agent-run statuses as the journal (or run summary) states them; `unknown` when no file does."""
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
    outputs: tuple[TextScan, ...]
    log: ItemLog | None
    evaluation: EvalFacts | None
    evidence: tuple[EvidenceLine, ...]
    problems: tuple[Problem, ...]
    run_summary: RunSummaryFacts | None = None
    prompt: PromptFacts | None = None
    agent_result: AgentResult | None = None

    @property
    def has_patch(self) -> bool:
        """A non-blank diff, or (without a diff file) the run summary's word that one was generated."""
        if self.patch.present:
            return self.patch.has_patch
        return bool(self.run_summary and self.run_summary.patch_generated)

    @property
    def stdout(self) -> TextScan:
        """The first stdout-like file scanned (the run's own agent's), or an absent one."""
        return next((o for o in self.outputs if o.source == "stdout"), TextScan("trae_stdout.txt", False, "stdout"))

    @property
    def stderr(self) -> TextScan:
        return next((o for o in self.outputs if o.source == "stderr"), TextScan("trae_stderr.txt", False, "stderr"))


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
        yield read_run(identify_folder(folder), logs, evals)


def read_run(folder: RunFolder, logs: PipelineLogIndex, evals: EvaluationIndex) -> RunFacts:
    """Read one run folder and join it with its pipeline-log block and evaluation result."""
    problems: list[Problem] = []
    journal, summary, prompt = _read_run_records(folder.path, problems)
    trajectory, p = read_trajectory(folder.path)
    problems += p
    patch, p = read_patch(folder.path)
    problems += p
    outputs = scan_outputs(folder.path, folder.agent)
    for scan in outputs:
        problems += scan.problems
    log, evaluation = _join_tree(folder, _journal_commit(journal), logs, evals)
    commit, commit_source = _commit(folder, journal, summary, prompt, log, evaluation, evals, problems)
    status, status_source = _status(journal, summary, log, problems)
    agent_result = read_agent_result(folder.path, folder.agent)
    return RunFacts(
        folder=folder,
        commit=commit,
        commit_source=commit_source,
        pre_commit=_pre_commit(journal, prompt, summary, log),
        status=status,
        status_source=status_source,
        return_code=_return_code(journal, log),
        duration_s=_duration(journal, summary, log),
        time_budget_minutes=journal.time_budget_minutes if journal else None,
        tokens=_tokens(trajectory, outputs, log, agent_result),
        patch=patch,
        journal=journal,
        trajectory=trajectory,
        outputs=outputs,
        log=log,
        evaluation=evaluation,
        evidence=_evidence(journal, trajectory, outputs, log, agent_result),
        problems=tuple(problems),
        run_summary=summary,
        prompt=prompt,
        agent_result=agent_result,
    )


def _read_run_records(
    run_dir: Path, problems: list[Problem]
) -> tuple[JournalFacts | None, RunSummaryFacts | None, PromptFacts | None]:
    """Journal, run summary and prompt, their problems appended to `problems`.

    A missing journal is not reported when the run summary stands in for it.
    """
    journal, p = read_journal(run_dir)
    summary, p2 = read_run_summary(run_dir)
    prompt, p3 = read_prompt(run_dir)
    if journal is None and summary is not None:
        p = [x for x in p if x.kind != "missing"]  # the run summary stands in for a missing journal
    problems += p + p2 + p3
    return journal, summary, prompt


def _journal_commit(journal: JournalFacts | None) -> str | None:
    """The journal's human sha, lowercased; None when the journal names none."""
    return journal.human_commit.lower() if journal and journal.human_commit else None


def _join_tree(
    folder: RunFolder, journal_commit: str | None, logs: PipelineLogIndex, evals: EvaluationIndex
) -> tuple[ItemLog | None, EvalFacts | None]:
    """The run's pipeline-log block, then its evaluation (matched by the journal's commit, else the log's)."""
    log = logs.find(folder.item_id, folder.timestamp, journal_commit)
    evaluation = evals.find(journal_commit or (log.human_commit if log else None), folder.item_id,
                            folder.timestamp, folder.run_path)
    return log, evaluation


def _pre_commit(
    journal: JournalFacts | None, prompt: PromptFacts | None, summary: RunSummaryFacts | None, log: ItemLog | None
) -> str | None:
    """The parent sha from the first source naming one: journal, prompt, run summary, pipeline log."""
    return ((journal.pre_commit if journal else None) or (prompt.pre_commit if prompt else None)
            or (summary.pre_commit if summary else None) or (log.pre_commit if log else None))


def _return_code(journal: JournalFacts | None, log: ItemLog | None) -> int | None:
    """The agent's exit code: the journal's, else the pipeline log's."""
    return _first_int(journal.returncode if journal else None, log.return_code if log else None)


def _duration(journal: JournalFacts | None, summary: RunSummaryFacts | None, log: ItemLog | None) -> float | None:
    """Run duration in seconds: journal, else run summary, else pipeline log."""
    return _first_float(journal.duration_s if journal else None, summary.duration_s if summary else None,
                        log.duration_s if log else None)


def normalise_status(raw: str | None) -> str | None:
    """Lowercase and map aliases; None for anything that is not a known status."""
    if not raw:
        return None
    value = raw.strip().lower()
    value = _STATUS_ALIASES.get(value, value)
    return value if value in STATUSES else None


def _status(
    journal: JournalFacts | None, summary: RunSummaryFacts | None, log: ItemLog | None, problems: list[Problem]
) -> tuple[str, str | None]:
    """Journal status, else the run summary's, else the pipeline log's determined (or journal-written) status."""
    candidates = [
        ("journal", journal.status if journal else None),
        ("run_summary", summary.status if summary else None),
        ("pipeline_log", log.status if log else None),
        ("pipeline_log", log.journal_status if log else None),
    ]
    for source, raw in candidates:
        value = normalise_status(raw)
        if value:
            return value, source
        if raw:
            where = {"journal": "journal.json", "run_summary": "run_summary.json"}.get(
                source, log.log_file if log else source)
            problems.append(Problem(where, "unexpected", f"unknown status {raw!r}"))
    return "unknown", None


def _commit(
    folder: RunFolder,
    journal: JournalFacts | None,
    summary: RunSummaryFacts | None,
    prompt: PromptFacts | None,
    log: ItemLog | None,
    evaluation: EvalFacts | None,
    evals: EvaluationIndex,
    problems: list[Problem],
) -> tuple[str | None, str | None]:
    """The full human sha, from the first source that has one; a short sha is completed when any
    other source (or the evaluation) names exactly one full sha it starts with.

    Order: journal, prompt (written before the agent starts, full shas), run summary, pipeline log,
    evaluation metadata, then the item id's sha suffix (a guess, reported as such).
    """
    j = _journal_commit(journal)
    lg = log.human_commit if log else None
    _check_log_commit(j, lg, log, problems)
    found = _named_commits(j, prompt, summary, lg, evaluation)
    if not found:
        return _commit_from_item_id(folder.item_id, problems)
    value, source = found[0]
    return _complete_sha(value, found, evals, problems), source


def _check_log_commit(j: str | None, lg: str | None, log: ItemLog | None, problems: list[Problem]) -> None:
    """Report a pipeline log whose commit contradicts the journal's (the journal wins)."""
    if j and lg and not (j.startswith(lg) or lg.startswith(j)):
        problems.append(Problem(log.log_file if log else "", "unexpected",
                                f"pipeline log names commit {lg}, journal {j}; journal wins"))


def _named_commits(
    j: str | None, prompt: PromptFacts | None, summary: RunSummaryFacts | None, lg: str | None,
    evaluation: EvalFacts | None,
) -> list[tuple[str, str]]:
    """(sha, source) of every source naming the commit, in order of preference."""
    return [(value, source) for value, source in (
        (j, "journal"), (prompt.human_commit if prompt else None, "prompt"),
        (summary.human_commit if summary else None, "run_summary"), (lg, "pipeline_log"),
        (evaluation.human_commit if evaluation else None, "evaluation")) if value]


def _complete_sha(value: str, found: list[tuple[str, str]], evals: EvaluationIndex, problems: list[Problem]) -> str:
    """A short sha completed from another source's (or the evaluation's) single full sha; else kept, reported."""
    if len(value) >= 40:
        return value
    full = next((v for v, _ in found if len(v) == 40 and v.startswith(value)), None) or evals.full_sha(value)
    if full:
        return full
    problems.append(Problem(".", "guessed", f"only a short sha {value!r} is known for this run"))
    return value


def _commit_from_item_id(item_id: str, problems: list[Problem]) -> tuple[str | None, str | None]:
    """Last resort: the sha suffix of the item id (a guess, reported as such), else no commit at all."""
    suffix = _SHA_SUFFIX.search(item_id.lower())
    if suffix:
        problems.append(Problem(".", "guessed", f"commit taken from the item id suffix {suffix.group(1)!r}"))
        return suffix.group(1), "item_id"
    problems.append(Problem(".", "missing", "no source names this run's commit"))
    return None, None


def _tokens(trajectory: TrajectoryFacts | None, outputs: tuple[TextScan, ...], log: ItemLog | None,
            agent_result: AgentResult | None) -> TokenUsage:
    """Pick the best token source (see module docstring)."""
    candidates = (
        _complete_trajectory_tokens(trajectory),
        _agent_result_tokens(agent_result),
        _printed_tokens(outputs),
        _pipeline_log_tokens(log),
        _partial_trajectory_tokens(trajectory),
    )
    return next((usage for usage in candidates if usage is not None), TokenUsage())


def _complete_trajectory_tokens(trajectory: TrajectoryFacts | None) -> TokenUsage | None:
    """The full per-call sums, when the trajectory was read to its end."""
    if trajectory is not None and trajectory.complete:
        return _from_trajectory(trajectory, "trajectory")
    return None


def _agent_result_tokens(agent_result: AgentResult | None) -> TokenUsage | None:
    """The agent's own result totals, cache reads folded into input."""
    if agent_result is None or agent_result.input_tokens is None:
        return None
    # Anthropic counts cache reads apart from input; stored the OpenAI way (cached inside input)
    cached = (agent_result.cache_read_input_tokens or 0) + (agent_result.cache_creation_input_tokens or 0)
    return TokenUsage(agent_result.input_tokens + cached, agent_result.cache_read_input_tokens,
                      agent_result.output_tokens, None, agent_result.turns, "agent_result")


def _printed_tokens(outputs: tuple[TextScan, ...]) -> TokenUsage | None:
    """TRAE's `Input: N Output: M` line in the first stdout that prints one (no cached split)."""
    printed = next((o for o in outputs if o.source == "stdout" and o.token_input is not None), None)
    if printed is None:
        return None
    return TokenUsage(printed.token_input, None, printed.token_output, source="stdout")


def _pipeline_log_tokens(log: ItemLog | None) -> TokenUsage | None:
    """The same printed totals as the pipeline log echoed them."""
    if log is None or log.token_input is None:
        return None
    return TokenUsage(log.token_input, None, log.token_output, source="pipeline_log")


def _partial_trajectory_tokens(trajectory: TrajectoryFacts | None) -> TokenUsage | None:
    """A truncated trajectory's sums so far: the last resort."""
    return _from_trajectory(trajectory, "trajectory_partial") if trajectory is not None else None


def _from_trajectory(t: TrajectoryFacts, source: str) -> TokenUsage:
    return TokenUsage(t.input_tokens, t.cached_input_tokens, t.output_tokens, t.reasoning_tokens,
                      t.interactions, source)


def _evidence(
    journal: JournalFacts | None,
    trajectory: TrajectoryFacts | None,
    outputs: tuple[TextScan, ...],
    log: ItemLog | None,
    agent_result: AgentResult | None,
) -> tuple[EvidenceLine, ...]:
    """All signature-matching lines, root-cause sources first (journal error, stderr, trajectory)."""
    lines = _journal_evidence(journal) + _agent_result_evidence(agent_result) + _output_evidence(outputs, "stderr")
    if trajectory is not None:
        lines += trajectory.evidence
    if log is not None:
        lines += log.evidence
    lines += _output_evidence(outputs, "stdout")
    return tuple(lines)


def _journal_evidence(journal: JournalFacts | None) -> list[EvidenceLine]:
    """The journal's error, prefixed by its type unless the text already starts with it."""
    if not (journal and journal.error):
        return []
    text = journal.error
    if journal.error_type and not text.startswith(journal.error_type):
        text = f"{journal.error_type}: {text}"
    return [EvidenceLine("journal", "journal.json", None, clip(redact(text)))]


def _agent_result_evidence(agent_result: AgentResult | None) -> list[EvidenceLine]:
    """One line per error of an agent result that reports failure (its subtype, or `error`, when none listed)."""
    if agent_result is None or not agent_result.is_error:
        return []
    return [EvidenceLine("journal", agent_result.file, None, clip(redact(f"agent result: {error}")))
            for error in agent_result.errors or (agent_result.subtype or "error",)]


def _output_evidence(outputs: tuple[TextScan, ...], source: str) -> list[EvidenceLine]:
    """Evidence of every scanned output of one kind (`stdout` or `stderr`), in scan order."""
    return [line for scan in outputs if scan.source == source for line in scan.evidence]


def _first_int(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _first_float(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
