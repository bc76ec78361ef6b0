"""No content without the opt-in, hashed ids, the request log line, and the metrics a dashboard reads."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import grpc
import pytest
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import example_config, inject_fault
from tests.server.helpers import generate_request
from tests.telemetry.conftest import Lines, Observed, observed_sidecar


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


SECRET_PROMPT = "my card number is 4111-zebra-canary"
TENANT = "acme-corp-tenant"
CAPTURE = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}


def everything_recorded(o: Observed) -> str:
    spans = "\n".join(s.to_json() for s in o.spans())
    return "\n".join([spans, o.metrics_json(), *o.log.lines])


async def test_without_the_opt_in_no_prompt_completion_or_raw_tenant_is_recorded_anywhere(
    observed: Observed,
):
    response = await observed.stub.Generate(generate_request(SECRET_PROMPT, tenant_id=TENANT))
    recorded = everything_recorded(observed)
    assert observed.spans()
    assert "gen_ai.input.messages" not in recorded
    assert "gen_ai.output.messages" not in recorded
    assert "zebra-canary" not in recorded
    assert response.output.text[:40] not in recorded  # nor the answer
    assert TENANT not in recorded
    hashed = observed.telemetry.hashed(TENANT)
    assert hashed.startswith("h:")
    assert hashed in recorded  # grouped by, never readable


async def test_with_the_standard_opt_in_content_goes_on_attempt_spans_only(
    simulator: Simulator, access_log: Lines
):
    async with observed_sidecar(simulator, access_log, env=CAPTURE) as o:
        response = await o.stub.Generate(generate_request(SECRET_PROMPT))
        (attempt,) = [s for s in o.spans() if s.name.startswith("chat ")]
        sent = json.loads(attempt.attributes["gen_ai.input.messages"])
        assert sent == [{"role": "user", "parts": [{"type": "text", "content": SECRET_PROMPT}]}]
        answer = json.loads(attempt.attributes["gen_ai.output.messages"])
        assert answer[0]["parts"][0]["content"] == response.output.text
        assert answer[0]["finish_reason"] == "stop"
        # Still never in the log line or the metrics.
        assert "zebra-canary" not in "\n".join([o.metrics_json(), *o.log.lines])
        assert "zebra-canary" not in "".join(s.to_json() for s in o.spans() if not s.name.startswith("chat "))


async def test_one_json_log_line_per_request_with_decision_attempts_tokens_cost_and_latency(
    observed: Observed, simulator
):
    await inject_fault(simulator, model="gpt-4o-mini", kind="rate_limit", count=1, retry_after_s=0)
    response = await observed.stub.Generate(
        generate_request("classify this", request_id="req-42", tenant_id=TENANT)
    )
    await observed.stub.Route(pb.RouteRequest(messages=generate_request().messages))
    with pytest.raises(grpc.aio.AioRpcError):
        await observed.stub.Generate(pb.GenerateRequest(messages=[]))
    generate, route, bad = observed.log_lines()
    assert generate["rpc"] == "Generate"
    assert generate["status"] == "OK"
    assert generate["request_id"] == "req-42"
    assert generate["trace_id"] == response.trace_id
    assert generate["tenant"] == observed.telemetry.hashed(TENANT)
    assert generate["route"] == "default"
    assert generate["decision"]["model"] == "gpt-4o-mini"
    assert generate["decision"]["candidates"] == ["gpt-4o-mini", "gemini-2.5-flash", "gpt-4o"]
    assert [(a["model"], a["outcome"]) for a in generate["attempts"]] == [
        (a.model, {1: "success", 2: "failure", 3: "cancelled"}[a.outcome]) for a in response.attempts
    ]
    assert generate["attempts"][0]["failure"] == "rate_limited"
    assert generate["usage"] == {
        "input_tokens": response.usage.input_tokens,
        "output_tokens": response.usage.output_tokens,
    }
    assert generate["cost_usd"] == pytest.approx(response.total_cost_usd_nanos / 1e9)
    assert generate["reference_cost_usd"] > generate["cost_usd"]  # gpt-4o would have cost more
    assert generate["savings_usd"] == pytest.approx(generate["reference_cost_usd"] - generate["cost_usd"])
    assert generate["latency_ms"] > 0
    assert route["rpc"] == "Route"
    assert "attempts" not in route
    assert route["decision"]["model"]
    assert bad["status"] == "INVALID_ARGUMENT"
    assert bad["error"] == "InvalidRequest"


@pytest.mark.parametrize("ratio", [0.0, 1.0], ids=["unsampled", "sampled"])
async def test_the_log_line_is_json_whatever_the_caller_put_in_its_request_id(
    simulator: Simulator, access_log: Lines, ratio: float
) -> None:
    odd = 'a "quoted" \\ back\\slash\nnew line \u0001 ctrl \u00e9t\u00e9 \U0001f600 </script>'
    async with observed_sidecar(simulator, access_log, trace_sample_ratio=ratio) as o:
        response = await o.stub.Generate(generate_request("hello", request_id=odd))
        await o.stub.Route(pb.RouteRequest(messages=generate_request().messages, request_id=odd))
        generate, route = o.log_lines()  # each line parses (json.loads)
    for line in (generate, route):
        assert line["request_id"] == odd
        assert line["route"] == "default"
        assert isinstance(line["latency_ms"], float)
        assert line["latency_ms"] > 0
        assert round(line["latency_ms"], 3) == line["latency_ms"]  # to the microsecond
        assert len(line["trace_id"]) == 32
        assert line["decision"]["cache_hit"] in (True, False)
        assert isinstance(line["decision"]["decision_us"], int)
    assert generate["trace_id"] == response.trace_id
    assert generate["trace_id"] != route["trace_id"]


async def test_metrics_hold_decisions_tokens_cost_savings_and_fallbacks(observed: Observed, simulator):
    await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", count=1)
    for i in range(3):
        await observed.stub.Generate(generate_request(f"question {i}", tenant_id=TENANT))
    m = observed.metrics()
    decisions = m["turnout.decision.duration"]  # its count is the decisions
    assert sum(p.count for p in decisions) == 3
    assert {p.attributes["turnout.route"] for p in decisions} == {"default"}
    assert {p.attributes["turnout.decision.model"] for p in decisions} == {"gpt-4o-mini"}
    assert sum(p.value for p in m["turnout.fallbacks"]) == 1
    usage = {p.attributes["gen_ai.token.type"]: p for p in m["gen_ai.client.token.usage"]}
    assert set(usage) == {"input", "output"}
    assert list(usage["input"].explicit_bounds)[:4] == [1, 4, 16, 64]  # the conventions' buckets
    duration = m["gen_ai.client.operation.duration"]
    assert list(duration[0].explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    assert sum(p.count for p in duration) == 4
    cost = sum(p.value for p in m["turnout.cost.usd"])
    reference = sum(p.value for p in m["turnout.cost.reference.usd"])
    savings = sum(p.value for p in m["turnout.savings.usd"])
    assert 0 < cost < reference
    assert savings == pytest.approx(reference - cost)
    assert {p.attributes["turnout.tenant"] for p in m["turnout.cost.usd"]} == {
        observed.telemetry.hashed(TENANT)
    }
    requests = m["turnout.request.duration"]
    assert sum(p.count for p in requests) == 3
    assert {p.attributes["turnout.rpc.status"] for p in requests} == {"OK"}
    assert {p.attributes["turnout.model"] for p in m["turnout.breaker.state"]} >= {"gpt-4o-mini"}


async def test_the_prometheus_endpoint_serves_the_metrics_on_localhost(simulator: Simulator):
    sidecar = Sidecar(example_config(simulator.base_url), ListenOverrides(host="127.0.0.1", port=0))
    await sidecar.start()
    try:
        host, port = sidecar.telemetry.sdk.prometheus_address or ("", 0)
        assert host == "127.0.0.1"
        assert port > 0
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            await pb_grpc.RouterServiceStub(channel).Generate(generate_request())
        text = await asyncio.to_thread(scrape, f"http://{host}:{port}/metrics")
        for series in (
            "turnout_decision_duration_seconds_count",
            "turnout_request_duration_seconds_count",
            "gen_ai_client_token_usage_bucket",
            "gen_ai_client_operation_duration_seconds_bucket",
            "turnout_cost_usd_total",
            "turnout_savings_usd",
        ):
            assert series in text, series
    finally:
        await sidecar.stop(grace_s=0)


def test_the_request_log_handler_writes_bare_lines_in_blocks_and_all_of_them_by_close(tmp_path):
    import logging

    from sidecar.telemetry import log_requests_to
    from sidecar.telemetry.access_log import write

    path = tmp_path / "access.log"
    with path.open("w") as stream:
        log_requests_to(stream)
        access = logging.getLogger("turnout.access")
        try:
            for i in range(1000):
                write(access, f'{{"n":{i}}}')
        finally:
            handler = access.handlers[0]
            handler.close()
            access.handlers.clear()
            access.propagate = True
            access.setLevel(logging.NOTSET)
    lines = path.read_text().splitlines()
    assert lines == [f'{{"n":{i}}}' for i in range(1000)]
