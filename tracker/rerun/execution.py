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

Run-folder discovery and the runner's fact patching live in `run_folders`, cost and budget accounting
in `budget`; this module drives the queue, the claims, the agent processes and the recording. With
`proxy`, the metering proxy (`metered`) sees every API request: its quota/key stop and budget refusal
come in through `_on_proxy_stop`, and a proxy that stops serving stops the campaign (`proxy_down`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import string
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from tracker.classify.classifier import Classification
from tracker.classify.rules import RuleTable, load_rule_table
from tracker.domain.events import DomainEvent, JsonDict, decode, default_metadata
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
from tracker.domain.vocabulary import HARNESS
from tracker.errors import BenchNotFound, TrackerError
from tracker.eventstore.store import ANY, NO_STREAM, EventStore, PatientStore
from tracker.ingest.importer import ensure_campaign, record_attempt
from tracker.isobench import RunFacts
from tracker.projections.read_model import fold
from tracker.projections.read_model.queries import measured_attempts
from tracker.rerun.bench_layout import bench_config, bench_item_id, bench_python, task_file, task_id, worktrees_dir
from tracker.rerun.budget import Budget, SharedBudget, facts_cost, spent_before
from tracker.rerun.campaign_stops import CampaignStops
from tracker.rerun.claims import Claim, Claims, Holder, Refusal
from tracker.rerun.estimate import estimate_items, summarise
from tracker.rerun.harness import diagnose
from tracker.rerun.metered import PROXY_DOWN, MeteredAgents
from tracker.rerun.planning import PlanItem, plan_from_files, record_plan
from tracker.rerun.process import AgentProcess, LineParser, ProcessResult, kill_orphan_group
from tracker.rerun.run_folders import RunFolders, attempt_workdir, bench_skipped

_LOG = logging.getLogger("track.run")
FATAL = {"quota_exceeded", "invalid_api_key", HARNESS}
"""Categories after which every further item would fail the same way: the campaign stops at once."""
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
    python: str | None = None
    """The bench's interpreter; None: found from the bench checkout (`bench_python`)."""
    bench_module: str = "bench.cli"
    task_yaml: str = "tasks/{repo}.yaml"
    bench_cfg: str = "bench.yaml"
    log_dir: Path = Path("mlruns") / "attempt-logs"
    lease_s: float = 300.0
    transient_retries: int = 3
    retry_wait_s: float = 30.0
    price_table: str | None = None
    buffer: float = 0.2
    rules: RuleTable | None = None
    env: dict[str, str] | None = None
    store_outage_s: float = 120.0
    """How long the store may be unreachable before the run gives up (the agents keep running meanwhile)."""
    proxy: bool = False
    """Run the metering proxy for the campaign and point each agent at it (`OPENAI_BASE_URL`)."""
    proxy_upstream: str | None = None
    """Where the proxy forwards to; None: the agents' `OPENAI_BASE_URL`, else the OpenAI API."""
    proxy_port: int = 0


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
    setup_problem: dict[str, str] | None = None
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
    renewed_at: float = field(default_factory=time.monotonic)
    """When the lease was last renewed: past a lease without one, another runner may hold the commit."""


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
        self.folders = RunFolders(config.bench_root, config.agent, config.model)
        self.python = bench_python(config.bench_root, config.python)
        self.bench_config = None if config.template else bench_config(config.bench_root, config.bench_cfg)
        self.budget = Budget(config.budget_usd, estimate)
        self.shared = (SharedBudget(store, config.campaign, config.budget_usd, self.claims.host, self.claims.pid,
                                    self.metadata) if config.budget_usd is not None else None)
        self._item_costs: dict[str, float] = {}
        self.progress = RunProgress(total=len(items), budget_usd=config.budget_usd,
                                    log_dir=str(config.log_dir / config.campaign))
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._queue = list(items)
        self._failure: Exception | None = None
        self._stop_recorded = False
        self.metered = MeteredAgents(store, config, self.metadata, self._on_proxy_stop) if config.proxy else None

    # -- driving -------------------------------------------------------------------------------

    def run(self) -> RunProgress:
        self.progress.spent_before_usd = spent_before(self.store, self.config.campaign, self.prices)
        self.others = CampaignStops(self.store, self.config.campaign, self.run_id)
        if self.shared is not None:
            self.shared.open(self.progress.spent_before_usd)
        if self.metered is not None:
            self.metered.start(self.progress.spent_before_usd)
        try:
            self._drive()
        finally:
            if self.metered is not None:
                self.metered.close()
        fold.catch_up(self.store)
        self._notify()
        if self._failure is not None:
            raise self._failure
        return self.progress

    def _drive(self) -> None:
        """The workers, supervised until every one is done; the stop recorded."""
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

    def _supervise(self) -> None:
        """Heartbeats, item timeouts, hard stops and other runners' stops (runs on the calling thread)."""
        self._obey_other_runners()
        if self.metered is not None and not self.metered.alive() and self.stop.category != PROXY_DOWN:
            self.stop.request(f"{PROXY_DOWN}: the metering proxy stopped serving, every agent would lose the API",
                              hard=True, category=PROXY_DOWN, detail=self.metered.url)
            self._record_stop()
        now = time.monotonic()
        with self._lock:
            running = list(self._running.values())
        for entry in running:
            if self.stop.hard.is_set():
                entry.process.kill("stopped")
            elif entry.deadline is not None and now > entry.deadline:
                entry.process.kill("timeout")
            elif now >= entry.next_renewal:
                self._heartbeat(entry, now)

    def _heartbeat(self, entry: _Running, now: float) -> None:
        """Renew a running item's lease; kill its agent when the claim was lost meanwhile."""
        entry.next_renewal = now + self.config.lease_s / 3
        try:
            renewed = self.claims.renew(entry.claim, entry.process.pid)
        except TrackerError as exc:  # the store blinked: keep the agent, try again soon
            entry.next_renewal = now + min(5.0, self.config.lease_s / 10)
            if self.echo:
                self.echo(f"warning: could not renew the lease of {entry.claim.item.item_id}: {exc}")
            if time.monotonic() - entry.renewed_at > self.config.lease_s:
                entry.process.kill("lease_lost")  # the lease ran out unrenewed: the commit may be another's now
            return
        if not renewed:
            entry.process.kill("lease_lost")
            return
        entry.renewed_at = time.monotonic()

    def _obey_other_runners(self, force: bool = False) -> None:
        """Stop as another runner of the campaign stopped (quota, key, setup: at once; budget: no new item)."""
        if self.stop.soft.is_set():
            return
        try:
            stop = self.others.foreign(force)
        except TrackerError:  # the store blinked: look again at the next tick
            return
        if stop is not None:
            self.stop.request(f"stopped by another runner ({stop.host}): {stop.reason}", hard=stop.category in FATAL,
                              category=stop.category, detail=stop.detail)
            self._stop_recorded = True  # it is recorded already, by the runner that met it

    def _next_item(self) -> PlanItem | None:
        """The next item to run, its estimate reserved; None when stopped, done, or the budget says no."""
        self._obey_other_runners(force=True)
        with self._lock:
            if self.stop.soft.is_set() or not self._queue:
                return None
            item = self._queue.pop(0)
        refusal = self.shared.reserve(item.commit, self.budget.item_cost(item)) if self.shared else None
        if refusal is None:
            return item
        with self._lock:
            self._queue.insert(0, item)
            self.stop.request("budget", detail=refusal)
        self._record_stop()  # the other runners of the campaign take no new item either
        return None

    def _worker(self) -> None:
        try:
            while (item := self._next_item()) is not None:
                try:
                    outcome = self._with_retries(item)
                finally:
                    self._settle(item)
                self._count(outcome)
                self._notify()
        except Exception as exc:  # never lost with its thread: the run stops and raises it
            with self._lock:
                self._failure = self._failure or exc
            self.stop.request(f"error: {type(exc).__name__}", hard=True, detail=str(exc))

    def _settle(self, item: PlanItem) -> None:
        """The item ended: its reservation becomes what its attempts really cost."""
        with self._lock:
            cost = self._item_costs.pop(item.commit, 0.0)
        if self.shared is not None:
            self.shared.settle(item.commit, cost)

    def _count(self, outcome: _Outcome) -> None:
        """Count an item's final outcome into the progress: skipped, or done as succeeded or failed."""
        with self._lock:
            if outcome.skipped:
                self.progress.skipped += 1
                self.progress.skip_reasons[outcome.skipped] += 1
                return
            self.progress.done += 1
            if outcome.category == "none":
                self.progress.succeeded += 1
            else:
                self.progress.failed += 1

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

    def _workdir(self, item: PlanItem, run_timestamp: str) -> Path:
        return attempt_workdir(self.config.log_dir, self.config.campaign, item.item_id, run_timestamp)

    def _launch(self, claim: Claim) -> _Outcome:
        item, config = claim.item, self.config
        workdir = self._workdir(item, claim.run_timestamp)
        workdir.mkdir(parents=True, exist_ok=True)
        bench_id = bench_item_id(item, claim.attempt_number, self._worktrees(item))
        plan_file = _write_item_plan(workdir, item, bench_id)
        log_file = workdir / _log_name(claim.run_timestamp)
        run_id = self.folders.run_id(item, claim.run_timestamp)
        command = self._command(item, plan_file, workdir, run_id)
        self._record_start(claim, command, log_file, bench_id)
        parser = LineParser(on_fatal=self._on_fatal)
        echo = (lambda line: self.echo(f"[{item.item_id}] {line}")) if self.echo else None  # type: ignore[misc]
        env = self.metered.env(claim.token, config.env) if self.metered else config.env
        process = AgentProcess(command, config.bench_root, log_file, parser, echo, env,
                               on_start=lambda pid: self._record_agent(claim, pid))
        deadline = time.monotonic() + config.item_timeout_s if config.item_timeout_s else None
        with self._lock:
            self._running[claim.token] = _Running(claim, process, deadline, time.monotonic() + 0.5)
            self.progress.running += 1
            self.progress.attempts += 1
        self._notify()
        launched = datetime.now().replace(microsecond=0).strftime(TS_FORMAT)
        existing = set(self.folders.item_folders(item, bench_id))  # an earlier run in the same second is not ours
        try:
            result = process.run()
        finally:
            with self._lock:
                self._running.pop(claim.token, None)
                self.progress.running -= 1
        if config.template:
            folder = self.folders.find(item, launched, workdir, bench_id, exclude=existing)
        else:  # the bench wrote exactly where its --run-id says, or nowhere
            folder = self.folders.at(run_id, bench_id, workdir)
        return self._record(claim, folder, workdir, result, bench_id)

    def _worktrees(self, item: PlanItem) -> Path | None:
        """Where the bench keeps this item's worktrees (None for an agent template: it has none we know)."""
        if self.config.template:
            return None
        task = task_file(self.config.task_yaml, item)
        return worktrees_dir(self.config.bench_root, self.bench_config, task_id(self.config.bench_root, task, item))

    def _record_agent(self, claim: Claim, pid: int) -> None:
        """The agent's process group on the claim, the moment it runs: recovery ends that group first."""
        with contextlib.suppress(TrackerError):  # the store blinked: the next heartbeat records it
            self.claims.renew(claim, pid)

    def _record_start(self, claim: Claim, command: list[str], log_file: Path, bench_id: str) -> None:
        """`attempt.started`, the first event of the attempt's stream (which must not exist yet)."""
        item, config = claim.item, self.config
        self.store.append(claim.attempt_stream, [AttemptStarted(
            campaign=config.campaign, repo=item.repo, agent=config.agent, model=config.model, item_id=bench_id,
            commit=item.commit, pre_commit=item.pre_commit, run_timestamp=claim.run_timestamp,
            attempt_number=claim.attempt_number, host=self.claims.host, command=command, log_file=str(log_file),
            claim_token=claim.token).to_new_event(metadata=self.metadata)], expected_version=NO_STREAM)

    def _command(self, item: PlanItem, plan_file: Path, workdir: Path, run_id: str) -> list[str]:
        """The agent template filled in, or the bench's `prepare` of the one-item plan under this run id (so
        the bench's own `--resume` skips only what this attempt already finished)."""
        config = self.config
        if config.template:
            values = {"item_id": item.item_id, "human": item.commit, "pre": item.pre_commit or "",
                      "plan": str(plan_file), "workdir": str(workdir)}
            return [part.format(**values) for part in config.template]
        return [self.python, "-m", config.bench_module, "prepare", task_file(config.task_yaml, item), "--from-plan",
                str(plan_file), "--bench-cfg", config.bench_cfg, "--max-workers", "1", "--resume", "--run-id", run_id]

    def _record(self, claim: Claim, folder: Path | None, workdir: Path, result: ProcessResult,
                bench_id: str) -> _Outcome:
        """Record the attempt that just ended, release its claim, count it; stop the campaign on a fatal category."""
        item = claim.item
        facts = self.folders.facts(item, claim.run_timestamp, folder, workdir, result, bench_id)
        if folder is None and bench_skipped(workdir, bench_id):
            return self._bench_skipped(claim)
        interruption = self._interruption(result)
        interrupted = interruption is not None

        def lifecycle(classification: Classification) -> list[DomainEvent]:
            finished: DomainEvent = _finished(folder, result, classification.category)
            return [finished] if interruption is None else [finished, interruption]

        classification, _, _ = record_attempt(self.store, self.config.campaign, facts, self.rules, self.metadata,
                                              extra=lifecycle)
        category = classification.category
        self.claims.release(claim, _claim_outcome(category, interrupted), category)
        self._account(facts, category, counted=not interrupted)
        if interrupted:
            return _Outcome(category, skipped="interrupted")
        if category == HARNESS:
            return self._on_setup_problem(bench_id, facts)
        if category in FATAL:
            self._on_fatal(category, f"{item.item_id} failed with {category}")
        return _Outcome(category, transient=_transient(category, facts) and not self.stop.soft.is_set())

    def _interruption(self, result: ProcessResult) -> AttemptInterrupted | None:
        """The attempt was cut short by a stop or a lost lease (None: it ran to its end, or timed out)."""
        if result.killed not in ("stopped", "lease_lost"):
            return None
        return AttemptInterrupted(reason=self.stop.reason or result.killed or "stopped")

    def _account(self, facts: RunFacts, category: str, counted: bool) -> None:
        """Add an attempt's tokens and cost to the progress (and its category, when `counted`)."""
        cost = facts_cost(self.prices, self.config.model, facts)
        with self._lock:
            p = self.progress
            p.input_tokens += facts.tokens.input_tokens or 0
            p.output_tokens += facts.tokens.output_tokens or 0
            p.cost_usd += cost
            self._item_costs[facts.commit or ""] = self._item_costs.get(facts.commit or "", 0.0) + cost
            if counted:
                p.by_category[category] += 1

    def _take_over(self, claim: Claim, old: Holder, reason: str) -> _Outcome | None:
        """The previous holder died: kill its orphaned agent, then record what it left (or abandon it)."""
        if old.host == self.claims.host and old.child_pid:
            kill_orphan_group(old.child_pid)
        bench_id = self._started_item_id(old) or claim.item.item_id
        if self.config.template:
            folder = self.folders.find(claim.item, old.run_timestamp, Path("/nonexistent"), bench_id)
        else:
            folder = self.folders.at(self.folders.run_id(claim.item, old.run_timestamp), bench_id, Path("/nonexistent"))
        if folder is not None and (folder / "journal.json").is_file():
            return self._recover(claim, old, folder, bench_id)
        if self.shared is not None:
            self.shared.settle_dead(claim.item.commit, old.host, old.pid, 0.0)  # its tokens are not known
        self.store.append(old.attempt_stream, [AttemptAbandoned(
            reason=reason, by_host=self.claims.host, by_pid=self.claims.pid).to_new_event(metadata=self.metadata)],
            expected_version=ANY)
        return None

    def _started_item_id(self, old: Holder) -> str | None:
        """The bench item id the dead holder's attempt ran under (its `attempt.started`), if it got that far."""
        for event in self.store.read_stream(old.attempt_stream):
            if event.event_type == AttemptStarted.TYPE:
                started = decode(event)
                assert isinstance(started, AttemptStarted)
                return started.item_id
        return None

    def _recover(self, claim: Claim, old: Holder, folder: Path, bench_id: str) -> _Outcome:
        """Record the attempt a dead runner left finished in `folder` (a success also releases the claim)."""
        item = claim.item
        workdir = self._workdir(item, old.run_timestamp)
        facts = self.folders.facts(item, old.run_timestamp, folder, workdir, None, bench_id)
        classification, _, _ = record_attempt(
            self.store, self.config.campaign, facts, self.rules, self.metadata, extra=lambda c: [
                AttemptFinished(exit_code=None, wall_time_s=0.0, category=c.category, run_folder=str(folder),
                                recovered=True)])
        category = classification.category
        cost = facts_cost(self.prices, self.config.model, facts)
        with self._lock:
            self.progress.by_category[category] += 1
            self.progress.cost_usd += cost  # what the dead runner spent counts against the budget
        if self.shared is not None:
            self.shared.settle_dead(item.commit, old.host, old.pid, cost)
        if category == "none":
            self.claims.release(claim, "succeeded", category)
        return _Outcome(category)

    # -- stopping ------------------------------------------------------------------------------

    def _on_fatal(self, category: str, detail: str) -> None:
        if self.stop.category in FATAL:
            return
        self.stop.request(f"{category}: every further item would fail and cost", hard=True, category=category,
                          detail=detail)
        self._record_stop()

    def _on_proxy_stop(self, category: str, detail: str) -> None:
        """The proxy met a quota or key error (stop at once) or refused a request past the budget (no new item)."""
        if category in FATAL:
            self._on_fatal(category, f"metering proxy: {detail}")
            return
        self.stop.request("budget", detail=f"metering proxy: {detail}")
        self._record_stop()

    def _on_setup_problem(self, bench_id: str, facts: RunFacts) -> _Outcome:
        """The setup is broken, not the model: stop at once, name the cause; the attempt counts for nothing."""
        problem = diagnose([line.text for line in facts.evidence], facts.return_code)
        with self._lock:
            self.progress.setup_problem = problem.to_dict()
        if self.stop.category not in FATAL:
            self.stop.request(f"{HARNESS}: the setup is broken ({problem.cause}), every item would fail the same way",
                              hard=True, category=HARNESS, detail=f"{bench_id}: {problem.what} [{problem.evidence}]")
            self._record_stop()
        return _Outcome(HARNESS, skipped=HARNESS)

    def _bench_skipped(self, claim: Claim) -> _Outcome:
        """The bench's own `--resume` skipped the item: a success from an earlier run in this bench root.

        That success is not this campaign's, so nothing is classified: the attempt is recorded as
        interrupted with the reason, and the user is told to use a fresh bench root.
        """
        reason = (f"the bench skipped {claim.item.item_id}: a run under {self.config.bench_root} already succeeded "
                  "(bench --resume); use a fresh bench root to rerun it in this campaign")
        event = AttemptInterrupted(reason=reason).to_new_event(metadata=self.metadata)
        self.store.append(claim.attempt_stream, [event])
        self.claims.release(claim, "interrupted")
        if self.echo:
            self.echo(f"warning: {reason}")
        return _Outcome("none", skipped="bench_already_done")

    def _record_stop(self) -> None:
        """`campaign.stopped`, once per run, as soon as the reason is known (other runners read it)."""
        with self._lock:
            if self._stop_recorded:
                return
            self._stop_recorded = True
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


def _write_item_plan(workdir: Path, item: PlanItem, bench_id: str) -> Path:
    """A one-item bench plan for this attempt, in its workdir: the plan file's repo (a checkout path stays
    a path) and task id, and this attempt's own item id."""
    plan_file = workdir / "plan.json"
    task_id = item.task_id or f"{item.repo}_core"
    plan_file.write_text(json.dumps({"repo": item.repo_path or item.repo, "task_id": task_id,
                                     "items": [{**item.bench_item(), "item_id": bench_id}]}) + "\n")
    return plan_file


def _log_name(run_timestamp: str) -> str:
    """`pipeline_run_YYYYMMDD_HHMMSS.log`, the name the bench gives its own pipeline logs."""
    stamp = run_timestamp.replace("-", "").replace("_", "")
    return f"pipeline_run_{stamp[:8]}_{stamp[8:]}.log"


def _finished(folder: Path | None, result: ProcessResult, category: str) -> AttemptFinished:
    """`attempt.finished` as the runner saw the process end, with the attempt's category."""
    return AttemptFinished(exit_code=result.exit_code, wall_time_s=round(result.wall_time_s, 3), category=category,
                           run_folder=str(folder) if folder else None, killed=result.killed,
                           live=result.live.to_dict())


def _claim_outcome(category: str, interrupted: bool) -> str:
    """The outcome a claim is released with (a broken setup's attempt is no attempt of the model)."""
    if interrupted:
        return "interrupted"
    if category == HARNESS:
        return HARNESS
    return "succeeded" if category == "none" else "failed"


def _transient(category: str, facts: RunFacts) -> bool:
    """Worth another try soon: a rate limit, or an unclassified failure that shows a connection error."""
    return category == "rate_limited" or (category == "other" and any(
        _CONNECTION.search(e.text) for e in facts.evidence))


def prepare_campaign(store: EventStore, plan_paths: list[Path], config: RunConfig) -> tuple[list[PlanItem], JsonDict]:
    """Create the rerun campaign (once), estimate the plan from the baseline, record `plan.created`."""
    check_campaign_name(config.campaign)
    if config.template:
        bad = [field for part in config.template for _, field, _, _ in string.Formatter().parse(part)
               if field is not None and field not in PLACEHOLDERS]
        if bad:
            raise TrackerError(f"unknown placeholder {{{bad[0]}}} in the command template: "
                               f"use {', '.join(PLACEHOLDERS)}")
    elif not (config.bench_root / config.bench_cfg).exists() and config.bench_module == "bench.cli":
        raise BenchNotFound(f"{config.bench_root} has no {config.bench_cfg}: the bench root must be the ISO-Bench "
                            "checkout")
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
    store = PatientStore.around(store, config.store_outage_s, on_wait=_LOG.warning)
    items, estimate = prepare_campaign(store, plan_paths, config)
    fold.catch_up(store)  # the campaign just recorded is what the runner reads back
    return CampaignRunner(store, config, items, estimate, stop, progress, echo).run()

