"""Translate between the domain and the Anthropic Messages API wire format; pure functions, no I/O.

Encoding turns a ChatRequest into the `/v1/messages` body; decoding turns response bodies and stream
events into Completion and StreamChunk; the error table turns error answers into ProviderError.
Whatever the provider sends in the wrong shape becomes MALFORMED_RESPONSE, with the field's path.

Choices a reader may question, each because the Messages API has no direct equivalent:
- System messages, wherever they stand, are hoisted into the top-level `system` string (joined by a
  blank line): the API has no system role inside `messages`.
- Consecutive turns of one role are merged into one message (tool results, which travel as a user
  turn, and a following user message included): the API wants all results of one assistant turn's
  tool calls in the next user message.
- `max_tokens` is required: the request's max_output_tokens, else the model's max_output_tokens
  capped at DEFAULT_MAX_TOKENS_CAP, so an unbounded request does not book the model's whole output
  budget (latency and rate-limit accounting count max_tokens).
- JSON output (json_object or json_schema) has no native switch, so it is asked for with a forced
  tool: a tool named after the schema whose input_schema is the schema, and
  `tool_choice: {type: tool, name}`. The tool's input is returned as the answer's text (JSON), and a
  `tool_use` stop counts as STOP. A caller's own tool_choice wins over the forcing.
- Usage: Anthropic's input_tokens excludes cached input, so our input_tokens is input_tokens +
  cache_read_input_tokens + cache_creation_input_tokens, and cached_input_tokens is the cache read.
- stop_reason "refusal" keeps any text as text, sets `refusal` to REFUSAL_NOTE and finishes with
  CONTENT_FILTER, in whole answers and streams alike.
- `seed` has no Anthropic equivalent and is dropped; log-probabilities are not available.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sidecar.domain.model import ModelSpec
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import (
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormatKind,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
)
from sidecar.domain.response import Completion, FinishReason, StreamChunk, ToolCallDelta, Usage
from sidecar.providers.anthropic.errors import error_from_payload
from sidecar.providers.shape import malformed as _malformed
from sidecar.providers.shape import opt as _opt
from sidecar.providers.shape import plain as _plain
from sidecar.providers.shape import req as _req
from sidecar.providers.shape import typed as _typed

_Obj = Mapping[str, Any]

DEFAULT_MAX_TOKENS_CAP = 4096
DEFAULT_SCHEMA_NAME = "output"
JSON_OBJECT_TOOL = "json_output"
REFUSAL_NOTE = "the model declined to answer (stop_reason: refusal)"
EMPTY_SCHEMA: Mapping[str, Any] = {"type": "object", "properties": {}}

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}

# ---------------------------------------------------------------------------------------- encoding


def output_tool_name(request: ChatRequest) -> str:
    """The forced tool that carries a JSON answer, or "" when the request wants plain text."""
    fmt = request.response_format
    if fmt.kind is ResponseFormatKind.JSON_SCHEMA:
        return fmt.schema_name or DEFAULT_SCHEMA_NAME
    if fmt.kind is ResponseFormatKind.JSON_OBJECT:
        return JSON_OBJECT_TOOL
    return ""


def max_tokens_for(request: ChatRequest, model: ModelSpec) -> int:
    requested = request.params.max_output_tokens
    return requested if requested is not None else min(model.max_output_tokens, DEFAULT_MAX_TOKENS_CAP)


def encode_request(request: ChatRequest, model: ModelSpec, *, stream: bool) -> dict[str, Any]:
    """The request body. Optional fields appear only when set."""
    system = "\n\n".join(m.text for m in request.messages if m.role is Role.SYSTEM and m.text)
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(request.messages):
        if message.role is Role.SYSTEM:
            continue
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        blocks = _blocks(message, index)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {
        "model": model.upstream_model,
        "max_tokens": max_tokens_for(request, model),
        "messages": messages,
    }
    if system:
        body["system"] = system
    tools = [_tool(t) for t in request.tools]
    choice = _tool_choice(request.tool_choice) if request.tool_choice is not None else None
    output_tool = output_tool_name(request)
    if output_tool:
        if any(t.name == output_tool for t in request.tools):
            raise ProviderError(
                FailureClass.BAD_REQUEST, f"the JSON schema name {output_tool!r} is also a tool's name"
            )
        tools.append(_output_tool(request, output_tool))
        choice = choice or {"type": "tool", "name": output_tool}
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    p = request.params
    optional = {"temperature": p.temperature, "top_p": p.top_p, "stop_sequences": list(p.stop) or None}
    body.update({k: v for k, v in optional.items() if v is not None})
    if stream:
        body["stream"] = True
    return body


def _blocks(m: Message, index: int) -> list[dict[str, Any]]:
    if m.role is Role.TOOL:
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id}
        if m.text:
            result["content"] = m.text
        return [result]
    blocks = []
    for j, part in enumerate(m.content):
        if isinstance(part, TextPart):
            if part.text:  # the API rejects empty text blocks
                blocks.append({"type": "text", "text": part.text})
        else:
            blocks.append(_image(part, f"messages[{index}].content[{j}]"))
    if m.role is Role.ASSISTANT:
        blocks.extend(_tool_use(c, f"messages[{index}].tool_calls[{k}]") for k, c in enumerate(m.tool_calls))
    return blocks


def _image(part: ImagePart, path: str) -> dict[str, Any]:
    if part.url.startswith("data:"):
        header, comma, data = part.url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not media_type:
            raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: only base64 data: URLs are supported")
        source: dict[str, Any] = {"type": "base64", "media_type": media_type, "data": data}
    elif part.url:
        source = {"type": "url", "url": part.url}
    elif part.data and part.media_type:
        encoded = base64.b64encode(part.data).decode("ascii")
        source = {"type": "base64", "media_type": part.media_type, "data": encoded}
    else:
        problem = "inline image bytes need a media type" if part.data else "image has neither URL nor data"
        raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: {problem}")
    return {"type": "image", "source": source}


def _tool_use(call: ToolCall, path: str) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments_json) if call.arguments_json.strip() else {}
    except ValueError:
        raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: arguments are not valid JSON") from None
    if not isinstance(arguments, dict):
        raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: arguments must be a JSON object")
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def _tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = _plain(tool.parameters) if tool.parameters else _plain(EMPTY_SCHEMA)
    return out


def _output_tool(request: ChatRequest, name: str) -> dict[str, Any]:
    schema = request.response_format.schema
    return {
        "name": name,
        "description": "Give your answer by calling this tool; its input is the answer, as JSON.",
        "input_schema": _plain(schema) if schema else {"type": "object"},
    }


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if choice.mode is ToolChoiceMode.FUNCTION:
        return {"type": "tool", "name": choice.function_name}
    if choice.mode is ToolChoiceMode.REQUIRED:
        return {"type": "any"}
    return {"type": choice.mode.value}  # "auto" and "none" have the same names


# ---------------------------------------------------------------------------------------- decoding


def decode_finish_reason(value: object) -> FinishReason | None:
    if value is None:
        return None
    return _FINISH.get(value, FinishReason.UNKNOWN) if isinstance(value, str) else FinishReason.UNKNOWN


def decode_completion(body: _Obj, *, output_tool: str = "") -> Completion:
    """A `message` body; a `tool_use` block named `output_tool` becomes the answer's JSON text."""
    if body.get("type") == "error":
        raise error_from_payload(None, body, {})
    texts, calls = [], []
    used_output_tool = False
    for i, raw in enumerate(_req(body, "content", list, "")):
        path = f"content[{i}]"
        block = _typed(raw, dict, path)
        kind = _req(block, "type", str, path + ".")
        if kind == "text":
            texts.append(_req(block, "text", str, path + "."))
        elif kind == "tool_use":
            name = _req(block, "name", str, path + ".")
            arguments = json.dumps(_opt(block, "input", dict, path + ".", {}), ensure_ascii=False)
            if output_tool and name == output_tool:
                texts.append(arguments)
                used_output_tool = True
            else:
                calls.append(ToolCall(_req(block, "id", str, path + "."), name, arguments))
        # thinking, redacted_thinking and server-tool blocks carry nothing the domain has a place for
    finish = decode_finish_reason(body.get("stop_reason")) or FinishReason.UNKNOWN
    if used_output_tool and not calls and finish is FinishReason.TOOL_CALLS:
        finish = FinishReason.STOP
    usage = _opt(body, "usage", dict, "", None)
    return Completion(
        text="".join(texts),
        finish_reason=finish,
        usage=Usage() if usage is None else decode_usage(usage),
        tool_calls=tuple(calls),
        response_model=_opt(body, "model", str, "", ""),
        refusal=REFUSAL_NOTE if finish is FinishReason.CONTENT_FILTER else "",
    )


