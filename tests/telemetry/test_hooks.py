"""The telemetry hooks on their own: attempt causes, hedges won, provider names, header propagation."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import replace

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sidecar.domain.context import outbound_headers
from sidecar.domain.model import ProviderSpec
from sidecar.domain.observe import AttemptEnded, ObservedRpc
from sidecar.domain.outcome import AttemptCause, AttemptOutcome, AttemptRecord, AttemptStart, FailureClass
from sidecar.domain.response import Completion, Usage
from sidecar.telemetry import Telemetry, TelemetryOptions, build_telemetry
from tests.factories import chat, model, provider


def telemetry(
    env: dict[str, str] | None = None, **options: object
) -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    opts = TelemetryOptions(**{"prometheus": False, "trace_sample_ratio": 1.0, **options})  # type: ignore[arg-type]
    return (
        build_telemetry(opts, env=env or {}, span_exporter=exporter, metric_readers=(reader,)),
        exporter,
        reader,
    )


def start(
    number: int, cause: AttemptCause, *, name: str = "m1", after: str = "", **kw: object
) -> AttemptStart:
    return AttemptStart(
        number=number,
        model=model(name),
        endpoint=provider(),
        request=chat("a private question"),
        cause=cause,
        hedged=cause is AttemptCause.HEDGE,
        after=after,
        **kw,  # type: ignore[arg-type]
    )


def started(t: Telemetry, event: AttemptStart) -> Callable[[AttemptRecord, Completion | None], None]:
    """Start an attempt on a call observer outside any RPC; returns what reports its end, as the
    executor's ledger does."""
    call = t.detached()
    call.attempt_started(event)
    return lambda record, completion: call.attempt_ended(AttemptEnded(event, record, completion))


def record(number: int, outcome: AttemptOutcome, cause: AttemptCause, **kw: object) -> AttemptRecord:
    return AttemptRecord(
        number=number,
        model="m1",
        provider="p1",
        outcome=outcome,
        latency_s=0.2,
        cause=cause.value,
        hedged=cause is AttemptCause.HEDGE,
        **kw,  # type: ignore[arg-type]
    )


def sums(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, object], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, object], ...], float]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    value = getattr(p, "value", None)
                    if value is None:
                        value = p.count  # histograms: how many recorded
                    out.setdefault(m.name, {})[tuple(sorted(p.attributes.items()))] = value
    return out


def test_each_cause_is_counted_and_a_cancelled_loser_is_not_an_operations_duration():
    t, exporter, reader = telemetry()
    end1 = started(t, start(1, AttemptCause.PRIMARY))
    end2 = started(t, start(2, AttemptCause.HEDGE))
    end3 = started(t, start(3, AttemptCause.FALLBACK, after="rate_limited"))
    end4 = started(t, start(4, AttemptCause.RETRY, after="overloaded", retry_of=1))
    assert end1
    assert end2
    assert end3
    assert end4
    end1(record(1, AttemptOutcome.CANCELLED, AttemptCause.PRIMARY), None)
    usage = Usage(input_tokens=12, output_tokens=30)
    end2(record(2, AttemptOutcome.SUCCESS, AttemptCause.HEDGE, usage=usage, response_model="m1-2025"), None)
    failure = {"failure_class": FailureClass.RATE_LIMITED, "error_message": "HTTP 429: slow down"}
    end3(record(3, AttemptOutcome.FAILURE, AttemptCause.FALLBACK, **failure), None)
    end4(record(4, AttemptOutcome.FAILURE, AttemptCause.RETRY, **failure), None)

    m = sums(reader)
    assert m["turnout.hedges"] == {(("turnout.model", "m1"),): 1}
    assert m["turnout.fallbacks"] == {
        (("turnout.fallback.reason", "rate_limited"), ("turnout.model", "m1")): 1
    }
    assert m["turnout.retries"] == {(("turnout.fallback.reason", "overloaded"), ("turnout.model", "m1")): 1}
    durations = m["gen_ai.client.operation.duration"]
    assert sum(durations.values()) == 3  # the cancelled attempt is not among them
    assert any(dict(k).get("error.type") == "rate_limited" for k in durations)
    tokens = {dict(k)["gen_ai.token.type"]: v for k, v in m["gen_ai.client.token.usage"].items()}
    assert tokens == {"input": 1, "output": 1}

    t.sdk.flush()
    spans = {s.attributes["turnout.attempt.number"]: s for s in exporter.get_finished_spans()}
    assert spans[1].attributes["error.type"] == "cancelled"
    assert spans[2].attributes["turnout.attempt.hedged"] is True
    assert spans[2].attributes["gen_ai.response.model"] == "m1-2025"
    assert spans[4].attributes["turnout.attempt.retry_of"] == 1
    assert spans[4].status.description == "HTTP 429: slow down"


