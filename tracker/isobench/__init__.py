"""Readers of the files an ISO-Bench checkout leaves on disk; pure functions, no database.

Entry points for the importer:

- `read_tree(root, problems)` -> iterator of `RunFacts` (indexes logs and evaluations once);
- or by hand: `index_pipeline_logs(root)`, `index_evaluations(root)`, `discover_runs(root, problems)`,
  then `read_run(folder, logs, evals)` per folder.

No reader raises for a bad file: bad or missing files become `Problem`s next to the facts.
"""

from tracker.isobench.common import EvidenceLine, Problem
from tracker.isobench.discovery import RunFolder, discover_runs, normalise_model, normalise_repo
from tracker.isobench.evaluation import EvalFacts, EvaluationIndex, index_evaluations
from tracker.isobench.journal import JournalFacts, read_journal
from tracker.isobench.patch import PatchFacts, read_patch
from tracker.isobench.pipeline_log import ItemLog, PipelineLogIndex, index_pipeline_logs
from tracker.isobench.run import RunFacts, TokenUsage, normalise_status, read_run, read_tree
from tracker.isobench.textlog import TextScan, scan_text
from tracker.isobench.trajectory import TrajectoryFacts, read_trajectory

__all__ = [
    "EvalFacts",
    "EvaluationIndex",
    "EvidenceLine",
    "ItemLog",
    "JournalFacts",
    "PatchFacts",
    "PipelineLogIndex",
    "Problem",
    "RunFacts",
    "RunFolder",
    "TextScan",
    "TokenUsage",
    "TrajectoryFacts",
    "discover_runs",
    "index_evaluations",
    "index_pipeline_logs",
    "normalise_model",
    "normalise_repo",
    "normalise_status",
    "read_journal",
    "read_patch",
    "read_run",
    "read_trajectory",
    "read_tree",
    "scan_text",
]
