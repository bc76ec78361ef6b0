"""Streams: race the candidates to a first token, relay the winner, and handle a break mid-stream.

    - Candidates race for the first token with the same engine as unary calls: a failure before
      it starts the next candidate at once, slowness to the first token starts a hedge, and a
      candidate with no first token within `first_token_timeout_s` fails as a timeout. Whichever
      produces a token first is relayed; the others are cancelled and their requests closed. The
      caller sees none of this.
    - After tokens have been sent, a failure either ends the stream with a clear error
      (StreamInterrupted: what was delivered stays delivered) or, with `stream_failover: continue`,
      another candidate continues the answer from where it stopped, given the partial answer as
      context, and the stream goes on. Never a silent cut.
    - A cascade's escalation on output problems does not apply to streams (the output is already
      with the caller); its stages serve as one fallback chain. A consensus stage is skipped.

Timeouts bound each await inside the generator, never a `yield`: a deadline must not fire while
the consumer holds control.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sidecar.domain.errors import StreamInterrupted
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.plan import Candidate, Plan
from sidecar.domain.request import ChatRequest, Message, Role, TextPart, ToolCall
from sidecar.domain.response import Completion, FinishReason, StreamChunk, Usage
from sidecar.execution.breaker import Alternatives, DeferredGuard
from sidecar.execution.race import FailureVerdict, Launch, Race, RaceLost
from sidecar.providers.base import ProviderCall
from sidecar.validation.json_output import check_completion

if TYPE_CHECKING:
    from sidecar.execution.executor import ExecutionResult, Executor

CONTINUE = (
    "Your answer above was cut off. Continue it exactly where it stops, without repeating anything "
    "and without any preamble."
)


@dataclass(slots=True)
class _Opened:
    """A stream that has produced its first token: its iterator, and the chunks read so far."""

    chunks: AsyncIterator[StreamChunk]
    first: list[StreamChunk]
    started: float
    ttft_s: float
    breaker: DeferredGuard  # settled when the stream ends: a cut after the first token counts


class StreamRun:
    def __init__(self, executor: Executor, plan: Plan, request: ChatRequest, deadline: float) -> None:
        self._x = executor
        self._plan = plan
        self._request = request
        self._deadline = deadline
        self._ledger = executor.ledger()

    async def events(self) -> AsyncIterator[StreamChunk | ExecutionResult]:
        from sidecar.execution.executor import ExecutionResult

        ledger, policy = self._ledger, self._plan.execution
        # A consensus stage's answers cannot be compared before they are streamed: skip to the
        # stage it escalates to, so a stream never carries an unchecked cheap answer.
        remaining = [c for s in self._plan.stages if s.consensus is None for c in s.candidates]
        request = self._request
        acc = _Accumulator()
        try:
            while True:
                launch, opened = await self._first_token(remaining, request, acc.delivered_chars)
                remaining = [c for c in remaining if c.model.name != launch.candidate.model.name]
                try:
                    for first in opened.first:
                        if acc.add(first):
                            yield first
                    while True:
                        async with asyncio.timeout_at(self._deadline):
                            chunk = await _next(opened.chunks)
                        if chunk is None:
                            break
                        if acc.add(chunk):
                            yield chunk
                    completion = acc.completion()
                    parsed = check_completion(completion, self._request.response_format)
                    opened.breaker.settle(None)  # the stream ended well: a success for the endpoint
                except (ProviderError, TimeoutError) as exc:
                    error = _as_error(exc, self._x._clock() >= self._deadline)
                    opened.breaker.settle(error)
                    ledger.failed(launch.number, error, opened.ttft_s)
                    if (
                        policy.stream_failover == "continue"
                        and remaining
                        and error.failure_class.tries_next_candidate
                    ):
                        request = _continuation(self._request, acc.text)
                        acc.segment_ended()
                        continue
                    raise StreamInterrupted(tuple(ledger.records), acc.delivered_chars) from None
                finally:
                    opened.breaker.settle(asyncio.CancelledError())  # neutral, unless settled above
                    await opened.chunks.aclose()  # type: ignore[attr-defined]
                ledger.succeeded(launch.number, completion, opened.ttft_s)
                yield ExecutionResult(
                    completion, launch.candidate, tuple(ledger.records), parsed, launch.number
                )
                return
        finally:
            ledger.close_open()

    async def _first_token(
        self, candidates: list[Candidate], request: ChatRequest, delivered_chars: int
    ) -> tuple[Launch, _Opened]:
        x, policy, ledger = self._x, self._plan.execution, self._ledger
        among = Alternatives(c.model.name for c in candidates)

        async def start(launch: Launch) -> _Opened:
            return await self._open(launch, request, among)

        def on_failure(launch: Launch, error: ProviderError) -> FailureVerdict:
            return x._verdict(launch, error, policy, self._deadline)

        async def discard(launch: Launch, opened: _Opened) -> None:  # reached its first token too, but lost
            opened.breaker.settle(asyncio.CancelledError())
            await opened.chunks.aclose()  # type: ignore[attr-defined]
            ledger.cancelled(launch.number, opened.ttft_s)

        race: Race[_Opened] = x.race(candidates, start, on_failure, policy, ledger, discard)
        try:
            async with asyncio.timeout_at(self._deadline):
                return await race.run()
        except (RaceLost, TimeoutError):
            ledger.close_open()
            if delivered_chars:  # a continuation found no taker: what was sent stays sent
                raise StreamInterrupted(tuple(ledger.records), delivered_chars) from None
            raise ledger.final_error(self._deadline) from None

    async def _open(self, launch: Launch, request: ChatRequest, among: Alternatives) -> _Opened:
        x, ledger, model = self._x, self._ledger, launch.candidate.model
        ledger.start(x.attempt_start(launch, request))
        if not launch.hedged and not launch.retry_of:
            x._r.hedge_budget.record_request(model.provider)
            x._r.retry_budget.record_request(model.provider)
        timeout = x._attempt_timeout(model.provider, self._plan.execution, self._deadline)
        ttft_limit = min(timeout, self._plan.execution.first_token_timeout_s or timeout)
        own, by_deadline = x._split_timeout(ttft_limit, self._deadline)
        call = ProviderCall(request, model, timeout)
        started = x._clock()
        chunks = x._adapters[model.provider].stream(call)
        first: list[StreamChunk] = []
        breaker = x._r.breakers.deferred_guard(model.name, None if launch.retry_of else among)  # see _attempt
        try:
            tokens = self._plan.estimated_input_tokens + (request.params.max_output_tokens or 0)
            queued_at = x._clock()
            async with (
                x._r.admission.admit(
                    model.provider,
                    model.name,
                    priority=request.hints.priority,
                    tokens=tokens,
                    deadline=self._deadline,
                ),
                asyncio.timeout(by_deadline),
                breaker,
                asyncio.timeout(own),
            ):
                ledger.queued(launch.number, x._clock() - queued_at)
                while True:
                    chunk = await _next(chunks)
                    if chunk is None:  # ended without a token: an empty answer is still an answer
                        break
                    first.append(chunk)
                    if chunk.text or chunk.tool_calls or chunk.finish_reason is not None:
                        break
        except TimeoutError:
            await chunks.aclose()  # type: ignore[attr-defined]
            error = ProviderError(FailureClass.TIMEOUT, f"no first token within {ttft_limit:.3f}s")
            ledger.failed(launch.number, error)
            raise error from None
        except ProviderError as error:
            await chunks.aclose()  # type: ignore[attr-defined]
            ledger.failed(launch.number, error)
            raise
        except asyncio.CancelledError:
            await chunks.aclose()  # type: ignore[attr-defined]
            ledger.cancelled(launch.number)
            raise
        return _Opened(chunks, first, started, x._clock() - started, breaker)


async def _next(chunks: AsyncIterator[StreamChunk]) -> StreamChunk | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None


def _as_error(exc: ProviderError | TimeoutError, deadline_passed: bool) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    why = "the request's deadline passed mid-stream" if deadline_passed else "the stream stalled"
    return ProviderError(FailureClass.TIMEOUT, why)


def _continuation(request: ChatRequest, partial: str) -> ChatRequest:
    """The original conversation, the partial answer as the assistant's, and a request to go on."""
    messages = (
        *request.messages,
        Message(Role.ASSISTANT, (TextPart(partial),)),
        Message(Role.USER, (TextPart(CONTINUE),)),
    )
    return replace(request, messages=messages)


