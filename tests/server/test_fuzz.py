"""Issue 20: no request, however odd, gets INTERNAL or UNKNOWN, or stops the server.

- Property: any message built from the proto's schema (tests/server/proto_strategies.py) gets OK
  or INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION from conversion, validation and routing.
- Fuzz smoke: a few thousand byte-level mutations of valid serialized requests, sent through a
  real grpc.aio channel on 127.0.0.1, bounded in time; each gets one of those codes.

`make fuzz` runs the same for longer (TURNOUT_FUZZ_SECONDS, TURNOUT_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from typing import Any

import grpc
from hypothesis import HealthCheck, given, settings

from sidecar.domain.errors import TurnoutError
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server.convert_in import to_chat_request
from tests.server.helpers import generate_request, user
from tests.server.proto_strategies import messages

CLEAN = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}
FUZZ_SECONDS = float(os.environ.get("TURNOUT_FUZZ_SECONDS", "20"))
FUZZ_CASES = 3000 if "TURNOUT_FUZZ_SECONDS" not in os.environ else 10**9  # `make fuzz`: time only
EXAMPLES = int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "300"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(pb.GenerateRequest.DESCRIPTOR))
def test_conversion_of_any_generate_request_raises_only_a_turnout_error(request_: pb.GenerateRequest):
    with contextlib.suppress(TurnoutError):
        to_chat_request(request_)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request_=messages(pb.RouteRequest.DESCRIPTOR))
async def test_any_route_request_gets_a_clean_status(stub, request_: pb.RouteRequest):
    code, message = await outcome(stub.Route(request_, timeout=10))
    assert code in CLEAN, f"{code.name}: {message}"


async def outcome(call: Any) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        at = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip a bit
            i = min(at, len(b) - 1)
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # set an interesting byte
            b[min(at, len(b) - 1)] = rng.choice([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x1A, 0x22])
        elif op == 2:  # insert random bytes
            b[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:  # delete a run
            del b[at : at + rng.randint(1, 8)]
        elif op == 4:  # truncate
            del b[at:]
        else:  # duplicate a run (repeated fields, overlong lengths)
            run = b[at : at + rng.randint(1, 16)]
            b[at:at] = run * rng.randint(1, 4)
    return bytes(b)


def _seeds() -> list[bytes]:
    fmt = pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA)
    fmt.json_schema.name = "out"
    fmt.json_schema.schema.update({"type": "object", "properties": {"x": {"type": "number", "maximum": 3}}})
    tool = pb.Tool(name="lookup", description="find")
    tool.parameters.update({"type": "object", "properties": {"q": {"type": "string", "pattern": "^a"}}})
    hints = pb.RoutingHints(task_type="classify", tags=["a"], pinned_model="gpt-4o-mini")
    hints.latency_budget.seconds = 30
    requests = [
        generate_request(),
        generate_request(response_format=fmt, hints=hints, labels={"team": "x"}),
        pb.GenerateRequest(
            messages=[pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text="be brief")]), user("hi")],
            tools=[tool],
            tool_choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_AUTO),
            params=pb.GenerationParams(max_output_tokens=10, temperature=0.5, stop=["\n"]),
        ),
    ]
    return [r.SerializeToString() for r in requests]


async def test_mutated_payloads_get_clean_statuses_and_no_tracebacks(channel, caplog):
    route = channel.unary_unary("/turnout.v1.RouterService/Route")
    rng = random.Random(20)
    seeds = _seeds()
    seen: dict[str, int] = {}
    started = time.monotonic()
    sent = 0
    with caplog.at_level(logging.WARNING):
        while sent < FUZZ_CASES and time.monotonic() - started < FUZZ_SECONDS:
            payload = _mutate(rng, rng.choice(seeds))
            sent += 1
            code, message = await outcome(route(payload, timeout=10))
            assert code in CLEAN, f"{payload!r}: {code.name}: {message}"
            seen[code.name] = seen.get(code.name, 0) + 1
    assert sent >= 500, f"only {sent} payloads in {FUZZ_SECONDS} s"
    assert seen.get("INVALID_ARGUMENT", 0) > 0, seen
    assert seen.get("OK", 0) > 0, seen
    assert not [r for r in caplog.records if r.exc_info], "a client's bad bytes logged a traceback"
