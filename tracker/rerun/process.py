"""Run one agent process: stream its output, line by line, to a log file, a parser and the screen.

The child is the agent under a supervisor (`supervise`) in a session (process group) of its own, so the
terminal's Ctrl-C reaches only `track run` (which decides what to do with the running item), a timeout
or a campaign stop kills the whole tree the agent spawned, and the tree dies with the runner (kill -9
included). Every line is redacted before it is written anywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tracker.classify.redaction import LineRedactor
from tracker.isobench.textlog import TOKEN_LINE

SUPERVISOR = str(Path(__file__).with_name("supervise.py"))
"""Run as a script (standard library only), so it starts wherever the bench runs, whatever its PYTHONPATH."""
_STATUS = re.compile(r"Task status determined as: (\w+)")
FATAL_SIGNATURES = {
    "quota_exceeded": ("insufficient_quota", "exceeded your current quota"),
    "invalid_api_key": ("invalid_api_key", "Incorrect API key provided"),
}
"""Errors after which every further item would fail too: seen live, they stop the campaign at once."""


@dataclass
class LiveState:
    """What the output said so far (the run folder, read after exit, is the record of truth)."""

    lines: int = 0
    status: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    api_errors: int = 0
    last_error: str | None = None
    fatal: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class LineParser:
    """Parse status lines, token totals and API errors as they stream by; cheap substring gates first."""

    def __init__(self, on_fatal: Callable[[str, str], None] | None = None) -> None:
        self.state = LiveState()
        self.on_fatal = on_fatal

    def feed(self, line: str) -> None:
        self.state.lines += 1
        self._progress(line)
        if "rror" in line or "quota" in line or "API key" in line:
            self._error(line)

    def _progress(self, line: str) -> None:
        """The task status and token totals the agent prints."""
        state = self.state
        if "Task status" in line and (m := _STATUS.search(line)):
            state.status = m.group(1)
        elif "Input:" in line and (t := TOKEN_LINE.search(line)):
            state.input_tokens, state.output_tokens = int(t.group(1)), int(t.group(2))

    def _error(self, line: str) -> None:
        """A line that may report an error: count failed API calls, and catch the first fatal one."""
        state = self.state
        if "API call failed" in line:
            state.api_errors += 1
            state.last_error = line.strip()[-300:]
        if state.fatal is None and (category := _fatal_category(line)) is not None:
            state.fatal = category
            state.last_error = line.strip()[-300:]
            if self.on_fatal:
                self.on_fatal(category, state.last_error)


def _fatal_category(line: str) -> str | None:
    """The first fatal category whose signature the line shows (None: not fatal)."""
    return next((category for category, needles in FATAL_SIGNATURES.items() if any(n in line for n in needles)),
                None)


@dataclass
class ProcessResult:
    exit_code: int | None
    wall_time_s: float
    killed: str | None
    live: LiveState


@dataclass
class AgentProcess:
    """One agent process; `run` blocks until it exits; `kill` (from another thread) ends its tree."""

    command: list[str]
    cwd: Path
    log_file: Path
    parser: LineParser
    echo: Callable[[str], None] | None = None
    env: dict[str, str] | None = None
    on_start: Callable[[int], None] | None = None
    """Called with the process group id as soon as the agent runs (the claim records it at once)."""
    pid: int | None = None
    killed: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    _proc: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> ProcessResult:
        self.started_at = time.monotonic()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "w", encoding="utf-8") as log:
            try:
                proc = subprocess.Popen([sys.executable, SUPERVISOR, "--", *self.command],
                                        cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        env={**os.environ, **(self.env or {})})
            except OSError as exc:
                log.write(f"track run: cannot start {self.command[0]}: {exc}\n")
                return ProcessResult(127, time.monotonic() - self.started_at, None, self.parser.state)
            with self._lock:
                self._proc, self.pid = proc, proc.pid
                if self.killed:  # stopped before it could start
                    self._signal(signal.SIGKILL)
            if self.on_start is not None:
                self.on_start(proc.pid)
            assert proc.stdout is not None
            feed, write, echo = self.parser.feed, log.write, self.echo
            redact = LineRedactor()  # a PEM block or a wrapped key spans lines of the output
            for raw in proc.stdout:
                line = redact(raw.decode("utf-8", "replace"))
                write(line)
                feed(line)
                if echo is not None:
                    echo(line.rstrip("\n"))
            exit_code = proc.wait()
        return ProcessResult(exit_code, time.monotonic() - self.started_at, self.killed, self.parser.state)

    def kill(self, reason: str, grace_s: float = 3.0) -> None:
        """Terminate the agent's process group (SIGTERM, then SIGKILL after `grace_s`)."""
        with self._lock:
            if self.killed:
                return
            self.killed = reason
            if self._proc is None:
                return
            self._signal(signal.SIGTERM)
        threading.Thread(target=self._finish_kill, args=(grace_s,), daemon=True).start()

    def _finish_kill(self, grace_s: float) -> None:
        assert self._proc is not None
        try:
            self._proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)


def kill_orphan_group(pid: int) -> bool:
    """Kill the process group of an agent left behind by a dead runner; True if there was one."""
    try:
        os.killpg(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False
