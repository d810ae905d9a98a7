"""Classify a run's failure from its `RunFacts` with a data-driven, versioned rule table.

The table (`tracker/data/failure_rules.json`, or an override file, JSON or YAML) is an ordered list
of rules; the first rule whose conditions all hold decides the category. Its `version` is recorded
with every classification, so history can be re-derived when the table improves.

Precedence is the table's order, root cause before symptoms (the README's "Failure categories"
lists it): a missing tool output that then ran out of steps is `tool_output_missing`; a quota error,
also an HTTP 429, is never a rate limit.

Evidence always comes from matched signatures or named structured facts, never from "stderr is
not empty"; known-harmless noise blocks (the table's `noise` list) are removed first. Excerpts are
at most `excerpt_chars` long, centred on the match, and redacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tracker.classify.redaction import redact
from tracker.classify.rules import CATEGORIES, GENERIC_CATEGORIES, NoiseBlock, Rule, RuleTable, default_rule_table
from tracker.isobench.common import EvidenceLine
from tracker.isobench.run import RunFacts


@dataclass(frozen=True)
class Evidence:
    """Why a rule matched: a file (relative to the run folder or tree root), line, redacted excerpt."""

    file: str
    line: int | None
    excerpt: str


@dataclass(frozen=True)
class Classification:
    category: str
    rule_id: str
    table_version: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Incident:
    """One category of error signature seen in a run, with how often and where."""

    category: str
    rule_id: str
    count: int
    files: dict[str, int]
    first: dict[str, Any]
    last: dict[str, Any]
    excerpt: str

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "rule_id": self.rule_id, "count": self.count, "files": self.files,
                "first": self.first, "last": self.last, "excerpt": self.excerpt}


def classify(facts: RunFacts, table: RuleTable | None = None) -> Classification:
    """The category of one run: the first rule of the table whose conditions all hold."""
    table = table or default_rule_table()
    return classify_lines(facts, evidence_lines(facts, table), table)


def evidence_lines(facts: RunFacts, table: RuleTable) -> list[EvidenceLine]:
    """The run's evidence with known-harmless noise removed (specific signatures always kept)."""
    return remove_noise(facts.evidence, table.noise, _specific_patterns(table))


def classify_lines(facts: RunFacts, lines: list[EvidenceLine], table: RuleTable) -> Classification:
    for rule in table.rules:
        evidence = _match(rule, facts, lines, table)
        if evidence is not None:
            kept = tuple(evidence[: table.max_evidence])
            return Classification(rule.category, rule.id, table.version, kept)
    return Classification("other", "<no rule>", table.version)


_Hit = tuple[Rule, EvidenceLine, "re.Match[str]"]


def find_incidents(lines: list[EvidenceLine], table: RuleTable) -> tuple[Incident, ...]:
    """Every specific error signature in the run's evidence, one incident per category.

    Each line counts for the first rule (in precedence order) that matches it, so a quota error,
    which is also a 429, is not a rate-limit incident too. A category's `count` is its occurrences
    in the file that shows most of them: TRAE echoes each API error in stdout and in the trajectory.
    """
    rules = [r for r in table.rules if r.patterns and r.category not in GENERIC_CATEGORIES]
    hits: dict[str, list[_Hit]] = {}
    for line in lines:
        found = _first_rule_hit(line, rules)
        if found is not None:
            hits.setdefault(found[0].category, []).append(found)
    order = {category: i for i, category in enumerate(CATEGORIES)}
    return tuple(_incident(category, hits[category], table.excerpt_chars)
                 for category in sorted(hits, key=lambda c: order.get(c, len(order))))


def _first_rule_hit(line: EvidenceLine, rules: list[Rule]) -> _Hit | None:
    for rule in rules:
        if line.source in rule.sources:
            match = next((m for p in rule.patterns if (m := p.search(line.text))), None)
            if match is not None:
                return rule, line, match
    return None


def _incident(category: str, hits: list[_Hit], width: int) -> Incident:
    """One category's hits as an incident, counted in the file that shows most of them."""
    files: dict[str, int] = {}
    for _rule, line, _match in hits:
        files[line.file] = files.get(line.file, 0) + line.count
    top = max(files, key=lambda f: files[f])
    in_top = [h for h in hits if h[1].file == top]
    rule, first, match = min(in_top, key=lambda h: h[1].line or 0)
    last_line = max((h[1].last_line or h[1].line or 0) for h in in_top) or None
    return Incident(
        category=category, rule_id=rule.id, count=files[top], files=files,
        first={"file": top, "line": first.line}, last={"file": top, "line": last_line},
        excerpt=excerpt(first.text, match.start(), match.end(), width),
    )


def _specific_patterns(table: RuleTable) -> tuple[re.Pattern[str], ...]:
    return tuple(p for r in table.rules if r.category not in GENERIC_CATEGORIES for p in r.patterns)


def remove_noise(lines: Iterable[EvidenceLine], noise: Iterable[NoiseBlock],
                 keep: tuple[re.Pattern[str], ...] = ()) -> list[EvidenceLine]:
    """Drop evidence lines inside known-harmless blocks (e.g. a console helper's traceback);
    lines matching one of `keep` stay whatever block they are in."""
    kept = list(lines)
    for block in noise:
        dropped: set[int] = set()
        for i, start in enumerate(kept):
            if start.line is None or start.source not in block.sources or not block.start.search(start.text):
                continue
            dropped |= _block_members(kept, i, block)
        kept = [ln for j, ln in enumerate(kept)
                if j not in dropped or any(p.search(ln.text) for p in keep)]
    return kept


