"""Plan a rerun: the commits that never succeeded in a campaign, as commit lists and bench plans.

Replaces the hand-written plan generators. The output is deterministic (sorted by repo, item id,
commit) so two runs of `track plan` on the same store give byte-identical files, and the selection
(which rule, which filters, what each commit last failed with) is recorded as a `plan.created`
event so the reason a commit was rerun stays in the audit log.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.domain import FAILURE_CATEGORIES, PlanCreated
from tracker.errors import TrackerError
from tracker.events import JsonDict, default_metadata, deterministic_event_id
from tracker.hashing import canonical_json
from tracker.readers import normalise_repo
from tracker.runner.baseline import MeasuredAttempt, campaign_row, measured_attempts
from tracker.store import EventStore


@dataclass(frozen=True)
class PlanItem:
    """One commit to rerun, with the item id and pre-commit the bench needs."""

    repo: str
    item_id: str
    commit: str
    pre_commit: str | None
    last_category: str = "other"
    attempts: int = 0

    def bench_item(self) -> JsonDict:
        return {"item_id": self.item_id, "human": self.commit, "pre": self.pre_commit}


@dataclass
class Plan:
    """A selection of commits plus where it was written."""

    from_campaign: str
    agent: str
    model: str
    items: list[PlanItem]
    selection: JsonDict
    files: list[str] = field(default_factory=list)

    @property
    def plan_id(self) -> str:
        digest = hashlib.sha256(canonical_json([i.bench_item() for i in self.items]).encode()).hexdigest()
        return digest[:16]

    def to_dict(self) -> JsonDict:
        return {"plan_id": self.plan_id, "from_campaign": self.from_campaign, "agent": self.agent,
                "model": self.model, "selection": self.selection, "files": self.files,
                "items": [{"repo": i.repo, **i.bench_item(), "last_category": i.last_category,
                           "attempts": i.attempts} for i in self.items]}


@dataclass(frozen=True)
class LoadedPlan:
    """A plan file in the bench's own format, with its repo normalised."""

    path: str
    repo: str
    repo_path: str
    task_id: str
    items: list[PlanItem]


def select_never_succeeded(store: EventStore, campaign: str, categories: list[str] | None = None,
                           repos: list[str] | None = None) -> Plan:
    """Commits of `campaign` with no successful attempt, optionally only some last categories or repos."""
    for category in categories or []:
        if category not in FAILURE_CATEGORIES:
            raise TrackerError(f"unknown failure category {category!r}: use one of {', '.join(FAILURE_CATEGORIES)}")
    info = campaign_row(store, campaign)
    by_commit: dict[tuple[str, str], list[MeasuredAttempt]] = {}
    for attempt in measured_attempts(store, campaign):
        if attempt.commit:
            by_commit.setdefault((attempt.repo, attempt.commit), []).append(attempt)
    never: list[PlanItem] = []
    for (repo, commit), runs in by_commit.items():
        if any(run.status == "success" for run in runs):
            continue
        latest = max(runs, key=lambda r: r.run_timestamp or "")
        pre = next((r.pre_commit for r in reversed(runs) if r.pre_commit), None)
        never.append(PlanItem(repo, latest.item_id or commit[:12], commit, pre, latest.category, len(runs)))
    chosen = [i for i in never if (not categories or i.last_category in categories) and (not repos or i.repo in repos)]
    chosen.sort(key=lambda i: (i.repo, i.item_id, i.commit))
    selection: JsonDict = {
        "rule": "commits with no successful attempt in the campaign",
        "categories": sorted(categories or []), "repos": sorted(repos or []),
        "commits_in_campaign": len(by_commit), "never_succeeded": len(never), "selected": len(chosen),
        "by_repo": dict(sorted(Counter(i.repo for i in chosen).items())),
        "by_category": dict(sorted(Counter(i.last_category for i in chosen).items())),
        "why": {i.commit: i.last_category for i in chosen},
    }
    return Plan(campaign, str(info["agent"]), str(info["model"]), chosen, selection)