def test_provider_names_follow_the_conventions_and_the_endpoint_gives_address_and_port():
    t, exporter, _ = telemetry()
    endpoints = {
        "anthropic": ProviderSpec("a", "anthropic", "https://api.anthropic.com/v1"),
        "gcp.gemini": ProviderSpec("g", "gemini", "https://generativelanguage.googleapis.com/v1beta"),
        "aws.bedrock": ProviderSpec("b", "bedrock", "https://bedrock-runtime.us-east-1.amazonaws.com"),
        "azure.ai.openai": ProviderSpec("z", "azure_openai", "https://x.openai.azure.com"),
        "groq": ProviderSpec(
            "q", "openai_compatible", "https://api.groq.com/openai/v1", options=(("flavor", "groq"),)
        ),
        "my-vllm": ProviderSpec("my-vllm", "openai_compatible", "http://10.0.0.5:8000/v1"),
    }
    for i, endpoint in enumerate(endpoints.values(), 1):
        end = started(t, replace(start(i, AttemptCause.PRIMARY), endpoint=endpoint))
        assert end is not None
        end(record(i, AttemptOutcome.SUCCESS, AttemptCause.PRIMARY), None)
    t.sdk.flush()
    seen = {
        s.attributes["gen_ai.provider.name"]: (s.attributes["server.address"], s.attributes["server.port"])
        for s in exporter.get_finished_spans()
    }
    assert set(seen) == set(endpoints)
    assert seen["anthropic"] == ("api.anthropic.com", 443)
    assert seen["my-vllm"] == ("10.0.0.5", 8000)


def test_trace_context_goes_to_providers_only_when_asked_and_only_in_the_attempts_context():
    t, exporter, _ = telemetry(propagate_to_providers=True)

    def attempt() -> tuple[tuple[str, str], ...]:
        end = started(t, start(1, AttemptCause.PRIMARY))
        assert end is not None
        headers = outbound_headers.get()
        end(record(1, AttemptOutcome.SUCCESS, AttemptCause.PRIMARY), None)
        return headers

    headers = dict(contextvars.copy_context().run(attempt))
    assert outbound_headers.get() == ()  # the caller's context is untouched
    t.sdk.flush()
    (span,) = exporter.get_finished_spans()
    _version, trace_id, span_id, _flags = headers["traceparent"].split("-")
    assert (trace_id, span_id) == (
        format(span.context.trace_id, "032x"),
        format(span.context.span_id, "016x"),
    )

    quiet, _, _ = telemetry()  # the default: nothing is sent
    assert (
        dict(
            contextvars.copy_context().run(
                lambda: (started(quiet, start(1, AttemptCause.PRIMARY)), outbound_headers.get())[1]
            )
        )
        == {}
    )


def test_a_hook_that_fails_is_reported_once_and_never_raises(caplog):
    t, _, _ = telemetry()
    broken = replace(start(1, AttemptCause.PRIMARY), request=None)  # type: ignore[arg-type]
    call = t.detached()
    call.attempt_started(broken)  # does not raise
    call.attempt_started(broken)
    assert len([r for r in caplog.records if "telemetry: recording failed" in r.getMessage()]) == 1


def test_an_unsampled_request_makes_no_child_spans_but_still_propagates_its_trace():
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    t, exporter, _ = telemetry(propagate_to_providers=True)
    unsampled = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(0))

    def attempt() -> tuple[tuple[str, str], ...]:
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(unsampled)))
        try:
            end = started(t, start(1, AttemptCause.PRIMARY))
            assert end is not None
            headers = outbound_headers.get()
            end(record(1, AttemptOutcome.SUCCESS, AttemptCause.PRIMARY), None)
            return headers
        finally:
            otel_context.detach(token)

    headers = dict(contextvars.copy_context().run(attempt))
    t.sdk.flush()
    assert exporter.get_finished_spans() == ()
    assert headers["traceparent"] == f"00-{0x1234:032x}-{0x5678:016x}-00"


