"""Log a comparison to MLflow: one comparison run beside the attempt runs of the same agent/model.

The run lives in the experiment `<benchmark>/<agent>/<model>` of the rerun campaign (where the
per-attempt projection puts the attempts), with the comparison's tables (`log_table`), the HTML and
Markdown reports and the JSON document as artifacts, headline metrics per repo, and tags naming
both campaigns. Logging is idempotent: the run is keyed by what the comparison was computed from
(campaigns, repo filter, store position, criteria, price table), so comparing the same data twice
finds the existing run instead of creating a duplicate; new data makes a new run (history is kept).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tracker.analysis.compare import Comparison
from tracker.errors import TrackerError
from tracker.projections.mlflow.client import artifact_location, safe_uri
from tracker.projections.read_model.queries import frame_records
from tracker.reports import files, html_report, markdown
from tracker.settings import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

KIND_TAG = "track.kind"
KEY_TAG = "track.comparison_key"
PAIR_TAG = "track.comparison_pair"
"""One live run per pair (baseline, rerun, repo filter, level): a newer comparison replaces the older run."""


class ComparisonNotLogged(TrackerError):
    """MLflow could not be reached or refused the comparison run (the report files are still written)."""


@dataclass(frozen=True)
class LoggedComparison:
    tracking_uri: str
    experiment: str
    experiment_id: str
    run_id: str
    created: bool
    """False when a run for exactly this comparison already existed."""


def experiment_name(c: Comparison) -> str:
    return f"{c.rerun.get('benchmark') or 'iso-bench'}/{c.rerun['agent']}/{c.rerun['model']}"


def comparison_key(c: Comparison) -> str:
    basis = {"baseline": c.baseline["name"], "rerun": c.rerun["name"], "repo": c.meta.get("repo_filter"),
             "position": c.meta.get("store_position"), "head": c.meta.get("store_head"),
             "criteria": c.meta.get("criteria"),
             "criteria_rows": frame_records(c.criteria), "prices": c.meta.get("price_table")}
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:32]


def pair_key(c: Comparison) -> str:
    basis = [c.baseline["name"], c.rerun["name"], c.meta.get("repo_filter"), c.meta.get("level")]
    return hashlib.sha256(json.dumps(basis, default=str).encode()).hexdigest()[:32]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """MLflow's table logger wants plain Python values (no pd.NA)."""
    return frame.astype(object).where(frame.notna(), None)


_SUMMARY_METRICS = ("baseline_successes", "baseline_commits", "baseline_rate", "rerun_successes", "rerun_commits",
                    "rerun_rate", "after_successes", "after_rate", "fixed", "regressed", "still_failing",
                    "not_rerun", "mcnemar_p")
_COST_METRICS = ("rerun_cost_usd", "estimate_usd", "tokens_per_success", "cost_per_success_usd")


def metrics(c: Comparison) -> dict[str, float]:
    """`<repo>/<column>` for every value of the summary and cost tables (missing values left out)."""
    out: dict[str, float] = {}
    for frame, columns in ((c.summary, _SUMMARY_METRICS), (c.cost, _COST_METRICS)):
        for row in frame.to_dict("records"):
            out.update({f"{row['repo']}/{key}": float(row[key]) for key in columns if pd.notna(row[key])})
    return out


def run_name(c: Comparison) -> str:
    return f"compare {c.rerun['name']} vs {c.baseline['name']}"


def run_tags(c: Comparison) -> dict[str, str]:
    """The tags the run is created with (the comparison key is set last, when everything is logged)."""
    return {KIND_TAG: "comparison", "track.baseline": c.baseline["name"], "track.rerun": c.rerun["name"],
            "track.agent_fix_commit": str(c.rerun.get("agent_fix_commit") or "")}


def params(c: Comparison) -> dict[str, str]:
    """What the comparison was computed from; a missing value is left out (never the string "None")."""
    values = {"baseline": c.baseline["name"], "rerun": c.rerun["name"], "agent": c.rerun["agent"],
              "model": c.rerun["model"], "agent_fix_commit": c.rerun.get("agent_fix_commit"),
              "repo_filter": c.meta.get("repo_filter"), "price_table": c.meta.get("price_table"),
              "criteria": (c.meta.get("criteria") or {}).get("name"),
              "store_position": c.meta.get("store_position")}
    return {k: str(v) for k, v in values.items() if v is not None}


def level_tags(c: Comparison) -> dict[str, str]:
    """`track.level.<scope>`: the highest criteria level each scope reached."""
    levels = dict(zip(c.criteria["scope"], c.criteria["level_reached"], strict=True))
    return {f"track.level.{scope}": level for scope, level in levels.items()}


def log_comparison(c: Comparison, tracking_uri: str | None = None) -> LoggedComparison:
    """Create (or find) the comparison run and log tables, reports and metrics into it."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri)
    name = experiment_name(c)
    key = comparison_key(c)
    try:
        return _log(MlflowClient(tracking_uri=uri), c, uri, name, key)
    except (MlflowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ComparisonNotLogged(f"could not log the comparison to MLflow at {safe_uri(uri)}: {first}") from None
    except Exception as exc:  # requests' connection errors and the like, without importing them
        if type(exc).__module__.split(".")[0] not in ("requests", "urllib3"):
            raise
        raise ComparisonNotLogged(f"could not reach MLflow at {safe_uri(uri)}: {type(exc).__name__}") from None


def _log(client: MlflowClient, c: Comparison, uri: str, name: str, key: str) -> LoggedComparison:
    """The run for `key` if it exists; else a new run with everything logged, the key tag last."""
    experiment_id = _experiment_id(client, uri, name)
    pair = pair_key(c)
    existing = client.search_runs([experiment_id], f"tags.`{PAIR_TAG}` = '{pair}'", max_results=10)
    same = [run for run in existing if run.data.tags.get(KEY_TAG) == key]
    if same:
        return LoggedComparison(uri, name, experiment_id, same[0].info.run_id, created=False)
    for older in existing:  # the same pair on older data: replaced, so the pair has one run to look at
        client.delete_run(older.info.run_id)
    run_id = client.create_run(experiment_id, run_name=run_name(c), tags={**run_tags(c), PAIR_TAG: pair}).info.run_id
    _log_values(client, run_id, c)
    for table, frame in c.tables().items():
        client.log_table(run_id, _plain(frame), f"tables/{table}.json")
    _log_reports(client, run_id, c)
    client.set_tag(run_id, KEY_TAG, key)  # last: a run interrupted half-way is never taken as done
    client.set_terminated(run_id)
    return LoggedComparison(uri, name, experiment_id, run_id, created=True)


def _experiment_id(client: MlflowClient, uri: str, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(uri, name))


def _log_values(client: MlflowClient, run_id: str, c: Comparison) -> None:
    from mlflow.entities import Metric, Param, RunTag

    client.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics(c).items()],
                     params=[Param(k, v) for k, v in params(c).items()],
                     tags=[RunTag(k, v) for k, v in level_tags(c).items()])


def _log_reports(client: MlflowClient, run_id: str, c: Comparison) -> None:
    """The HTML and Markdown reports and the JSON document, under `report/`."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        html_report.write(c, folder / "report.html")
        (folder / "report.md").write_text(markdown.render(c), encoding="utf-8")
        (folder / "comparison.json").write_text(files.to_json(c), encoding="utf-8")
        for path in sorted(folder.iterdir()):
            client.log_artifact(run_id, str(path), artifact_path="report")
