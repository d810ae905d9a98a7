"""What an attempt or a campaign looks like in MLflow: pure functions from read-model rows to values.

No client, no store, no files: an attempt row (with its campaign row, its events, the price table and,
for a rerun, the baseline run it is linked to) becomes the run's name, params, metrics and tags; a
campaign's attempt rows become its summary run's metrics and tags. `runs` decides which runs to write
and writes them; everything a run *says* is decided here.

Values follow MLflow's rules: params are strings and a missing value is `""` or `"none"`, never the
string `"None"`; a metric with no value is left out, not logged as 0; tag values are cut to `MAX_TAG`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracker.classify.redaction import redact
from tracker.domain import outcomes
from tracker.domain.events import RecordedEvent
from tracker.domain.pricing import PriceTable, billed_model
from tracker.projections.mlflow.artifacts import failure_history

Row = Mapping[str, Any]
"""A read-model row (`queries.attempt_rows` / `queries.campaign_rows`)."""

STREAM_TAG = "track.stream_id"
SUMMARY_TAG = "track.campaign_summary"
SYNCED_TAG = "track.synced_position"
PARENT_TAG = "mlflow.parentRunId"
"""Not set on attempts: a child run hides under its collapsed parent in the runs table (and a commit filter
then shows only the parents). Attempts sit at top level and name their campaign's run in CAMPAIGN_RUN_TAG."""
CAMPAIGN_RUN_TAG = "track.campaign_run_id"
TRACE_TAG = "track.trace_id"  # the attempt's trajectory trace, logged once
TRACE_URL_TAG = "track.trace_url"  # where the UI shows it, whatever the Traces tab's time window
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""Opens the experiment on its runs table; without it MLflow 3 may infer a GenAI experiment from its traces
and open on the traces overview."""
NOTE_TAG = "mlflow.note.content"
LOG_HEAD_TAG = "track.log_head"  # `POSITION:HASH` of the log when the summary was written: an anchor
STORE_ID_TAG = "track.store_id"
MAX_TAG = 5000  # MLflow refuses tag values over 8000 characters

RUN_STATUS = {"success": "FINISHED", "running": "RUNNING", "abandoned": "KILLED", "interrupted": "KILLED"}
"""Attempt status -> MLflow run status; any other status (error, timeout, ...) is FAILED."""
TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens")
_RUN_COLUMNS = ("duration_s", "llm_calls")
_PATCH_AND_SPEED_COLUMNS = ("patch_files", "patch_bytes", "speedup", "baseline_ms", "patched_ms")
"""Attempt columns logged as metrics of the same name (when they have a value)."""
_SUMMED = {"total_tokens": ("input_tokens", "output_tokens"), "patch_lines": ("lines_added", "lines_removed")}
"""Metrics that add two columns, logged when either column has a value."""
_EVIDENCE_LINES = 2
_NOTE_WHY_CHARS = 1500


# -- names ------------------------------------------------------------------------------------------

def experiment_name(campaign: Row) -> str:
    return f"{campaign['benchmark']}/{campaign['agent']}/{campaign['model']}"


def experiment_tags(campaign: Row) -> dict[str, str]:
    return {"track.benchmark": campaign["benchmark"], "track.agent": campaign["agent"],
            "track.model": campaign["model"], EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}


def run_name(row: Row, phase: str) -> str:
    """What differs first, then the outcome, then the commit: `rerun · quota_exceeded · sglang@08f60a17` (`ok` on
    success). The runs table cuts names at about 22 characters: filtered to one commit, the attempts still
    read apart by phase and category."""
    category = failure_category(row)
    outcome = "ok" if category == "none" else category
    return f"{phase} · {outcome} · {row['repo']}@{(row['commit'] or '')[:8]}"


def summary_run_name(name: str, campaign: Row) -> str:
    return f"{name} · {campaign['kind']} summary"


def run_status(row: Row) -> str:
    """The MLflow status of an attempt's run."""
    return RUN_STATUS.get(row["status"] or "", "FAILED")


# -- one attempt ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BaselineLink:
    """The baseline attempt a rerun attempt is compared with, and where its MLflow run is."""

    row: Row
    run_id: str
    run_url: str


def baseline_attempt(row: Row, campaign: Row, campaigns: Mapping[str, Row], rows: Iterable[Row]) -> Row | None:
    """The baseline campaign's latest attempt (by run timestamp) on the same commit, if any."""
    baseline = campaign.get("baseline_campaign")
    if not baseline or baseline not in campaigns:
        return None
    candidates = [r for r in rows if r["campaign"] == baseline and r["commit"] == row["commit"]]
    if not candidates:
        return None
    return max(candidates, key=lambda r: r["run_timestamp"] or "")


