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

Two arms tell the fix from what a rerun does by itself. The **control arm** (`control`) is a seeded
sample of commits that did not fail, rerun alike: its pass -> fail flips are a rerun's own noise. The
**old-agent arm** (`old_agent`) is a seeded sample of the failed commits, taken out of the fix arm and
run with the agent before its fix (bench plans `<repo>_old_agent_plan.json`, for a bench root whose agent
is the old one): its fail -> pass flips are what a rerun fixes without the fix (quota back, a key renewed,
luck). Random assignment is what lets `compare` credit the difference to the fix.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tracker.domain import outcomes
from tracker.domain.events import JsonDict, default_metadata, deterministic_event_id
from tracker.domain.import_events import PlanCreated
from tracker.domain.vocabulary import FAILURE_CATEGORIES
from tracker.errors import TrackerError
from tracker.eventstore.hashing import canonical_json
from tracker.eventstore.store import EventStore
from tracker.isobench import normalise_repo
from tracker.projections.read_model.queries import attempts_frame, campaign_row, require_repos
from tracker.safe_names import checked, component

POLICIES = {
    "any-failed": "commits with at least one failed attempt",
    "latest-failed": "commits whose latest attempt failed",
    "never-succeeded": "commits with no successful attempt",
}
SCOPES = ("all", "evaluated")
FIX_ARM, CONTROL_ARM, OLD_AGENT_ARM = "fix", "control", "old_agent"
ARMS = (FIX_ARM, CONTROL_ARM, OLD_AGENT_ARM)