def _block_members(lines: list[EvidenceLine], i: int, block: NoiseBlock) -> set[int]:
    """Indexes of lines in the same file from line i's number through the block's end line."""
    first = lines[i]
    assert first.line is not None
    members: set[int] = set()
    for line_no, j in _window(lines, first.file, first.line, first.line + block.max_lines):
        members.add(j)
        if line_no > first.line and block.end.search(lines[j].text):
            return members
    return set() if _missing_required_end(block, first) else members


def _window(lines: list[EvidenceLine], file: str, first: int, last: int) -> list[tuple[int, int]]:
    """(line number, index) of the lines of `file` numbered first..last, in line order."""
    return sorted(
        (ln.line, j) for j, ln in enumerate(lines)
        if ln.file == file and ln.line is not None and first <= ln.line <= last
    )


def _missing_required_end(block: NoiseBlock, first: EvidenceLine) -> bool:
    """The block needs an end line and none was found (a one-line block may end on its start line)."""
    return block.require_end and not (block.max_lines == 0 and block.end.search(first.text))


def _match(rule: Rule, facts: RunFacts, lines: list[EvidenceLine], table: RuleTable) -> list[Evidence] | None:
    """Evidence list if every condition of `rule` holds, else None."""
    evidence: list[Evidence] = []
    checks = (_check_status, _check_return_code, _check_budget, _check_patch, _check_journal_error)
    for check in checks:
        found = check(rule, facts)
        if found is None:
            return None
        evidence += found
    if rule.patterns:
        hits = _pattern_hits(rule, lines, table.excerpt_chars)
        if not hits:
            return None
        evidence = hits + evidence
    return evidence


def _pattern_hits(rule: Rule, lines: list[EvidenceLine], width: int) -> list[Evidence]:
    """Every evidence line of the rule's sources matching one of its patterns."""
    hits: list[Evidence] = []
    for line in lines:
        if line.source not in rule.sources:
            continue
        for pattern in rule.patterns:
            m = pattern.search(line.text)
            if m:
                hits.append(Evidence(line.file, line.line, excerpt(line.text, m.start(), m.end(), width)))
                break
    return hits


def excerpt(text: str, start: int, end: int, width: int = 300) -> str:
    """At most `width` redacted characters of `text` around [start, end)."""
    text = redact(text)
    if len(text) <= width:
        return text
    lead = max(0, min(start - width // 4, len(text) - width))
    cut = text[lead: lead + width]
    if lead > 0:
        cut = "…" + cut[1:]
    if lead + width < len(text):
        cut = cut[:-1] + "…"
    return cut


def _check_status(rule: Rule, facts: RunFacts) -> list[Evidence] | None:
    if rule.status is None:
        return []
    if facts.status not in rule.status:
        return None
    if facts.status_source == "journal":
        return [Evidence("journal.json", None, f"journal status: {facts.status}")]
    if facts.log is not None:
        line = facts.log.fact_lines.get("status") or facts.log.fact_lines.get("journal_status")
        return [Evidence(facts.log.log_file, line, f"Task status determined as: {facts.status}")]
    return [Evidence(".", None, f"status: {facts.status}")]


def _check_return_code(rule: Rule, facts: RunFacts) -> list[Evidence] | None:
    if rule.return_code is None:
        return []
    if facts.return_code is None or facts.return_code not in rule.return_code:
        return None
    if facts.journal is not None and facts.journal.returncode is not None:
        return [Evidence("journal.json", None, f"trae.returncode: {facts.return_code}")]
    assert facts.log is not None
    return [Evidence(facts.log.log_file, facts.log.fact_lines.get("return_code"),
                     f"Process return code: {facts.return_code}")]


def _check_budget(rule: Rule, facts: RunFacts) -> list[Evidence] | None:
    if rule.duration_at_least_budget is None:
        return []
    budget_min, duration = facts.time_budget_minutes, facts.duration_s
    reached = budget_min is not None and duration is not None and duration >= budget_min * 60
    if reached != rule.duration_at_least_budget:
        return None
    if not reached:
        return []
    return [Evidence("journal.json", None, f"duration {duration:.0f} s >= budget {budget_min:g} min")]


def _check_patch(rule: Rule, facts: RunFacts) -> list[Evidence] | None:
    if rule.has_patch is None:
        return []
    if facts.has_patch != rule.has_patch:
        return None
    if facts.has_patch:
        return [Evidence("model_patch.diff", None, f"patch of {facts.patch.bytes} bytes")]
    what = "model_patch.diff is empty" if facts.patch.present else "no model_patch.diff"
    return [Evidence("model_patch.diff", None, what)]


def _check_journal_error(rule: Rule, facts: RunFacts) -> list[Evidence] | None:
    if rule.journal_error is None:
        return []
    has_error = facts.journal is not None and bool(facts.journal.error)
    if has_error != rule.journal_error:
        return None
    if not has_error:
        return []
    journal_lines = [e for e in facts.evidence if e.source == "journal"]
    text = journal_lines[0].text if journal_lines else "journal error"
    return [Evidence("journal.json", None, excerpt(text, 0, 0))]

