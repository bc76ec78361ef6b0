"""OpenAI Chat Completions response shapes, built from an Answer; pure functions, no I/O.

Field for field what api.openai.com sends: `chat.completion` bodies, `chat.completion.chunk` stream
chunks (role first, then content, refusal or tool-call argument fragments, then the finish reason,
then with include_usage a last chunk with `choices: []` and the usage), and the `/v1/models` list.
When the request asked for logprobs, each body or fragment carries `logprobs.content` (or, for a
refusal, `logprobs.refusal`) with one entry per token it holds: token, logprob, UTF-8 bytes and
`top_logprobs` (the request's count of them, from confidence.top; empty when it asked for none).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from turnout_simulator.confidence import top
from turnout_simulator.content import Answer

SYSTEM_FINGERPRINT = "fp_turnout_sim"
TOKENS_PER_DELTA = 3  # a stream delta carries a few tokens, as OpenAI's usually do


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every chunk or body of one completion shares."""

    completion_id: str
    created: int
    model: str


@dataclass(frozen=True, slots=True)
class StreamEvent:
    chunk: dict[str, Any]
    tokens: int  # tokens this chunk carries: the stream waits tokens x per-token latency before it


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def logprobs_field(answer: Answer, start: int = 0, stop: int | None = None) -> dict[str, Any] | None:
    """`choices[0].logprobs` for the answer's pieces[start:stop]; null when the request did not ask."""
    if answer.logprobs is None:
        return None
    entries = [
        {
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": [
                {"token": t, "logprob": lp, "bytes": list(t.encode())}
                for t, lp in top(token, logprob, answer.top_logprobs)
            ],
        }
        for token, logprob in zip(answer.pieces[start:stop], answer.logprobs[start:stop], strict=True)
    ]
    if answer.refused:
        return {"content": None, "refusal": entries}
    return {"content": entries if answer.tool_call is None else None, "refusal": None}


def completion_body(envelope: Envelope, answer: Answer, prompt_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": answer.refusal}
    if answer.tool_call is not None:
        call = answer.tool_call
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        ]
    message["annotations"] = []
    return {
        "id": envelope.completion_id,
        "object": "chat.completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs_field(answer),
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": usage(prompt_tokens, answer.completion_tokens),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def chunk(
    envelope: Envelope,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    *,
    with_usage: bool = False,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": envelope.completion_id,
        "object": "chat.completion.chunk",
        "created": envelope.created,
        "model": envelope.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}],
    }
    if with_usage:
        body["usage"] = None
    return body


def stream_events(
    envelope: Envelope, answer: Answer, prompt_tokens: int, *, include_usage: bool
) -> Iterator[StreamEvent]:
    """The whole stream of one answer, in order, each chunk tagged with the tokens it carries."""
    call = answer.tool_call
    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    if answer.refused:
        first.update(content=None, refusal="")
    if call is not None:
        first["content"] = None
        first["tool_calls"] = [
            {"index": 0, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        ]
    yield StreamEvent(chunk(envelope, first, with_usage=include_usage), 0)
    pieces = answer.pieces if call is None else call.argument_pieces
    for start, group in _groups(pieces, TOKENS_PER_DELTA):
        text = "".join(group)
        if call is not None:
            delta: dict[str, Any] = {"tool_calls": [{"index": 0, "function": {"arguments": text}}]}
        else:
            delta = {"refusal" if answer.refused else "content": text}
        logprobs = logprobs_field(answer, start, start + len(group))
        yield StreamEvent(chunk(envelope, delta, with_usage=include_usage, logprobs=logprobs), len(group))
    yield StreamEvent(chunk(envelope, {}, answer.finish_reason, with_usage=include_usage), 0)
    if include_usage:
        last = chunk(envelope, {}, with_usage=False)
        last["choices"] = []
        last["usage"] = usage(prompt_tokens, answer.completion_tokens)
        yield StreamEvent(last, 0)


def models_body(names: Iterable[str]) -> dict[str, Any]:
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "turnout-simulator"} for name in names]
    return {"object": "list", "data": data}


def _groups(pieces: tuple[str, ...], size: int) -> Iterator[tuple[int, tuple[str, ...]]]:
    """Consecutive groups of `size` pieces, each with the index of its first piece."""
    for start in range(0, len(pieces), size):
        yield start, pieces[start : start + size]
