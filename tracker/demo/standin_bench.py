"""A stand-in for ISO-Bench's `python -m bench.cli prepare`: same arguments, exit codes, files and log lines.

Tests, benchmarks and the demo drive `track run` with it instead of a GPU and an API key. It is run the way
the runner runs the real bench, from the bench root (see `lay_out_bench_root`):

    python -m tracker.demo.standin_bench prepare TASK.yaml --from-plan PLAN.json --bench-cfg bench.yaml \\
        --max-workers 1 --resume --run-id REPO/AGENT/MODEL/TS

What it does, as the real bench does it:

- `TASK` (positional), `--from-plan/-p` (default `state/plan.json`), `--bench-cfg` (default `bench.yaml`),
  `--max-workers` (default 4), `--resume/--no-resume` (default resume), `--run-id` (default: the run path
  `<repo>/<agent>/<model>/<YYYY-MM-DD_HH-MM-SS>`, the repo named after the task's `repo.url` with
  `.rstrip('.git')`, so `sglang.git` gives `sglan`). Usage errors exit 2.
- A missing task, plan or bench config (checked in that order) prints `Task file not found: ...` (etc.) and
  exits 1; any other error prints `Prepare error: <error>` and exits 1. Items that fail do not change the
  exit code (0): their journals say so.
- bench.yaml: `paths.state_root`, `paths.work_root` (relative to the current folder) and `agents` (`default`,
  and per agent `cli`, `time_budget_minutes`); `${VAR}` and `${VAR:-default}` are expanded in both YAML files.
- The plan's `repo` is the local checkout when that path exists; otherwise the bench clones it into
  `<work_root>/repos/<task id>`, which the stand-in cannot do: it fails as `git clone` of a missing repository.
- Per item: `<state_root>/runs/<run path>/<item_id>/` (`prompt.json` first, `journal.json` last) and the
  worktree `<work_root>/worktrees/<task id>/<item_id>`, detached from history (its `.git` becomes a folder),
  so a second prepare of the same task and item crashes with `[Errno 21] Is a directory: '.../.git'`.
  `--resume` skips an item whose folder *in this run path* holds a success journal. An agent program that
  cannot be found ends the item with an error journal (`FileNotFoundError`).
- Log lines go to stderr as `YYYY-MM-DD HH:MM:SS - bench.prepare - LEVEL - message` (and, as the stand-in
  always did, are appended to `pipeline_run_<ts>.log` in the current folder); the run path lines and the
  final `✓ Prepare completed: state/runs/<run path>` go to stdout.

What happens to each item is the stand-in's own choice, by environment variable:

- `STANDIN_OUTCOMES`: JSON (inline, or a path to a JSON file) mapping an item id or commit to an
  outcome, a list of outcomes (the n-th attempt of that item gets the n-th, the last repeats; attempts are
  counted over every run folder of the item under `<state_root>/runs/*/*/*/*/`), or an object
  `{"outcome": ..., "sleep": s, "input_tokens": n, ...}`; anything else gets `STANDIN_DEFAULT` (default
  `success`). Outcomes: `success`, every failure category, `hang` (never ends), `crash` (a traceback and
  exit code 1 before the journal is written).
- `STANDIN_SLEEP`: seconds each item takes (default 0); `STANDIN_LINES`: extra agent stdout lines to log
  per item (to load the runner's log parsing); `STANDIN_MODEL_DIR`: the model folder of the run path
  (default `gpt-5-2025-08-07`).

Only the standard library and `tracker.demo.sample_tree` (itself standard-library only) are imported: the
bench's interpreter need not have the tracker's dependencies.
"""

from __future__ import annotations

import argparse
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml

from tracker.demo.sample_tree import RunSpec, journal_document, write_run_folder
from tracker.safe_names import checked

TS_FORMAT = "%Y-%m-%d_%H-%M-%S"
TRAE_LIKE = frozenset({"trae", "codex", "codex_cli", "claude_code"})
"""The agents the bench runs as a `cli` subprocess with a `time_budget_minutes`."""
DEFAULT_MODEL_DIR = "gpt-5-2025-08-07"


def model_dir() -> str:
    """The model folder of the run path: `STANDIN_MODEL_DIR`, or GPT-5's dated name."""
    return os.environ.get("STANDIN_MODEL_DIR") or DEFAULT_MODEL_DIR


_ENV_VAR = re.compile(r"\$\{([^}]+)\}")


