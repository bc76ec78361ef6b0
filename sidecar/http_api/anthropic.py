"""POST /v1/messages in Anthropic's Messages format: request, answer, stream events, errors.

Anthropic carries a tool's result as a `tool_result` block inside a user message; the domain
has a tool message per result, so such a user message becomes one tool message per result
(then a user message with whatever text or images it also held). `top_k` has no counterpart in
every provider and is ignored, as is `thinking` (extended thinking is Claude's own; an agent that
asks for it gets answers without thinking blocks). The `thinking` and `redacted_thinking` blocks
of earlier assistant turns are dropped, as Anthropic's API drops them from the context. Other
content blocks (documents, search results) and server tools (`web_search_...`, `bash_...`: a
`type` other than `custom`), which only Anthropic's platform runs, are refused with a 400
naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sidecar.domain.plan import Plan
from sidecar.domain.request import (
    ChatRequest,
    GenerationParams,
    ImagePart,
    Message,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
)
from sidecar.domain.response import FinishReason, StreamChunk, Usage
from sidecar.domain.result import ExecutionResult
from sidecar.domain.status import ErrorStatus
from sidecar.http_api.errors import details
from sidecar.http_api.reading import Reader
from sidecar.http_api.wire import Inbound, sse

_STOP = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
    FinishReason.UNKNOWN: "end_turn",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}
_THINKING = ("thinking", "redacted_thinking")
_CHOICES = {"auto": ToolChoiceMode.AUTO, "any": ToolChoiceMode.REQUIRED, "none": ToolChoiceMode.NONE}


class AnthropicMessages:
    operation = "POST /v1/messages"
    needs_max_tokens = True

    def read(self, r: Reader, body: Mapping[str, Any]) -> Inbound:
        messages = _system(r, body.get("system")) + _messages(r, body.get("messages"))
        tools = _tools(r, body)
        max_tokens = r.positive(body, "max_tokens", "max_tokens")
        if max_tokens is None and "max_tokens" not in body and self.needs_max_tokens:
            r.bad("max_tokens", "max_tokens is required")
        params = GenerationParams(
            max_output_tokens=max_tokens,
            temperature=r.number(body, "temperature", "temperature", 0, 1),
            top_p=r.number(body, "top_p", "top_p", 0, 1, open_low=True),
            stop=r.stop(body.get("stop_sequences"), "stop_sequences"),
        )
        metadata = r.get(body, "metadata", "metadata", Mapping) or {}
        chat = ChatRequest(
            messages=messages,
            tools=tools,
            tool_choice=_tool_choice(r, body, tools),
            params=params,
            tenant_id=r.string(metadata, "user_id", "metadata.user_id"),
        )
        stream = r.get(body, "stream", "stream", bool) is True
        return Inbound(chat, r.string(body, "model", "model"), stream)

    def answer(self, chat: ChatRequest, plan: Plan, result: ExecutionResult) -> dict[str, Any]:
        c = result.completion
        content: list[dict[str, Any]] = (
            [{"type": "text", "text": c.text or c.refusal}] if c.text or c.refusal else []
        )
        content += [
            {"type": "tool_use", "id": t.id, "name": t.name, "input": _input(t.arguments_json)}
            for t in c.tool_calls
        ]
        return {
            **_message(chat, result.candidate.model.name),
            "content": content,
            "stop_reason": "refusal" if c.refusal and not c.text else _STOP[c.finish_reason],
            "usage": _usage(c.usage),
        }

    def stream(self, chat: ChatRequest, plan: Plan, inbound: Inbound) -> _Events:
        return _Events(chat, plan.choice.model.name)

    def error(self, status: ErrorStatus, http_status: int) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(http_status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": status.message, **details(status)}}


class AnthropicCount(AnthropicMessages):
    """POST /v1/messages/count_tokens: a Messages body without max_tokens, answered with its count."""

    operation = "POST /v1/messages/count_tokens"
    needs_max_tokens = False


class _Events:
    """message_start, one content block at a time (start, deltas, stop), message_delta, message_stop.
    message_start names the model that wrote the first chunk (a fallback's, when the first choice
    failed before its first token); Anthropic's events carry no model after it."""

    def __init__(self, chat: ChatRequest, model: str) -> None:
        self._chat = chat
        self._model = model
        self._started = False
        self._block = -1  # the open content block's index; -1: none
        self._open: tuple[str, int] | None = None  # ("text", 0) or ("tool", tool-call index)

    def relaying(self, model: str) -> None:
        if not self._started:
            self._model = model

    def chunk(self, chunk: StreamChunk) -> bytes:
        out = b""
        if not self._started:
            self._started = True
            start = {
                **_message(self._chat, self._model),
                "content": [],
                "stop_reason": None,
                "usage": _usage(Usage()),
            }
            out += _event("message_start", {"message": start})
        text = chunk.text or chunk.refusal
        if text:
            out += self._switch(("text", 0), {"type": "text", "text": ""})
            out += _event(
                "content_block_delta", {"index": self._block, "delta": {"type": "text_delta", "text": text}}
            )
        for d in chunk.tool_calls:
            block = {"type": "tool_use", "id": d.id, "name": d.name, "input": {}}
            out += self._switch(("tool", d.index), block)
            if d.arguments_json:
                delta = {"type": "input_json_delta", "partial_json": d.arguments_json}
                out += _event("content_block_delta", {"index": self._block, "delta": delta})
        return out

    def _switch(self, key: tuple[str, int], block: dict[str, Any]) -> bytes:
        if self._open == key:
            return b""
        out = self._close()
        self._block += 1
        self._open = key
        return out + _event("content_block_start", {"index": self._block, "content_block": block})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"index": self._block})

    def end(self, result: ExecutionResult) -> bytes:
        c = result.completion
        out = self.chunk(StreamChunk()) + self._close()
        delta = {"stop_reason": _STOP[c.finish_reason], "stop_sequence": None}
        out += _event("message_delta", {"delta": delta, "usage": _usage(c.usage)})
        return out + _event("message_stop", {})

    def failed(self, status: ErrorStatus) -> bytes:
        # `event: error`: the Anthropic SDKs raise an APIStatusError on it.
        return sse(orjson.dumps(AnthropicMessages().error(status, status.code.http_status)), "error")


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return sse(orjson.dumps({"type": kind, **data}), kind)


