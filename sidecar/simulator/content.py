"""What the fake model answers: deterministic text, JSON or a tool call, cut to the token limit.

The answer depends only on the messages and the config seed (hashed together), so the same request to
the same simulator gives the same answer whatever the request order or concurrency.
Answers are kept as token-sized pieces: words for prose, 4-character slices for JSON. The piece count
is the completion token count, a stream sends them a few at a time, and a cut is a prefix of them.
A tool-using request gets a tool call, unless its last message is a tool result: then the model answers
in text, as a real one would, so agent loops in demos come to an end.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.simulator.config import ModelProfile
from sidecar.simulator.request import ChatCall
from sidecar.simulator.schema_instance import instance_for
from sidecar.simulator.tokens import CHARS_PER_TOKEN
from sidecar.simulator.words import draw_words, sentence

SENTENCE_END_PROBABILITY = 0.15
MIN_SENTENCE_WORDS = 4
EMPTY_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


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
    pieces: tuple[str, ...]  # the content, token by token; empty for a tool call
    tool_call: ToolCallAnswer | None
    finish_reason: str  # "stop", "length" or "tool_calls"

    @property
    def content(self) -> str | None:
        return None if self.tool_call is not None else "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        return len(self.tool_call.argument_pieces) if self.tool_call is not None else len(self.pieces)


def compose_answer(call: ChatCall, profile: ModelProfile, seed: int) -> Answer:
    rng = random.Random(_request_seed(call.messages, seed))
    limit = min(call.max_tokens or profile.max_output_tokens, profile.context_window - call.prompt_tokens)
    tool = _chosen_tool(call)
    if tool is not None:
        function = tool["function"]
        arguments = instance_for(function.get("parameters") or EMPTY_PARAMETERS, rng)
        pieces = _slices(json.dumps(arguments))
        call_id = "call_" + "".join(rng.choices(string.ascii_letters + string.digits, k=24))
        cut = pieces[:limit]
        finish = "length" if len(cut) < len(pieces) else "tool_calls"
        return Answer(
            pieces=(), tool_call=ToolCallAnswer(call_id, function["name"], cut), finish_reason=finish
        )
    pieces = _content_pieces(call.response_format, profile, rng)
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
    response_format: Mapping[str, Any] | None, profile: ModelProfile, rng: random.Random
) -> tuple[str, ...]:
    kind = response_format.get("type") if response_format else "text"
    if kind == "json_object":
        value: Any = {"answer": sentence(rng, 8), "confidence": round(rng.random(), 2)}
        value["tags"] = draw_words(rng, 3)
        return _slices(json.dumps(value))
    if kind == "json_schema" and response_format is not None:
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return _slices(json.dumps(instance_for(schema or {"type": "object"}, rng)))
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


def _slices(text: str) -> tuple[str, ...]:
    return tuple(text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN))
