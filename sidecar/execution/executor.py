"""Runs a plan against providers: the one loop over attempts, for unary calls and streams.

Layers, outermost first (later issues add the ones in brackets at their place):

    total deadline (gRPC deadline and the latency budget)
      -> [cascade stage]
        -> candidates in plan order: fallback on a failure that another model may not share
           [, hedging on slowness]
          -> [per-endpoint circuit breaker]
            -> per-attempt timeout (min of what is left and the provider's request timeout)
              -> adapter (pure codec + HTTP)
                -> output validation (JSON / JSON Schema)
                  -> failure classification (ProviderError.failure_class)

Every attempt, whatever became of it, produces an AttemptRecord that goes to the observers
(health, telemetry) and into the response; the final error names every candidate tried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.domain.errors import AllCandidatesFailed, DeadlineExceeded, StreamInterrupted
from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import AttemptOutcome, AttemptRecord, FailureClass, ProviderError
from sidecar.domain.plan import Candidate, Plan
from sidecar.domain.request import ChatRequest, ToolCall
from sidecar.domain.response import Completion, FinishReason, StreamChunk, Usage
from sidecar.providers.base import ProviderAdapter, ProviderCall
from sidecar.validation.json_output import parse_output

Observer = Callable[[AttemptRecord], None]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    completion: Completion
    candidate: Candidate
    attempts: tuple[AttemptRecord, ...]
    parsed_json: Any | None = None

    @property
    def cost_usd_nanos(self) -> int:
        return self.attempts[-1].cost_usd_nanos

    @property
    def total_cost_usd_nanos(self) -> int:
        return sum(a.cost_usd_nanos for a in self.attempts)


class Executor:
    def __init__(
        self,
        adapters: Mapping[str, ProviderAdapter],
        providers: Mapping[str, ProviderSpec],
        observers: Sequence[Observer] = (),
        clock: Clock = time.monotonic,
    ) -> None:
        self._adapters = adapters
        self._providers = providers
        self._observers = tuple(observers)
        self._clock = clock

    async def run(self, plan: Plan, request: ChatRequest, deadline: float) -> ExecutionResult:
        """Try the candidates in order until one answers acceptably; raise with every attempt otherwise."""
        attempts: list[AttemptRecord] = []
        for candidate in plan.candidates:
            call = self._call(candidate, request, deadline, attempts)
            started = self._clock()
            try:
                async with asyncio.timeout(call.timeout_s):
                    completion = await self._adapters[candidate.model.provider].complete(call)
                parsed = _validated(completion, request)
            except (ProviderError, TimeoutError) as exc:
                self._failed(attempts, candidate, started, _as_provider_error(exc, call.timeout_s))
                if not attempts[-1].failure_class or not attempts[-1].failure_class.tries_next_candidate:
                    break
                continue
            except asyncio.CancelledError:
                self._record(attempts, candidate, started, AttemptOutcome.CANCELLED)
                raise
            self._record(attempts, candidate, started, AttemptOutcome.SUCCESS, completion=completion)
            return ExecutionResult(completion, candidate, tuple(attempts), parsed)
        raise self._exhausted(attempts, deadline)

    async def stream(
        self, plan: Plan, request: ChatRequest, deadline: float
    ) -> AsyncIterator[StreamChunk | ExecutionResult]:
        """Yield text/tool chunks, then one ExecutionResult.

        Failover before the first chunk is invisible to the caller. After chunks have been sent,
        a failure ends the stream with StreamInterrupted naming what was delivered.
        """
        attempts: list[AttemptRecord] = []
        for candidate in plan.candidates:
            call = self._call(candidate, request, deadline, attempts)
            started = self._clock()
            acc = _Accumulator()
            chunks = self._adapters[candidate.model.provider].stream(call)
            try:
                while True:
                    async with asyncio.timeout(max(0.0, started + call.timeout_s - self._clock())):
                        chunk = await anext(chunks, None)
                    if chunk is None:
                        break
                    if acc.add(chunk, self._clock() - started):
                        yield chunk
                completion = acc.completion()
                parsed = _validated(completion, request)
            except (ProviderError, TimeoutError) as exc:
                self._failed(
                    attempts, candidate, started, _as_provider_error(exc, call.timeout_s), acc.ttft_s
                )
                if acc.delivered:
                    raise StreamInterrupted(tuple(attempts), acc.delivered_chars) from None
                if not attempts[-1].failure_class or not attempts[-1].failure_class.tries_next_candidate:
                    break
                continue
            except (asyncio.CancelledError, GeneratorExit):
                self._record(attempts, candidate, started, AttemptOutcome.CANCELLED, ttft_s=acc.ttft_s)
                raise
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]
            self._record(
                attempts, candidate, started, AttemptOutcome.SUCCESS, completion=completion, ttft_s=acc.ttft_s
            )
            yield ExecutionResult(completion, candidate, tuple(attempts), parsed)
            return
        raise self._exhausted(attempts, deadline)

    def _call(
        self, candidate: Candidate, request: ChatRequest, deadline: float, attempts: list[AttemptRecord]
    ) -> ProviderCall:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise DeadlineExceeded("the request's deadline passed before an answer", tuple(attempts))
        provider = self._providers[candidate.model.provider]
        return ProviderCall(request, candidate.model, min(remaining, provider.request_timeout_s))

    def _exhausted(self, attempts: list[AttemptRecord], deadline: float) -> Exception:
        if self._clock() >= deadline and attempts and attempts[-1].failure_class is FailureClass.TIMEOUT:
            return DeadlineExceeded("the request's deadline passed before an answer", tuple(attempts))
        return AllCandidatesFailed(tuple(attempts))

    def _failed(
        self,
        attempts: list[AttemptRecord],
        candidate: Candidate,
        started: float,
        error: ProviderError,
        ttft_s: float | None = None,
    ) -> None:
        self._record(attempts, candidate, started, AttemptOutcome.FAILURE, error=error, ttft_s=ttft_s)

    def _record(
        self,
        attempts: list[AttemptRecord],
        candidate: Candidate,
        started: float,
        outcome: AttemptOutcome,
        *,
        completion: Completion | None = None,
        error: ProviderError | None = None,
        ttft_s: float | None = None,
    ) -> None:
        model = candidate.model
        usage = completion.usage if completion else Usage()
        record = AttemptRecord(
            number=len(attempts) + 1,
            model=model.name,
            provider=model.provider,
            outcome=outcome,
            latency_s=self._clock() - started,
            failure_class=error.failure_class if error else None,
            error_message=error.detail if error else "",
            time_to_first_token_s=ttft_s,
            usage=usage,
            cost_usd_nanos=model.price.cost_usd_nanos(usage),
            finish_reason=completion.finish_reason if completion else None,
            retry_after_s=error.retry_after_s if error else None,
        )
        attempts.append(record)
        for observe in self._observers:
            observe(record)


def _validated(completion: Completion, request: ChatRequest) -> Any | None:
    if completion.finish_reason is FinishReason.TOOL_CALLS:
        return None
    return parse_output(completion.text, request.response_format)


def _as_provider_error(exc: ProviderError | TimeoutError, timeout_s: float) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    return ProviderError(FailureClass.TIMEOUT, f"no answer within {timeout_s:.3f}s")


class _Accumulator:
    """Adds stream chunks up into a Completion, and notes when the first token arrived."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.tools: dict[int, list[str]] = {}
        self.final: StreamChunk | None = None
        self.ttft_s: float | None = None
        self.delivered = False
        self.delivered_chars = 0

    def add(self, chunk: StreamChunk, elapsed_s: float) -> bool:
        """Take a chunk; True when it carries output for the caller."""
        if chunk.finish_reason is not None:
            self.final = chunk
        if not chunk.text and not chunk.tool_calls:
            return False
        if self.ttft_s is None:
            self.ttft_s = elapsed_s
        self.parts.append(chunk.text)
        self.delivered_chars += len(chunk.text)
        for delta in chunk.tool_calls:
            slot = self.tools.setdefault(delta.index, ["", "", ""])
            slot[0] = slot[0] or delta.id
            slot[1] = slot[1] or delta.name
            slot[2] += delta.arguments_json
        self.delivered = True
        return True

    def completion(self) -> Completion:
        if self.final is None:
            raise ProviderError(FailureClass.STREAM_INTERRUPTED, "the stream ended without a finish reason")
        return Completion(
            text="".join(self.parts),
            finish_reason=self.final.finish_reason or FinishReason.UNKNOWN,
            usage=self.final.usage or Usage(),
            tool_calls=tuple(ToolCall(i, n, a) for _, (i, n, a) in sorted(self.tools.items())),
            response_model=self.final.response_model,
        )
