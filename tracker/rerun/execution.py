"""`track run`: one attempt per plan item, recorded as events exactly like an imported run, plus lifecycle.

Per item: claim the commit (see `claims`), launch the bench (or any agent command) for that one item,
stream its output (see `process`), then read the run folder with the importer's readers, classify,
and record the attempt (`record_attempt`), then release the claim with the outcome.

Policy by failure category: `rate_limited` and connection errors wait and retry (tenacity, bounded);
`quota_exceeded` and `invalid_api_key` stop the whole campaign at once (every further item would fail
and cost); everything else is recorded and left for the next `track run`. `max_attempts` bounds the
attempts per commit across runs; the budget stops new items when spent + reserved + the next item's
estimate would pass it. A stop request (SIGINT) lets running items finish; a hard stop kills them
and records them as interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from tracker.classify.classifier import classify
from tracker.classify.rules import RuleTable, load_rule_table
from tracker.domain.events import JsonDict, default_metadata
from tracker.domain.import_events import CampaignCreated
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.domain.run_events import (
    AttemptAbandoned,
    AttemptFinished,
    AttemptInterrupted,
    AttemptStarted,
    CampaignStopped,
)
from tracker.domain.streams import campaign_stream, check_campaign_name
from tracker.errors import TrackerError
from tracker.eventstore.store import ANY, NO_STREAM, EventStore
from tracker.ingest.importer import ensure_campaign, record_attempt
from tracker.isobench import EvaluationIndex, RunFacts, index_pipeline_logs, read_run, scan_text
from tracker.isobench.discovery import RunFolder, normalise_model, normalise_repo
from tracker.projections.read_model import fold
from tracker.projections.read_model.queries import measured_attempts
from tracker.rerun.claims import Claim, Claims, Holder, Refusal
from tracker.rerun.estimate import estimate_items, summarise
from tracker.rerun.planning import PlanItem, plan_from_files, record_plan
from tracker.rerun.process import AgentProcess, LineParser, ProcessResult, kill_orphan_group

FATAL = {"quota_exceeded", "invalid_api_key"}
_CONNECTION = re.compile(r"APIConnectionError|Connection error|ConnectError|Connection reset|timed out", re.I)
TS_FORMAT = "%Y-%m-%d_%H-%M-%S"
PLACEHOLDERS = ("item_id", "human", "pre", "plan", "workdir")


@dataclass
class RunConfig:
    campaign: str
    baseline: str
    fix_commit: str
    agent: str = "trae"
    model: str = "gpt-5"
    bench_root: Path = Path(".")
    workers: int = 1
    budget_usd: float | None = None
    item_timeout_s: float | None = None
    max_attempts: int = 3
    template: list[str] | None = None
    python: str = sys.executable
    bench_module: str = "bench.cli"
    task_yaml: str = "tasks/{task_id}.yaml"
    bench_cfg: str = "bench.yaml"
    log_dir: Path = Path("mlruns") / "attempt-logs"
    lease_s: float = 300.0
    transient_retries: int = 3
    retry_wait_s: float = 30.0
    price_table: str | None = None
    buffer: float = 0.2
    rules: RuleTable | None = None
    env: dict[str, str] | None = None


@dataclass
class RunProgress:
    """What the progress bar and the final summary show."""

    total: int
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    running: int = 0
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    spent_before_usd: float = 0.0
    budget_usd: float | None = None
    stopped: str | None = None
    by_category: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    log_dir: str = ""

    def to_dict(self) -> JsonDict:
        data = dataclasses.asdict(self)
        data["by_category"] = dict(sorted(self.by_category.items()))
        data["skip_reasons"] = dict(sorted(self.skip_reasons.items()))
        data["cost_usd"] = round(self.cost_usd, 4)
        return data


class StopControl:
    """Stop requests from outside (SIGINT) or inside (fatal category, budget)."""

    def __init__(self) -> None:
        self.soft = threading.Event()
        self.hard = threading.Event()
        self.reason: str | None = None
        self.category: str | None = None
        self.detail = ""
        self.interrupts = 0
        """How many times the user asked to stop (Ctrl-C / SIGTERM), whatever stopped the run first."""

    def request(self, reason: str, hard: bool = False, category: str | None = None, detail: str = "") -> None:
        if self.reason is None or (hard and not self.hard.is_set()):
            self.reason, self.category, self.detail = reason, category, detail
        self.soft.set()
        if hard:
            self.hard.set()


@dataclass
class _Running:
    claim: Claim
    process: AgentProcess
    deadline: float | None
    next_renewal: float


@dataclass
class _Outcome:
    category: str
    transient: bool = False
    skipped: str | None = None


class CampaignRunner:
    """Runs the items of a plan for one campaign on this host (`workers` at a time)."""

    def __init__(self, store: EventStore, config: RunConfig, items: list[PlanItem], estimate: JsonDict,
                 stop: StopControl | None = None, progress: Callable[[RunProgress], None] | None = None,
                 echo: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.config = config
        self.items = items
        self.estimate = estimate
        self.stop = stop or StopControl()
        self.on_progress = progress
        self.echo = echo
        self.rules = config.rules or load_rule_table()
        self.prices: PriceTable = load_price_table(config.price_table)
        self.run_id = str(uuid.uuid4())
        self.metadata = default_metadata(correlation_id=self.run_id, command="run", campaign=config.campaign)
        self.claims = Claims(store, config.campaign, config.lease_s, self.metadata)
        self.progress = RunProgress(total=len(items), budget_usd=config.budget_usd,
                                    log_dir=str(config.log_dir / config.campaign))
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._queue = list(items)
        self._reserved = 0.0

    # -- driving -------------------------------------------------------------------------------

    def run(self) -> RunProgress:
        self.progress.spent_before_usd = self._spent_before()
        workers = [threading.Thread(target=self._worker, name=f"track-run-{i}", daemon=True)
                   for i in range(max(1, self.config.workers))]
        for worker in workers:
            worker.start()
        tick = min(0.2, max(0.02, self.config.lease_s / 10))
        while any(w.is_alive() for w in workers):
            self._supervise()
            for worker in workers:
                worker.join(timeout=tick / len(workers))
        self._supervise()
        if self.stop.reason:
            self.progress.stopped = self.stop.reason
            self._record_stop()
        fold.catch_up(self.store)
        self._notify()
        return self.progress

    def _spent_before(self) -> float:
        total = 0.0
        for attempt in measured_attempts(self.store, self.config.campaign):
            total += self.prices.cost_usd(attempt.model, attempt.input_tokens, attempt.cached_input_tokens,
                                          attempt.output_tokens) or 0.0
        return total

    def _supervise(self) -> None:
        """Heartbeats, item timeouts and hard stops (runs on the calling thread)."""
        now = time.monotonic()
        with self._lock:
            running = list(self._running.values())
        for entry in running:
            if self.stop.hard.is_set():
                entry.process.kill("stopped")
            elif entry.deadline is not None and now > entry.deadline:
                entry.process.kill("timeout")
            elif now >= entry.next_renewal:
                entry.next_renewal = now + self.config.lease_s / 3
                try:
                    renewed = self.claims.renew(entry.claim, entry.process.pid)
                except TrackerError as exc:  # the store blinked: keep the agent, try again soon
                    entry.next_renewal = now + min(5.0, self.config.lease_s / 10)
                    if self.echo:
                        self.echo(f"warning: could not renew the lease of {entry.claim.item.item_id}: {exc}")
                    continue
                if not renewed:
                    entry.process.kill("lease_lost")

    def _next_item(self) -> PlanItem | None:
        with self._lock:
            if self.stop.soft.is_set() or not self._queue:
                return None
            item = self._queue[0]
            cost = self._item_cost(item)
            budget = self.config.budget_usd
            if budget is not None and self._spent() + self._reserved + cost > budget:
                if not self.stop.soft.is_set():
                    self.stop.request("budget", detail=f"spent ${self._spent():.2f} + running ${self._reserved:.2f} "
                                      f"+ next item ${cost:.2f} would pass the budget ${budget:.2f}")
                return None
            self._queue.pop(0)
            self._reserved += cost
            return item

    def _spent(self) -> float:
        return self.progress.spent_before_usd + self.progress.cost_usd

    def _item_cost(self, item: PlanItem) -> float:
        per_item = self.estimate.get("per_item", {})
        return float(per_item.get(item.commit, {}).get("cost_usd", 0.0))

    def _worker(self) -> None:
        while (item := self._next_item()) is not None:
            try:
                outcome = self._with_retries(item)
            finally:
                with self._lock:
                    self._reserved -= self._item_cost(item)
            with self._lock:
                if outcome.skipped:
                    self.progress.skipped += 1
                    self.progress.skip_reasons[outcome.skipped] += 1
                else:
                    self.progress.done += 1
                    if outcome.category == "none":
                        self.progress.succeeded += 1
                    else:
                        self.progress.failed += 1
            self._notify()

    def _with_retries(self, item: PlanItem) -> _Outcome:
        retrying = Retrying(
            stop=stop_after_attempt(1 + max(0, self.config.transient_retries)),
            wait=wait_exponential(multiplier=self.config.retry_wait_s, max=self.config.retry_wait_s * 8),
            retry=retry_if_result(lambda o: o.transient and not self.stop.soft.is_set()),
            sleep=self._pause, reraise=True,
        )
        outcome = _Outcome("none", skipped="not run")
        for attempt in retrying:
            with attempt:
                outcome = self._attempt(item)
            if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
                attempt.retry_state.set_result(outcome)
        return outcome

    def _pause(self, seconds: float) -> None:
        """Back-off sleep that a stop request cuts short."""
        self.stop.soft.wait(seconds)

    # -- one attempt ---------------------------------------------------------------------------

    def _attempt(self, item: PlanItem) -> _Outcome:
        claim = self.claims.acquire(item, self.config.max_attempts)
        if isinstance(claim, Refusal):
            return _Outcome("none", skipped=claim.reason)
        if claim.replaced is not None:
            recovered = self._take_over(claim, claim.replaced, claim.replaced_reason or "runner died")
            if recovered is not None and recovered.category == "none":
                return recovered
        if self.stop.soft.is_set() and self.stop.reason != "budget":
            # a budget stop only keeps new items from being taken: this one was reserved within budget
            self.claims.release(claim, "interrupted")
            return _Outcome("none", skipped="stopped")
        return self._launch(claim)

    def _launch(self, claim: Claim) -> _Outcome:
        item, config = claim.item, self.config
        workdir = (config.log_dir / config.campaign / item.item_id / claim.run_timestamp).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        plan_file = workdir / "plan.json"
        plan_file.write_text(json.dumps({"repo": item.repo, "task_id": f"{item.repo}_core",
                                         "items": [item.bench_item()]}) + "\n")
        stamp = claim.run_timestamp.replace("-", "").replace("_", "")
        log_file = workdir / f"pipeline_run_{stamp[:8]}_{stamp[8:]}.log"
        command = self._command(item, plan_file, workdir)
        self.store.append(claim.attempt_stream, [AttemptStarted(
            campaign=config.campaign, repo=item.repo, agent=config.agent, model=config.model, item_id=item.item_id,
            commit=item.commit, pre_commit=item.pre_commit, run_timestamp=claim.run_timestamp,
            attempt_number=claim.attempt_number, host=self.claims.host, command=command, log_file=str(log_file),
            claim_token=claim.token).to_new_event(metadata=self.metadata)], expected_version=NO_STREAM)
        parser = LineParser(on_fatal=self._on_fatal)
        echo = (lambda line: self.echo(f"[{item.item_id}] {line}")) if self.echo else None  # type: ignore[misc]
        process = AgentProcess(command, config.bench_root, log_file, parser, echo, config.env)
        deadline = time.monotonic() + config.item_timeout_s if config.item_timeout_s else None
        with self._lock:
            self._running[claim.token] = _Running(claim, process, deadline, time.monotonic() + 0.5)
            self.progress.running += 1
            self.progress.attempts += 1
        self._notify()
        launched = datetime.now().replace(microsecond=0).strftime(TS_FORMAT)
        existing = set(self._item_folders(item))  # an earlier run in the same second is not this attempt's
        try:
            result = process.run()
        finally:
            with self._lock:
                self._running.pop(claim.token, None)
                self.progress.running -= 1
        folder = self._find_run_folder(item, launched, workdir, exclude=existing)
        return self._record(claim, folder, workdir, result)

    def _command(self, item: PlanItem, plan_file: Path, workdir: Path) -> list[str]:
        config = self.config
        if config.template:
            values = {"item_id": item.item_id, "human": item.commit, "pre": item.pre_commit or "",
                      "plan": str(plan_file), "workdir": str(workdir)}
            return [part.format(**values) for part in config.template]
        task = config.task_yaml.format(task_id=f"{item.repo}_core", repo=item.repo)
        return [config.python, "-m", config.bench_module, "prepare", task, "--from-plan", str(plan_file),
                "--bench-cfg", config.bench_cfg, "--max-workers", "1", "--resume"]

    def _find_run_folder(self, item: PlanItem, since: str, workdir: Path,
                         exclude: set[Path] | None = None) -> Path | None:
        """The run folder the bench wrote for this attempt: the newest of this item at or after launch."""
        found = [(path.parent.name, path) for path in self._item_folders(item)
                 if path.parent.name >= since and path not in (exclude or set())]
        if found:
            return max(found)[1]
        if (workdir / "journal.json").exists():
            return workdir
        return None

    def _item_folders(self, item: PlanItem) -> list[Path]:
        """Every run folder of this item under the bench root (any timestamp)."""
        runs = self.config.bench_root / "state" / "runs"
        found: list[Path] = []
        if runs.is_dir():
            for repo_dir in runs.iterdir():
                if normalise_repo(repo_dir.name) != item.repo:
                    continue
                agent_dir = repo_dir / self.config.agent
                if not agent_dir.is_dir():
                    continue
                for model_dir in agent_dir.iterdir():
                    if normalise_model(model_dir.name) != normalise_model(self.config.model):
                        continue
                    found += [ts / item.item_id for ts in model_dir.iterdir() if (ts / item.item_id).is_dir()]
        return found

    def _facts(self, item: PlanItem, run_ts: str, folder: Path | None, workdir: Path,
               result: ProcessResult | None) -> RunFacts:
        """Read the run folder joined with this attempt's own log; fill what only the runner knows."""
        bench_runs = (self.config.bench_root / "state" / "runs").resolve()
        path = folder if folder is not None else workdir
        try:
            run_path = path.resolve().relative_to(bench_runs).as_posix()
        except ValueError:
            run_path = str(path)
        parts = run_path.split("/")
        run_folder = RunFolder(path=path, run_path=run_path, repo_raw=parts[0] if len(parts) == 5 else item.repo,
                               repo=item.repo, agent=self.config.agent,
                               model_raw=parts[2] if len(parts) == 5 else self.config.model,
                               model=normalise_model(self.config.model), timestamp=run_ts, item_id=item.item_id)
        facts = read_run(run_folder, index_pipeline_logs(workdir), EvaluationIndex())
        changes: dict[str, object] = {"commit": item.commit, "commit_source": facts.commit_source or "plan"}
        if facts.pre_commit is None:
            changes["pre_commit"] = item.pre_commit
        if facts.log is None:
            for log in workdir.glob("pipeline_run_*.log"):
                changes["evidence"] = facts.evidence + scan_text(log, log.name, "pipeline_log").evidence
        killed = result.killed if result else None
        if facts.status == "unknown":
            changes.update(status="error", status_source="runner")
        if killed == "timeout":
            changes["return_code"] = 124
        elif facts.return_code is None and result is not None:
            changes["return_code"] = result.exit_code
        if facts.duration_s is None and result is not None:
            changes["duration_s"] = round(result.wall_time_s, 3)
        return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]

    def _record(self, claim: Claim, folder: Path | None, workdir: Path, result: ProcessResult) -> _Outcome:
        item = claim.item
        facts = self._facts(item, claim.run_timestamp, folder, workdir, result)
        if folder is None and _bench_skipped(workdir, item.item_id):
            return self._bench_skipped(claim)
        extra: list = [AttemptFinished(exit_code=result.exit_code, wall_time_s=round(result.wall_time_s, 3),
                                       category="pending", run_folder=str(folder) if folder else None,
                                       killed=result.killed, live=result.live.to_dict())]
        interrupted = result.killed in ("stopped", "lease_lost")
        if interrupted:
            extra.append(AttemptInterrupted(reason=self.stop.reason or result.killed or "stopped"))
        category = classify(facts, self.rules).category
        extra[0] = dataclasses.replace(extra[0], category=category)
        record_attempt(self.store, self.config.campaign, facts, self.rules, self.metadata, extra=extra)
        outcome = "interrupted" if interrupted else ("succeeded" if category == "none" else "failed")
        self.claims.release(claim, outcome, category)
        cost = self.prices.cost_usd(self.config.model, facts.tokens.input_tokens, facts.tokens.cached_input_tokens,
                                    facts.tokens.output_tokens) or 0.0
        with self._lock:
            p = self.progress
            p.input_tokens += facts.tokens.input_tokens or 0
            p.output_tokens += facts.tokens.output_tokens or 0
            p.cost_usd += cost
            if not interrupted:
                p.by_category[category] += 1
        if category in FATAL and not interrupted:
            self._on_fatal(category, f"{item.item_id} failed with {category}")
        transient = category == "rate_limited" or (category == "other" and any(
            _CONNECTION.search(e.text) for e in facts.evidence))
        if interrupted:
            return _Outcome(category, skipped="interrupted")
        return _Outcome(category, transient=transient and not self.stop.soft.is_set())

    def _take_over(self, claim: Claim, old: Holder, reason: str) -> _Outcome | None:
        """The previous holder died: kill its orphaned agent, then record what it left (or abandon it)."""
        if old.host == self.claims.host and old.child_pid:
            kill_orphan_group(old.child_pid)
        item = claim.item
        folder = self._find_run_folder(item, old.run_timestamp, Path("/nonexistent"))
        workdir = (self.config.log_dir / self.config.campaign / item.item_id / old.run_timestamp).resolve()
        finished = folder is not None and (folder / "journal.json").is_file()
        if finished and folder is not None:
            facts = self._facts(item, old.run_timestamp, folder, workdir, None)
            category = classify(facts, self.rules).category
            record_attempt(self.store, self.config.campaign, facts, self.rules, self.metadata, extra=[
                AttemptFinished(exit_code=None, wall_time_s=0.0, category=category, run_folder=str(folder),
                                recovered=True)])
            cost = self.prices.cost_usd(self.config.model, facts.tokens.input_tokens,
                                        facts.tokens.cached_input_tokens, facts.tokens.output_tokens) or 0.0
            with self._lock:
                self.progress.by_category[category] += 1
                self.progress.cost_usd += cost  # what the dead runner spent counts against the budget
            if category == "none":
                self.claims.release(claim, "succeeded", category)
            return _Outcome(category)
        self.store.append(old.attempt_stream, [AttemptAbandoned(
            reason=reason, by_host=self.claims.host, by_pid=self.claims.pid).to_new_event(metadata=self.metadata)],
            expected_version=ANY)
        return None

    # -- stopping ------------------------------------------------------------------------------

    def _on_fatal(self, category: str, detail: str) -> None:
        if self.stop.category in FATAL:
            return
        self.stop.request(f"{category}: every further item would fail and cost", hard=True, category=category,
                          detail=detail)

    def _bench_skipped(self, claim: Claim) -> _Outcome:
        """The bench's own `--resume` skipped the item: a success from an earlier run in this bench root.

        That success is not this campaign's, so nothing is classified: the attempt is recorded as
        interrupted with the reason, and the user is told to use a fresh --bench-root.
        """
        reason = (f"the bench skipped {claim.item.item_id}: a run under {self.config.bench_root} already succeeded "
                  "(bench --resume); use a fresh --bench-root to rerun it in this campaign")
        event = AttemptInterrupted(reason=reason).to_new_event(metadata=self.metadata)
        self.store.append(claim.attempt_stream, [event])
        self.claims.release(claim, "interrupted")
        if self.echo:
            self.echo(f"warning: {reason}")
        return _Outcome("none", skipped="bench_already_done")

    def _record_stop(self) -> None:
        left = len(self._queue)
        event = CampaignStopped(reason=self.stop.reason or "stopped", category=self.stop.category,
                                detail=self.stop.detail, host=self.claims.host, items_left=left)
        self.store.append(campaign_stream(self.config.campaign), [event.to_new_event(metadata=self.metadata)])

    def _notify(self) -> None:
        if self.on_progress:
            with self._lock:
                snapshot = dataclasses.replace(self.progress, by_category=Counter(self.progress.by_category),
                                               skip_reasons=Counter(self.progress.skip_reasons))
            self.on_progress(snapshot)