def write_plan_files(plan: Plan, out_dir: Path, repo_root: str | None = None) -> list[str]:
    """Write `<AGENT>_<MODEL>_<REPO>_FAILED.txt`, the `_ALL_` list, and one bench plan per repo."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{plan.agent}_{plan.model}"
    files: list[str] = []
    repos = sorted({i.repo for i in plan.items})
    for repo in repos:
        items = [i for i in plan.items if i.repo == repo]
        commits = out_dir / f"{prefix}_{repo}_FAILED.txt"
        commits.write_text("".join(f"{i.commit}\n" for i in items))
        bench = {"repo": f"{repo_root.rstrip('/')}/{repo}" if repo_root else repo, "task_id": f"{repo}_core",
                 "items": [i.bench_item() for i in items]}
        plan_file = out_dir / f"{prefix}_{repo}_plan.json"
        plan_file.write_text(json.dumps(bench, indent=2) + "\n")
        files += [str(commits), str(plan_file)]
    everything = out_dir / f"{prefix}_ALL_FAILED.txt"
    everything.write_text("".join(f"{i.commit}\n" for i in plan.items))
    files.append(str(everything))
    plan.files = files
    return files


def record_plan(store: EventStore, plan: Plan, stream: str | None = None, estimate: JsonDict | None = None,
                metadata: JsonDict | None = None) -> str:
    """Append `plan.created` (idempotent: the same plan and estimate in the same stream is stored once)."""
    stream = stream or f"plan:{plan.plan_id}"
    event = PlanCreated(plan_id=plan.plan_id, from_campaign=plan.from_campaign, selection=plan.selection,
                        items=plan.to_dict()["items"], files=plan.files, estimate=estimate)
    event_id = deterministic_event_id(stream, PlanCreated.TYPE, canonical_json(event.to_payload()))
    store.append(stream, [event.to_new_event(event_id, metadata or default_metadata(command="plan"))])
    return stream


def make_plan(store: EventStore, campaign: str, out_dir: Path, categories: list[str] | None = None,
              repos: list[str] | None = None, repo_root: str | None = None) -> Plan:
    """`track plan`: select, write the files, record the selection."""
    plan = select_never_succeeded(store, campaign, categories, repos)
    write_plan_files(plan, out_dir, repo_root)
    record_plan(store, plan)
    return plan


def load_plan(path: Path) -> LoadedPlan:
    """Read a bench plan (`{"repo", "task_id", "items": [{"item_id", "human", "pre"}]}`), strictly."""
    try:
        doc: Any = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise TrackerError(f"cannot read plan {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise TrackerError(f"plan {path}: expected an object with an 'items' list")
    repo_path = str(doc.get("repo") or "")
    task_id = str(doc.get("task_id") or "")
    repo = normalise_repo(Path(repo_path).name or task_id.split("_", 1)[0])
    if not repo:
        raise TrackerError(f"plan {path}: names no repo (need 'repo' or 'task_id')")
    items: list[PlanItem] = []
    for index, raw in enumerate(doc["items"]):
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("item_id", "human")):
            raise TrackerError(f"plan {path}: item #{index} needs string 'item_id' and 'human'")
        human = raw["human"].strip().lower()
        if len(human) != 40 or any(ch not in "0123456789abcdef" for ch in human):
            # the full sha is the identity joining original and rerun: a prefix would split a commit in two
            raise TrackerError(f"plan {path}: item {raw['item_id']!r} needs the full 40-hex commit sha in 'human'")
        items.append(PlanItem(repo, raw["item_id"], human, raw.get("pre") or None))
    return LoadedPlan(str(path), repo, repo_path, task_id or f"{repo}_core", items)


def plan_from_files(paths: list[Path], from_campaign: str) -> Plan:
    """One Plan from bench plan files (what `track run` and `track estimate` are given)."""
    items: list[PlanItem] = []
    seen: set[str] = set()
    for path in paths:
        for item in load_plan(path).items:
            if item.commit not in seen:
                seen.add(item.commit)
                items.append(item)
    selection = {"rule": "plan files", "files": [str(p) for p in paths], "selected": len(items)}
    return Plan(from_campaign, "", "", items, selection, [str(p) for p in paths])