def attempt_params(row: Row, campaign: Row, phase: str) -> dict[str, str]:
    return {
        "commit": row["commit"], "repo": row["repo"], "item_id": row["item_id"] or "",
        "agent": row["agent"] or campaign["agent"], "model": row["model"] or campaign["model"],
        "campaign": row["campaign"], "phase": phase,
        "agent_fix_commit": campaign["agent_fix_commit"] or "none" if phase == "rerun" else "none",
        "run_timestamp": row["run_timestamp"] or "",
    }


def attempt_cost(row: Row, prices: PriceTable) -> float | None:
    """USD by the price table, for the model billed (`pricing.billed_model`)."""
    return prices.cost_usd(billed_model(row["model"], row.get("usage_model")), row["input_tokens"],
                           row["cached_input_tokens"], row["output_tokens"])


def _summed(row: Row, metric: str) -> int | float | None:
    first, second = _SUMMED[metric]
    if row[first] is None and row[second] is None:
        return None
    return (row[first] or 0) + (row[second] or 0)


def attempt_metrics(row: Row, prices: PriceTable) -> dict[str, float]:
    values: dict[str, Any] = {
        **{column: row[column] for column in TOKEN_COLUMNS},
        "total_tokens": _summed(row, "total_tokens"),
        "cost_usd": attempt_cost(row, prices),
        "agent_reported_cost_usd": row.get("agent_reported_cost_usd"),
        **{column: row[column] for column in _RUN_COLUMNS},
        "patch_lines": _summed(row, "patch_lines"),
        **{column: row[column] for column in _PATCH_AND_SPEED_COLUMNS},
        "success": 1 if row["status"] == "success" else 0,
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def failure_category(row: Row) -> str:
    """The classified category; `none` for a success, `unclassified` for a failure without one."""
    return row["failure_category"] or ("none" if row["status"] == "success" else "unclassified")


def _why(history: Sequence[Mapping[str, Any]]) -> str:
    """The latest classification's first evidence lines, `file: excerpt; ...`."""
    evidence = history[-1]["evidence"] if history else []
    return "; ".join(f"{e.get('file')}: {e.get('excerpt')}" for e in evidence[:_EVIDENCE_LINES])


def _history_text(history: Iterable[Mapping[str, Any]]) -> str:
    return " | ".join(f"{h['recorded_at'][:19]}Z {h['category']} ({h['rule_id']})" for h in history)


def _incidents_text(row: Row) -> str:
    return ", ".join(f"{i['category']} x{i.get('count')}" for i in _json_list(row.get("incidents")))


def _problems_text(row: Row) -> str:
    return ", ".join(f"{p['file']}: {p['kind']}" for p in _json_list(row["problems"]))


def attempt_tags(row: Row, campaign: Row, events: Sequence[RecordedEvent], *, price_table_version: str,
                 parent_run_id: str | None = None, baseline: BaselineLink | None = None) -> dict[str, str]:
    """The attempt run's tags; the synced-position tag comes last (it says the run is complete)."""
    category = failure_category(row)
    history = failure_history(events)
    why = _why(history)
    tags = {
        "status": row["status"] or "unknown",
        "failure_category": category,
        "outcome_level": outcomes.highest_level(row),
        "eval_status": row.get("eval_status") or "not_evaluated",
        "incidents": cut(_incidents_text(row)),
        "failure_rule": row["rule_id"] or "",
        "failure_evidence": cut(redact(why)) if category != "none" else "",
        "failure_history": cut(_history_text(history)),
        "rules_version": row["rules_version"] or "",
        "price_table_version": price_table_version,
        "track.campaign": row["campaign"],
        "track.event_count": str(len(events)),
        "track.problems": cut(_problems_text(row)),
        NOTE_TAG: cut(attempt_note(row, campaign, category, why)),
    }
    if parent_run_id:
        tags[CAMPAIGN_RUN_TAG] = parent_run_id
    tags.update(baseline_tags(baseline))
    tags[SYNCED_TAG] = str(row["last_position"])
    return tags


def baseline_tags(link: BaselineLink | None) -> dict[str, str]:
    """Where a rerun attempt's baseline run is and how it ended (nothing until that run exists)."""
    if link is None:
        return {}
    return {"track.baseline_run_id": link.run_id,
            "track.baseline_run_url": link.run_url,
            "track.baseline_status": link.row["status"] or "",
            "track.baseline_failure_category": link.row["failure_category"] or "none"}


def attempt_note(row: Row, campaign: Row, category: str, why: str) -> str:
    """The run's description (Markdown): what was run, how it ended, and why it failed."""
    lines = [f"**{row['repo']}@{row['commit']}** ({row['item_id']}), campaign `{row['campaign']}` "
             f"({campaign['kind']}): status **{row['status']}**, failure category **{category}**."]
    if why and category != "none":
        lines.append(f"\nWhy: `{redact(why)[:_NOTE_WHY_CHARS]}`")
    return "\n".join(lines)


# -- one campaign -----------------------------------------------------------------------------------

def _rates(subset: Sequence[Row], suffix: str) -> dict[str, float]:
    """Attempt and commit counts and success rates of `subset`, the metric names ending in `suffix`."""
    ok = [r for r in subset if r["status"] == "success"]
    commits = {r["commit"] for r in subset}
    ok_commits = {r["commit"] for r in ok}
    return {f"attempts{suffix}": len(subset), f"succeeded{suffix}": len(ok),
            f"success_rate{suffix}": len(ok) / len(subset) if subset else 0.0,
            f"commits{suffix}": len(commits), f"commits_succeeded{suffix}": len(ok_commits),
            f"commit_success_rate{suffix}": len(ok_commits) / len(commits) if commits else 0.0}


def _failure_counts(rows: Iterable[Row]) -> dict[str, float]:
    """`failures.<category>`: failed attempts per category (`unclassified` when there is none)."""
    return dict(Counter(f"failures.{r['failure_category'] or 'unclassified'}" for r in rows
                        if r["status"] != "success"))


def _token_totals(rows: Sequence[Row]) -> dict[str, float]:
    totals: dict[str, float] = {f"{column}_total": sum(r[column] or 0 for r in rows) for column in TOKEN_COLUMNS}
    totals["total_tokens_total"] = totals["input_tokens_total"] + totals["output_tokens_total"]
    return totals


def _cost_totals(rows: Iterable[Row], prices: PriceTable) -> dict[str, float]:
    costs = [attempt_cost(r, prices) for r in rows]  # the sum of the attempts' own costs
    return {"cost_usd_total": round(sum(c for c in costs if c is not None), 6),
            "attempts_priced": sum(1 for c in costs if c is not None)}


def campaign_metrics(rows: Sequence[Row], prices: PriceTable) -> dict[str, float]:
    """The summary run's metrics: rates overall and per repo, failure counts, token and cost totals."""
    metrics = _rates(rows, "")
    for repo in sorted({r["repo"] for r in rows}):
        metrics.update(_rates([r for r in rows if r["repo"] == repo], f".{repo}"))
    metrics.update(_failure_counts(rows))
    metrics.update(_token_totals(rows))
    metrics.update(_cost_totals(rows, prices))
    return {k: float(v) for k, v in metrics.items()}


def with_vanished_failures(metrics: Mapping[str, float], logged: Mapping[str, float]) -> dict[str, float]:
    """`metrics`, plus 0 for every failure category the run has logged that no attempt has any more."""
    vanished = {k: 0.0 for k in logged if k.startswith("failures.") and k not in metrics}
    return {**metrics, **vanished}


def summary_params(name: str, campaign: Row) -> dict[str, str]:
    return {"campaign": name, "phase": campaign["kind"], "agent": campaign["agent"],
            "model": campaign["model"], "agent_fix_commit": campaign["agent_fix_commit"] or "none",
            "baseline_campaign": campaign["baseline_campaign"] or "none"}


def summary_tags(name: str, campaign: Row, metrics: Mapping[str, float], price_table_version: str) -> dict[str, str]:
    return {SUMMARY_TAG: name, "track.campaign": name, "price_table_version": price_table_version,
            NOTE_TAG: summary_note(name, campaign, metrics)}


def summary_note(name: str, campaign: Row, metrics: Mapping[str, float]) -> str:
    failures = ", ".join(f"{k.split('.', 1)[1]} {int(v)}" for k, v in sorted(metrics.items(), key=lambda kv: -kv[1])
                         if k.startswith("failures.") and v)
    return (f"Campaign **{name}** ({campaign['kind']}, {campaign['agent']}/{campaign['model']}): "
            f"{int(metrics['succeeded'])}/{int(metrics['attempts'])} attempts succeeded "
            f"({metrics['success_rate']:.1%}), {int(metrics['commits_succeeded'])}/{int(metrics['commits'])} commits; "
            f"cost ${metrics['cost_usd_total']:.2f}. Failures: {failures or 'none'}.")


# -- values -----------------------------------------------------------------------------------------

def cut(text: str) -> str:
    """A tag value MLflow accepts: at most `MAX_TAG` characters, an ellipsis where it was cut."""
    return text if len(text) <= MAX_TAG else text[:MAX_TAG - 1] + "…"


def _json_list(value: Any) -> Iterable[dict[str, Any]]:
    """A read-model JSON list column (stored as text, or already decoded)."""
    if isinstance(value, list):
        return value
    result: Iterable[dict[str, Any]] = json.loads(value or "[]")
    return result
