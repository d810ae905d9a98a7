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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.classify.redaction import redact
from tracker.domain import outcomes
from tracker.domain.events import RecordedEvent
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.domain.streams import ATTEMPT_PREFIX, CAMPAIGN_PREFIX, campaign_stream, stream_campaign
from tracker.eventstore.store import EventStore
from tracker.projections.mlflow import artifacts
from tracker.projections.mlflow.client import (
    RetryPolicy,
    Tracking,
    artifact_location,
    checkpoint_name,
    run_url,
    safe_uri,
)
from tracker.projections.read_model import fold, queries
from tracker.settings import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow.entities import Run

STREAM_TAG = "track.stream_id"
SUMMARY_TAG = "track.campaign_summary"
SYNCED_TAG = "track.synced_position"
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
MAX_TAG = 5000  # MLflow refuses tag values over 8000 characters

Progress = Callable[[int, int], None]

_RUN_STATUS = {"success": "FINISHED", "running": "RUNNING", "abandoned": "KILLED", "interrupted": "KILLED"}
_TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens")


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
    experiments: list[str] = field(default_factory=list)
    price_table_version: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri, "checkpoint": self.checkpoint, "from_position": self.from_position,
            "to_position": self.to_position, "attempts_touched": self.attempts_touched,
            "runs_created": self.runs_created, "runs_updated": self.runs_updated,
            "runs_unchanged": self.runs_unchanged, "summary_runs": self.summary_runs,
            "experiments": self.experiments, "price_table_version": self.price_table_version,
            "seconds": round(self.seconds, 3),
        }


def experiment_name(campaign: dict[str, Any]) -> str:
    return f"{campaign['benchmark']}/{campaign['agent']}/{campaign['model']}"


def run_name(row: dict[str, Any], phase: str) -> str:
    return f"{row['repo']}@{(row['commit'] or '')[:8]} · {phase}"


def sync(store: EventStore, tracking_uri: str | None = None, *, prices: PriceTable | None = None,
         retry: RetryPolicy | None = None, progress: Progress | None = None, chunk_size: int = 50) -> SyncSummary:
    """Project every event after this tracking URI's checkpoint into MLflow."""
    started = time.perf_counter()
    uri = resolve_tracking_uri(tracking_uri)
    name = checkpoint_name(uri)
    fold.catch_up(store)
    start = store.checkpoint(name)
    end = store.checkpoint(fold.NAME)
    prices = prices or load_price_table()
    summary = SyncSummary(safe_uri(uri), name, start, max(start, end), price_table_version=prices.version)
    if start >= end:
        summary.seconds = time.perf_counter() - started
        return summary
    projection = _Projection(store, Tracking(uri, retry), prices, summary)
    projection.run(start, end, chunk_size, progress)
    summary.seconds = time.perf_counter() - started
    return summary