def expand_env(value: Any) -> Any:
    """`${VAR}` (unset: empty) and `${VAR:-default}` expanded in every string of a config, recursively."""
    if isinstance(value, str):
        return _ENV_VAR.sub(_env_value, value)
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    return value


def _env_value(match: re.Match[str]) -> str:
    name, has_default, default = match.group(1).partition(":-")
    return os.environ.get(name, default if has_default else "")


def load_config(path: Path) -> Any:
    return expand_env(yaml.safe_load(path.read_text()))


def repo_folder_name(repo_url: str) -> str:
    """The repo folder of the run path, as the bench derives it from the task's `repo.url`.

    For GitHub URLs the bench strips the *characters* of `.git` from the end (`str.rstrip`), so
    `sglang.git` becomes `sglan`: that is why real trees hold `state/runs/sglan`.
    """
    if not repo_url:
        return "unknown"
    if "github.com" in repo_url:
        return repo_url.rstrip("/").rstrip(".git").rsplit("/", 1)[-1]
    return Path(repo_url).name or "unknown"


@dataclass(frozen=True)
class Run:
    """One prepare's run path and where its folders go."""

    path: str
    state_root: Path
    work_root: Path
    repo: str
    agent: str
    model: str
    timestamp: str

    @property
    def folder(self) -> Path:
        return self.state_root / "runs" / self.path

    def metadata(self) -> dict[str, str]:
        return {"repo": self.repo, "agent": self.agent, "model": self.model, "run_timestamp": self.timestamp,
                "run_path": self.path}

    def spec_timestamp(self) -> str:
        """The run's timestamp for the sample files (now, when the run path's last part is not one)."""
        try:
            datetime.strptime(self.timestamp, TS_FORMAT)
        except ValueError:
            return datetime.now().strftime(TS_FORMAT)
        return self.timestamp


def open_run(cfg: dict[str, Any], run_path: str) -> Run:
    """The run's roots from bench.yaml's `paths` (a KeyError when missing), its run folder created."""
    state_root = Path(cfg["paths"]["state_root"]).resolve()
    work_root = Path(cfg["paths"]["work_root"]).resolve()
    (state_root / "runs" / run_path).mkdir(parents=True, exist_ok=True)
    parts = run_path.split("/")
    if len(parts) < 4:  # a flat run id
        parts = ["unknown", str(cfg.get("agents", {}).get("default", "unknown")), "default", run_path]
    return Run(run_path, state_root, work_root, *parts[:4])


@dataclass(frozen=True)
class Agent:
    """The agent bench.yaml's `agents.default` names."""

    name: str
    cli: Any
    time_budget_minutes: int
    max_steps: int

    @property
    def label(self) -> str:
        return self.name.upper()


def agent_of(agents: dict[str, Any]) -> Agent:
    name = str(agents.get("default", "openhands"))
    if name == "openhands":
        spec = agents["openhands"]
        return Agent(name, spec["cli"], spec["time_budget_minutes"], int(spec.get("args", {}).get("iterations", 50)))
    if name in TRAE_LIKE:
        spec = agents.get(name, {})
        return Agent(name, spec.get("cli", "python"), int(spec.get("time_budget_minutes", 60)),
                     int(spec.get("args", {}).get("max_steps", 50)))
    raise NotImplementedError(f"Unknown agent default: {name}")


def check_program(cli: str, cwd: Path) -> None:
    """Raise what starting the agent program would: FileNotFoundError when it cannot be found (an absolute
    or relative path that does not exist, or a name not on PATH), PermissionError when it cannot run
    (a folder, a file without the execute bit, an empty name)."""
    if os.sep in cli:
        path = cli if os.path.isabs(cli) else os.path.join(cwd, cli)
        found = path if os.path.exists(path) else None
    else:
        found = shutil.which(cli) if cli else ""
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), cli)
    if not found or os.path.isdir(found) or not os.access(found, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), cli)


# -- the bench's repository and worktrees -------------------------------------------------------------------


def ensure_repository(plan_repo: str, work_root: Path, task_id: str) -> Path:
    """The plan's repository: the local checkout when its path exists, else a clone in
    `<work_root>/repos/<task id>`, which the stand-in cannot make (it fails as git does)."""
    local = Path(plan_repo)
    if local.exists():
        return local.resolve()
    clone = (work_root / "repos" / task_id).resolve()
    clone.parent.mkdir(parents=True, exist_ok=True)
    if not clone.exists():
        print(f"fatal: repository '{plan_repo}' does not exist", file=sys.stderr, flush=True)
        raise subprocess.CalledProcessError(128, ["git", "clone", plan_repo, str(clone)])
    return clone


