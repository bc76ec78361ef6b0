"""Translate between the domain and the AWS Bedrock Converse API wire format; pure functions, no I/O.

Encoding turns a ChatRequest into the body of `POST /model/{modelId}/converse` (the same body serves
`/converse-stream`); decoding turns Converse bodies and ConverseStream events into Completion and
StreamChunk; the error table turns error answers and stream exceptions into ProviderError.
Whatever the service sends in the wrong shape becomes MALFORMED_RESPONSE, with the field's path.

Choices a reader may question, each because Converse has no direct equivalent:
- System messages, wherever they stand, become the top-level `system` list of text blocks.
- Tool results travel as `toolResult` blocks in a user turn, and consecutive turns of one role are
  merged: Converse wants user and assistant turns to alternate.
- Images must be inline bytes (base64 in JSON) or an `s3://` location; an http(s) URL is BAD_REQUEST,
  since the service will not fetch it. The format is the media type's subtype (png, jpeg, gif, webp).
- JSON output (json_object or json_schema) has no native switch, so, as in the Anthropic codec, it is
  asked for with a forced tool named after the schema whose inputSchema is the schema, and
  `toolChoice: {tool: {name}}`. Its input is the answer's text; a `tool_use` stop then counts as STOP.
  A caller's own tool_choice wins over the forcing. (Only some Bedrock models accept a forced tool;
  the others answer ValidationException, which is BAD_REQUEST.)
- Converse has no tool_choice "none": the tools are still declared (a conversation with toolUse
  blocks needs them) and no toolChoice is sent, so the model decides.
- `maxTokens` is sent only when the request sets it: unlike the Messages API, Converse does not
  require it and the model's own default applies.
- Usage: inputTokens excludes cached input, so our input_tokens adds cacheReadInputTokens and
  cacheWriteInputTokens, and cached_input_tokens is the cache read.
- `seed` has no Converse equivalent and is dropped; log-probabilities are not available. Converse
  bodies do not name the model that answered, so response_model is left empty.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import (
    ChatRequest,
    ImagePart,
    Message,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
)
from sidecar.domain.response import Completion, FinishReason, StreamChunk, ToolCallDelta, Usage
from sidecar.providers.anthropic.codec import output_tool_name
from sidecar.providers.shape import opt as _opt
from sidecar.providers.shape import plain as _plain
from sidecar.providers.shape import req as _req
from sidecar.providers.shape import typed as _typed

_Obj = Mapping[str, Any]

REFUSAL_NOTE = "the model's answer was blocked (stopReason: {reason})"
EMPTY_SCHEMA: Mapping[str, Any] = {"type": "object", "properties": {}}
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "guardrail_intervened": FinishReason.CONTENT_FILTER,
    "content_filtered": FinishReason.CONTENT_FILTER,
}

# ---------------------------------------------------------------------------------------- encoding


def encode_request(request: ChatRequest) -> dict[str, Any]:
    """The Converse body. Optional fields appear only when set."""
    system = [{"text": m.text} for m in request.messages if m.role is Role.SYSTEM and m.text]
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
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    p = request.params
    inference = {
        "maxTokens": p.max_output_tokens,
        "temperature": p.temperature,
        "topP": p.top_p,
        "stopSequences": list(p.stop) or None,
    }
    inference = {k: v for k, v in inference.items() if v is not None}
    if inference:
        body["inferenceConfig"] = inference
    tools = [_tool(t) for t in request.tools]
    choice = _tool_choice(request.tool_choice) if request.tool_choice is not None else None
    output_tool = output_tool_name(request)
    if output_tool:
        if any(t.name == output_tool for t in request.tools):
            raise ProviderError(
                FailureClass.BAD_REQUEST, f"the JSON schema name {output_tool!r} is also a tool's name"
            )
        tools.append(_output_tool(request, output_tool))
        if request.tool_choice is None:
            choice = {"tool": {"name": output_tool}}
    if tools:
        config: dict[str, Any] = {"tools": tools}
        if choice is not None:
            config["toolChoice"] = choice
        body["toolConfig"] = config
    return body


def _blocks(m: Message, index: int) -> list[dict[str, Any]]:
    if m.role is Role.TOOL:
        result = {"toolUseId": m.tool_call_id, "content": [{"text": m.text}]}
        return [{"toolResult": result}]
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(m.content):
        if isinstance(part, TextPart):
            if part.text:  # the API rejects empty text blocks
                blocks.append({"text": part.text})
        else:
            blocks.append(_image(part, f"messages[{index}].content[{j}]"))
    if m.role is Role.ASSISTANT:
        blocks.extend(_tool_use(c, f"messages[{index}].tool_calls[{k}]") for k, c in enumerate(m.tool_calls))
    return blocks


def _image(part: ImagePart, path: str) -> dict[str, Any]:
    if part.url.startswith("data:"):
        header, comma, data = part.url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64":
            raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: only base64 data: URLs are supported")
        source: dict[str, Any] = {"bytes": data}
    elif part.url.startswith("s3://"):
        media_type, source = part.media_type, {"s3Location": {"uri": part.url}}
    elif part.url:
        raise ProviderError(
            FailureClass.BAD_REQUEST, f"{path}: Bedrock takes inline image bytes or s3:// URLs only"
        )
    elif part.data:
        media_type, source = part.media_type, {"bytes": base64.b64encode(part.data).decode("ascii")}
    else:
        raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: image has neither URL nor data")
    image_format = media_type.lower().removeprefix("image/").replace("jpg", "jpeg")
    if image_format not in IMAGE_FORMATS:
        raise ProviderError(
            FailureClass.BAD_REQUEST,
            f"{path}: image type {media_type or '(none)'!r} is not one of png, jpeg, gif, webp",
        )
    return {"image": {"format": image_format, "source": source}}


def _tool_use(call: ToolCall, path: str) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments_json) if call.arguments_json.strip() else {}
    except ValueError:
        raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: arguments are not valid JSON") from None
    if not isinstance(arguments, dict):
        raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: arguments must be a JSON object")
    return {"toolUse": {"toolUseId": call.id, "name": call.name, "input": arguments}}


def _tool(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["inputSchema"] = {"json": _plain(tool.parameters) if tool.parameters else _plain(EMPTY_SCHEMA)}
    return {"toolSpec": spec}


def _output_tool(request: ChatRequest, name: str) -> dict[str, Any]:
    schema = request.response_format.schema
    spec = {
        "name": name,
        "description": "Give your answer by calling this tool; its input is the answer, as JSON.",
        "inputSchema": {"json": _plain(schema) if schema else {"type": "object"}},
    }
    return {"toolSpec": spec}


def _tool_choice(choice: ToolChoice) -> dict[str, Any] | None:
    if choice.mode is ToolChoiceMode.FUNCTION:
        return {"tool": {"name": choice.function_name}}
    if choice.mode is ToolChoiceMode.REQUIRED:
        return {"any": {}}
    if choice.mode is ToolChoiceMode.AUTO:
        return {"auto": {}}
    return None  # "none" has no Converse equivalent (see the module's docstring)


# ---------------------------------------------------------------------------------------- decoding


def decode_finish_reason(value: object) -> FinishReason | None:
    if value is None:
        return None
    return _FINISH.get(value, FinishReason.UNKNOWN) if isinstance(value, str) else FinishReason.UNKNOWN


def _refusal(finish: FinishReason, reason: object) -> str:
    return REFUSAL_NOTE.format(reason=reason) if finish is FinishReason.CONTENT_FILTER else ""


def decode_completion(body: _Obj, *, output_tool: str = "") -> Completion:
    """A Converse body; a toolUse block named `output_tool` becomes the answer's JSON text."""
    message = _req(_req(body, "output", dict, ""), "message", dict, "output.")
    texts, calls = [], []
    used_output_tool = False
    for i, raw in enumerate(_req(message, "content", list, "output.message.")):
        path = f"output.message.content[{i}]"
        block = _typed(raw, dict, path)
        if "text" in block:
            texts.append(_typed(block["text"], str, path + ".text"))
        elif "toolUse" in block:
            use = _typed(block["toolUse"], dict, path + ".toolUse")
            name = _req(use, "name", str, path + ".toolUse.")
            arguments = json.dumps(_opt(use, "input", dict, path + ".toolUse.", {}), ensure_ascii=False)
            if output_tool and name == output_tool:
                texts.append(arguments)
                used_output_tool = True
            else:
                calls.append(ToolCall(_req(use, "toolUseId", str, path + ".toolUse."), name, arguments))
        # reasoningContent, citations and other blocks carry nothing the domain has a place for
    reason = body.get("stopReason")
    finish = decode_finish_reason(reason) or FinishReason.UNKNOWN
    if used_output_tool and not calls and finish is FinishReason.TOOL_CALLS:
        finish = FinishReason.STOP
    usage = _opt(body, "usage", dict, "", None)
    return Completion(
        text="".join(texts),
        finish_reason=finish,
        usage=Usage() if usage is None else decode_usage(usage),
        tool_calls=tuple(calls),
        refusal=_refusal(finish, reason),
    )


