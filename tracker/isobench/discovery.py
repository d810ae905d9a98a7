"""Find run folders: `state/runs/<repo>/<agent>/<model>/<run id>/<item_id>/`, and every other layout.

The run id is normally the start time (`YYYY-MM-DD_HH-MM-SS`); older benches named it after the
run's short hash (`389be848`). Either way it is the folder's run id: nothing is skipped for its name.
Older benches also used other layouts (`state/runs/<task_id>-<hash>/<item_id>/`,
`state/runs/_misc/<model>/<ts>/<item_id>/`): any folder above the standard depth that holds run files
is a run folder too, and what its path does not say (repo, agent, model) is read from its files
(`identify_folder`), so no run folder is left behind for its layout.

The walk is fixed-depth with `os.scandir`, sorted at every level so the order is deterministic. It
follows directory symlinks (runs are sometimes linked in from another disk) but remembers the
(device, inode) of every directory on the current path and every item folder already yielded, so a
symlink loop or a second link to the same run is reported as a problem instead of walked again.
Unreadable directories become problems; nothing here raises for a bad tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tracker.isobench.common import Problem

RUNS_DIR = Path("state") / "runs"
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$")
KNOWN_REPOS = ("vllm", "sglang")
_MODEL_PREFIXES = ("openai-", "openai/", "anthropic-", "anthropic/", "anthropic.", "azure-", "azure/")
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|global)[-.](?=anthropic)")
_BEDROCK_VERSION = re.compile(r"-v\d+[-:]\d+$")
_CLAUDE_SQUASHED = re.compile(r"^(claude-[a-z]+-)(\d)(\d)$")
_LEVELS = ("repo", "agent", "model", "timestamp", "item")
RUN_FILES = ("journal.json", "run_summary.json", "prompt.json", "task.txt", "model_patch.diff", "trajectory.json",
             "prediction.jsonl")
"""A folder holding any of these is a run folder, whatever its depth."""
UNKNOWN = "unknown"


@dataclass(frozen=True)
class RunFolder:
    """One agent run on one item, identified by its path under `state/runs`."""

    path: Path
    run_path: str
    repo_raw: str
    repo: str
    agent: str
    model_raw: str
    model: str
    timestamp: str
    item_id: str
    standard_layout: bool = True

    @property
    def timestamp_is_time(self) -> bool:
        """False for run ids that are not a start time (e.g. an old bench's hash-named run folder)."""
        return bool(TIMESTAMP_RE.match(self.timestamp))

    @property
    def key(self) -> str:
        """`<repo>/<agent>/<model_raw>/<timestamp>/<item_id>` with the repo normalised."""
        return f"{self.repo}/{self.agent}/{self.model_raw}/{self.timestamp}/{self.item_id}"


def normalise_repo(raw: str) -> str:
    """Map a repo folder name to a known repo, forgiving truncation and one-letter typos.

    `sglan` -> `sglang` (prefix of length >= 4), `slgang` -> `sglang` (one edit or swap);
    an unknown name is kept, lowercased, rather than guessed.
    """
    name = raw.strip().lower()
    for repo in KNOWN_REPOS:
        if name == repo:
            return repo
    for repo in KNOWN_REPOS:
        if len(name) >= 4 and (repo.startswith(name) or name.startswith(repo)):
            return repo
    for repo in KNOWN_REPOS:
        if _edit_distance(name, repo) <= 1:
            return repo
    return name


def normalise_model(raw: str) -> str:
    """One name per model: drop provider prefixes, Bedrock regions and versions, release dates.

    `openai-gpt-5`, `gpt-5-2025-08-07` -> `gpt-5`; `us-anthropic-claude-sonnet-4-5-20250929-v1-0`,
    `us.anthropic.claude-sonnet-4-5-20250929-v1:0`, `claude-sonnet-45` -> `claude-sonnet-4-5`.
    """
    name = _BEDROCK_REGION.sub("", raw.strip().lower())
    for prefix in _MODEL_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix):]
            break
    name = _DATE_SUFFIX.sub("", _BEDROCK_VERSION.sub("", name))
    return _CLAUDE_SQUASHED.sub(r"\1\2-\3", name)


def _edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (Levenshtein plus adjacent swaps)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def discover_runs(root: Path, problems: list[Problem] | None = None) -> Iterator[RunFolder]:
    """Yield every run folder under `root/state/runs`, sorted; append problems to `problems`."""
    sink: list[Problem] = problems if problems is not None else []
    runs = Path(root) / RUNS_DIR
    if not runs.is_dir():
        sink.append(Problem(RUNS_DIR.as_posix(), "missing", f"no {RUNS_DIR.as_posix()} folder under {root}"))
        return
    seen_items: set[tuple[int, int]] = set()
    yield from _walk(runs, Path(root), (), [], seen_items, sink)