def detached_worktree(work_root: Path, task_id: str, item_id: str, base: Path) -> Path:
    """The item's worktree, added when missing (a `.git` file pointing at the base), then detached from
    history: its `.git` is replaced by a fresh repository (a folder). A worktree left by an earlier
    prepare already has a `.git` folder, and removing it as a file raises `IsADirectoryError`, as in the
    real bench."""
    worktree = work_root / "worktrees" / checked(task_id, "task id") / checked(item_id, "item_id")
    worktree.parent.mkdir(parents=True, exist_ok=True)
    if not worktree.exists():
        worktree.mkdir()
        (worktree / ".git").write_text(f"gitdir: {base / '.git' / 'worktrees' / item_id}\n")
    git = worktree / ".git"
    if git.exists():
        git.unlink()
        git.mkdir()
        (git / "HEAD").write_text("ref: refs/heads/master\n")
    return worktree


# -- logging ------------------------------------------------------------------------------------------------


class PipelineLog:
    """bench.prepare's log: lines on stderr in `logging`'s format, also appended to `pipeline_run_<ts>.log`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, message: str, level: str = "INFO") -> None:
        self.lines([message], level)

    def lines(self, messages: Iterable[str], level: str = "INFO") -> None:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        text = "".join(f"{stamp} - bench.prepare - {level} - {message}\n" for message in messages)
        sys.stderr.write(text)
        sys.stderr.flush()
        with open(self.path, "a") as fh:
            fh.write(text)


# -- outcomes (the stand-in's own rules) --------------------------------------------------------------------


def _outcomes() -> dict[str, Any]:
    raw = os.environ.get("STANDIN_OUTCOMES", "").strip()
    if not raw:
        return {}
    if not raw.startswith("{"):
        raw = Path(raw).read_text()
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


_ATTEMPT_SUFFIX = re.compile(r"-a\d+$")
"""`track run` gives a retry its own bench item id (`<id>-a2`): outcomes are keyed by the plan's id."""


def plan_item_id(item_id: str) -> str:
    return _ATTEMPT_SUFFIX.sub("", item_id)


def _spec_for(item: dict[str, Any], attempt: int, table: dict[str, Any]) -> dict[str, Any]:
    default = os.environ.get("STANDIN_DEFAULT", "success")
    choice = table.get(plan_item_id(item["item_id"]), table.get(item["human"], default))
    if isinstance(choice, list):
        choice = choice[min(attempt, len(choice) - 1)] if choice else "success"
    spec = dict(choice) if isinstance(choice, dict) else {"outcome": str(choice)}
    spec.setdefault("sleep", float(os.environ.get("STANDIN_SLEEP", "0") or 0))
    return spec


def _tokens(commit: str) -> dict[str, int]:
    """Deterministic but varied token counts per commit."""
    h = int(hashlib.sha1(commit.encode()).hexdigest()[:8], 16)
    input_tokens = 150_000 + h % 600_000
    return {"input_tokens": input_tokens, "cached_input_tokens": input_tokens // 2,
            "output_tokens": 5_000 + h % 25_000, "reasoning_tokens": 2_000 + h % 9_000}


def _usage(commit: str, sleep: float, spec: dict[str, Any]) -> dict[str, Any]:
    """The run's tokens, calls and duration: varied per commit, each overridable by the item's outcome object."""
    values: dict[str, Any] = {**_tokens(commit), "llm_calls": 4, "duration_s": max(sleep, 0.1)}
    values.update({k: v for k, v in spec.items() if k in values})
    return values


def earlier_attempts(state_root: Path, item_id: str) -> int:
    """How many run folders of this plan item (retries included) exist under `<state_root>/runs/*/*/*/*/`,
    whatever their run path."""
    runs, base = state_root / "runs", plan_item_id(item_id)
    return sum(1 for folder in runs.glob(f"*/*/*/*/{glob.escape(base)}*")
               if folder.is_dir() and plan_item_id(folder.name) == base)


def _succeeded(folder: Path) -> bool:
    """Does this run folder hold a success journal? (An unreadable journal is no.)"""
    try:
        return bool(json.loads((folder / "journal.json").read_text()).get("status") == "success")
    except (OSError, ValueError, AttributeError):
        return False