def decode_usage(usage: _Obj, prefix: str = "usage.") -> Usage:
    cache_read = _opt(usage, "cacheReadInputTokens", int, prefix, 0)
    cache_write = _opt(usage, "cacheWriteInputTokens", int, prefix, 0)
    return Usage(
        input_tokens=_opt(usage, "inputTokens", int, prefix, 0) + cache_read + cache_write,
        output_tokens=_opt(usage, "outputTokens", int, prefix, 0),
        cached_input_tokens=cache_read,
    )


@dataclass(slots=True)
class _Block:
    tool_index: int  # -1 for text blocks and the output tool's block
    as_text: bool  # text deltas, or the output tool's JSON, become answer text
    had_arguments: bool = False


@dataclass(slots=True)
class StreamDecoder:
    """Folds ConverseStream events into content chunks, then one final chunk.

    `feed` takes one event's type (`:event-type`) and parsed payload and returns the content chunk
    it carries, if any; `done` turns true with `metadata` (which follows messageStop and carries the
    usage). `final` gives the last chunk (finish reason, usage), or raises STREAM_INTERRUPTED when
    the stream ended before messageStop. Tool-call deltas are indexed by the call's position among
    the answer's tool calls, not by contentBlockIndex.
    """

    output_tool: str = ""
    done: bool = False
    _blocks: dict[int, _Block] = field(default_factory=dict)
    _tools: int = 0
    _reason: object = None
    _stop: FinishReason | None = None
    _usage: Usage | None = None
    _used_output_tool: bool = False

    def feed(self, event_type: str, event: _Obj) -> StreamChunk | None:
        if event_type == "contentBlockStart":
            return self._start(_req(event, "contentBlockIndex", int, ""), _req(event, "start", dict, ""))
        if event_type == "contentBlockDelta":
            return self._delta(_req(event, "contentBlockIndex", int, ""), _req(event, "delta", dict, ""))
        if event_type == "contentBlockStop":
            block = self._blocks.get(_req(event, "contentBlockIndex", int, ""))
            if block is not None and block.tool_index >= 0 and not block.had_arguments:
                return StreamChunk(tool_calls=(ToolCallDelta(block.tool_index, arguments_json="{}"),))
        elif event_type == "messageStop":
            self._reason = event.get("stopReason")
            self._stop = decode_finish_reason(self._reason) or FinishReason.UNKNOWN
        elif event_type == "metadata":
            usage = _opt(event, "usage", dict, "", None)
            self._usage = None if usage is None else decode_usage(usage)
            self.done = True
        return None  # messageStart, and event types added after this was written

    def _start(self, index: int, start: _Obj) -> StreamChunk | None:
        if "toolUse" not in start:
            self._blocks[index] = _Block(-1, as_text=True)
            return None
        use = _typed(start["toolUse"], dict, "start.toolUse")
        name = _req(use, "name", str, "start.toolUse.")
        if self.output_tool and name == self.output_tool:
            self._used_output_tool = True
            self._blocks[index] = _Block(-1, as_text=True, had_arguments=True)
            return None
        self._blocks[index] = _Block(self._tools, as_text=False)
        self._tools += 1
        call_id = _req(use, "toolUseId", str, "start.toolUse.")
        return StreamChunk(tool_calls=(ToolCallDelta(self._tools - 1, call_id, name, ""),))

    def _delta(self, index: int, delta: _Obj) -> StreamChunk | None:
        # A text block has no contentBlockStart: its first delta opens it.
        block = self._blocks.setdefault(index, _Block(-1, as_text=True))
        if "text" in delta:
            text = _typed(delta["text"], str, "delta.text")
            return StreamChunk(text=text) if text and block.as_text else None
        if "toolUse" in delta:
            partial = _req(_typed(delta["toolUse"], dict, "delta.toolUse"), "input", str, "delta.toolUse.")
            if not partial:
                return None
            if block.as_text:
                return StreamChunk(text=partial)
            block.had_arguments = True
            return StreamChunk(tool_calls=(ToolCallDelta(block.tool_index, arguments_json=partial),))
        return None  # reasoningContent, citation

    def final(self) -> StreamChunk:
        if self._stop is None:
            raise ProviderError(FailureClass.STREAM_INTERRUPTED, "the stream ended without messageStop")
        finish = self._stop
        if self._used_output_tool and not self._tools and finish is FinishReason.TOOL_CALLS:
            finish = FinishReason.STOP
        return StreamChunk(finish_reason=finish, usage=self._usage, refusal=_refusal(finish, self._reason))