def _walk(
    folder: Path,
    root: Path,
    parts: tuple[str, ...],
    ancestors: list[tuple[int, int]],
    seen_items: set[tuple[int, int]],
    sink: list[Problem],
) -> Iterator[RunFolder]:
    """Recurse one level; at depth 5 the folder is a run."""
    rel = folder.relative_to(root).as_posix()
    ident = _dir_identity(folder, rel, sink)
    if ident is None:
        return
    if ident in ancestors:
        sink.append(Problem(rel, "symlink_loop", "directory links back to one of its parents; not followed"))
        return
    if len(parts) == len(_LEVELS) or (parts and _holds_run_files(folder)):
        if ident in seen_items:
            sink.append(Problem(rel, "symlink_loop", "same run folder reached twice through a symlink"))
            return
        seen_items.add(ident)
        yield _make_folder(folder, parts)
        return
    for name in _subdirs(folder, rel, sink):
        yield from _walk(folder / name, root, (*parts, name), [*ancestors, ident], seen_items, sink)


def _holds_run_files(folder: Path) -> bool:
    return any(os.path.isfile(folder / name) for name in RUN_FILES)


def _dir_identity(folder: Path, rel: str, sink: list[Problem]) -> tuple[int, int] | None:
    """(device, inode) of a directory, following symlinks; None (with a problem) if unusable."""
    try:
        st = os.stat(folder)
    except OSError as exc:
        kind = "symlink_loop" if exc.errno == 40 else "unreadable"  # ELOOP
        sink.append(Problem(rel, kind, f"{type(exc).__name__}: {exc.strerror or exc}"))
        return None
    return (st.st_dev, st.st_ino)


def _subdirs(folder: Path, rel: str, sink: list[Problem]) -> list[str]:
    """Sorted names of the subdirectories of `folder` (symlinks to directories included)."""
    names: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=True):
                        names.append(entry.name)
                except OSError:
                    continue  # a symlink that loops onto itself: not a directory we can walk
    except OSError as exc:
        sink.append(Problem(rel, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}"))
    return sorted(names)


def _make_folder(path: Path, parts: tuple[str, ...]) -> RunFolder:
    """Build the RunFolder of a run directory (standard depth, or another layout: see module docstring)."""
    if len(parts) == len(_LEVELS):
        repo_raw, agent, model_raw, timestamp, item_id = parts
        return RunFolder(path=path, run_path="/".join(parts), repo_raw=repo_raw, repo=normalise_repo(repo_raw),
                         agent=agent, model_raw=model_raw, model=normalise_model(model_raw), timestamp=timestamp,
                         item_id=item_id)
    item_id = parts[-1]
    timestamp = parts[-2] if len(parts) >= 2 else ""
    model_raw = parts[-3] if len(parts) >= 3 else ""
    repo_raw = parts[0] if len(parts) >= 4 and normalise_repo(parts[0]) in KNOWN_REPOS else ""
    return RunFolder(path=path, run_path="/".join(parts), repo_raw=repo_raw, repo=normalise_repo(repo_raw),
                     agent="", model_raw=model_raw, model=normalise_model(model_raw), timestamp=timestamp,
                     item_id=item_id, standard_layout=False)


def identify_folder(folder: RunFolder) -> RunFolder:
    """Fill in what a non-standard layout's path does not say, from the run's own small files:
    the journal's `run_metadata` and agent block, the run summary's `meta`, the prediction's
    instance id (`vllm-project__vllm-…`) and the trajectory's `model`. What no file says stays `unknown`."""
    if folder.standard_layout:
        return folder
    from tracker.isobench.layout import layout_hints

    hints = layout_hints(folder.path)
    repo_raw = folder.repo_raw or hints.get("repo") or ""
    model_raw = hints.get("model") or folder.model_raw
    return RunFolder(
        path=folder.path, run_path=folder.run_path, repo_raw=repo_raw or UNKNOWN,
        repo=normalise_repo(repo_raw) if repo_raw else UNKNOWN, agent=hints.get("agent") or UNKNOWN,
        model_raw=model_raw or UNKNOWN, model=normalise_model(model_raw) if model_raw else UNKNOWN,
        timestamp=folder.timestamp, item_id=folder.item_id, standard_layout=False,
    )