def _message(chat: ChatRequest, model: str) -> dict[str, Any]:
    return {
        "id": f"msg_{chat.request_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "stop_sequence": None,
    }


def _usage(u: Usage) -> dict[str, int]:
    return {
        "input_tokens": u.input_tokens - u.cached_input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cached_input_tokens,
    }


def _input(arguments: str) -> Any:
    try:
        return orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_raw": arguments}  # a model's malformed arguments, passed on rather than dropped


def _system(r: Reader, system: Any) -> tuple[Message, ...]:
    if system is None:
        return ()
    if isinstance(system, str):
        return (Message(Role.SYSTEM, (TextPart(system),)),) if system.strip() else ()
    if isinstance(system, list) and all(
        isinstance(b, Mapping) and isinstance(b.get("text"), str) for b in system
    ):
        return (Message(Role.SYSTEM, tuple(TextPart(b["text"]) for b in system)),)
    r.bad("system", "must be a string or an array of text blocks")
    return ()


def _messages(r: Reader, raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        r.bad("messages", "at least one message is required")
        return ()
    out: list[Message] = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, Mapping) else None
        if role not in ("user", "assistant"):
            r.bad(f"{where}.role", "one of user, assistant")
            continue
        content = m.get("content")
        if isinstance(content, str):
            if not content.strip():
                r.bad(f"{where}.content", "the text is empty or only whitespace")
            out.append(Message(Role(role), (TextPart(content),)))
            continue
        if not isinstance(content, list) or not content:
            r.bad(f"{where}.content", "must be a string or a non-empty array of content blocks")
            continue
        out += _blocks(r, where, Role(role), content)
    return tuple(out)


