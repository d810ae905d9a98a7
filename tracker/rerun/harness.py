"""A broken setup told apart from a model failure: what was broken, from the bench's own words.

An attempt classified `harness_error` never gave the model a run (the bench, its task or config file,
the repo checkout, a stale worktree, the bench's interpreter or the agent program is broken). It stops
the campaign at once, like an exhausted quota (every further item would fail the same way), it does
not count against `max_attempts`, and it is kept out of every model success rate. `diagnose` names the
cause from the evidence, so the message can say what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_CAUSES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("task_file", re.compile(r"Task file not found: (\S+)"), "the bench's task file {0} does not exist"),
    ("plan_file", re.compile(r"Plan file not found: (\S+)"), "the bench cannot find the item's plan {0}"),
    ("bench_config", re.compile(r"Bench config not found: (\S+)"), "the bench config {0} does not exist"),
    ("bench_python",
     re.compile(r"No module named '?([\w.]+)'?|Error while finding module specification for '([\w.]+)'"),
     "the bench's Python cannot import {0}"),
    ("repo_checkout", re.compile(r"fatal: repository '([^']*)' does not exist|'git', 'clone', '([^']*)'"),
     "the plan's repo {0} is not a checkout the bench can find"),
    ("stale_worktree", re.compile(r"Is a directory: '([^']*\.git)'"),
     "a worktree of an earlier run is in the way: {0}"),
    ("agent_program",
     re.compile(r"cannot start ([^:\s]+)|No such file or directory: '([^']+)'|(\S+): command not found"),
     "the agent program {0} cannot be started"),
)
"""Causes in the order they are looked for: the first whose signature a line shows names the problem."""


@dataclass(frozen=True)
class SetupProblem:
    """Why the bench could not give the model a run: a cause id, in words, and the line that shows it."""

    cause: str
    what: str
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {"cause": self.cause, "what": self.what, "evidence": self.evidence}


def diagnose(lines: Iterable[str], return_code: int | None = None) -> SetupProblem:
    """The setup problem the evidence lines show (the exit code alone when no line names one)."""
    texts = list(lines)
    for cause, pattern, what in _CAUSES:
        for text in texts:
            found = pattern.search(text)
            if found:
                subject = next((g for g in found.groups() if g), "")
                return SetupProblem(cause, what.format(subject), text.strip()[:300])
    if return_code in (126, 127):
        return SetupProblem("agent_program", f"the agent command could not be run (exit code {return_code})",
                            texts[0].strip()[:300] if texts else "")
    return SetupProblem("unknown", "the bench failed before the agent ran", texts[0].strip()[:300] if texts else "")
