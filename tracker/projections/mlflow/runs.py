"""The MLflow projection: one MLflow run per attempt, one summary run per campaign.

It tails the log after its own checkpoint (one per tracking URI), finds the attempts the new events
touched, and upserts their runs. Idempotent by construction: a run is found by its
`track.stream_id` tag (one `search_runs` per experiment per sync), and only values that differ
from what the run already holds are written, in one `log_batch` per run. Crash-safe: the
checkpoint moves only after the MLflow writes of a chunk succeeded, to just before the first
event of the first attempt not yet written; a killed sync resumes there and finds the runs it
already made. Experiments are `<benchmark>/<agent>/<model>` (e.g. `iso-bench/trae/gpt-5`), so the
original and rerun attempts of one commit sit side by side.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.classify.redaction import redact
from tracker.domain.events import RecordedEvent
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.domain.streams import ATTEMPT_PREFIX, CAMPAIGN_PREFIX, campaign_stream, stream_campaign
from tracker.eventstore.store import EventStore
from tracker.projections.mlflow import artifacts, mapping, traces, views
from tracker.projections.mlflow.client import (
    RetryPolicy,
    Tracking,
    artifact_location,
    checkpoint_name,
    run_route,
    safe_uri,
    ui_link,
)
from tracker.projections.mlflow.mapping import (
    STREAM_TAG,
    SUMMARY_TAG,
    SYNCED_TAG,
    BaselineLink,
    experiment_name,
    run_name,
)
from tracker.projections.mlflow.portable import relocate_artifacts
from tracker.projections.read_model import fold, queries
from tracker.settings import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow.entities import Run

Progress = Callable[[int, int], None]


@dataclass
class SyncSummary:
    tracking_uri: str
    checkpoint: str
    from_position: int
    to_position: int
    attempts_touched: int = 0
    runs_created: int = 0
    runs_updated: int = 0
    runs_unchanged: int = 0
    summary_runs: int = 0
    traces: int = 0
    evidence_gaps: int = 0
    """Attempts with a file not logged (its blob gone or changed, or too large), named in `MISSING_EVIDENCE.txt`."""
    evidence_vanished: int = 0
    """Attempts with a file gone from the bench tree since capture (the captured copy was logged)."""
    evidence_from_disk: int = 0
    """Attempts imported before evidence was captured: their files were read from the run folder."""
    experiments: list[str] = field(default_factory=list)
    price_table_version: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri, "checkpoint": self.checkpoint, "from_position": self.from_position,
            "to_position": self.to_position, "attempts_touched": self.attempts_touched,
            "runs_created": self.runs_created, "runs_updated": self.runs_updated,
            "runs_unchanged": self.runs_unchanged, "summary_runs": self.summary_runs, "traces": self.traces,
            "evidence_gaps": self.evidence_gaps, "evidence_vanished": self.evidence_vanished,
            "evidence_from_disk": self.evidence_from_disk,
            "experiments": self.experiments, "price_table_version": self.price_table_version,
            "seconds": round(self.seconds, 3),
        }


def sync(store: EventStore, tracking_uri: str | None = None, *, prices: PriceTable | None = None,
         retry: RetryPolicy | None = None, progress: Progress | None = None, chunk_size: int = 50,
         traces: bool = True) -> SyncSummary:
    """Project every event after this tracking URI's checkpoint into MLflow (with `traces`, each finished
    attempt written also gets its trajectory as a trace, once)."""
    started = time.perf_counter()
    uri = resolve_tracking_uri(tracking_uri)
    name = checkpoint_name(uri)
    fold.catch_up(store)
    start, _ = fold.check_checkpoint(store, name)  # ahead of the log: new events would go unseen
    end = store.checkpoint(fold.NAME)
    prices = prices or load_price_table()
    relocate_artifacts(uri)  # a copied or moved mlruns/ writes into itself, not into the folder it came from
    tracking = Tracking(uri, retry)
    if start and not _holds_our_experiments(tracking):
        start = 0  # a fresh (or wiped) tracking store at a known address: write everything again
    summary = SyncSummary(safe_uri(uri), name, start, max(start, end), price_table_version=prices.version)
    if start >= end:
        summary.seconds = time.perf_counter() - started
        return summary
    projection = _Projection(store, tracking, prices, summary, traces)
    projection.run(start, end, chunk_size, progress)
    summary.seconds = time.perf_counter() - started
    return summary


def _holds_our_experiments(tracking: Tracking) -> bool:
    """Whether the tracking store holds an experiment this tool made (the checkpoint is only true of it then)."""
    found = tracking.call("list experiments", tracking.client.search_experiments,
                          filter_string="tags.`track.benchmark` LIKE '%'", max_results=1)
    return bool(found)


def _redacted(values: dict[str, str]) -> dict[str, str]:
    """Params and tags as they leave for the tracking server: whatever a mapping forgot, no key goes."""
    return {k: redact(v) for k, v in values.items()}


class _Projection:
    """One sync: which runs to write, the experiments' run indexes, the client calls and the checkpoints.

    What a run holds (params, metrics, tags) is `mapping`'s; this decides which runs to write and writes them.
    """

    def __init__(self, store: EventStore, tracking: Tracking, prices: PriceTable, summary: SyncSummary,
                 traces: bool = True) -> None:
        self.store = store
        self.with_traces = traces
        self.tracking = tracking
        self.client = tracking.client
        self.prices = prices
        self.summary = summary
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.experiment_ids: dict[str, str] = {}
        self.experiment_tags: dict[str, dict[str, str]] = {}  # as found or created, to write only what differs
        self.index: dict[str, Run] = {}  # stream id -> run, for every experiment loaded
        self.anchor_tags: dict[str, str] = {}  # the log's head, carried by every summary run written

    # -- planning -------------------------------------------------------------------------------

    def _anchor(self, end: int) -> None:
        """The summary runs carry the log's head: an anchor kept outside the store (`track verify --anchor`)."""
        self.anchor_tags = {mapping.LOG_HEAD_TAG: f"{end}:{self.store.hash_at(end)}",
                            mapping.STORE_ID_TAG: self.store.store_id() or "unknown"}

    def run(self, start: int, end: int, chunk_size: int, progress: Progress | None) -> None:
        self._anchor(end)
        work, touched_campaigns = self._plan(start, end)
        for campaign in touched_campaigns:
            self._experiment(self.campaigns[campaign])
        for campaign in sorted(touched_campaigns):
            self._upsert_summary(campaign)
        self._save_views()  # before any checkpoint moves: a killed sync never leaves them unwritten
        # Originals first, so a rerun's baseline run exists when the rerun is written.
        order = sorted(work, key=lambda sid: (self._phase(sid) == "rerun", work[sid]))
        self.summary.attempts_touched = len(order)
        for offset in range(0, len(order), chunk_size):
            self._write_chunk(order[offset:offset + chunk_size], offset, len(order), progress)
            remaining = [work[sid] for sid in order[offset + chunk_size:]]
            self.store.save_checkpoint(self.summary.checkpoint, min(remaining) - 1 if remaining else end)
        if not order:
            self.store.save_checkpoint(self.summary.checkpoint, end)

    def _plan(self, start: int, end: int) -> tuple[dict[str, int], set[str]]:
        """The attempts to write (-> the position to resume from if they are not), and the campaigns touched."""
        first_touch, touched_campaigns = _touched(self.store, start, end)
        self._load(touched_campaigns | {stream_campaign(sid) for sid in first_touch})
        work = self._expand_baseline_links(first_touch)
        touched_campaigns |= {self.rows[sid]["campaign"] for sid in work}
        touched_campaigns &= set(self.campaigns)
        return work, touched_campaigns

    def _write_chunk(self, chunk: list[str], offset: int, total: int, progress: Progress | None) -> None:
        """The chunk's attempt runs, then the summary runs of their campaigns."""
        for done, stream_id in enumerate(chunk, offset + 1):
            self._upsert_attempt(stream_id)
            if progress:
                progress(done, total)
        for campaign in sorted({self.rows[sid]["campaign"] for sid in chunk}):
            self._upsert_summary(campaign)

    def _load(self, names: set[str]) -> None:
        """Campaign rows; attempt rows of these campaigns, their baselines and the reruns based on them."""
        every = queries.campaign_rows(self.store)
        related = set(names)
        related |= {every[n]["baseline_campaign"] for n in names if n in every and every[n]["baseline_campaign"]}
        related |= {n for n, c in every.items() if c["baseline_campaign"] in names}
        self.campaigns = {n: c for n, c in every.items() if n in related}
        self.rows = queries.attempt_rows(self.store, sorted(related))

    def _expand_baseline_links(self, first_touch: dict[str, int]) -> dict[str, int]:
        """A new baseline attempt changes the link of the reruns of its commit: rewrite those too."""
        work = {sid: pos for sid, pos in first_touch.items() if sid in self.rows and self._campaign_of(sid)}
        by_baseline: dict[tuple[str, str], int] = {}
        for sid, pos in work.items():
            row = self.rows[sid]
            key = (row["campaign"], row["commit"])
            by_baseline[key] = min(pos, by_baseline.get(key, pos))
        for sid, row in self.rows.items():
            baseline = (self._campaign_of(sid) or {}).get("baseline_campaign")
            linked = by_baseline.get((baseline, row["commit"])) if baseline else None
            if linked is not None:
                work[sid] = min(linked, work.get(sid, linked))
        return work

    def _campaign_of(self, stream_id: str) -> dict[str, Any] | None:
        return self.campaigns.get(self.rows[stream_id]["campaign"])

    def _phase(self, stream_id: str) -> str:
        campaign = self._campaign_of(stream_id)
        return str(campaign["kind"]) if campaign else "original"

    # -- experiments and their run indexes -------------------------------------------------------

    def _experiment(self, campaign: dict[str, Any]) -> str:
        """The experiment id, created if needed; loads its stream -> run index with one search."""
        name = experiment_name(campaign)
        if name in self.experiment_ids:
            return self.experiment_ids[name]
        experiment_id = self._find_or_create_experiment(name, campaign)
        self.experiment_ids[name] = experiment_id
        self.summary.experiments.append(name)
        self._index_runs(experiment_id)
        return experiment_id

    def _find_or_create_experiment(self, name: str, campaign: dict[str, Any]) -> str:
        found = self.tracking.call("look up the experiment", self.client.get_experiment_by_name, name)
        self.experiment_tags[name] = dict(found.tags) if found is not None else mapping.experiment_tags(campaign)
        if found is not None:
            if found.tags.get(mapping.EXPERIMENT_KIND_TAG) != mapping.EXPERIMENT_KIND:  # made by an older version
                self.tracking.call("tag the experiment", self.client.set_experiment_tag, found.experiment_id,
                                   mapping.EXPERIMENT_KIND_TAG, mapping.EXPERIMENT_KIND)
            return found.experiment_id
        return self.tracking.call("create the experiment", self.client.create_experiment, name,
                                  artifact_location=artifact_location(self.tracking.uri, name),
                                  tags=mapping.experiment_tags(campaign))

    def _index_runs(self, experiment_id: str) -> None:
        """Every run of the experiment that carries a stream id, page by page."""
        token: str | None = None
        while True:
            page = self.tracking.call("search runs", self.client.search_runs, [experiment_id],
                                      max_results=5000, page_token=token)
            for run in page:
                stream_id = run.data.tags.get(STREAM_TAG)
                if stream_id:
                    self.index[stream_id] = run
            token = page.token
            if not token:
                return

    def _save_views(self) -> None:
        """The experiments' saved views: the default one, and one per commit more than one campaign attempted."""
        campaigns_of: dict[tuple[str, str], set[str]] = {}
        for row in self.rows.values():
            campaign = self.campaigns.get(row["campaign"])
            if campaign is not None and row["commit"]:
                campaigns_of.setdefault((experiment_name(campaign), row["commit"]), set()).add(row["campaign"])
        for name, experiment_id in self.experiment_ids.items():
            commits = sorted(c for (n, c), names in campaigns_of.items() if n == name and len(names) > 1)
            have = self.experiment_tags.setdefault(name, {})
            for key, value in views.view_tags(commits).items():
                if have.get(key) != value:
                    self.tracking.call("save a view", self.client.set_experiment_tag, experiment_id, key, value)
                    have[key] = value

    # -- attempt runs ---------------------------------------------------------------------------

    def _upsert_attempt(self, stream_id: str) -> None:
        row = self.rows[stream_id]
        campaign = self.campaigns[row["campaign"]]
        experiment_id = self._experiment(campaign)
        events = self.store.read_stream(stream_id)
        phase = str(campaign["kind"])
        parent = self.index.get(campaign_stream(campaign["name"]))
        params = mapping.attempt_params(row, campaign, phase)
        metrics = mapping.attempt_metrics(row, self.prices)
        tags = self._attempt_tags(row, campaign, events, parent.info.run_id if parent else None)
        start_ms, end_ms = _times(row, events)
        run = self.index.get(stream_id)
        created = run is None
        name = run_name(row, phase)
        if run is None:
            run = self._create_attempt_run(experiment_id, stream_id, start_ms, name)
        changed = created or self._move_to_top_level(run, name)
        trace_id = self._log_evidence(run, row, campaign, events, name, tags)
        changed |= run.data.tags.get(SYNCED_TAG) != tags[SYNCED_TAG]
        if trace_id:  # first: the synced tag stays last
            url = ui_link(self.tracking.uri, views.trace_route(run.info.experiment_id, trace_id))
            tags = {mapping.TRACE_TAG: trace_id, mapping.TRACE_URL_TAG: url, **tags}
        changed |= self._log_diff(run, params, metrics, tags, _ms(events[-1].recorded_at) if events else start_ms)
        changed |= self._set_status(run, mapping.run_status(row), end_ms)
        if not created:
            self.summary.runs_updated += 1 if changed else 0
            self.summary.runs_unchanged += 0 if changed else 1

    def _attempt_tags(self, row: dict[str, Any], campaign: dict[str, Any], events: list[RecordedEvent],
                      parent_run_id: str | None) -> dict[str, str]:
        return mapping.attempt_tags(row, campaign, events, price_table_version=self.prices.version,
                                    parent_run_id=parent_run_id, baseline=self._baseline_link(row, campaign))

    def _baseline_link(self, row: dict[str, Any], campaign: dict[str, Any]) -> BaselineLink | None:
        """The baseline campaign's latest attempt on the same commit, if it has a run yet."""
        chosen = mapping.baseline_attempt(row, campaign, self.campaigns, self.rows.values())
        if chosen is None:
            return None
        run = self.index.get(chosen["stream_id"])
        if run is None:
            return None
        url = ui_link(self.tracking.uri, run_route(run.info.experiment_id, run.info.run_id))
        return BaselineLink(chosen, run.info.run_id, url)

    def _move_to_top_level(self, run: Run, name: str) -> bool:
        """A run synced by an older version was a child of its campaign run (hidden in the runs table) or
        has an older name: move it to the top level and rename it. True if anything changed."""
        changed = False
        if mapping.PARENT_TAG in run.data.tags:
            self.tracking.call("update a run", self.client.delete_tag, run.info.run_id, mapping.PARENT_TAG)
            changed = True
        if run.info.run_name != name:
            self.tracking.call("rename a run", self.client.update_run, run.info.run_id, name=name)
            changed = True
        return changed

    def _create_attempt_run(self, experiment_id: str, stream_id: str, start_ms: int, name: str) -> Run:
        run: Run = self.tracking.call("create a run", self.client.create_run, experiment_id, start_time=start_ms,
                                      tags={STREAM_TAG: stream_id}, run_name=name)
        self.index[stream_id] = run
        self.summary.runs_created += 1
        return run

    def _set_status(self, run: Run, status: str, end_ms: int) -> bool:
        """Move the run to `status` (ending it at `end_ms` unless it is still running); False if it was there."""
        if run.info.status == status:
            return False
        if status == "RUNNING":
            self.tracking.call("update a run", self.client.update_run, run.info.run_id, status=status)
        else:
            self.tracking.call("end a run", self.client.set_terminated, run.info.run_id, status=status,
                               end_time=end_ms)
        return True

    def _log_evidence(self, run: Run, row: dict[str, Any], campaign: dict[str, Any], events: list[RecordedEvent],
                      name: str, tags: dict[str, str]) -> str | None:
        """Upload the attempt's artifacts when its events moved on, and log its trajectory as a trace once
        (a finished attempt, with traces on). Returns the run's trace id, if it has one."""
        trace_id = run.data.tags.get(mapping.TRACE_TAG)
        upload = run.data.tags.get(SYNCED_TAG) != tags[SYNCED_TAG]
        trace = self.with_traces and not trace_id and row["status"] not in ("running", None)
        if not (upload or trace):
            return trace_id
        with tempfile.TemporaryDirectory(prefix="track-artifacts-") as tmp:
            staged = artifacts.stage(self.store, artifacts.run_folder(campaign.get("source"), row), events, Path(tmp))
            if upload:
                self._upload(run, staged, tmp)
            if trace:
                trace_id = self._log_trace(run, row, name, Path(tmp) / "trajectory.json")
        return trace_id

    def _upload(self, run: Run, staged: artifacts.Staged, folder: str) -> None:
        self.summary.evidence_gaps += 1 if staged.problems else 0
        self.summary.evidence_vanished += 1 if staged.vanished else 0
        self.summary.evidence_from_disk += 1 if staged.from_disk else 0
        self.tracking.call("upload artifacts", self.client.log_artifacts, run.info.run_id, folder)

    def _log_trace(self, run: Run, row: dict[str, Any], name: str, trajectory: Path) -> str | None:
        """The staged trajectory as a trace of the run; None when there is no readable one."""
        transcript = traces.read_transcript(trajectory)
        if transcript is None:
            return None
        self.summary.traces += 1
        return self.tracking.call("log a trace", traces.log_trace, self.client, transcript,
                                  experiment_id=run.info.experiment_id, run_id=run.info.run_id, name=name,
                                  stream_id=row["stream_id"], succeeded=row["status"] == "success")

    def _log_diff(self, run: Run, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str],
                  timestamp_ms: int) -> bool:
        """One `log_batch` with only what differs from the run as found (params are write-once in MLflow)."""
        from mlflow.entities import Metric, Param, RunTag

        data = run.data
        new_params = [Param(k, v) for k, v in _redacted(params).items() if k not in data.params]
        new_metrics = [Metric(k, v, timestamp_ms, 0) for k, v in metrics.items() if data.metrics.get(k) != v]
        new_tags = [RunTag(k, v) for k, v in _redacted(tags).items() if data.tags.get(k) != v]
        if not (new_params or new_metrics or new_tags):
            return False
        # The synced-position tag goes last of all writes: it says the artifacts and values are complete.
        self.tracking.call("log values", self.client.log_batch, run.info.run_id, metrics=new_metrics,
                           params=new_params, tags=new_tags)
        return True

    # -- summary runs ---------------------------------------------------------------------------

    def _upsert_summary(self, name: str) -> None:
        """The campaign's parent run: success rates, failure counts, token and cost totals."""
        campaign = self.campaigns[name]
        experiment_id = self._experiment(campaign)
        stream_id = campaign_stream(name)
        rows = [r for r in self.rows.values() if r["campaign"] == name]
        metrics = mapping.campaign_metrics(rows, self.prices)
        params = mapping.summary_params(name, campaign)
        tags = {**mapping.summary_tags(name, campaign, metrics, self.prices.version), **self.anchor_tags}
        start_ms, end_ms = self._campaign_span(rows)
        run = self.index.get(stream_id)
        if run is None:
            run = self._create_summary_run(experiment_id, stream_id, name, campaign, start_ms)
        metrics = mapping.with_vanished_failures(metrics, run.data.metrics)
        changed = self._log_diff(run, params, metrics, tags, int(time.time() * 1000))
        if run.info.status != "FINISHED" or run.info.end_time != end_ms:
            self.tracking.call("end a run", self.client.set_terminated, run.info.run_id, status="FINISHED",
                               end_time=end_ms)
            changed = True
        if changed:
            self.index[stream_id] = self.tracking.call("read a run", self.client.get_run, run.info.run_id)

    def _campaign_span(self, rows: list[dict[str, Any]]) -> tuple[int | None, int]:
        """The campaign's first attempt start and last attempt end (ms): its summary run lasts as long as it did."""
        spans = [_times(row, []) for row in rows if row["run_timestamp"]]
        if not spans:
            return None, int(time.time() * 1000)
        return min(start for start, _ in spans), max(end for _, end in spans)

    def _create_summary_run(self, experiment_id: str, stream_id: str, name: str, campaign: dict[str, Any],
                            start_ms: int | None) -> Run:
        run: Run = self.tracking.call("create a run", self.client.create_run, experiment_id, start_time=start_ms,
                                      tags={STREAM_TAG: stream_id, SUMMARY_TAG: name},
                                      run_name=mapping.summary_run_name(name, campaign))
        self.index[stream_id] = run
        self.summary.summary_runs += 1
        return run


def _touched(store: EventStore, start: int, end: int) -> tuple[dict[str, int], set[str]]:
    """Attempt streams with new events (-> their first new position), and campaigns with new events."""
    first: dict[str, int] = {}
    campaign_names: set[str] = set()
    for batch in store.read_batches(start, 20_000, to_position=end):
        for event in batch:
            if event.stream_id.startswith(ATTEMPT_PREFIX):
                first.setdefault(event.stream_id, event.position)
            elif event.stream_id.startswith(CAMPAIGN_PREFIX):
                campaign_names.add(stream_campaign(event.stream_id))
    return first, campaign_names


def _times(row: dict[str, Any], events: list[RecordedEvent]) -> tuple[int, int]:
    """Run start from the run folder's timestamp (else the first event), end from its duration."""
    start: int | None = None
    if row["run_timestamp"]:
        try:
            start = int(datetime.strptime(row["run_timestamp"], "%Y-%m-%d_%H-%M-%S")
                        .replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            start = None
    if start is None:
        start = _ms(events[0].recorded_at) if events else int(time.time() * 1000)
    end = start + int((row["duration_s"] or 0) * 1000)
    return start, end


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)
