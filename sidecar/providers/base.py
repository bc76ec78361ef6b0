"""The adapter interface every provider implements, and its test double.

Two methods, because that is all the executor needs: a whole answer, or the same answer in pieces.
Adapters raise ProviderError (already classified) and nothing else, except asyncio.CancelledError,
which they let through after closing the HTTP request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from sidecar.domain.model import ModelSpec
from sidecar.domain.outcome import ProviderError
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import Completion, FinishReason, StreamChunk, Usage


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One attempt's input: the request, the model to send it to, and the time it may take.

    `want_logprobs` asks for token log-probabilities (a cascade escalates on low confidence); adapters
    whose provider cannot return them ignore it, and the answer's mean_logprob stays None. A request
    whose client asked for them (`params.logprobs`) only reaches models with the logprobs capability.
    """

    request: ChatRequest
    model: ModelSpec
    timeout_s: float
    want_logprobs: bool = False

    @property
    def logprobs(self) -> bool:
        """Whether to ask the provider for token log-probabilities: the executor or the client wants them."""
        return self.want_logprobs or self.request.params.logprobs


class ProviderAdapter(Protocol):
    async def complete(self, call: ProviderCall) -> Completion:
        """Send the request and return the whole answer, or raise ProviderError."""
        ...

    def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        """Send the request and yield the answer in chunks; the last chunk has a finish reason."""
        ...


Behaviour = Callable[[ProviderCall], Completion | ProviderError]


class MockAdapter:
    """A scripted adapter for unit tests: each call runs `behaviour` after an optional delay.

    The behaviour returns the Completion to answer with, or the ProviderError to raise. Calls are
    recorded in `calls`, so a test can assert which models were tried and in what order.
    """

    def __init__(self, behaviour: Behaviour, *, delay_s: float = 0.0, chunk_size: int = 8) -> None:
        self.behaviour = behaviour
        self.delay_s = delay_s
        self.chunk_size = chunk_size
        self.calls: list[ProviderCall] = []

    async def complete(self, call: ProviderCall) -> Completion:
        self.calls.append(call)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        result = self.behaviour(call)
        if isinstance(result, ProviderError):
            raise result
        return result

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        completion = await self.complete(call)
        text = completion.text
        for start in range(0, len(text), self.chunk_size):
            yield StreamChunk(text=text[start : start + self.chunk_size])
        yield StreamChunk(
            finish_reason=completion.finish_reason,
            usage=completion.usage,
            response_model=completion.response_model,
            logprobs=completion.logprobs,
        )


def echo_completion(call: ProviderCall) -> Completion:
    """A MockAdapter behaviour: answer with the model's name and the last message's length."""
    last = call.request.messages[-1].text if call.request.messages else ""
    return Completion(
        text=f"{call.model.name} read {len(last)} characters",
        finish_reason=FinishReason.STOP,
        usage=Usage(input_tokens=max(1, len(last) // 4), output_tokens=4),
        response_model=call.model.upstream_model,
    )