def _chatter(log: PipelineLog, label: str) -> None:
    """`STANDIN_LINES` lines of agent stdout, to load the runner's log parsing."""
    count = int(os.environ.get("STANDIN_LINES", "0") or 0)
    for start in range(0, count, 5000):
        log.lines(f"{label} STDOUT: step {i}: running bash tool in the sandbox, nothing to see here"
                  for i in range(start, min(count, start + 5000)))


def _crash(run_dir: Path) -> NoReturn:
    """The `crash` outcome: a traceback in the folder and on stderr, and exit code 1 before any journal."""
    run_dir.mkdir(parents=True, exist_ok=True)
    trace = ["Traceback (most recent call last):", '  File "bench/prepare.py", line 812, in run_task',
             "RuntimeError: CUDA error: an illegal memory access was encountered"]
    (run_dir / "trae_stderr.txt").write_text("\n".join(trace) + "\n")
    for line in trace:
        print(line, file=sys.stderr, flush=True)
    sys.exit(1)


# -- one prepare --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One plan item being prepared."""

    item: dict[str, Any]
    item_id: str
    human: str
    pre: str
    folder: Path
    attempt: int


@dataclass
class Prepare:
    """What `bench.prepare` holds while it runs a plan's items."""

    task_cfg: dict[str, Any]
    agents: dict[str, Any]
    run: Run
    base: Path
    resume: bool
    log: PipelineLog
    table: dict[str, Any]

    @property
    def task_id(self) -> str:
        return str(self.task_cfg["id"])

    def process(self, entry: dict[str, Any]) -> str:
        """One item: skipped, or run to its journal. Errors before the agent starts escape (no journal)."""
        item_id = entry["item_id"]
        self.log(f"Starting task processing: {item_id}")
        attempt = earlier_attempts(self.run.state_root, item_id)
        folder = self.run.folder / item_id
        folder.mkdir(parents=True, exist_ok=True)
        if self.resume and _succeeded(folder):
            self.log(f"Skipping {item_id} - task already completed successfully")
            return f"skip:{item_id}"
        human, pre = self._commits(entry)
        item = Item(entry, item_id, human, pre, folder, attempt)
        worktree = detached_worktree(self.run.work_root, self.task_id, item_id, self.base)
        if (worktree / ".git").is_dir():
            self.log(f"Detached worktree {item_id} from git history")
        (folder / "prompt.json").write_text(json.dumps(self._prompt(item), indent=2))
        agent = agent_of(self.agents)
        self._announce(agent, item, worktree)
        try:
            check_program(str(agent.cli), worktree)
            return self._run_agent(agent, item)
        except Exception as exc:
            return self._failed(exc, agent, item)

    def _commits(self, entry: dict[str, Any]) -> tuple[str, str]:
        human = entry["human"]
        pre = entry.get("pre") or None
        self.log(f"Task configuration - Human commit: {human}, Pre commit: {pre or 'will resolve'}")
        if not pre:
            self.log("Resolving pre-commit from parent index")
            pre = hashlib.sha1(str(human).lower().encode()).hexdigest()
            self.log(f"Resolved pre commit: {pre}")
        return human, pre

    def _prompt(self, item: Item) -> dict[str, Any]:
        contract = self.task_cfg.get("optimization_contract") or {}
        scoring = self.task_cfg.get("scoring") or {}
        return {"task": self.task_cfg.get("name", self.task_id), "description": self.task_cfg.get("description", ""),
                "constraints": contract.get("constraints", []), "target_files": contract.get("target_files", []),
                "success": {"primary_metric": scoring.get("primary"),
                            "rules": ["Do not modify tests or metrics harness",
                                      "Preserve external behavior; optimize internals only"]},
                "commits": {"pre": item.pre, "human": item.human}}

    def _branch(self, item: Item) -> str:
        return f"agent/{self.task_id}/{str(item.human)[:8]}"

    def _announce(self, agent: Agent, item: Item, worktree: Path) -> None:
        self.log.lines([f"{agent.name} agent command: {agent.cli} -m trae_agent.cli run --working-dir {worktree}",
                        f"Initializing {agent.name} execution", f"Working directory: {worktree}",
                        f"Max iterations: {agent.max_steps}", f"Agent branch: {self._branch(item)}",
                        f"Creating git branch: {self._branch(item)}", "Git branch created successfully",
                        f"Starting {agent.name} execution at {time.strftime('%Y-%m-%d %H:%M:%S')}"])

    def _run_agent(self, agent: Agent, item: Item) -> str:
        """The agent's run as the item's outcome says: a hang, a crash, or a run folder and its journal."""
        spec = _spec_for(item.item, item.attempt, self.table)
        outcome, sleep = spec.pop("outcome"), float(spec.pop("sleep"))
        self.log(f"Executing {agent.label} subprocess with timeout: {agent.time_budget_minutes * 60}s")
        _chatter(self.log, agent.label)
        if outcome == "hang":
            time.sleep(10**6)
        time.sleep(sleep)
        if outcome == "crash":
            _crash(item.folder)
        run_spec = RunSpec(repo=self.task_id.split("_", 1)[0], item_id=item.item_id, commit=item.human,
                           pre_commit=item.pre, outcome=outcome, run_timestamp=self.run.spec_timestamp(),
                           model_raw=model_dir(), agent=agent.name, time_budget_minutes=agent.time_budget_minutes,
                           broken="journal_missing", **_usage(str(item.human).lower(), sleep, spec))
        messages = write_run_folder(item.folder, run_spec)  # every file but the journal
        for message in messages[2:]:
            self.log(message, "WARNING" if "STDERR" in message else "INFO")
        _write_journal(item.folder, self._journal(run_spec, agent, item))
        self.log(f"Task completed successfully: {run_spec.status}:{item.item_id}")
        return f"{run_spec.status}:{item.item_id}"

    def _journal(self, spec: RunSpec, agent: Agent, item: Item) -> dict[str, Any]:
        sample = journal_document(spec)
        return {"task_id": self.task_id, "commits": {"pre": item.pre, "human": item.human},
                "agent_branch": self._branch(item), "status": spec.status, "run_metadata": self.run.metadata(),
                "experiment": sample["experiment"], "preflight": sample["preflight"], "metrics": sample["metrics"],
                agent.name: {"cli": agent.cli, "time_budget_minutes": agent.time_budget_minutes,
                             "returncode": spec.return_code, "duration_s": spec.duration_s}}

    def _failed(self, exc: Exception, agent: Agent, item: Item) -> str:
        """An exception once the agent was being started: logged, and an error journal."""
        self.log.lines(["Exception during OpenHands execution:", f"  Error type: {type(exc).__name__}",
                        f"  Error message: {exc}", "  Full traceback:"], "ERROR")
        self.log.lines((f"  {line}" for line in traceback.format_exc().split("\n") if line.strip()), "ERROR")
        _write_journal(item.folder, {
            "task_id": self.task_id, "commits": {"pre": item.pre, "human": item.human},
            "agent_branch": self._branch(item), "status": "error", "run_metadata": self.run.metadata(),
            "error": str(exc), "error_type": type(exc).__name__})
        self.log(f"Task failed with exception: error:{item.item_id}", "ERROR")
        return f"error:{item.item_id}"