def recorded_roots(t: Telemetry, n: int, traceparent: str = "") -> int:
    metadata = (("traceparent", traceparent),) if traceparent else ()
    recorded = 0
    for _ in range(n):
        with ObservedRpc(t, "Route", metadata) as rpc:
            span = rpc.call.span  # type: ignore[attr-defined]
            recorded += span is not None and span.recording
    return recorded


def test_by_default_a_tenth_of_root_requests_are_traced_and_a_callers_decision_is_followed():
    t, _, _ = telemetry(trace_sample_ratio=0.1)  # TelemetryOptions' and the config's default
    assert TelemetryOptions().trace_sample_ratio == 0.1
    assert 100 <= recorded_roots(t, 2000) <= 300  # 10% of 2000, give or take
    sampled, unsampled = (f"00-{0xABC:032x}-{0xDEF:016x}-{flags}" for flags in ("01", "00"))
    assert recorded_roots(t, 50, sampled) == 50
    assert recorded_roots(t, 50, unsampled) == 0


def test_otel_traces_sampler_from_the_environment_wins_over_the_setting():
    t, _, _ = telemetry({"OTEL_TRACES_SAMPLER": "always_on"}, trace_sample_ratio=0.0)
    assert recorded_roots(t, 100) == 100
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    t, _, _ = telemetry(env, trace_sample_ratio=1.0)
    assert recorded_roots(t, 100) == 0
    sampled = f"00-{0xABC:032x}-{0xDEF:016x}-01"
    assert recorded_roots(t, 10, sampled) == 10  # parent-based: the caller's trace goes on


def _under_server_span(t: Telemetry, body):  # type: ignore[no-untyped-def]
    """Run body() with a recorded server span current, as an RPC does; returns (its result, the span)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    def run():  # type: ignore[no-untyped-def]
        server = t.tracer.start_span("server")
        token = otel_context.attach(trace.set_span_in_context(server))
        try:
            return body(), server
        finally:
            otel_context.detach(token)
            server.end()

    return contextvars.copy_context().run(run)


def test_under_a_recorded_request_the_attempt_span_is_a_child_written_as_the_sdk_writes_spans():
    """The attempt span is written finished (finished_spans.py): same trace, parent, flags, resource
    and scope as an SDK span, its start and end attributes and status, and the header's span id."""
    t, exporter, _ = telemetry(propagate_to_providers=True)

    def attempt() -> tuple[tuple[str, str], ...]:
        end = started(t, start(1, AttemptCause.PRIMARY))
        assert end is not None
        headers = outbound_headers.get()
        failed = record(
            1,
            AttemptOutcome.FAILURE,
            AttemptCause.PRIMARY,
            failure_class=FailureClass.SERVER_ERROR,
            error_message="upstream 503",
        )
        end(failed, None)
        return headers

    sent, _server = _under_server_span(t, attempt)
    headers = dict(sent)
    t.sdk.flush()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    child, parent = spans["chat m1"], spans["server"]
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id
    assert child.context.trace_id == parent.context.trace_id
    assert child.context.trace_flags == parent.context.trace_flags
    assert child.context.trace_flags.sampled
    assert child.resource is parent.resource
    assert child.instrumentation_scope == parent.instrumentation_scope
    assert child.kind.name == "CLIENT"
    assert (child.status.status_code.name, child.status.description) == ("ERROR", "upstream 503")
    assert child.attributes["gen_ai.operation.name"] == "chat"  # from the start
    assert child.attributes["error.type"] == "server_error"  # from the end
    assert None not in (child.start_time, child.end_time, parent.start_time, parent.end_time)
    assert parent.start_time <= child.start_time <= child.end_time <= parent.end_time  # type: ignore[operator]
    _version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (trace_id, span_id, flags) == (
        format(child.context.trace_id, "032x"),
        format(child.context.span_id, "016x"),
        format(child.context.trace_flags, "02x"),  # sampled, and the SDK's random-trace-id flag
    )


def test_written_spans_keep_the_attribute_length_limit_the_operator_set(monkeypatch):
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "12")
    t, exporter, _ = telemetry()
    t.capture_content = True

    def attempt() -> None:
        end = started(t, start(1, AttemptCause.PRIMARY))
        assert end is not None
        end(record(1, AttemptOutcome.SUCCESS, AttemptCause.PRIMARY), None)

    _under_server_span(t, attempt)
    t.sdk.flush()
    (child,) = [s for s in exporter.get_finished_spans() if s.name != "server"]
    assert len(child.attributes["gen_ai.input.messages"]) == 12