class _Accumulator:
    """Adds the chunks sent to the caller up into one Completion, across continued segments."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.tools: dict[int, list[str]] = {}
        self.final: StreamChunk | None = None
        self.delivered_chars = 0
        self.refusal: list[str] = []
        self.logprobs: list[float] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, chunk: StreamChunk) -> bool:
        """Take a chunk; True when it carries output for the caller."""
        if chunk.finish_reason is not None:
            self.final = chunk
        self.refusal.append(chunk.refusal)
        self.logprobs.extend(chunk.logprobs)
        if not chunk.text and not chunk.tool_calls:
            return False
        self.parts.append(chunk.text)
        self.delivered_chars += len(chunk.text)
        for delta in chunk.tool_calls:
            slot = self.tools.setdefault(delta.index, ["", "", ""])
            slot[0] = slot[0] or delta.id
            slot[1] = slot[1] or delta.name
            slot[2] += delta.arguments_json
        return True

    def segment_ended(self) -> None:
        """A continuation follows: a finish reason seen so far belonged to the broken segment."""
        self.final = None

    def completion(self) -> Completion:
        if self.final is None:
            raise ProviderError(FailureClass.STREAM_INTERRUPTED, "the stream ended without a finish reason")
        return Completion(
            text=self.text,
            finish_reason=self.final.finish_reason or FinishReason.UNKNOWN,
            usage=self.final.usage or Usage(),
            tool_calls=tuple(ToolCall(i, n, a) for _, (i, n, a) in sorted(self.tools.items())),
            response_model=self.final.response_model,
            refusal="".join(self.refusal),
            mean_logprob=sum(self.logprobs) / len(self.logprobs) if self.logprobs else None,
        )
