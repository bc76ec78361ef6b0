"""Issue 20, finding 1: no regex from a client or the config can stall the event loop.

`^(a+)+$` on 30 `a`s and a `!` took Python's backtracking `re` ~35 s (each extra character doubles
it) while every other RPC, health check and scrape waited. Each case runs the work beside a
heartbeat task and bounds the loop's worst lag generously (1 s, against tens of seconds before).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from sidecar.config import ConfigError, parse_config
from sidecar.domain.errors import AllCandidatesFailed, InvalidRequest
from sidecar.domain.outcome import FailureClass
from sidecar.domain.plan import Candidate, Plan, Stage
from sidecar.domain.request import ResponseFormat, ResponseFormatKind
from sidecar.domain.response import Completion, FinishReason, Usage
from sidecar.execution.executor import Executor
from sidecar.policy.build import build_engine
from sidecar.policy.health import HealthTracker
from sidecar.policy.specs import RouteSpec, Rule, RulesSpec
from sidecar.providers.base import MockAdapter, ProviderCall
from sidecar.registry.registry import Registry
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server.convert_in import to_chat_request
from tests.factories import chat, model, provider
from tests.server.helpers import details, generate_request, violated_fields
from tests.test_config import example

EVIL = "^(a+)+$"
ANSWER = "a" * 30 + "!"
MAX_LAG_S = 1.0  # generous: a heartbeat every 10 ms; before the fix the loop stalled for tens of seconds


async def worst_loop_lag(work: Callable[[], Any]) -> tuple[float, Any]:
    """Run `work` (sync or async) beside a 10 ms heartbeat; the heartbeat's worst lateness, and the result."""
    lags: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - start - 0.01)

    async def run() -> Any:
        await asyncio.sleep(0.02)  # the heartbeat is asleep when the work starts
        try:
            result = work()
            return await result if asyncio.iscoroutine(result) else result
        finally:
            done.set()

    async with asyncio.TaskGroup() as group:
        group.create_task(heartbeat())
        task = group.create_task(run())
    return max(lags), task.result()


async def test_a_clients_schema_pattern_checks_the_answer_in_linear_time():
    a, b = model("a"), model("b")
    plan = Plan(route="default", strategy="rules", stages=(Stage((Candidate(a), Candidate(b))),))
    schema = {"type": "string", "pattern": EVIL}
    request = dataclasses.replace(
        chat(), response_format=ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "out", schema)
    )

    def answer(call: ProviderCall) -> Completion:
        return Completion(f'"{ANSWER}"', FinishReason.STOP, Usage(10, 5))

    executor = Executor({"p1": MockAdapter(answer)}, {"p1": provider("p1", 30.0)})

    async def run() -> AllCandidatesFailed:
        with pytest.raises(AllCandidatesFailed) as info:
            await executor.run(plan, request, time.monotonic() + 30)
        return info.value

    lag, failed = await worst_loop_lag(run)
    assert lag < MAX_LAG_S
    assert [a.failure_class for a in failed.attempts] == [FailureClass.INVALID_OUTPUT] * 2
    assert "does not match" in failed.attempts[0].error_message


@pytest.mark.parametrize(
    ("match", "text"),
    [
        ({"regex": (EVIL,)}, ANSWER),
        # The built-in code check: `^\s*` under re.M was quadratic (40,000 newlines: 23 s on `re`).
        ({"has_code": True}, "\n" * 40_000 + "x"),
    ],
)
async def test_a_config_rule_reads_the_prompt_in_linear_time(match, text):
    rules = RulesSpec((Rule("content", ("b",), **match),), content_heuristics=True)
    registry = Registry([model("a", context=1 << 20), model("b", context=1 << 20)], [provider("p1")])
    engine = build_engine(
        {"default": RouteSpec("default", ("a", "b"), (rules,))}, "default", registry, HealthTracker()
    )
    lag, plan = await worst_loop_lag(lambda: engine.plan(chat(text)))
    assert lag < MAX_LAG_S
    assert plan.choice.model.name == "a"  # no rule matched