def _write_journal(folder: Path, payload: dict[str, Any]) -> None:
    payload.setdefault("timestamps", {}).setdefault("written", time.time())
    (folder / "journal.json").write_text(json.dumps(payload, indent=2))


def _load_plan(path: Path) -> Any:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def execute(cfg: dict[str, Any], task_cfg: dict[str, Any], plan_path: Path, run: Run, args: argparse.Namespace,
            log: PipelineLog) -> None:
    """Every item of the plan. An item's error that escapes does not stop the others; the first is raised
    once all have run (as the bench's thread pool does)."""
    plan = _load_plan(plan_path)
    items, plan_repo, task_id = plan["items"], plan["repo"], task_cfg["id"]
    base = ensure_repository(plan_repo, run.work_root, str(task_id))
    prepare = Prepare(task_cfg, cfg["agents"], run, base, args.resume, log, _outcomes())
    if args.max_workers <= 0:
        raise ValueError("max_workers must be greater than 0")
    first: Exception | None = None
    for entry in items:
        try:
            prepare.process(entry)
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first


def _missing_file(args: argparse.Namespace) -> str | None:
    for label, name in (("Task file", args.task), ("Plan file", args.from_plan), ("Bench config", args.bench_cfg)):
        if not Path(name).exists():
            return f"{label} not found: {Path(name)}"
    return None


