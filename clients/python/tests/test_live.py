"""The client against a live sidecar (with the provider simulator): every call, a deadline, the errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from turnout_client import AsyncClient, Client, TurnoutError, chat, format_usd, pb

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "chat.py"


def test_generate_answers_with_model_cost_and_attempts(client: Client):
    answer = client.generate(
        chat("Is this email spam? 'You won a prize!'", task_type="classify", request_id="py-1")
    )
    assert answer.output.text.strip()
    assert answer.request_id == "py-1"
    assert answer.model
    assert answer.provider
    assert answer.finish_reason == pb.FINISH_REASON_STOP
    assert answer.usage.input_tokens > 0
    assert answer.usage.output_tokens > 0
    assert answer.cost_usd_nanos > 0
    assert answer.total_cost_usd_nanos >= answer.cost_usd_nanos
    # The decision's first choice is tried first; a hedge or a fallback may be the one that answers.
    assert answer.attempts[0].model == answer.decision.model
    assert [a.model for a in answer.attempts if a.outcome == pb.ATTEMPT_OUTCOME_SUCCESS] == [answer.model]


def test_generate_stream_reads_deltas_to_the_end_event(client: Client):
    events = list(client.generate_stream(chat("Write two sentences about rivers", max_output_tokens=40)))
    *deltas, end = events
    assert deltas
    assert all(e.WhichOneof("event") == "delta" for e in deltas)
    assert end.WhichOneof("event") == "end"
    assert "".join(e.delta.text for e in deltas).strip()
    assert end.end.model
    assert end.end.cost_usd_nanos > 0
    assert end.end.usage.output_tokens > 0


def test_route_explains_its_decision(client: Client):
    decision = client.route(chat("Is this spam? win a prize")).decision
    assert decision.model == "gpt-4o-mini"
    assert decision.route == "default"
    assert decision.strategy == "rules>capability>sla"
    assert decision.reasons
    assert all(reason for reason in decision.reasons)
    assert [f.model for f in decision.fallbacks] == ["gemini-2.5-flash", "gpt-4o"]
    assert decision.estimated_cost_usd_nanos > 0


def test_list_models_gives_the_registry(client: Client):
    models = {m.name: m for m in client.list_models()}
    assert {"gpt-4o", "gpt-4o-mini", "claude-3-5-haiku", "gemini-2.5-flash"} <= models.keys()
    assert models["gpt-4o"].provider == "openai"


def test_an_expired_deadline_is_a_typed_error_without_details(client: Client):
    with pytest.raises(TurnoutError) as caught:
        client.generate(chat("Explain circuit breakers at length"), timeout=0.001)
    assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert (caught.value.reason, caught.value.field_violations, caught.value.retry_delay) == ("", (), None)


def test_an_invalid_request_names_the_field(client: Client):
    with pytest.raises(TurnoutError) as caught:
        client.generate(pb.GenerateRequest())
    error = caught.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert (error.reason, error.domain) == ("INVALID_REQUEST", "turnout.dev")
    assert [v.field for v in error.field_violations] == ["messages"]
    assert "at least one message" in error.field_violations[0].description


def test_an_unknown_model_is_not_found(client: Client):
    with pytest.raises(TurnoutError) as caught:
        client.generate(chat("hi", pinned_model="no-such-model"))
    error = caught.value
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert error.reason == "MODEL_NOT_FOUND"
    assert "hints.pinned_model" in [v.field for v in error.field_violations]
    assert "no-such-model" in error.message


def test_no_candidate_is_a_failed_precondition(client: Client):
    request = chat("hi")
    request.hints.allowed_models.append("gpt-4o")
    request.hints.denied_models.append("gpt-4o")
    with pytest.raises(TurnoutError) as caught:
        client.generate(request)
    error = caught.value
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "NO_CANDIDATE"
    assert "denied by hints.denied_models" in error.message


def test_a_stream_error_is_typed_too(client: Client):
    with pytest.raises(TurnoutError) as caught:
        list(client.generate_stream(chat("hi", pinned_model="no-such-model")))
    assert caught.value.reason == "MODEL_NOT_FOUND"


def test_the_unix_socket(unix_socket: str):
    with Client(f"unix://{unix_socket}") as turnout:
        assert turnout.route(chat("hello")).decision.model


async def test_the_asyncio_client(address: str):
    async with AsyncClient(address, timeout=30) as turnout:
        answer = await turnout.generate(chat("Say hello"))
        assert answer.output.text
        assert answer.cost_usd_nanos > 0
        events = [e async for e in turnout.generate_stream(chat("Say hello"))]
        assert events[-1].WhichOneof("event") == "end"
        assert (await turnout.route(chat("hi"))).decision.reasons
        assert await turnout.list_models()
        with pytest.raises(TurnoutError) as caught:
            await turnout.generate(chat("hi", pinned_model="no-such-model"))
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
        with pytest.raises(TurnoutError) as caught:
            await turnout.generate(chat("Explain circuit breakers at length"), timeout=0.001)
        assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_the_example_runs(address: str):
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env={"TURNOUT_ADDRESS": address, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer, summary = run.stdout.strip().rsplit("\n", 1)
    assert answer.strip()
    model, cost = summary.removeprefix("model: ").split(", cost: ")
    with Client(address) as turnout:
        assert model in {m.name for m in turnout.list_models()}
    assert cost.startswith("$0.")
    assert cost == format_usd(int(cost[3:].ljust(9, "0")))
