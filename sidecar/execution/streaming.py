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
    - A cascade's stages that check their answer have run whole before a stream starts (the
      executor's `stream`); the stages after them serve as one fallback chain here. A consensus
      stage among them is skipped: its answers cannot be compared before they are streamed.

Each attempt goes through the same stack as a unary call (attempt.py: admission, deadline,
breaker, timeout, the ledger); what a stream adds is reading to the first token within its own
limit, a breaker guard settled only when the stream ends, and closing the stream on failure.

Timeouts bound each await inside the generator, never a `yield`: a deadline must not fire while
the consumer holds control.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from sidecar.domain.errors import StreamInterrupted
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.plan import Candidate, Plan
from sidecar.domain.request import ChatRequest, Message, Role, TextPart, ToolCall
from sidecar.domain.response import Completion, FinishReason, StreamChunk, TokenLogprob, Usage, mean_logprob
from sidecar.domain.result import ExecutionResult, Relaying
from sidecar.execution.attempt import AttemptStack, RaceScope
from sidecar.execution.breaker import DeferredGuard
from sidecar.execution.ledger import Ledger
from sidecar.execution.race import Launch, Race, RaceLost
from sidecar.providers.base import ProviderCall
from sidecar.validation.json_output import check_completion

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
    """One streamed request: the stack's attempts race to a first token; the winner is relayed."""

    def __init__(
        self,
        stack: AttemptStack,
        ledger: Ledger,
        plan: Plan,
        request: ChatRequest,
        deadline: float,
        first_stage: int = 0,
    ) -> None:
        """`first_stage`: the plan's stages before it have run already (a cascade's checked ones)."""
        self._stack = stack
        self._first_stage = first_stage
        self._plan = plan
        self._request = request
        self._deadline = deadline
        self._ledger = ledger

    async def events(self) -> AsyncIterator[StreamChunk | Relaying | ExecutionResult]:
        ledger, policy = self._ledger, self._plan.execution
        # A consensus stage's answers cannot be compared before they are streamed: skip to the
        # stage it escalates to, so a stream never carries an unchecked cheap answer.
        stages = self._plan.stages[self._first_stage :]
        remaining = [c for s in stages if s.consensus is None for c in s.candidates]
        request = self._request
        acc = _Accumulator()
        try:
            while True:
                launch, opened = await self._first_token(remaining, request, acc.delivered_chars)
                remaining = [c for c in remaining if c.model.name != launch.candidate.model.name]
                yield Relaying(launch.candidate)
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
                    error = _as_error(exc, self._stack.clock() >= self._deadline)
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
        ledger = self._ledger
        # Stages serve as one fallback chain here: every attempt is reported as the first streamed.
        scope = self._stack.race_scope(candidates, self._plan, self._deadline, ledger, self._first_stage)

        async def start(launch: Launch) -> _Opened:
            return await self._open(scope, launch, request)

        async def discard(launch: Launch, opened: _Opened) -> None:  # reached its first token too, but lost
            opened.breaker.settle(asyncio.CancelledError())
            await opened.chunks.aclose()  # type: ignore[attr-defined]
            ledger.cancelled(launch.number, opened.ttft_s)

        race: Race[_Opened] = scope.race(start, discard)
        try:
            async with asyncio.timeout_at(self._deadline):
                return await race.run()
        except (RaceLost, TimeoutError):
            ledger.close_open()
            if delivered_chars:  # a continuation found no taker: what was sent stays sent
                raise StreamInterrupted(tuple(ledger.records), delivered_chars) from None
            raise ledger.final_error(self._deadline) from None

    async def _open(self, scope: RaceScope, launch: Launch, request: ChatRequest) -> _Opened:
        """The stack's attempt for a stream: open it and read up to its first token."""
        model, clock = launch.candidate.model, self._stack.clock
        timeout = scope.begin(launch, request)
        first_token_s = self._plan.execution.first_token_timeout_s or timeout
        call = ProviderCall(request, model, timeout)
        started = clock()
        chunks = self._stack.adapters[model.provider].stream(call)
        breaker = scope.deferred_guard(launch)
        first = await scope.run(
            launch,
            request,
            min(timeout, first_token_s),
            _first_chunks,
            chunks,
            breaker=breaker,
            close=chunks.aclose,  # type: ignore[attr-defined]
            waited_for="first token",
        )
        return _Opened(chunks, first, started, clock() - started, breaker)


async def _first_chunks(chunks: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    """The chunks up to and including the first that carries output (or the end of the stream)."""
    first: list[StreamChunk] = []
    while True:
        chunk = await _next(chunks)
        if chunk is None:  # ended without a token: an empty answer is still an answer
            return first
        first.append(chunk)
        if chunk.text or chunk.tool_calls or chunk.finish_reason is not None:
            return first


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
        self.logprobs: list[TokenLogprob] = []

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
            return bool(chunk.logprobs)
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
            mean_logprob=mean_logprob(self.logprobs),
            logprobs=tuple(self.logprobs),
        )
