"""What a provider answers: a whole completion, or stream chunks that add up to one."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sidecar.domain.request import ToolCall


class FinishReason(enum.StrEnum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # part of input_tokens


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One of the most likely tokens at a position of the output."""

    token: str
    logprob: float
    # The token's UTF-8 bytes when the provider gives them: a token may be part of a character, and
    # then `token` alone cannot say which bytes it holds. None: `token.encode()`.
    utf8: bytes | None = None

    @property
    def token_bytes(self) -> bytes:
        return self.token.encode() if self.utf8 is None else self.utf8


@dataclass(frozen=True, slots=True)
class TokenLogprob(TopLogprob):
    """An output token's log-probability, and the most likely tokens at its position (best first).
    Its token, logprob and bytes are a TopLogprob's, with the same `token_bytes`."""

    top: tuple[TopLogprob, ...] = ()


def mean_logprob(tokens: tuple[TokenLogprob, ...] | list[TokenLogprob]) -> float | None:
    """The output's mean token log-probability (a cascade's confidence), None without tokens."""
    return sum(t.logprob for t in tokens) / len(tokens) if tokens else None


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider's whole answer, normalised."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()
    response_model: str = ""  # the model name the provider says served it
    refusal: str = ""  # the model declined (OpenAI's message.refusal), when the provider says so
    mean_logprob: float | None = None  # mean log-probability of the output tokens, when returned
    logprobs: tuple[TokenLogprob, ...] = ()  # each output token's, when returned


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    index: int
    id: str = ""
    name: str = ""
    arguments_json: str = ""


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One increment of a streamed answer.

    Text and tool-call fragments arrive in order; the adapter's last chunk carries the finish reason
    and, where the provider reports it, the usage. An adapter that cannot produce a final chunk
    (the stream broke) raises ProviderError instead.
    """

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    response_model: str = ""
    refusal: str = ""  # a fragment of a refusal, for providers that stream one
    logprobs: tuple[TokenLogprob, ...] = ()  # this chunk's output tokens', when asked
