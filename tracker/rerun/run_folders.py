"""Where the bench wrote an attempt's run folder, and the attempt's facts as the runner records them.

The bench writes `state/runs/<repo>/<agent>/<model>/<timestamp>/<item_id>` under its root; the runner
finds this attempt's folder among them, reads it with the importer's readers joined with the attempt's
own log, and fills in what only the runner knows (the plan's commit, the exit code, a timeout, the
wall time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tracker.isobench import EvaluationIndex, RunFacts, index_pipeline_logs, read_run, scan_text
from tracker.isobench.discovery import RunFolder, normalise_model, normalise_repo
from tracker.rerun.planning import PlanItem
from tracker.rerun.process import ProcessResult
from tracker.safe_names import checked, component, within

PIPELINE_LOGS = "pipeline_run_*.log"


def attempt_workdir(log_dir: Path, campaign: str, item_id: str, run_timestamp: str) -> Path:
    """The runner's own folder of one attempt (plan file, log): `<log_dir>/<campaign>/<item>/<ts>`, always
    under `log_dir` (a campaign name is made safe, an item id that is no file name refused)."""
    folder = log_dir / component(campaign) / checked(item_id, "item_id") / checked(run_timestamp, "run timestamp")
    return within(log_dir, folder, "the attempt's log folder").resolve()


def bench_skipped(workdir: Path, item_id: str) -> bool:
    """Did the bench print its `--resume` skip line for this item in this attempt's log?"""
    needle = f"Skipping {item_id} - task already completed"
    for log in workdir.glob(PIPELINE_LOGS):
        with open(log, errors="replace") as lines:
            if any(needle in line for line in lines):
                return True
    return False


@dataclass(frozen=True)
class RunFolders:
    """The run folders of one agent and model under a bench root."""

    bench_root: Path
    agent: str
    model: str

    @property
    def runs(self) -> Path:
        return self.bench_root / "state" / "runs"

    def run_id(self, item: PlanItem, run_timestamp: str) -> str:
        """The bench's `--run-id` for an attempt: `<repo>/<agent>/<model>/<timestamp>` under `state/runs`,
        so the run folder's name is the attempt's own timestamp, not the bench's clock."""
        return f"{checked(item.repo, 'repo')}/{component(self.agent)}/{component(self.model)}/{run_timestamp}"

    def at(self, run_id: str, item_id: str, workdir: Path) -> Path | None:
        """The run folder the bench wrote under `run_id`, when it wrote one with a journal (else the workdir's)."""
        folder = within(self.runs, self.runs / run_id / checked(item_id, "item_id"), "the run folder")
        if (folder / "journal.json").is_file():
            return folder
        return workdir if (workdir / "journal.json").exists() else None

    def item_folders(self, item: PlanItem, item_id: str) -> list[Path]:
        """Every run folder of this bench item id under the bench root (any timestamp)."""
        found: list[Path] = []
        for model_dir in self._model_dirs(item):
            found += [ts / item_id for ts in model_dir.iterdir() if (ts / item_id).is_dir()]
        return found

    def _model_dirs(self, item: PlanItem) -> Iterator[Path]:
        """The `<repo>/<agent>/<model>` folders of the item's repo, this agent and this model."""
        if not self.runs.is_dir():
            return
        model = normalise_model(self.model)
        for repo_dir in self.runs.iterdir():
            agent_dir = repo_dir / self.agent
            if normalise_repo(repo_dir.name) != item.repo or not agent_dir.is_dir():
                continue
            yield from (d for d in agent_dir.iterdir() if normalise_model(d.name) == model)

    def find(self, item: PlanItem, since: str, workdir: Path, item_id: str,
             exclude: set[Path] | None = None) -> Path | None:
        """The run folder an agent template wrote for this attempt: the newest of the item at or after launch."""
        found = [(path.parent.name, path) for path in self.item_folders(item, item_id)
                 if path.parent.name >= since and path not in (exclude or set())]
        if found:
            return max(found)[1]
        if (workdir / "journal.json").exists():
            return workdir
        return None

    def facts(self, item: PlanItem, run_ts: str, folder: Path | None, workdir: Path,
              result: ProcessResult | None, item_id: str) -> RunFacts:
        """Read the run folder joined with this attempt's own log; fill what only the runner knows."""
        path = folder if folder is not None else workdir
        facts = read_run(self._run_folder(item, run_ts, path, item_id), index_pipeline_logs(workdir),
                         EvaluationIndex())
        changes = {**_plan_identity(facts, item), **_log_evidence(facts, workdir), **_runner_outcome(facts, result)}
        return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]

    def _run_folder(self, item: PlanItem, run_ts: str, path: Path, item_id: str) -> RunFolder:
        """The folder as the importer's readers take it (named like a bench run folder when it is one)."""
        try:
            run_path = path.resolve().relative_to(self.runs.resolve()).as_posix()
        except ValueError:
            run_path = str(path)
        parts = run_path.split("/")
        in_bench = len(parts) == 5
        return RunFolder(path=path, run_path=run_path, repo_raw=parts[0] if in_bench else item.repo,
                         repo=item.repo, agent=self.agent, model_raw=parts[2] if in_bench else self.model,
                         model=normalise_model(self.model), timestamp=run_ts, item_id=item_id)


def _plan_identity(facts: RunFacts, item: PlanItem) -> dict[str, object]:
    """The plan's commit is the attempt's (and its pre-commit, when the folder names none)."""
    changes: dict[str, object] = {"commit": item.commit, "commit_source": facts.commit_source or "plan"}
    if facts.pre_commit is None:
        changes["pre_commit"] = item.pre_commit
    return changes


def _log_evidence(facts: RunFacts, workdir: Path) -> dict[str, object]:
    """Without an item log in the folder, the evidence of the attempt's own pipeline log."""
    changes: dict[str, object] = {}
    if facts.log is None:
        for log in workdir.glob(PIPELINE_LOGS):
            changes["evidence"] = facts.evidence + scan_text(log, log.name, "pipeline_log").evidence
    return changes


def _runner_outcome(facts: RunFacts, result: ProcessResult | None) -> dict[str, object]:
    """Status, exit code and wall time as the runner saw the process, where the folder has none."""
    changes: dict[str, object] = {}
    if facts.status == "unknown":
        changes.update(status="error", status_source="runner")
    if result is None:
        return changes
    if result.killed == "timeout":
        changes["return_code"] = 124
    elif facts.return_code is None:
        changes["return_code"] = result.exit_code
    if facts.duration_s is None:
        changes["duration_s"] = round(result.wall_time_s, 3)
    return changes
