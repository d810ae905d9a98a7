"""`python -m tracker.rerun.supervise -- CMD...`: run an agent so that it dies with its runner.

The runner starts this supervisor in a session (process group) of its own. On Linux the supervisor asks the
kernel for SIGTERM when the runner's thread dies (`PR_SET_PDEATHSIG`; a `kill -9` of `track run` included)
and becomes the reaper of everything the agent spawns (`PR_SET_CHILD_SUBREAPER`). On that signal, or on the
runner's own stop, it ends the whole group, the bench and the agent under it, then exits. So a commit never
has two agents: the dead runner's agent is gone before another runner can take the commit over.
Standard library only: it starts in milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 3.0


def _prctl(option: int, value: int) -> bool:
    """One prctl(2) call; False where there is none (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _end_group(signum: int, _frame: object) -> None:
    """End every process of the group (SIGTERM, then SIGKILL after the grace), then this one."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    group = os.getpgrp()
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.05)
        except ChildProcessError:
            break
    os.killpg(group, signal.SIGKILL)


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1:] if "--" in argv else argv
    if not command:
        print("usage: python -m tracker.rerun.supervise -- CMD...", file=sys.stderr)
        return 2
    parent = os.getppid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGTERM, _end_group)
    signal.signal(signal.SIGHUP, _end_group)
    if os.getppid() != parent:  # the runner died before the death signal was armed
        return 1
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"track run: cannot start {command[0]}: {exc}", flush=True)
        return 127
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
