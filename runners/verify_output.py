"""How `track verify` reports: the chain, the anchors, the read model, for people and as JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tracker.eventstore.store import VerifyReport
from tracker.projections.read_model.audit import ReadModelReport


def verify_json(report: VerifyReport, model: ReadModelReport | None) -> dict[str, Any]:
    brk = report.first_break
    return {
        "ok": report.ok and (model is None or model.ok),
        "events_checked": report.events_checked, "last_position": report.last_position,
        "store_id": report.store_id,
        "first_break": None if brk is None else asdict(brk),
        "evidence": {"checked": report.evidence_checked, "missing": list(report.evidence_missing),
                     "corrupt": list(report.evidence_corrupt)},
        "anchors": {"file": report.anchor_file, "read": report.anchors_read, "ok": not report.anchor_problems,
                    "problems": [asdict(p) for p in report.anchor_problems]},
        "read_model": None if model is None else {
            "ok": model.ok, "checkpoint": model.checkpoint, "problem": model.problem,
            "rows_compared": model.rows_compared, "differences_total": model.differences_total,
            "differences": [asdict(d) for d in model.differences]},
    }


def verify_text(report: VerifyReport, model: ReadModelReport | None) -> str:
    lines = [_chain_line(report), *_anchor_lines(report), *_evidence_lines(report)]
    if model is not None:
        lines += _model_lines(model)
    return "\n".join(lines)


def _chain_line(report: VerifyReport) -> str:
    brk = report.first_break
    if brk is None:
        return f"ok: {report.events_checked} events, hash chain intact up to position {report.last_position}"
    return (f"BROKEN at position {brk.position} (event {brk.event_id}, stream {brk.stream_id}): {brk.reason}; "
            f"{report.events_checked} events before it are intact")


def _anchor_lines(report: VerifyReport) -> list[str]:
    if report.anchor_file is None or not report.anchored:
        where = f" ({report.anchor_file} holds none)" if report.anchor_file else ""
        return [f"warning: no anchor to hold the log against{where}: a cut tail or a swapped store would not show"]
    if not report.anchor_problems:
        return [f"ok: the log matches its {report.anchors_read} anchors in {report.anchor_file}"]
    return [f"BROKEN ({problem.kind}): {problem.detail} [anchors: {report.anchor_file}]"
            for problem in report.anchor_problems]


def _evidence_lines(report: VerifyReport) -> list[str]:
    if not report.evidence_checked:
        return []
    if not (report.evidence_missing or report.evidence_corrupt):
        return [f"ok: {report.evidence_checked} evidence blobs match the hashes the log names"]
    lines = [f"BROKEN (evidence): blob {sha} is named by the log but not in the store"
             for sha in report.evidence_missing[:20]]
    lines += [f"BROKEN (evidence): blob {sha} no longer matches its hash" for sha in report.evidence_corrupt[:20]]
    shown = min(20, len(report.evidence_missing)) + min(20, len(report.evidence_corrupt))
    total = len(report.evidence_missing) + len(report.evidence_corrupt)
    return lines + ([f"  … and {total - shown} more (--json lists them all)"] if total > shown else [])


def _model_lines(model: ReadModelReport) -> list[str]:
    if model.problem is not None:
        return [f"READ MODEL: {model.problem}"]
    if model.ok:
        return [f"ok: read model matches the log replayed to position {model.checkpoint} "
                f"({model.rows_compared} rows compared)"]
    lines = [f"READ MODEL DIFFERS from the log replayed to position {model.checkpoint}: "
             f"{model.differences_total} differences in {model.rows_compared} rows"]
    for d in model.differences:
        if d.column is None:
            side = "only in the live read model" if d.rebuilt is None else "missing from the live read model"
            lines.append(f"  {d.table} {d.key}: row {side}")
        else:
            lines.append(f"  {d.table} {d.key} {d.column}: live {d.live!r}, rebuilt {d.rebuilt!r}")
    if model.differences_total > len(model.differences):
        lines.append(f"  … and {model.differences_total - len(model.differences)} more (--max-differences)")
    return lines