def _prepare(args: argparse.Namespace, log: PipelineLog) -> str:
    """Load the configs, print the run path, run the plan; return the run path."""
    task_cfg = load_config(Path(args.task))
    cfg = load_config(Path(args.bench_cfg))
    repo = repo_folder_name(task_cfg.get("repo", {}).get("url", ""))
    agent = str(cfg.get("agents", {}).get("default", "unknown"))
    model = model_dir()
    run_path = args.run_id or f"{repo}/{agent}/{model}/{datetime.now().strftime(TS_FORMAT)}"
    print(f"Run path: {run_path}\n  Repo:   {repo}\n  Agent:  {agent}\n  Model:  {model}", flush=True)
    run = open_run(cfg, run_path)
    execute(cfg, task_cfg, Path(args.from_plan), run, args, log)
    return str(run_path)


def prepare(args: argparse.Namespace) -> int:
    """`prepare`: exit 1 on a missing file or an error that stops the run, else 0 (failed items included)."""
    missing = _missing_file(args)
    if missing:
        print(missing, flush=True)
        return 1
    log = PipelineLog(Path.cwd() / f"pipeline_run_{datetime.now().strftime('%Y%m%d_%H%M%S')}.log")
    try:
        run_path = _prepare(args, log)
    except Exception as exc:
        print(f"Prepare error: {exc}", flush=True)
        return 1
    print(f"✓ Prepare completed: state/runs/{run_path}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tracker.demo.standin_bench",
                                     description="A stand-in for ISO-Bench's bench.cli (prepare only).")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("prepare", help="run the agent on each plan item and write journals")
    sub.add_argument("task", help="the task YAML (id, repo.url, ...)")
    sub.add_argument("--from-plan", "-p", default="state/plan.json", help="the plan JSON")
    sub.add_argument("--bench-cfg", default="bench.yaml", help="the bench config (paths, agents)")
    sub.add_argument("--max-workers", type=int, default=4)
    sub.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                     help="skip items whose folder in this run path already succeeded")
    sub.add_argument("--run-id", default=None, help="the run path, e.g. vllm/trae/gpt-5/2025-12-22_21-40-38")
    return parser


def main(argv: list[str] | None = None) -> int:
    return prepare(build_parser().parse_args(argv))


# -- a bench root for tests, the demo and the benchmarks ----------------------------------------------------

_KNOWN_TASKS = {
    "vllm": ("vllm_core", "vLLM core performance", "https://github.com/vllm-project/vllm.git"),
    "sglang": ("sglang_core", "SGLang core performance", "https://github.com/sgl-project/sglang.git"),
}

_BENCH_YAML = """\
paths:
  state_root: state
  work_root: .work
agents:
  default: trae
  trae:
    cli: {cli}
    time_budget_minutes: 60
    args:
      max_steps: 120
"""

_TASK_YAML = """\
id: {id}
name: {name}
description: "Optimize the runtime of the repository's hot paths"
repo:
  url: {url}
optimization_contract:
  strict_targets: false
  target_files: []
  constraints:
    - "No public API breakage"
    - "All TestPack checks must pass"
scoring:
  primary: "functional_match"
  tie_breaker: "throughput"
"""


def lay_out_bench_root(root: Path, repos: tuple[str, ...] = ("vllm", "sglang"),
                       agent_cli: str | None = None) -> dict[str, Path]:
    """Write a bench root like ISO-Bench's: `bench.yaml` (state/.work paths, agent trae with `cli` =
    `agent_cli` or this interpreter), `tasks/<repo>.yaml` per repo (`vllm_core`, `sglang_core` with their
    GitHub URLs) and a checkout folder `repos/<repo>` (with a `.git`) per repo. Returns {repo: checkout},
    absolute: the path a plan's `repo` should name."""
    root = Path(root).resolve()
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    (root / "bench.yaml").write_text(_BENCH_YAML.format(cli=json.dumps(agent_cli or sys.executable)))
    checkouts: dict[str, Path] = {}
    for repo in repos:
        task_id, name, url = _KNOWN_TASKS.get(repo, (f"{repo}_core", f"{repo} core performance",
                                                     f"https://github.com/{repo}/{repo}.git"))
        (root / "tasks" / f"{repo}.yaml").write_text(
            _TASK_YAML.format(id=json.dumps(task_id), name=json.dumps(name), url=json.dumps(url)))
        checkout = root / "repos" / repo
        (checkout / ".git").mkdir(parents=True, exist_ok=True)
        (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        checkouts[repo] = checkout
    return checkouts


if __name__ == "__main__":
    sys.exit(main())
