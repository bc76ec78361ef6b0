"""Across wire formats through the sidecar: an Anthropic -> Gemini -> OpenAI fallback, and keys
that never show in logs, errors or responses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from turnout_simulator.config import load_simulator_config
from turnout_simulator.server import Simulator, start_simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import parse_config
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from sidecar.telemetry import TelemetryOptions, build_telemetry
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_SIMULATOR, inject_fault, point_at_simulator, serving
from tests.planted import assert_no_key
from tests.server.helpers import generate_request, user

PLANTED = "sk-planted-E2E-SECRET-31337"
CROSS = {
    "name": "cross",
    "models": ["claude-3-5-haiku", "gemini-2.5-flash", "gpt-4o-mini"],
    "execution": {"max_retries": 0},
}


@pytest.fixture
async def keyed_simulator() -> AsyncIterator[Simulator]:
    config = load_simulator_config(EXAMPLE_SIMULATOR).model_copy(
        update={"time_scale": 0.01, "api_key": PLANTED}
    )
    sim = await start_simulator(config, "127.0.0.1", 0)
    yield sim
    await sim.close()


@pytest.fixture
async def cross_stub(keyed_simulator: Simulator) -> AsyncIterator[pb_grpc.RouterServiceStub]:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, keyed_simulator.root_url)
    for provider in raw["providers"]:
        provider["api_key_env"] = "TURNOUT_TEST_PLANTED_KEY"
    raw["routes"].append(CROSS)
    config = parse_config(raw, source="e2e", env={"TURNOUT_TEST_PLANTED_KEY": PLANTED})
    async with serving(config) as stub:
        yield stub


async def test_anthropic_then_gemini_then_openai(cross_stub, keyed_simulator):
    await inject_fault(keyed_simulator, model="claude-3-5-haiku", kind="overloaded", rate=1.0)
    await inject_fault(keyed_simulator, model="gemini-2.5-flash", kind="server_error", rate=1.0)
    response = await cross_stub.Generate(generate_request(hints=pb.RoutingHints(route="cross")))
    assert response.model == "gpt-4o-mini"
    assert [(a.provider, a.failure_class) for a in response.attempts] == [
        ("anthropic", pb.FAILURE_CLASS_OVERLOADED),
        ("google", pb.FAILURE_CLASS_SERVER_ERROR),
        ("openai", pb.FAILURE_CLASS_UNSPECIFIED),
    ]
    events = [
        e
        async for e in cross_stub.GenerateStream(
            pb.GenerateStreamRequest(messages=[user("stream it")], hints=pb.RoutingHints(route="cross"))
        )
    ]
    assert events[-1].end.model == "gpt-4o-mini"
    assert "".join(e.delta.text for e in events if e.HasField("delta")).strip()


async def test_each_wire_format_answers_through_the_sidecar(cross_stub):
    for model in CROSS["models"]:
        response = await cross_stub.Generate(generate_request(hints=pb.RoutingHints(pinned_model=model)))
        assert response.model == model
        assert response.output.text
        assert response.usage.output_tokens > 0


async def test_the_key_never_shows_in_logs_errors_or_responses(cross_stub, keyed_simulator, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for kind in ("rate_limit", "server_error", "malformed_json", "stream_cut"):
        await inject_fault(keyed_simulator, model="*", kind=kind, count=3)
        try:
            response = await cross_stub.Generate(generate_request(hints=pb.RoutingHints(route="cross")))
            seen.append(str(response))
        except grpc.aio.AioRpcError as error:
            seen += [error.details() or "", str(error.trailing_metadata())]
    seen += [r.getMessage() for r in caplog.records] + [str(r.exc_info) for r in caplog.records if r.exc_info]
    assert seen
    assert_no_key(PLANTED, *seen)


async def test_a_wrong_key_echoed_back_never_leaks(caplog):
    """The sidecar's key is refused, and the provider quotes its head back ("sk-pla***", as OpenAI
    does): nothing of it reaches the client's status and details, the spans or the logs."""
    caplog.set_level(logging.DEBUG)
    config = load_simulator_config(EXAMPLE_SIMULATOR).model_copy(
        update={"time_scale": 0.01, "api_key": "sk-the-right-one-000000"}
    )
    sim = await start_simulator(config, "127.0.0.1", 0)
    exporter = InMemorySpanExporter()
    telemetry = build_telemetry(
        TelemetryOptions(prometheus=False, trace_sample_ratio=1.0), env={}, span_exporter=exporter
    )
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, sim.root_url)
    for provider in raw["providers"]:
        provider["api_key_env"] = "TURNOUT_TEST_PLANTED_KEY"
    raw["routes"].append(CROSS)
    sidecar = Sidecar(
        parse_config(raw, source="e2e", env={"TURNOUT_TEST_PLANTED_KEY": PLANTED}),
        ListenOverrides(port=0),
        telemetry=telemetry,
    )
    await sidecar.start()
    seen: list[str] = []
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            for request in (
                generate_request(hints=pb.RoutingHints(route="cross")),
                generate_request(hints=pb.RoutingHints(pinned_model="gpt-4o-mini")),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Generate(request)
                error = info.value
                assert error.code() is grpc.StatusCode.UNAVAILABLE
                seen += [error.details() or "", str(error.trailing_metadata())]
                status = rpc_status.from_call(error)
                assert status is not None
                seen.append(str(status))
                for detail in status.details:
                    info_pb = error_details_pb2.ErrorInfo()
                    if detail.Unpack(info_pb):
                        seen += [*info_pb.metadata.keys(), *info_pb.metadata.values()]
            stream = stub.GenerateStream(
                pb.GenerateStreamRequest(messages=[user("hi")], hints=pb.RoutingHints(route="cross"))
            )
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in stream:
                    pass
            seen += [info.value.details() or "", str(info.value.trailing_metadata())]
    finally:
        await sidecar.stop(grace_s=0)
        await sim.close()
    assert any("Incorrect API key provided: ********" in s for s in seen)  # the echo was there
    spans = exporter.get_finished_spans()
    assert any(s.status.description for s in spans)
    for span in spans:
        seen += [span.status.description or "", str(dict(span.attributes or {})), str(span.events)]
    seen += [r.getMessage() for r in caplog.records]
    seen += [logging.Formatter().format(r) for r in caplog.records if r.exc_info]
    assert_no_key(PLANTED, *seen)


async def test_logprobs_asked_over_grpc_come_back_from_openai_and_gemini(cross_stub):
    params = pb.GenerationParams(max_output_tokens=8, logprobs=True, top_logprobs=2)
    for model in ("gpt-4o-mini", "gemini-2.5-flash"):
        hints = pb.RoutingHints(pinned_model=model)
        response = await cross_stub.Generate(generate_request(params=params, hints=hints))
        tokens = response.output.logprobs
        assert b"".join(t.utf8 for t in tokens).decode() == response.output.text, model
        assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in tokens), model
        assert tokens[0].top_logprobs[0].token == tokens[0].token
        stream = cross_stub.GenerateStream(
            pb.GenerateStreamRequest(messages=[user("stream it")], params=params, hints=hints)
        )
        events = [e async for e in stream]
        text = "".join(e.delta.text for e in events if e.HasField("delta"))
        streamed = "".join(t.token for e in events if e.HasField("delta") for t in e.delta.logprobs)
        assert text, model
        assert streamed == text, model
    plain = await cross_stub.Generate(generate_request(hints=pb.RoutingHints(pinned_model="gpt-4o-mini")))
    assert not plain.output.logprobs  # not asked, not sent


async def test_logprobs_from_a_model_that_cannot_return_them_is_a_clear_refusal(cross_stub):
    params = pb.GenerationParams(logprobs=True)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cross_stub.Generate(
            generate_request(params=params, hints=pb.RoutingHints(pinned_model="claude-3-5-haiku"))
        )
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "claude-3-5-haiku: lacks logprobs" in (caught.value.details() or "")
    # On the cross route the Anthropic model is left out and the next one answers.
    response = await cross_stub.Generate(
        generate_request(params=params, hints=pb.RoutingHints(route="cross"))
    )
    assert response.model == "gemini-2.5-flash"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cross_stub.Generate(generate_request(params=pb.GenerationParams(top_logprobs=3)))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "params.top_logprobs: needs params.logprobs" in (caught.value.details() or "")