class _Projection:
    """One sync: the work list, the experiments' run indexes, and the writes."""

    def __init__(self, store: EventStore, tracking: Tracking, prices: PriceTable, summary: SyncSummary) -> None:
        self.store = store
        self.tracking = tracking
        self.client = tracking.client
        self.prices = prices
        self.summary = summary
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.experiment_ids: dict[str, str] = {}
        self.index: dict[str, Run] = {}  # stream id -> run, for every experiment loaded

    # -- planning -------------------------------------------------------------------------------

    def run(self, start: int, end: int, chunk_size: int, progress: Progress | None) -> None:
        first_touch, touched_campaigns = _touched(self.store, start, end)
        self._load(touched_campaigns | {stream_campaign(sid) for sid in first_touch})
        work = self._expand_baseline_links(first_touch)
        touched_campaigns |= {self.rows[sid]["campaign"] for sid in work}
        touched_campaigns &= set(self.campaigns)
        for campaign in touched_campaigns:
            self._experiment(self.campaigns[campaign])
        for campaign in sorted(touched_campaigns):
            self._upsert_summary(campaign)
        # Originals first, so a rerun's baseline run exists when the rerun is written.
        order = sorted(work, key=lambda sid: (self._phase(sid) == "rerun", work[sid]))
        self.summary.attempts_touched = len(order)
        checkpoint = self.summary.checkpoint
        for offset in range(0, len(order), chunk_size):
            chunk = order[offset:offset + chunk_size]
            for done, stream_id in enumerate(chunk, offset + 1):
                self._upsert_attempt(stream_id)
                if progress:
                    progress(done, len(order))
            for campaign in sorted({self.rows[sid]["campaign"] for sid in chunk}):
                self._upsert_summary(campaign)
            remaining = [work[sid] for sid in order[offset + chunk_size:]]
            self.store.save_checkpoint(checkpoint, min(remaining) - 1 if remaining else end)
        if not order:
            self.store.save_checkpoint(checkpoint, end)

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

    def _experiment(self, campaign: dict[str, Any]) -> str:
        """The experiment id, created if needed; loads its stream -> run index with one search."""
        name = experiment_name(campaign)
        if name in self.experiment_ids:
            return self.experiment_ids[name]
        found = self.tracking.call("look up the experiment", self.client.get_experiment_by_name, name)
        if found is None:
            experiment_id = self.tracking.call(
                "create the experiment", self.client.create_experiment, name,
                artifact_location=artifact_location(self.tracking.uri, name),
                tags={"track.benchmark": campaign["benchmark"], "track.agent": campaign["agent"],
                      "track.model": campaign["model"]})
        else:
            experiment_id = found.experiment_id
        self.experiment_ids[name] = experiment_id
        self.summary.experiments.append(name)
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
                return experiment_id

    # -- writing --------------------------------------------------------------------------------

    def _upsert_attempt(self, stream_id: str) -> None:
        row = self.rows[stream_id]
        campaign = self.campaigns[row["campaign"]]
        experiment_id = self._experiment(campaign)
        events = self.store.read_stream(stream_id)
        phase = str(campaign["kind"])
        parent = self.index.get(campaign_stream(campaign["name"]))
        params = self._attempt_params(row, campaign, phase)
        metrics = self._attempt_metrics(row)
        tags = self._attempt_tags(row, campaign, events, parent.info.run_id if parent else None)
        start_ms, end_ms = _times(row, events)
        run = self.index.get(stream_id)
        created = run is None
        if run is None:
            run = self.tracking.call("create a run", self.client.create_run, experiment_id, start_time=start_ms,
                                     tags={STREAM_TAG: stream_id}, run_name=run_name(row, phase))
            self.index[stream_id] = run
            self.summary.runs_created += 1
        run_id = run.info.run_id
        changed = created
        if run.data.tags.get(SYNCED_TAG) != tags[SYNCED_TAG]:
            self._log_artifacts(run_id, row, campaign, events)
            changed = True
        changed |= self._log_diff(run, params, metrics, tags, _ms(events[-1].recorded_at) if events else start_ms)
        status = _RUN_STATUS.get(row["status"] or "", "FAILED")
        if run.info.status != status:
            if status == "RUNNING":
                self.tracking.call("update a run", self.client.update_run, run_id, status=status)
            else:
                self.tracking.call("end a run", self.client.set_terminated, run_id, status=status, end_time=end_ms)
            changed = True
        if not created:
            self.summary.runs_updated += 1 if changed else 0
            self.summary.runs_unchanged += 0 if changed else 1

    def _log_artifacts(self, run_id: str, row: dict[str, Any], campaign: dict[str, Any],
                       events: list[RecordedEvent]) -> None:
        folder = artifacts.run_folder(campaign.get("source"), row)
        with tempfile.TemporaryDirectory(prefix="track-artifacts-") as tmp:
            artifacts.stage(folder, events, Path(tmp))
            self.tracking.call("upload artifacts", self.client.log_artifacts, run_id, tmp)

    def _log_diff(self, run: Run, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str],
                  timestamp_ms: int) -> bool:
        """One `log_batch` with only what differs from the run as found (params are write-once in MLflow)."""
        from mlflow.entities import Metric, Param, RunTag

        data = run.data
        new_params = [Param(k, v) for k, v in params.items() if k not in data.params]
        new_metrics = [Metric(k, v, timestamp_ms, 0) for k, v in metrics.items() if data.metrics.get(k) != v]
        new_tags = [RunTag(k, v) for k, v in tags.items() if data.tags.get(k) != v]
        if not (new_params or new_metrics or new_tags):
            return False
        # The synced-position tag goes last of all writes: it says the artifacts and values are complete.
        self.tracking.call("log values", self.client.log_batch, run.info.run_id, metrics=new_metrics,
                           params=new_params, tags=new_tags)
        return True

    def _attempt_params(self, row: dict[str, Any], campaign: dict[str, Any], phase: str) -> dict[str, str]:
        return {
            "commit": row["commit"], "repo": row["repo"], "item_id": row["item_id"] or "",
            "agent": row["agent"] or campaign["agent"], "model": row["model"] or campaign["model"],
            "campaign": row["campaign"], "phase": phase,
            "agent_fix_commit": campaign["agent_fix_commit"] or "none" if phase == "rerun" else "none",
            "run_timestamp": row["run_timestamp"] or "",
        }

    def _attempt_metrics(self, row: dict[str, Any]) -> dict[str, float]:
        values: dict[str, Any] = {column: row[column] for column in _TOKEN_COLUMNS}
        if row["input_tokens"] is not None or row["output_tokens"] is not None:
            values["total_tokens"] = (row["input_tokens"] or 0) + (row["output_tokens"] or 0)
        values["cost_usd"] = self.prices.cost_usd(row.get("usage_model") or row["model"], row["input_tokens"],
                                                  row["cached_input_tokens"], row["output_tokens"])
        values["agent_reported_cost_usd"] = row.get("agent_reported_cost_usd")
        values["duration_s"] = row["duration_s"]
        values["llm_calls"] = row["llm_calls"]
        if row["lines_added"] is not None or row["lines_removed"] is not None:
            values["patch_lines"] = (row["lines_added"] or 0) + (row["lines_removed"] or 0)
        values["patch_files"] = row["patch_files"]
        values["patch_bytes"] = row["patch_bytes"]
        for column in ("speedup", "baseline_ms", "patched_ms"):
            values[column] = row[column]
        values["success"] = 1 if row["status"] == "success" else 0
        return {k: float(v) for k, v in values.items() if v is not None}

    def _attempt_tags(self, row: dict[str, Any], campaign: dict[str, Any], events: list[RecordedEvent],
                      parent_run_id: str | None) -> dict[str, str]:
        category = row["failure_category"] or ("none" if row["status"] == "success" else "unclassified")
        history = artifacts.failure_history(events)
        evidence = history[-1]["evidence"] if history else []
        why = "; ".join(f"{e.get('file')}: {e.get('excerpt')}" for e in evidence[:2])
        tags = {
            "status": row["status"] or "unknown",
            "failure_category": category,
            "outcome_level": outcomes.highest_level(row),
            "eval_status": row.get("eval_status") or "not_evaluated",
            "incidents": _cut(", ".join(f"{i['category']} x{i.get('count')}"
                                        for i in _json_list(row.get("incidents")))),
            "failure_rule": row["rule_id"] or "",
            "failure_evidence": _cut(redact(why)) if category != "none" else "",
            "failure_history": _cut(" | ".join(f"{h['recorded_at'][:19]}Z {h['category']} ({h['rule_id']})"
                                               for h in history)),
            "rules_version": row["rules_version"] or "",
            "price_table_version": self.prices.version,
            "track.campaign": row["campaign"],
            "track.event_count": str(len(events)),
            "track.problems": _cut(", ".join(f"{p['file']}: {p['kind']}" for p in _json_list(row["problems"]))),
            NOTE_TAG: _cut(self._note(row, campaign, category, why)),
        }
        if parent_run_id:
            tags[PARENT_TAG] = parent_run_id
        tags.update(self._baseline_tags(row, campaign))
        tags[SYNCED_TAG] = str(row["last_position"])
        return tags

    def _baseline_tags(self, row: dict[str, Any], campaign: dict[str, Any]) -> dict[str, str]:
        """The baseline campaign's latest attempt on the same commit, if it has a run yet."""
        baseline = campaign.get("baseline_campaign")
        if not baseline or baseline not in self.campaigns:
            return {}
        candidates = [r for r in self.rows.values() if r["campaign"] == baseline and r["commit"] == row["commit"]]
        if not candidates:
            return {}
        chosen = max(candidates, key=lambda r: r["run_timestamp"] or "")
        run = self.index.get(chosen["stream_id"])
        if run is None:
            return {}
        return {"track.baseline_run_id": run.info.run_id,
                "track.baseline_run_url": run_url(self.tracking.uri, run.info.experiment_id, run.info.run_id),
                "track.baseline_status": chosen["status"] or "",
                "track.baseline_failure_category": chosen["failure_category"] or "none"}

    def _note(self, row: dict[str, Any], campaign: dict[str, Any], category: str, why: str) -> str:
        lines = [f"**{row['repo']}@{row['commit']}** ({row['item_id']}), campaign `{row['campaign']}` "
                 f"({campaign['kind']}): status **{row['status']}**, failure category **{category}**."]
        if why and category != "none":
            lines.append(f"\nWhy: `{redact(why)[:1500]}`")
        return "\n".join(lines)

    def _upsert_summary(self, name: str) -> None:
        """The campaign's parent run: success rates, failure counts, token and cost totals."""
        campaign = self.campaigns[name]
        experiment_id = self._experiment(campaign)
        stream_id = campaign_stream(name)
        rows = [r for r in self.rows.values() if r["campaign"] == name]
        metrics = _campaign_metrics(rows, self.prices)
        params = {"campaign": name, "phase": campaign["kind"], "agent": campaign["agent"],
                  "model": campaign["model"], "agent_fix_commit": campaign["agent_fix_commit"] or "none",
                  "baseline_campaign": campaign["baseline_campaign"] or "none"}
        tags = {SUMMARY_TAG: name, "track.campaign": name, "price_table_version": self.prices.version,
                NOTE_TAG: _summary_note(name, campaign, metrics)}
        run = self.index.get(stream_id)
        if run is None:
            run = self.tracking.call("create a run", self.client.create_run, experiment_id,
                                     tags={STREAM_TAG: stream_id, SUMMARY_TAG: name},
                                     run_name=f"{name} · {campaign['kind']} summary")
            self.index[stream_id] = run
            self.summary.summary_runs += 1
        old = run.data.metrics
        metrics.update({k: 0.0 for k in old if k.startswith("failures.") and k not in metrics})
        if self._log_diff(run, params, metrics, tags, int(time.time() * 1000)):
            self.index[stream_id] = self.tracking.call("read a run", self.client.get_run, run.info.run_id)
        if run.info.status != "FINISHED":
            self.tracking.call("end a run", self.client.set_terminated, run.info.run_id, status="FINISHED")


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