def _blocks(r: Reader, where: str, role: Role, blocks: list[Any]) -> list[Message]:
    parts: list[TextPart | ImagePart] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(TextPart(block["text"]))
        elif kind == "image":
            image = _image(r, at, block.get("source"))
            if image is not None:
                parts.append(image)
        elif kind == "tool_use" and role is Role.ASSISTANT:
            arguments = orjson.dumps(block.get("input", {})).decode()
            calls.append(
                ToolCall(r.string(block, "id", f"{at}.id"), r.string(block, "name", f"{at}.name"), arguments)
            )
        elif kind in _THINKING and role is Role.ASSISTANT:
            pass  # an earlier turn's reasoning: not context for the next answer
        elif kind == "tool_result" and role is Role.USER:
            call_id = r.string(block, "tool_use_id", f"{at}.tool_use_id")
            if not call_id:
                r.bad(f"{at}.tool_use_id", "a tool result must name the tool_use it answers")
            results.append(Message(Role.TOOL, _result(r, at, block.get("content")), tool_call_id=call_id))
        else:
            r.bad(
                at,
                "a content block is text or image (tool_use from the assistant, tool_result from the user)",
            )
    if parts and role is Role.USER and all(isinstance(p, TextPart) and not p.text.strip() for p in parts):
        r.bad(f"{where}.content", "the text is empty or only whitespace")
    if parts or calls:
        return [*results, Message(role, tuple(parts), tool_calls=tuple(calls))]
    # Only tool results, or nothing kept: a turn that held only its reasoning (every other block
    # left out is a violation already, and the request is refused).
    return results


def _result(r: Reader, where: str, content: Any) -> tuple[TextPart, ...]:
    if content is None:
        return (TextPart(""),)
    if isinstance(content, str):
        return (TextPart(content),)
    if isinstance(content, list) and all(isinstance(b, Mapping) and b.get("type") == "text" for b in content):
        return tuple(TextPart(str(b.get("text", ""))) for b in content)
    r.bad(f"{where}.content", "a tool result's content is a string or an array of text blocks")
    return ()


def _image(r: Reader, where: str, source: Any) -> ImagePart | None:
    kind = source.get("type") if isinstance(source, Mapping) else None
    if (
        kind == "url"
        and isinstance(source.get("url"), str)
        and source["url"].startswith(("https://", "http://"))
    ):
        return ImagePart(url=source["url"])
    if kind == "base64" and isinstance(source.get("data"), str):
        media = source.get("media_type", "")
        if not isinstance(media, str) or not media.startswith("image/"):
            r.bad(f"{where}.source.media_type", "inline image data needs a media type such as image/png")
            return None
        return ImagePart(url=f"data:{media};base64,{source['data']}")
    r.bad(f"{where}.source", "an image source is {type: base64, media_type, data} or {type: url, url}")
    return None


def _tools(r: Reader, body: Mapping[str, Any]) -> tuple[Tool, ...]:
    def unwrap(entry: Any) -> Mapping[str, Any] | None:
        is_client_tool = isinstance(entry, Mapping) and entry.get("type", "custom") in ("custom", None)
        return entry if is_client_tool else None

    shape = "{name, description, input_schema}; server tools (type web_search_... etc.) run only at Anthropic"
    return r.tools(body, unwrap, shape, "", "input_schema")


def _tool_choice(r: Reader, body: Mapping[str, Any], tools: tuple[Tool, ...]) -> ToolChoice | None:
    raw = r.get(body, "tool_choice", "tool_choice", Mapping)
    if raw is None:
        return None
    kind = raw.get("type")
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str) or name not in {t.name for t in tools}:
            r.bad("tool_choice.name", "names no tool of the request")
            return None
        return ToolChoice(ToolChoiceMode.FUNCTION, name)
    mode = _CHOICES.get(kind)
    if mode is None:
        r.bad("tool_choice.type", "one of auto, any, tool, none")
        return None
    if mode is ToolChoiceMode.REQUIRED and not tools:
        r.bad("tool_choice", "a tool call is required but the request defines no tools")
    return ToolChoice(mode)
