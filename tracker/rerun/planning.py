"""Plan a rerun: which commits of a campaign to run again, as commit lists and bench plans.

Three selection policies, at any outcome level (`tracker.domain.outcomes`):

- `any-failed`: commits with at least one failed attempt (the team's: their 104 "failed commits");
- `latest-failed`: commits whose latest attempt failed;
- `never-succeeded`: commits with no successful attempt.

`scope` says which attempts count: `all` (the default) or `evaluated`, the attempts the evaluation
measured. The team's list of failed commits is `any-failed` over the evaluated attempts: runs made
after the evaluation are not part of it. The output is deterministic (sorted by repo and commit),
the plan's header names policy, level and scope, and the selection is recorded as a `plan.created`
event. Bench plans follow the team's rerun convention (`<repo>_<tag>_rerun_<sha8>`, `pre` "" with
`pre_parent_index` 1), so the bench never finds the original's worktree under a reused item id.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.domain import outcomes
from tracker.domain.events import JsonDict, default_metadata, deterministic_event_id
from tracker.domain.import_events import PlanCreated
from tracker.domain.vocabulary import FAILURE_CATEGORIES
from tracker.errors import TrackerError
from tracker.eventstore.hashing import canonical_json
from tracker.eventstore.store import EventStore
from tracker.isobench import normalise_repo
from tracker.projections.read_model.queries import attempts_frame, campaign_row

POLICIES = {
    "any-failed": "commits with at least one failed attempt",
    "latest-failed": "commits whose latest attempt failed",
    "never-succeeded": "commits with no successful attempt",
}
SCOPES = ("all", "evaluated")


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
        """The bench's plan item in the team's rerun convention: the pre-commit is the human commit's
        parent, resolved by the bench (`pre` "", `pre_parent_index` 1); the recorded one is in the plan event."""
        return {"item_id": self.item_id, "human": self.commit, "pre": "", "pre_parent_index": 1}


@dataclass
class Plan:
    """A selection of commits plus where it was written."""

    from_campaign: str
    agent: str
    model: str
    items: list[PlanItem]
    selection: JsonDict
    files: list[str] = field(default_factory=list)
    tag: str = "rerun"

    @property
    def plan_id(self) -> str:
        digest = hashlib.sha256(canonical_json([i.bench_item() for i in self.items]).encode()).hexdigest()
        return digest[:16]

    def to_dict(self) -> JsonDict:
        return {"plan_id": self.plan_id, "from_campaign": self.from_campaign, "agent": self.agent,
                "model": self.model, "selection": self.selection, "files": self.files,
                "items": [{"repo": i.repo, **i.bench_item(), "pre_commit": i.pre_commit,
                           "last_category": i.last_category, "attempts": i.attempts} for i in self.items]}


@dataclass(frozen=True)
class LoadedPlan:
    """A plan file in the bench's own format, with its repo normalised."""

    path: str
    repo: str
    repo_path: str
    task_id: str
    items: list[PlanItem]


def rerun_tag(model: str) -> str:
    """`gpt-5` -> `gpt5`: the tag in the team's rerun item ids (`vllm_gpt5_rerun_0d243f2a`)."""
    return "".join(ch for ch in model.lower() if ch.isalnum()) or "rerun"


def select_commits(store: EventStore, campaign: str, *, policy: str = "any-failed", level: str = "agent",
                   scope: str = "all", categories: list[str] | None = None, repos: list[str] | None = None,
                   tag: str | None = None) -> Plan:
    """The commits of `campaign` to rerun under `policy` at outcome `level` (see module docstring)."""
    if policy not in POLICIES:
        raise TrackerError(f"unknown selection policy {policy!r}: use one of {', '.join(POLICIES)}")
    if scope not in SCOPES:
        raise TrackerError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    outcomes.check_level(level)
    for category in categories or []:
        if category not in FAILURE_CATEGORIES:
            raise TrackerError(f"unknown failure category {category!r}: use one of {', '.join(FAILURE_CATEGORIES)}")
    info = campaign_row(store, campaign)
    frame = attempts_frame(store, campaign)
    used_scope = scope
    if scope == "evaluated":
        frame = frame[frame["eval_status"].notna()]
    frame = frame.assign(ok=outcomes.level_column(frame, level)).sort_values(["repo", "commit", "run_timestamp"])
    tag = tag or rerun_tag(str(info["model"]))
    chosen_all: list[PlanItem] = []
    commits = 0
    for (repo, commit), runs in frame.groupby(["repo", "commit"], sort=True):
        commits += 1
        known = [ok for ok in runs["ok"] if ok is not None]
        failed = {"any-failed": False in known, "latest-failed": bool(known) and known[-1] is False,
                  "never-succeeded": False in known and True not in known}[policy]
        if not failed:
            continue
        latest = runs.iloc[-1]
        failures = runs[[ok is False for ok in runs["ok"]]]
        last_failure = failures.iloc[-1] if len(failures) else latest
        category = str(last_failure["failure_category"])
        if level != "agent" and category == "none":
            category = f"below_{level}"
        pre = next((p for p in reversed(list(runs["pre_commit"])) if isinstance(p, str) and p), None)
        chosen_all.append(PlanItem(str(repo), f"{repo}_{tag}_rerun_{str(commit)[:8]}", str(commit), pre,
                                   category, len(runs)))
    chosen = [i for i in chosen_all if (not categories or i.last_category in categories)
              and (not repos or i.repo in repos)]
    selection: JsonDict = {
        "policy": policy, "level": level, "scope": used_scope,
        "rule": f"{POLICIES[policy]}; success = level {level}: {outcomes.LEVEL_HELP[level]}; "
                f"{'evaluated attempts only' if used_scope == 'evaluated' else 'all attempts'}",
        "categories": sorted(categories or []), "repos": sorted(repos or []),
        "attempts_considered": len(frame), "commits_in_campaign": commits, "matching_policy": len(chosen_all),
        "selected": len(chosen), "by_repo": dict(sorted(Counter(i.repo for i in chosen).items())),
        "by_category": dict(sorted(Counter(i.last_category for i in chosen).items())),
        "why": {i.commit: i.last_category for i in chosen},
    }
    return Plan(campaign, str(info["agent"]), str(info["model"]), chosen, selection, tag=tag)


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
        bench = {"repo": f"{repo_root.rstrip('/')}/{repo}" if repo_root else repo,
                 "task_id": f"{repo}_{plan.tag}_rerun", "selection": plan.selection["rule"],
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
              repos: list[str] | None = None, repo_root: str | None = None, *, policy: str = "any-failed",
              level: str = "agent", scope: str = "all", tag: str | None = None) -> Plan:
    """`track plan`: select, write the files, record the selection."""
    plan = select_commits(store, campaign, policy=policy, level=level, scope=scope, categories=categories,
                          repos=repos, tag=tag)
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
