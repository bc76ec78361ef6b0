"""The executor's fallback loop, deadlines, output validation and stream failover, with MockAdapter."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from sidecar.domain.errors import AllCandidatesFailed, DeadlineExceeded, StreamInterrupted
from sidecar.domain.outcome import AttemptOutcome, FailureClass, ProviderError
from sidecar.domain.plan import Candidate, Plan, Stage
from sidecar.domain.request import ResponseFormat, ResponseFormatKind
from sidecar.domain.response import Completion, FinishReason, StreamChunk, Usage
from sidecar.domain.result import ExecutionResult
from sidecar.execution.executor import Executor
from sidecar.providers.base import MockAdapter, ProviderCall, echo_completion
from tests.factories import SeenAttempts, chat, model, provider

A, B, C = model("a"), model("b"), model("c")
PLAN = Plan(route="default", strategy="rules", stages=(Stage((Candidate(A), Candidate(B), Candidate(C))),))


def failing_for(*names: str, cls: FailureClass = FailureClass.SERVER_ERROR):
    def behaviour(call: ProviderCall) -> Completion | ProviderError:
        if call.model.name in names:
            return ProviderError(cls, f"{call.model.name} failed", status=500)
        return echo_completion(call)

    return behaviour


def executor(adapter: MockAdapter, timeout_s: float = 30.0) -> Executor:
    return Executor({"p1": adapter}, {"p1": provider("p1", timeout_s)})


def far() -> float:
    return time.monotonic() + 30


async def test_first_candidate_answers():
    adapter = MockAdapter(echo_completion)
    result = await executor(adapter).run(PLAN, chat(), far())
    assert result.candidate.model.name == "a"
    assert [a.outcome for a in result.attempts] == [AttemptOutcome.SUCCESS]
    assert result.cost_usd_nanos == result.attempts[0].cost_usd_nanos > 0


async def test_retryable_failure_falls_back_and_records_both():
    seen = SeenAttempts()
    adapter = MockAdapter(failing_for("a"))
    result = await executor(adapter).run(PLAN, chat(), far(), seen)
    assert result.candidate.model.name == "b"
    assert [(a.model, a.outcome, a.failure_class) for a in result.attempts] == [
        ("a", AttemptOutcome.FAILURE, FailureClass.SERVER_ERROR),
        ("b", AttemptOutcome.SUCCESS, None),
    ]
    assert seen.records == list(result.attempts)


@pytest.mark.parametrize("cls", [FailureClass.BAD_REQUEST, FailureClass.CONTENT_FILTERED])
async def test_final_failures_do_not_try_other_candidates(cls):
    adapter = MockAdapter(failing_for("a", cls=cls))
    with pytest.raises(AllCandidatesFailed) as info:
        await executor(adapter).run(PLAN, chat(), far())
    assert [c.model.name for c in adapter.calls] == ["a"]
    assert info.value.final_failure is cls


async def test_all_failing_names_every_candidate():
    adapter = MockAdapter(failing_for("a", "b", "c", cls=FailureClass.RATE_LIMITED))
    with pytest.raises(AllCandidatesFailed) as info:
        await executor(adapter).run(PLAN, chat(), far())
    message = str(info.value)
    for name in ("a", "b", "c"):
        assert f"{name}: rate_limited" in message
    assert info.value.retry_after_s == 1.0  # all transient, no hint given: retry soon


async def test_slow_attempt_times_out_and_falls_back():
    def behaviour(call: ProviderCall) -> Completion:
        return echo_completion(call)

    slow = MockAdapter(behaviour, delay_s=5)
    fast = MockAdapter(behaviour)
    ex = Executor(
        {"p1": slow, "p2": fast},
        {"p1": provider("p1", timeout_s=0.05), "p2": provider("p2")},
    )
    plan = Plan("d", "rules", (Stage((Candidate(A), Candidate(model("z", provider="p2")))),))
    result = await ex.run(plan, chat(), far())
    assert result.candidate.model.name == "z"
    assert result.attempts[0].failure_class is FailureClass.TIMEOUT


async def test_deadline_bounds_the_whole_plan():
    adapter = MockAdapter(echo_completion, delay_s=5)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        await executor(adapter).run(PLAN, chat(), time.monotonic() + 0.1)
    assert time.monotonic() - started < 1.0
    assert info.value.attempts[0].failure_class is FailureClass.TIMEOUT


async def test_invalid_json_output_falls_back():
    def behaviour(call: ProviderCall) -> Completion:
        text = "not json" if call.model.name == "a" else '{"label": "spam"}'
        return Completion(text, FinishReason.STOP, Usage(10, 5))

    request = dataclasses.replace(chat(), response_format=ResponseFormat(ResponseFormatKind.JSON_OBJECT))
    result = await executor(MockAdapter(behaviour)).run(PLAN, request, far())
    assert result.parsed_json == {"label": "spam"}
    assert result.attempts[0].failure_class is FailureClass.INVALID_OUTPUT
    assert "not valid JSON" in result.attempts[0].error_message


async def test_schema_violations_are_listed():
    schema = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["spam", "ham"]}}}

    def behaviour(call: ProviderCall) -> Completion:
        return Completion('{"label": "eggs"}', FinishReason.STOP, Usage(10, 5))

    fmt = ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "out", schema)
    request = dataclasses.replace(chat(), response_format=fmt)
    with pytest.raises(AllCandidatesFailed) as info:
        await executor(MockAdapter(behaviour)).run(PLAN, request, far())
    assert 'at label: "eggs" is not one of "spam" or "ham"' in str(info.value)


async def collect(ex: Executor, plan: Plan = PLAN) -> tuple[str, ExecutionResult]:
    text = ""
    result = None
    async for event in ex.stream(plan, chat("stream me"), far()):
        if isinstance(event, StreamChunk):
            text += event.text
        elif isinstance(event, ExecutionResult):
            result = event
    assert result is not None
    return text, result


async def test_stream_failover_before_first_token_is_invisible():
    text, result = await collect(executor(MockAdapter(failing_for("a"))))
    assert text == "b read 9 characters"
    assert result.completion.text == text
    assert [a.model for a in result.attempts] == ["a", "b"]
    assert result.attempts[1].time_to_first_token_s is not None


class BreaksMidStream(MockAdapter):
    async def stream(self, call: ProviderCall):
        self.calls.append(call)
        yield StreamChunk(text="partial ")
        raise ProviderError(FailureClass.STREAM_INTERRUPTED, "connection reset")


async def test_stream_failure_after_tokens_is_a_clear_error():
    ex = executor(BreaksMidStream(echo_completion))
    with pytest.raises(StreamInterrupted) as info:
        await collect(ex)
    assert info.value.delivered_chars == len("partial ")
    assert "incomplete" in str(info.value)


async def test_cancellation_is_recorded_and_propagates():
    seen = SeenAttempts()
    adapter = MockAdapter(echo_completion, delay_s=5)
    task = asyncio.create_task(executor(adapter).run(PLAN, chat(), far(), seen))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.outcome for r in seen.records] == [AttemptOutcome.CANCELLED]