def decode_usage(usage: _Obj, prefix: str = "usage.") -> Usage:
    cache_read = _opt(usage, "cache_read_input_tokens", int, prefix, 0)
    cache_write = _opt(usage, "cache_creation_input_tokens", int, prefix, 0)
    return Usage(
        input_tokens=_opt(usage, "input_tokens", int, prefix, 0) + cache_read + cache_write,
        output_tokens=_opt(usage, "output_tokens", int, prefix, 0),
        cached_input_tokens=cache_read,
    )


@dataclass(slots=True)
class _Block:
    tool_index: int  # -1 for text blocks and the output tool's block
    as_text: bool  # text deltas, or the output tool's JSON, become answer text
    had_arguments: bool = False


@dataclass(slots=True)
class StreamDecoder:
    """Folds Messages API stream events into content chunks, then one final chunk.

    `feed` takes one event's parsed data and returns the content chunk it carries, if any; `final`
    gives the last chunk (finish reason, usage, model) once `done` (after message_stop), or raises
    STREAM_INTERRUPTED when the stream ended without a stop reason. Tool-call deltas are indexed by
    the tool call's position among the answer's tool calls, not by the content block's index.
    """

    output_tool: str = ""
    done: bool = False
    _blocks: dict[int, _Block] = field(default_factory=dict)
    _tools: int = 0
    _input: _Obj = field(default_factory=dict)
    _output_tokens: int = 0
    _stop: FinishReason | None = None
    _model: str = ""
    _used_output_tool: bool = False

    def feed(self, event: _Obj) -> StreamChunk | None:
        kind = event.get("type")
        if kind == "error":
            raise error_from_payload(None, event, {})
        if kind == "message_start":
            message = _req(event, "message", dict, "")
            self._model = _opt(message, "model", str, "message.", "")
            self._input = _opt(message, "usage", dict, "message.", {})
            self._output_tokens = _opt(self._input, "output_tokens", int, "message.usage.", 0)
        elif kind == "content_block_start":
            return self._start(_req(event, "index", int, ""), _req(event, "content_block", dict, ""))
        elif kind == "content_block_delta":
            return self._delta(_req(event, "index", int, ""), _req(event, "delta", dict, ""))
        elif kind == "content_block_stop":
            block = self._blocks.get(_req(event, "index", int, ""))
            if block is not None and block.tool_index >= 0 and not block.had_arguments:
                return StreamChunk(tool_calls=(ToolCallDelta(block.tool_index, arguments_json="{}"),))
        elif kind == "message_delta":
            delta = _opt(event, "delta", dict, "", {})
            self._stop = decode_finish_reason(delta.get("stop_reason")) or self._stop
            usage = _opt(event, "usage", dict, "", {})
            self._output_tokens = _opt(usage, "output_tokens", int, "usage.", self._output_tokens)
            if any(k != "output_tokens" and v is not None for k, v in usage.items()):
                self._input = {**self._input, **{k: v for k, v in usage.items() if v is not None}}
        elif kind == "message_stop":
            self.done = True
        return None  # ping, and event types added after this was written

    def _start(self, index: int, block: _Obj) -> StreamChunk | None:
        kind = block.get("type")
        if kind == "tool_use":
            name = _req(block, "name", str, "content_block.")
            if self.output_tool and name == self.output_tool:
                self._used_output_tool = True
                self._blocks[index] = _Block(-1, as_text=True, had_arguments=True)
                return None
            self._blocks[index] = _Block(self._tools, as_text=False)
            self._tools += 1
            call_id = _req(block, "id", str, "content_block.")
            return StreamChunk(tool_calls=(ToolCallDelta(self._tools - 1, call_id, name, ""),))
        self._blocks[index] = _Block(-1, as_text=kind == "text")
        text = _opt(block, "text", str, "content_block.", "") if kind == "text" else ""
        return StreamChunk(text=text) if text else None

    def _delta(self, index: int, delta: _Obj) -> StreamChunk | None:
        block = self._blocks.get(index)
        if block is None:
            raise _malformed(f"content_block_delta for block {index}, which never started")
        kind = delta.get("type")
        if kind == "text_delta" and block.as_text:
            text = _req(delta, "text", str, "delta.")
            return StreamChunk(text=text) if text else None
        if kind == "input_json_delta":
            partial = _req(delta, "partial_json", str, "delta.")
            if not partial:
                return None
            if block.as_text:
                return StreamChunk(text=partial)
            block.had_arguments = True
            return StreamChunk(tool_calls=(ToolCallDelta(block.tool_index, arguments_json=partial),))
        return None  # thinking_delta, signature_delta, citations_delta

    def final(self) -> StreamChunk:
        if self._stop is None and not self.done:
            raise ProviderError(
                FailureClass.STREAM_INTERRUPTED, "the stream ended without a stop reason or message_stop"
            )
        finish = self._stop or FinishReason.UNKNOWN
        if self._used_output_tool and not self._tools and finish is FinishReason.TOOL_CALLS:
            finish = FinishReason.STOP
        usage = decode_usage({**self._input, "output_tokens": self._output_tokens}, "message.usage.")
        return StreamChunk(
            finish_reason=finish,
            usage=usage,
            response_model=self._model,
            refusal=REFUSAL_NOTE if finish is FinishReason.CONTENT_FILTER else "",
        )