@dataclass(frozen=True)
class PlanItem:
    """One commit to rerun, with the item id and pre-commit the bench needs."""

    repo: str
    item_id: str
    commit: str
    pre_commit: str | None
    last_category: str = "other"
    attempts: int = 0
    repo_path: str = ""
    """The plan file's `repo` (a checkout path, or a name the bench resolves): kept for the bench."""
    task_id: str = ""
    arm: str = FIX_ARM
    """Which arm of the rerun the commit is in (`ARMS`): the fix, the control arm, or the old agent."""

    @property
    def control(self) -> bool:
        """A commit that did not fail, rerun to measure what a rerun changes by itself (the control arm)."""
        return self.arm == CONTROL_ARM

    def bench_item(self) -> JsonDict:
        """The bench's plan item in the team's rerun convention: the pre-commit is the human commit's
        parent, resolved by the bench (`pre` "", `pre_parent_index` 1); the recorded one is in the plan event."""
        item: JsonDict = {"item_id": self.item_id, "human": self.commit, "pre": "", "pre_parent_index": 1}
        if self.arm == CONTROL_ARM:
            return {**item, "control": True}
        return {**item, "arm": self.arm} if self.arm != FIX_ARM else item


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
                "items": [{"repo": i.repo, **i.bench_item(), "control": i.control, "arm": i.arm,
                           "pre_commit": i.pre_commit,
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


def _any_failed(known: list[Any]) -> bool:
    return False in known


def _latest_failed(known: list[Any]) -> bool:
    return bool(known) and known[-1] is False


def _never_succeeded(known: list[Any]) -> bool:
    return False in known and True not in known


_POLICY_TESTS: dict[str, Callable[[list[Any]], bool]] = {
    "any-failed": _any_failed, "latest-failed": _latest_failed, "never-succeeded": _never_succeeded,
}
"""Per policy: does a commit whose known outcomes (oldest first, unknown left out) are these qualify?"""


@dataclass(frozen=True)
class _Matches:
    """The commits matching the policy, and how much of the campaign was looked at to find them."""

    items: list[PlanItem]
    commits: int
    attempts: int


def _check_selection(policy: str, scope: str, level: str, categories: list[str] | None) -> None:
    """Refuse an unknown policy, scope, level or category before anything is read."""
    if policy not in POLICIES:
        raise TrackerError(f"unknown selection policy {policy!r}: use one of {', '.join(POLICIES)}")
    if scope not in SCOPES:
        raise TrackerError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    outcomes.check_level(level)
    for category in categories or []:
        if category not in FAILURE_CATEGORIES:
            raise TrackerError(f"unknown failure category {category!r}: use one of {', '.join(FAILURE_CATEGORIES)}")


def _scoped_attempts(store: EventStore, campaign: str, scope: str, level: str) -> pd.DataFrame:
    """The attempts in `scope`, with their outcome at `level` as `ok`, by repo, commit and time."""
    frame = attempts_frame(store, campaign)
    if scope == "evaluated":
        frame = frame[frame["eval_status"].notna()]
    return frame.assign(ok=outcomes.level_column(frame, level)).sort_values(["repo", "commit", "run_timestamp"])


def _last_category(runs: pd.DataFrame, level: str) -> str:
    """Why the commit failed: the category of its last failed attempt (`below_<level>` when the agent run was fine)."""
    failures = runs[[ok is False for ok in runs["ok"]]]
    last_failure = failures.iloc[-1] if len(failures) else runs.iloc[-1]
    category = str(last_failure["failure_category"])
    if level != "agent" and category == "none":
        category = f"below_{level}"
    return category


def _last_pre_commit(runs: pd.DataFrame) -> str | None:
    """The pre-commit the latest attempt that recorded one ran on."""
    return next((p for p in reversed(list(runs["pre_commit"])) if isinstance(p, str) and p), None)


def _matching(frame: pd.DataFrame, policy: str, level: str, tag: str) -> _Matches:
    """One plan item per commit whose outcomes fail under `policy` (sorted by repo and commit)."""
    qualifies = _POLICY_TESTS[policy]
    chosen: list[PlanItem] = []
    commits = 0
    for (repo, commit), runs in frame.groupby(["repo", "commit"], sort=True):
        commits += 1
        if not qualifies([ok for ok in runs["ok"] if ok is not None]):
            continue
        chosen.append(PlanItem(str(repo), f"{repo}_{tag}_rerun_{str(commit)[:8]}", str(commit),
                               _last_pre_commit(runs), _last_category(runs, level), len(runs)))
    return _Matches(chosen, commits, len(frame))


def _wanted(item: PlanItem, categories: list[str] | None, repos: list[str] | None) -> bool:
    """Whether the item passes the category and repo filters (an empty filter passes everything)."""
    return (not categories or item.last_category in categories) and (not repos or item.repo in repos)


def _selection(policy: str, level: str, scope: str, categories: list[str] | None, repos: list[str] | None,
               matches: _Matches, chosen: list[PlanItem]) -> JsonDict:
    """The plan's header: the rule in words, the filters, and how many commits each step kept."""
    attempts = "evaluated attempts only" if scope == "evaluated" else "all attempts"
    return {
        "policy": policy, "level": level, "scope": scope,
        "rule": f"{POLICIES[policy]}; success = level {level}: {outcomes.LEVEL_HELP[level]}; {attempts}",
        "categories": sorted(categories or []), "repos": sorted(repos or []),
        "attempts_considered": matches.attempts, "commits_in_campaign": matches.commits,
        "matching_policy": len(matches.items),
        "selected": len(chosen), "by_repo": dict(sorted(Counter(i.repo for i in chosen).items())),
        "by_category": dict(sorted(Counter(i.last_category for i in chosen).items())),
        "why": {i.commit: i.last_category for i in chosen},
    }


def select_commits(store: EventStore, campaign: str, *, policy: str = "any-failed", level: str = "agent",
                   scope: str = "all", categories: list[str] | None = None, repos: list[str] | None = None,
                   tag: str | None = None, control: int = 0, seed: int = 0, old_agent: int = 0) -> Plan:
    """The commits of `campaign` to rerun under `policy` at outcome `level` (see module docstring), plus a
    control arm of `control` commits that did not fail and an old-agent arm of `old_agent` of the chosen
    failed commits, both drawn with `seed`."""
    _check_selection(policy, scope, level, categories)
    info = campaign_row(store, campaign)
    require_repos(store, [campaign], repos)
    frame = _scoped_attempts(store, campaign, scope, level)
    tag = checked(tag, "--tag") if tag else rerun_tag(str(info["model"]))
    matches = _matching(frame, policy, level, tag)
    chosen = [i for i in matches.items if _wanted(i, categories, repos)]
    selection = _selection(policy, level, scope, categories, repos, matches, chosen)
    arm = _control_arm(frame, {i.commit for i in matches.items}, repos, control, seed, tag)
    if control:
        selection["control"] = {"requested": control, "seed": seed, "selected": len(arm),
                                "rule": "a seeded random sample of the commits that did not fail, rerun alike"}
    chosen = _old_agent_arm(chosen, old_agent, seed)
    if old_agent:
        selection["old_agent"] = {
            "requested": old_agent, "seed": seed, "selected": sum(i.arm == OLD_AGENT_ARM for i in chosen),
            "rule": "a seeded random sample of the failed commits, run with the agent before its fix"}
    return Plan(campaign, str(info["agent"]), str(info["model"]), chosen + arm, selection, tag=tag)


def _old_agent_arm(chosen: list[PlanItem], size: int, seed: int) -> list[PlanItem]:
    """The chosen failed commits with `size` of them, drawn reproducibly, moved to the old-agent arm.

    Drawn with its own stream of the seed (`seed`, `old_agent`), so adding it leaves the control arm's draw alone."""
    if size <= 0:
        return chosen
    drawn = set(random.Random(f"{seed}:old_agent").sample(range(len(chosen)), min(size, len(chosen))))
    return [replace(item, arm=OLD_AGENT_ARM, item_id=item.item_id.replace("_rerun_", "_oldagent_", 1))
            if index in drawn else item for index, item in enumerate(chosen)]


def _control_arm(frame: pd.DataFrame, failed: set[str], repos: list[str] | None, size: int, seed: int,
                 tag: str) -> list[PlanItem]:
    """`size` commits that did not fail, drawn reproducibly: what a rerun does to them measures its own noise."""
    if size <= 0:
        return []
    groups = frame.groupby(["repo", "commit"], sort=True)
    candidates = [(str(repo), str(commit), runs) for (repo, commit), runs in groups
                  if commit not in failed and (not repos or repo in repos)]
    drawn = random.Random(seed).sample(candidates, min(size, len(candidates)))
    return [PlanItem(repo, f"{repo}_{tag}_control_{commit[:8]}", commit, _last_pre_commit(runs), "none", len(runs),
                     arm=CONTROL_ARM) for repo, commit, runs in sorted(drawn, key=lambda c: (c[0], c[1]))]


def write_plan_files(plan: Plan, out_dir: Path, repo_root: str | None = None) -> list[str]:
    """Write `<AGENT>_<MODEL>_<REPO>_FAILED.txt`, the `_ALL_` list, and one bench plan per repo (control
    commits are in the bench plans, marked, and in no FAILED list); old-agent commits go to a bench plan of
    their own per repo, `<AGENT>_<MODEL>_<REPO>_old_agent_plan.json`, to run with the old agent."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{component(plan.agent)}_{component(plan.model)}"
    files: list[str] = []
    for repo in sorted({i.repo for i in plan.items}):
        files += _repo_plan_files(plan, repo, out_dir / component(f"{prefix}_{repo}"), repo_root)
    files.append(_commit_list(out_dir / f"{prefix}_ALL_FAILED.txt", plan.items))
    plan.files = files
    return files


def _repo_plan_files(plan: Plan, repo: str, stem: Path, repo_root: str | None) -> list[str]:
    """One repo's commit list and bench plan (fix and control arms), and its old-agent bench plan if any."""
    items = [i for i in plan.items if i.repo == repo and i.arm != OLD_AGENT_ARM]
    old = [i for i in plan.items if i.repo == repo and i.arm == OLD_AGENT_ARM]
    files = []
    if items:
        files += [_commit_list(stem.with_name(f"{stem.name}_FAILED.txt"), items),
                  _bench_plan(stem.with_name(f"{stem.name}_plan.json"), plan, repo, items, repo_root)]
    if old:
        files.append(_bench_plan(stem.with_name(f"{stem.name}_old_agent_plan.json"), plan, repo, old, repo_root))
    return files


def _commit_list(path: Path, items: list[PlanItem]) -> str:
    path.write_text("".join(f"{i.commit}\n" for i in items if i.arm == FIX_ARM))
    return str(path)


def _bench_plan(path: Path, plan: Plan, repo: str, items: list[PlanItem], repo_root: str | None) -> str:
    bench = {"repo": f"{repo_root.rstrip('/')}/{repo}" if repo_root else repo,
             "task_id": f"{repo}_{plan.tag}_rerun", "selection": plan.selection["rule"],
             "items": [i.bench_item() for i in items]}
    path.write_text(json.dumps(bench, indent=2) + "\n")
    return str(path)


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
              level: str = "agent", scope: str = "all", tag: str | None = None, control: int = 0,
              seed: int = 0, old_agent: int = 0) -> Plan:
    """`track plan`: select, write the files, record the selection."""
    plan = select_commits(store, campaign, policy=policy, level=level, scope=scope, categories=categories,
                          repos=repos, tag=tag, control=control, seed=seed, old_agent=old_agent)
    write_plan_files(plan, out_dir, repo_root)
    record_plan(store, plan)
    return plan


def _read_plan_doc(path: Path) -> JsonDict:
    """The plan file's JSON object, which must hold an `items` list."""
    try:
        doc: Any = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise TrackerError(f"cannot read plan {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise TrackerError(f"plan {path}: expected an object with an 'items' list")
    return doc


def _is_sha(text: str) -> bool:
    """A commit sha, full or abbreviated as real plans and journals write it (8 hex)."""
    return 8 <= len(text) <= 40 and all(ch in "0123456789abcdef" for ch in text)


def _loaded_item(path: Path, plan: LoadedPlan, index: int, raw: Any) -> PlanItem:
    """One plan item, checked: string `item_id` and `human`, the latter a commit sha.

    A sha is kept as the plan writes it: `track plan` writes what the baseline recorded, so an
    8-character sha joins the baseline's attempts of the same commit (and the bench resolves it)."""
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("item_id", "human")):
        raise TrackerError(f"plan {path}: item #{index} needs string 'item_id' and 'human'")
    checked(raw["item_id"], f"plan {path}: item #{index}: item_id")
    human = raw["human"].strip().lower()
    if not _is_sha(human):
        raise TrackerError(f"plan {path}: item {raw['item_id']!r} needs a commit sha (8 to 40 hex) in 'human'")
    return PlanItem(plan.repo, raw["item_id"], human, raw.get("pre") or None, repo_path=plan.repo_path,
                    task_id=plan.task_id, arm=_arm_of(path, raw))


def _arm_of(path: Path, raw: JsonDict) -> str:
    """A plan item's arm: `control: true` (the bench's marker) or `arm`, one of `ARMS`; the fix by default."""
    if raw.get("control") is True:
        return CONTROL_ARM
    arm = raw.get("arm", FIX_ARM)
    if arm not in ARMS:
        raise TrackerError(f"plan {path}: item {raw['item_id']!r} has arm {arm!r}; expected one of {', '.join(ARMS)}")
    return str(arm)


def load_plan(path: Path) -> LoadedPlan:
    """Read a bench plan (`{"repo", "task_id", "items": [{"item_id", "human", "pre"}]}`), strictly."""
    doc = _read_plan_doc(path)
    repo_path = str(doc.get("repo") or "")
    task_id = str(doc.get("task_id") or "")
    repo = normalise_repo(Path(repo_path).name or task_id.split("_", 1)[0])
    if not repo:
        raise TrackerError(f"plan {path}: names no repo (need 'repo' or 'task_id')")
    checked(repo, f"plan {path}: repo")
    if task_id:
        checked(task_id, f"plan {path}: task_id")
    plan = LoadedPlan(str(path), repo, repo_path, task_id or f"{repo}_core", [])
    plan.items.extend(_loaded_item(path, plan, index, raw) for index, raw in enumerate(doc["items"]))
    return plan


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