def schema_request(schema: dict[str, Any]) -> pb.GenerateRequest:
    fmt = pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA)
    fmt.json_schema.name = "out"
    fmt.json_schema.schema.update(schema)
    return generate_request(response_format=fmt)


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"properties": {"x": {"pattern": "(a)\\1"}}}, "properties.x.pattern"),  # backreference
        ({"properties": {"x": {"pattern": "(?<=a)b"}}}, "properties.x.pattern"),  # lookbehind
        ({"patternProperties": {"^(?!id)": {}}}, 'patternProperties["^(?!id)"]'),  # lookahead
        ({"items": [{"pattern": "("}]}, "items"),  # not a schema in 2020-12: the meta-schema says so
        # Linear but 1.2 s per 100,000 characters: over the compiled-size cap. (A pattern in $defs
        # that nothing references is never compiled, nor ever run.)
        ({"$defs": {"n": {"pattern": "(\\w{100}){100}"}}, "$ref": "#/$defs/n"}, "$defs.n.pattern"),
    ],
)
async def test_a_pattern_the_engine_cannot_take_is_refused_before_any_provider(
    stub, simulator, schema, field
):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(schema_request(schema))
    error = info.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details(error)["ErrorInfo"].reason == "INVALID_REQUEST"
    where = "response_format.json_schema.schema"
    if field == "items":
        assert violated_fields(error)[0].startswith(f"{where}.items")
        return
    assert violated_fields(error) == [f"{where}.{field}"]
    (violation,) = details(error)["BadRequest"].field_violations
    assert "linear-time regex engine" in violation.description
    assert not simulator.state.stats.requests  # no provider was called


def test_a_tool_schema_pattern_is_checked_too():
    request = generate_request(tools=[pb.Tool(name="lookup")])
    request.tools[0].parameters.update({"type": "object", "properties": {"q": {"pattern": "(?=x)"}}})
    with pytest.raises(InvalidRequest) as info:
        to_chat_request(request)
    assert [v.field for v in info.value.violations] == ["tools[0].parameters.properties.q.pattern"]


@pytest.mark.parametrize("pattern", ["(?<!not )refund", "(order) #\\d+ \\1"])  # lookbehind, backreference
def test_a_config_pattern_re2_cannot_take_fails_config_validation(pattern):
    raw = example()
    rules = raw["routes"][0]["strategies"][0]["rules"]
    rules["content_heuristics"] = True
    rules["rules"][0]["match"]["regex"] = ["refund", pattern]
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="my.yaml", env={})
    message = str(info.value)
    path = "routes[0] (default).strategies[0].rules.rules[0] (simple-tasks).match.regex[1]"
    assert path in message, message
    assert "does not compile for RE2" in message


async def test_a_config_refusal_pattern_reads_the_answer_in_linear_time():
    # `(a|aa)+$` on 40 a's and a `!`: on Python's `re` the cascade's check took tens of seconds.
    raw = example()
    raw["routes"][1]["execution"]["refusal_patterns"] = ["(a|aa)+$"]
    policy = parse_config(raw, source="my.yaml", env={}).routes[raw["routes"][1]["name"]].execution
    small, big = model("small"), model("big")
    escalate = frozenset({"refusal"})
    plan = Plan(
        "r", "cascade", (Stage((Candidate(small),), escalate), Stage((Candidate(big),))), execution=policy
    )

    def answer(call: ProviderCall) -> Completion:
        text = "a" * 40 + "!" if call.model.name == "small" else "a" * 40
        return Completion(text, FinishReason.STOP, Usage(10, 5))

    executor = Executor({"p1": MockAdapter(answer)}, {"p1": provider("p1", 30.0)})
    lag, result = await worst_loop_lag(lambda: executor.run(plan, chat(), time.monotonic() + 30))
    assert lag < MAX_LAG_S
    assert result.completion.text == "a" * 40 + "!"  # no match: the cheap answer stands
    assert [a.escalated for a in result.attempts] == [""]


@pytest.mark.parametrize("field", ["refusal_patterns", "expected_patterns"])
def test_a_lookahead_refusal_pattern_fails_config_validation(field):
    raw = example()
    route = raw["routes"][1]
    route["execution"][field] = ["sorry", "^(?!\\s*[A-E]\\s*$)"]  # "anything but a bare letter"
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="my.yaml", env={})
    message = str(info.value)
    assert f"routes[1] ({route['name']}).execution.{field}[1]" in message, message
    assert "does not compile for RE2" in message