def _campaign_metrics(rows: list[dict[str, Any]], prices: PriceTable) -> dict[str, float]:
    def rates(subset: list[dict[str, Any]], suffix: str) -> dict[str, float]:
        ok = [r for r in subset if r["status"] == "success"]
        commits = {r["commit"] for r in subset}
        ok_commits = {r["commit"] for r in ok}
        return {f"attempts{suffix}": len(subset), f"succeeded{suffix}": len(ok),
                f"success_rate{suffix}": len(ok) / len(subset) if subset else 0.0,
                f"commits{suffix}": len(commits), f"commits_succeeded{suffix}": len(ok_commits),
                f"commit_success_rate{suffix}": len(ok_commits) / len(commits) if commits else 0.0}

    metrics: dict[str, float] = rates(rows, "")
    for repo in sorted({r["repo"] for r in rows}):
        metrics.update(rates([r for r in rows if r["repo"] == repo], f".{repo}"))
    for row in rows:
        if row["status"] != "success":
            key = f"failures.{row['failure_category'] or 'unclassified'}"
            metrics[key] = metrics.get(key, 0) + 1
    for column in _TOKEN_COLUMNS:
        metrics[f"{column}_total"] = sum(r[column] or 0 for r in rows)
    metrics["total_tokens_total"] = metrics["input_tokens_total"] + metrics["output_tokens_total"]
    costs = [prices.cost_usd(r["model"], r["input_tokens"], r["cached_input_tokens"], r["output_tokens"]) for r in rows]
    metrics["cost_usd_total"] = round(sum(c for c in costs if c is not None), 6)
    metrics["attempts_priced"] = sum(1 for c in costs if c is not None)
    return {k: float(v) for k, v in metrics.items()}


def _summary_note(name: str, campaign: dict[str, Any], metrics: dict[str, float]) -> str:
    failures = ", ".join(f"{k.split('.', 1)[1]} {int(v)}" for k, v in sorted(metrics.items(), key=lambda kv: -kv[1])
                         if k.startswith("failures.") and v)
    return (f"Campaign **{name}** ({campaign['kind']}, {campaign['agent']}/{campaign['model']}): "
            f"{int(metrics['succeeded'])}/{int(metrics['attempts'])} attempts succeeded "
            f"({metrics['success_rate']:.1%}), {int(metrics['commits_succeeded'])}/{int(metrics['commits'])} commits; "
            f"cost ${metrics['cost_usd_total']:.2f}. Failures: {failures or 'none'}.")


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


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TAG else text[:MAX_TAG - 1] + "…"


def _json_list(value: Any) -> Iterable[dict[str, Any]]:
    import json

    if isinstance(value, list):
        return value
    return json.loads(value or "[]")
