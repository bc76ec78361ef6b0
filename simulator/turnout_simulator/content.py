"""What the fake model answers: deterministic text, JSON or a tool call, cut to the token limit.

The answer depends only on the messages and the config seed (hashed together), so the same request to
the same simulator gives the same answer whatever the request order or concurrency.
Answers are kept as token-sized pieces: words for prose, 4-character slices for JSON. The piece count
is the completion token count, a stream sends them a few at a time, and a cut is a prefix of them.
A tool-using request gets a tool call, unless its last message is a tool result: then the model answers
in text, as a real one would, so agent loops in demos come to an end.
Three faults shape the answer itself rather than the transport: `refusal` (the model declines),
`bad_output` (JSON that breaks the requested format, see bad_output.py) and `low_confidence` (the
token logprobs, when asked for, average the fault's `mean_logprob` instead of the profile's).
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from turnout_simulator.bad_output import invalid_instance, not_an_object
from turnout_simulator.confidence import draw_logprobs
from turnout_simulator.config import FaultKind, FaultSpec, ModelProfile
from turnout_simulator.request import ChatCall
from turnout_simulator.schema_instance import instance_for
from turnout_simulator.tokens import CHARS_PER_TOKEN
from turnout_simulator.words import draw_words, sentence

SENTENCE_END_PROBABILITY = 0.15
MIN_SENTENCE_WORDS = 4
EMPTY_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}
REFUSAL_TEXT = "I can't help with that."


@dataclass(frozen=True, slots=True)
class ToolCallAnswer:
    id: str
    name: str
    argument_pieces: tuple[str, ...]

    @property
    def arguments(self) -> str:
        return "".join(self.argument_pieces)


@dataclass(frozen=True, slots=True)
class Answer:
    pieces: tuple[str, ...]  # the content (or the refusal), token by token; empty for a tool call
    tool_call: ToolCallAnswer | None
    finish_reason: str  # "stop", "length" or "tool_calls"
    refused: bool = False  # the pieces are a refusal: sent as `refusal`, with `content` null
    logprobs: tuple[float, ...] | None = None  # one per piece, when the request asked for logprobs
    top_logprobs: int = 0  # how many likely tokens to list at each position (see confidence.top)

    @property
    def content(self) -> str | None:
        return None if self.tool_call is not None or self.refused else "".join(self.pieces)

    @property
    def refusal(self) -> str | None:
        return "".join(self.pieces) if self.refused else None

    @property
    def completion_tokens(self) -> int:
        return len(self.tool_call.argument_pieces) if self.tool_call is not None else len(self.pieces)


def compose_answer(
    call: ChatCall, profile: ModelProfile, seed: int, fault: FaultSpec | None = None
) -> Answer:
    """The answer to `call`; `fault` is the request's failing fault, if any (only the three answer
    faults change anything here)."""
    request_seed = _request_seed(call.messages, seed)
    kind = fault.kind if fault is not None else None
    answer = _compose(call, profile, random.Random(request_seed), kind)
    if not call.logprobs:
        return answer
    mean = (
        fault.mean_logprob if fault is not None and kind is FaultKind.LOW_CONFIDENCE else profile.confidence
    )
    rng = random.Random(f"{request_seed}|{call.model}|logprobs")
    drawn = draw_logprobs(len(answer.pieces), mean, rng)
    return replace(answer, logprobs=drawn, top_logprobs=call.top_logprobs)


def _compose(call: ChatCall, profile: ModelProfile, rng: random.Random, fault: FaultKind | None) -> Answer:
    limit = min(call.max_tokens or profile.max_output_tokens, profile.context_window - call.prompt_tokens)
    bad = fault is FaultKind.BAD_OUTPUT
    if fault is FaultKind.REFUSAL:
        pieces = _words(REFUSAL_TEXT)
        cut = pieces[:limit]
        finish = "length" if len(cut) < len(pieces) else "stop"
        return Answer(pieces=cut, tool_call=None, finish_reason=finish, refused=True)
    tool = _chosen_tool(call)
    if tool is not None:
        function = tool["function"]
        parameters = function.get("parameters") or EMPTY_PARAMETERS
        arguments = invalid_instance(parameters, rng) if bad else instance_for(parameters, rng)
        pieces = _slices(json.dumps(arguments))
        call_id = "call_" + "".join(rng.choices(string.ascii_letters + string.digits, k=24))
        cut = pieces[:limit]
        finish = "length" if len(cut) < len(pieces) else "tool_calls"
        return Answer(
            pieces=(), tool_call=ToolCallAnswer(call_id, function["name"], cut), finish_reason=finish
        )
    pieces = _content_pieces(call.response_format, profile, rng, bad=bad)
    cut = pieces[:limit]
    return Answer(pieces=cut, tool_call=None, finish_reason="length" if len(cut) < len(pieces) else "stop")


def _request_seed(messages: Sequence[Mapping[str, Any]], seed: int) -> int:
    text = json.dumps(list(messages), sort_keys=True, default=str) + f"|{seed}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _chosen_tool(call: ChatCall) -> Mapping[str, Any] | None:
    if not call.tools or call.tool_choice == "none":
        return None
    if isinstance(call.tool_choice, Mapping):
        wanted = call.tool_choice["function"]["name"]
        return next(tool for tool in call.tools if tool["function"]["name"] == wanted)
    if call.tool_choice in (None, "auto") and call.messages[-1].get("role") == "tool":
        return None
    return call.tools[0]


def _content_pieces(
    response_format: Mapping[str, Any] | None, profile: ModelProfile, rng: random.Random, *, bad: bool
) -> tuple[str, ...]:
    """The content for the requested format; `bad` (a bad_output fault) breaks a JSON format's rules.

    Prose is already not JSON, so a bad_output without a JSON format changes nothing.
    """
    kind = response_format.get("type") if response_format else "text"
    if kind == "json_object":
        if bad:
            return _slices(json.dumps(not_an_object(rng)))
        value: Any = {"answer": sentence(rng, 8), "confidence": round(rng.random(), 2)}
        value["tags"] = draw_words(rng, 3)
        return _slices(json.dumps(value))
    if kind == "json_schema" and response_format is not None:
        spec = response_format.get("json_schema")
        schema = (spec.get("schema") if isinstance(spec, Mapping) else None) or {"type": "object"}
        return _slices(json.dumps(invalid_instance(schema, rng) if bad else instance_for(schema, rng)))
    return _prose(profile.default_output_tokens, rng)


def _prose(count: int, rng: random.Random) -> tuple[str, ...]:
    """`count` words in sentences: the first piece has no leading space, the last ends with a stop."""
    pieces: list[str] = []
    sentence_length = 0
    for index, word in enumerate(draw_words(rng, count)):
        text = word.capitalize() if sentence_length == 0 else word
        sentence_length += 1
        ends = index == count - 1 or (
            sentence_length >= MIN_SENTENCE_WORDS and rng.random() < SENTENCE_END_PROBABILITY
        )
        pieces.append(("" if index == 0 else " ") + text + ("." if ends else ""))
        sentence_length = 0 if ends else sentence_length
    return tuple(pieces)


def _words(text: str) -> tuple[str, ...]:
    """Word-sized pieces, each but the first with its leading space, as prose pieces are."""
    first, *rest = text.split(" ")
    return (first, *(" " + word for word in rest))


def _slices(text: str) -> tuple[str, ...]:
    return tuple(text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN))
