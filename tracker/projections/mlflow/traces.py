"""An attempt's trajectory as an MLflow trace: the transcript viewer of the run's Traces tab.

One trace per attempt, linked to its run: a root span for the attempt (start to end of the trajectory), one
child span per LLM call (`llm_interactions[*]`, at its own timestamp until the next call) carrying its token
usage as `mlflow.chat.tokenUsage` (so the trace's totals are the sums the attempt's metrics hold), and one
child span per tool call of that response, with the tool's result and success from `agent_steps[*]`. A step
that failed (an incident: the API error the agent retried, a missing tool output) marks its LLM span ERROR,
with the error text. Every text leaves through `redact`, cut to `MAX_TEXT`.

Only TRAE's trajectory shape is read (the only agent that writes one); an attempt without one has no trace.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tracker.classify.redaction import redact

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Span, TraceInfo

MAX_TEXT = 2000
MAX_TRAJECTORY_BYTES = 64 * 1024 * 1024
"""A larger trajectory is not drawn as a trace (its artifact and metrics still are)."""
TOKEN_USAGE = "mlflow.chat.tokenUsage"
STREAM_TRACE_TAG = "track.stream_id"
TRACE_ID_PREFIX = "tr-"


@dataclass
class ToolCall:
    name: str
    call_id: str
    arguments: str
    result: str | None = None
    success: bool | None = None
    error: str | None = None


@dataclass
class LlmCall:
    """One LLM interaction of the trajectory, with what the agent did with its answer."""

    start_ns: int
    model: str
    usage: dict[str, int]
    prompt: str
    answer: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    error: str | None = None
    end_ns: int = 0


@dataclass
class Transcript:
    start_ns: int
    end_ns: int
    task: str
    calls: list[LlmCall]
    final_result: str | None

    def token_totals(self) -> dict[str, int]:
        totals = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        for call in self.calls:
            for key in totals:
                totals[key] += call.usage.get(key, 0)
        return totals


def _ns(stamp: Any) -> int | None:
    if not isinstance(stamp, str):
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return None


def _text(value: Any) -> str:
    """A redacted, cut text of any JSON value."""
    raw = value if isinstance(value, str) else orjson.dumps(value).decode() if value is not None else ""
    cut = raw if len(raw) <= MAX_TEXT else raw[:MAX_TEXT] + "…"
    return redact(cut)


def _usage(response: dict[str, Any]) -> dict[str, int]:
    """TRAE's usage as MLflow reads it: input (cached included), output (reasoning included), their total."""
    usage = _dict(response.get("usage"))
    numbers = {k: int(v) for k, v in usage.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    out = {"input_tokens": numbers.get("input_tokens", 0), "output_tokens": numbers.get("output_tokens", 0)}
    out["total_tokens"] = out["input_tokens"] + out["output_tokens"]
    for key, name in (("cache_read_input_tokens", "cached_input_tokens"), ("reasoning_tokens", "reasoning_tokens")):
        if key in numbers:
            out[name] = numbers[key]
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _tool_results(steps: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Tool results by call id, and each failed step's error by the call ids of its tool calls (and `at:<time>`)."""
    results = {str(r["call_id"]): r for step in steps for r in _dicts(step.get("tool_results")) if r.get("call_id")}
    errors: dict[str, str] = {}
    for step in steps:
        error = step.get("error")
        if isinstance(error, str) and error:
            keys = [str(c["call_id"]) for c in _dicts(step.get("tool_calls")) if c.get("call_id")]
            errors.update(dict.fromkeys([*keys, f"at:{step.get('timestamp')}"], error))
    return results, errors


def _tool(tool: dict[str, Any], results: dict[str, dict[str, Any]]) -> ToolCall:
    call_id = str(tool.get("call_id") or tool.get("id") or "")
    result = results.get(call_id, {})
    return ToolCall(name=str(tool.get("name") or "tool"), call_id=call_id, arguments=_text(tool.get("arguments")),
                    result=_text(result.get("result")), success=result.get("success"),
                    error=_text(result["error"]) if result.get("error") else None)


def _call(item: dict[str, Any], results: dict[str, dict[str, Any]], errors: dict[str, str],
          fallback_ns: int) -> LlmCall:
    response = _dict(item.get("response"))
    messages = _dicts(item.get("input_messages"))
    call = LlmCall(start_ns=_ns(item.get("timestamp")) or fallback_ns,
                   model=str(response.get("model") or item.get("model") or ""), usage=_usage(response),
                   prompt=_text(messages[-1].get("content")) if messages else "",
                   answer=_text(response.get("content")))
    call.tool_calls = [_tool(tool, results) for tool in _dicts(response.get("tool_calls"))]
    keys = [tool.call_id for tool in call.tool_calls] + [f"at:{item.get('timestamp')}"]
    error = next((errors[key] for key in keys if key in errors), None)
    call.error = _text(error) if error else None
    return call


def _load(path: Path) -> dict[str, Any] | None:
    """The trajectory document when it is TRAE's shape and not too large to draw, else None."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_TRAJECTORY_BYTES:
            return None
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("llm_interactions"), list) else None


def _close_calls(calls: list[LlmCall], end: int) -> None:
    """Each call lasts until the next one starts (the last one until the trajectory ends)."""
    for this, after in zip(calls, [*calls[1:], None], strict=False):  # the last one pairs with None
        this.end_ns = max(this.start_ns + 1_000, after.start_ns if after else end)


def read_transcript(path: Path) -> Transcript | None:
    """The trajectory's calls, or None when there is no readable trajectory of TRAE's shape."""
    doc = _load(path)
    if doc is None:
        return None
    start = _ns(doc.get("start_time")) or 0
    results, errors = _tool_results(_dicts(doc.get("agent_steps")))
    calls = [_call(item, results, errors, start) for item in _dicts(doc["llm_interactions"])]
    if not calls:
        return None  # nothing to show, and no tokens to agree with
    last_call = max(c.start_ns for c in calls) + 1_000_000
    end = max(_ns(doc.get("end_time")) or 0, last_call)  # a trajectory's own end can precede its calls' stamps
    _close_calls(calls, end)
    start = min([start or end, *(c.start_ns for c in calls)])
    final = doc.get("final_result")
    return Transcript(start_ns=start, end_ns=max(end, start + 1_000), task=_text(doc.get("task")), calls=calls,
                      final_result=_text(final) if final is not None else None)


def trace_id_for(stream_id: str) -> str:
    """The attempt's trace id, from its stream id: a sync killed after writing a trace writes the same one again
    (an upsert), never a second trace of the attempt."""
    return TRACE_ID_PREFIX + hashlib.sha256(f"track-trace:{stream_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class BuiltTrace:
    """A trace made in memory: its info (run link, tags, token totals) and its finished spans."""

    info: TraceInfo
    spans: list[Span]


def build_trace(transcript: Transcript, *, experiment_id: str, run_id: str, name: str, stream_id: str,
                succeeded: bool | None = None) -> BuiltTrace:
    """The transcript as a finished MLflow trace: a root span for the attempt, one span per LLM call with its
    token usage, one per tool call under it. Nothing is sent. The trace is an error when the attempt failed
    (`succeeded` False; without it, when its last call did), with the final result as its message."""
    from mlflow.entities import TraceInfo, TraceLocation, TraceState

    trace_id = trace_id_for(stream_id)
    failed = not succeeded if succeeded is not None else any(c.error for c in transcript.calls[-1:])
    spans = _SpanMaker(trace_id, experiment_id)
    error = (transcript.final_result or "the attempt failed") if failed else None
    root = spans.add(name, None, "AGENT", transcript.start_ns, transcript.end_ns, {"task": transcript.task},
                     {"final_result": transcript.final_result}, error, {"llm_calls": str(len(transcript.calls))})
    for number, call in enumerate(transcript.calls, 1):
        _add_call(spans, root, number, call)
    inputs, outputs = _json({"task": transcript.task}), _json({"final_result": transcript.final_result})
    info = TraceInfo(
        trace_id=trace_id, trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=transcript.start_ns // 1_000_000, state=TraceState.ERROR if failed else TraceState.OK,
        request_preview=inputs[:1000], response_preview=outputs[:1000],
        execution_duration=(transcript.end_ns - transcript.start_ns) // 1_000_000,
        trace_metadata={"mlflow.sourceRun": run_id, "mlflow.trace_schema.version": "3",
                        "mlflow.trace.tokenUsage": _json(transcript.token_totals()),
                        "mlflow.traceInputs": inputs, "mlflow.traceOutputs": outputs},
        tags={"mlflow.traceName": name, STREAM_TRACE_TAG: stream_id},
    )
    return BuiltTrace(info, spans.made)


def _add_call(spans: _SpanMaker, parent: int, number: int, call: LlmCall) -> None:
    error = call.error
    span = spans.add(f"llm call {number}", parent, "CHAT_MODEL", call.start_ns, call.end_ns,
                     {"last_message": call.prompt}, {"content": call.answer, "error": error}, error,
                     {TOKEN_USAGE: call.usage, "model": call.model, **({"error": error} if error else {})})
    step = max(1, (call.end_ns - call.start_ns) // (len(call.tool_calls) + 1))
    for i, tool in enumerate(call.tool_calls, 1):
        begin = call.start_ns + i * step - step // 2
        failed = tool.success is False or tool.error is not None
        spans.add(tool.name, span, "TOOL", begin, min(call.end_ns, begin + step // 2),
                  {"arguments": tool.arguments, "call_id": tool.call_id},
                  {"result": tool.result, "error": tool.error}, (tool.error or "tool call failed") if failed else None)


class _SpanMaker:
    """Finished spans of one trace, with ids derived from the trace id and their order (deterministic)."""

    def __init__(self, trace_id: str, experiment_id: str) -> None:
        self.trace_id = trace_id
        self.otel_trace_id = int(trace_id.removeprefix(TRACE_ID_PREFIX), 16)
        self.common = {"mlflow.traceRequestId": _json(trace_id), "mlflow.experimentId": _json(experiment_id)}
        self.made: list[Span] = []

    def add(self, name: str, parent: int | None, kind: str, start_ns: int, end_ns: int, inputs: Any, outputs: Any,
            error: str | None, attributes: dict[str, Any] | None = None) -> int:
        """Add one finished span; returns its span id."""
        from mlflow.entities import Span, SpanStatus, SpanStatusCode
        from mlflow.tracing.utils import build_otel_context
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan

        span_id = int.from_bytes(hashlib.sha256(f"{self.trace_id}:{len(self.made)}".encode()).digest()[:8]) or 1
        values = {**self.common, "mlflow.spanType": _json(kind), "mlflow.spanInputs": _json(inputs),
                  "mlflow.spanOutputs": _json(outputs), "mlflow.spanStartTimeNs": str(start_ns),
                  **{key: _json(value) for key, value in (attributes or {}).items()}}
        status = SpanStatus(SpanStatusCode.ERROR if error else SpanStatusCode.OK, error or "")
        otel = ReadableSpan(name=name, context=build_otel_context(self.otel_trace_id, span_id),
                            parent=build_otel_context(self.otel_trace_id, parent) if parent else None,
                            start_time=start_ns, end_time=max(end_ns, start_ns), attributes=values,
                            status=status.to_otel_status(), resource=Resource.get_empty())
        self.made.append(Span(otel))
        return span_id


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def log_trace(client: MlflowClient, transcript: Transcript, *, experiment_id: str, run_id: str, name: str,
              stream_id: str, succeeded: bool | None = None) -> str:
    """Write the transcript as one trace of the run, in two calls (its spans, then its info); returns its id.

    Built in memory and written through the tracking store's trace API (SQL store or REST server alike),
    not span by span through the global tracer: ~50x fewer writes per trace."""
    from mlflow.tracing.client import TracingClient

    built = build_trace(transcript, experiment_id=experiment_id, run_id=run_id, name=name, stream_id=stream_id,
                        succeeded=succeeded)
    tracing = TracingClient(client.tracking_uri)
    tracing.log_spans(experiment_id, built.spans)
    tracing.start_trace(built.info)
    return built.info.trace_id