def prepare_campaign(store: EventStore, plan_paths: list[Path], config: RunConfig) -> tuple[list[PlanItem], JsonDict]:
    """Create the rerun campaign (once), estimate the plan from the baseline, record `plan.created`."""
    check_campaign_name(config.campaign)
    if config.template:
        bad = [p for p in re.findall(r"{(\w*)}", " ".join(config.template)) if p not in PLACEHOLDERS]
        if bad:
            raise TrackerError(f"unknown placeholder {{{bad[0]}}} in the command template: "
                               f"use {', '.join(PLACEHOLDERS)}")
    elif not (config.bench_root / config.bench_cfg).exists() and config.bench_module == "bench.cli":
        raise TrackerError(f"{config.bench_root} has no {config.bench_cfg}: pass --bench-root (the ISO-Bench checkout)")
    plan = plan_from_files(plan_paths, config.baseline)
    if not plan.items:
        raise TrackerError("the plan has no items")
    baseline = measured_attempts(store, config.baseline)
    prices = load_price_table(config.price_table)
    estimate = summarise(estimate_items(plan.items, baseline, prices), buffer=config.buffer, workers=config.workers,
                         price_version=prices.version, baseline=config.baseline)
    metadata = default_metadata(command="run", campaign=config.campaign)
    ensure_campaign(store, CampaignCreated(
        name=config.campaign, kind="rerun", agent=config.agent, model=config.model,
        agent_fix_commit=config.fix_commit, baseline_campaign=config.baseline,
        source=str(config.bench_root.resolve())), metadata)
    plan.agent, plan.model = config.agent, config.model
    record_plan(store, plan, stream=campaign_stream(config.campaign), estimate=estimate, metadata=metadata)
    return plan.items, estimate


def run_campaign(store: EventStore, plan_paths: list[Path], config: RunConfig, stop: StopControl | None = None,
                 progress: Callable[[RunProgress], None] | None = None,
                 echo: Callable[[str], None] | None = None) -> RunProgress:
    """`track run`: prepare the campaign, then run every item of the plan (see module docstring)."""
    fold.catch_up(store)  # the baseline as the log has it now (another host may have imported since)
    items, estimate = prepare_campaign(store, plan_paths, config)
    fold.catch_up(store)  # the campaign just recorded is what the runner reads back
    return CampaignRunner(store, config, items, estimate, stop, progress, echo).run()


def _bench_skipped(workdir: Path, item_id: str) -> bool:
    """Did the bench print its `--resume` skip line for this item in this attempt's log?"""
    needle = f"Skipping {item_id} - task already completed"
    for log in workdir.glob("pipeline_run_*.log"):
        with open(log, errors="replace") as lines:
            if any(needle in line for line in lines):
                return True
    return False
