"""The Anthropic route: POST /v1/messages, whole or streamed as SSE, in the Messages API's shapes.

The body is read into the same ChatCall the OpenAI route uses (tools, tool_choice and tool results
translated to their OpenAI equivalents), so answers, latency and faults come from the same modules
and the same draws. Only the edges differ: Anthropic's checks (`max_tokens` is required), its error
body `{"type": "error", "error": {"type", "message"}}`, its fault statuses (429 rate_limit_error with
retry-after, 500 api_error, 529 overloaded_error), a refusal as `stop_reason: "refusal"`, and its
event stream (message_start, content blocks, message_delta, message_stop; no [DONE]).
Auth is the app's middleware: it checks `Authorization: Bearer`, not `x-api-key`, so run the
simulator without an api_key for Anthropic clients.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from turnout_simulator.config import FaultKind, FaultSpec, ModelProfile
from turnout_simulator.content import Answer
from turnout_simulator.errors import WireError
from turnout_simulator.fault_wire import drop, hang, malformed, send_cut_body
from turnout_simulator.latency import Latency
from turnout_simulator.request import ChatCall, model_of, parse_json_body
from turnout_simulator.state import STATE
from turnout_simulator.tokens import estimate_prompt

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
TOKENS_PER_DELTA = 3
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


class AnthropicError(Exception):
    """A request that ends in an HTTP error with an Anthropic error body."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        kind = _ERROR_TYPES.get(self.status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": self.message}}
        return web.json_response(body, status=self.status, headers=self.headers)


async def messages(request: web.Request) -> web.StreamResponse:
    try:
        return await _answer(request)
    except AnthropicError as exc:
        return exc.response()
    except WireError as exc:  # the shared body checks speak OpenAI; re-dress them
        return AnthropicError(exc.status, exc.message, exc.headers).response()


async def _answer(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = parse_json_body(await request.read())
    profile = state.config.profile_for(model_of(body))
    call = parse_messages_call(body, profile)
    state.stats.record_request(call.model)
    draw = state.faults.draw(call.model)
    state.stats.record_faults(draw.fired)
    fault = draw.fault
    if fault is not None:
        error = error_for(fault, call.model)
        if error is not None:
            raise error
        if fault.kind is FaultKind.HANG:
            return await hang(request, state.hangs)
    answer = state.answer(call, profile, fault)
    latency = state.latency.draw(profile, draw.slow_factor)
    message_id = "msg_" + state.next_completion_id().removeprefix("chatcmpl-")
    reply = _Reply(message_id, call, answer, latency, fault)
    if call.stream:
        return await _stream(request, reply)
    await state.pause(latency.ttft_s + latency.per_token_s * answer.completion_tokens)
    raw = _encode(message_body(message_id, call.model, answer, call.prompt_tokens))
    if reply.spoiled_by(FaultKind.MALFORMED_JSON):
        return web.Response(body=malformed(raw), content_type="application/json")
    if reply.spoiled_by(FaultKind.STREAM_CUT):
        return await send_cut_body(request, raw)
    return web.Response(body=raw, content_type="application/json")


def error_for(fault: FaultSpec, model: str) -> AnthropicError | None:
    """The HTTP error a fault answers with, or None for faults that are not a plain error status."""
    if fault.kind is FaultKind.RATE_LIMIT:
        wait = fault.retry_after_s
        return AnthropicError(
            429,
            f"This request would exceed the rate limit for {model} (simulated).",
            headers={"retry-after": str(math.ceil(wait))},
        )
    if fault.kind is FaultKind.SERVER_ERROR:
        return AnthropicError(500, "Internal server error (simulated)")
    if fault.kind is FaultKind.OVERLOADED:
        return AnthropicError(529, "Overloaded (simulated)")
    return None


# ------------------------------------------------------------------------------------ the request


def parse_messages_call(body: Mapping[str, Any], profile: ModelProfile) -> ChatCall:
    """Check the body against the Messages API's rules and the model's limits, as a ChatCall."""
    model = model_of(body)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise AnthropicError(400, "max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise AnthropicError(400, "max_tokens: Input should be a valid integer greater than 0")
    if max_tokens > profile.max_output_tokens:
        raise AnthropicError(
            400,
            f"max_tokens: {max_tokens} > {profile.max_output_tokens}, which is the maximum allowed "
            f"number of output tokens for {model}",
        )
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise AnthropicError(400, "messages: at least one message is required")
    chat_messages = [*_system(body.get("system")), *_messages(raw_messages)]
    tools = tuple(_tool(t, i) for i, t in enumerate(body.get("tools") or []))
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    prompt_tokens = estimate_prompt(chat_messages, tools)
    if prompt_tokens > profile.context_window:
        raise AnthropicError(
            400, f"prompt is too long: {prompt_tokens} tokens > {profile.context_window} maximum"
        )
    if prompt_tokens + max_tokens > profile.context_window:
        raise AnthropicError(
            400,
            f"input length and `max_tokens` exceed context limit: {prompt_tokens} + {max_tokens} > "
            f"{profile.context_window}, decrease input length or `max_tokens` and try again",
        )
    return ChatCall(
        model=model,
        messages=tuple(chat_messages),
        stream=body.get("stream") is True,
        include_usage=True,
        max_tokens=max_tokens,
        response_format=None,
        tools=tools,
        tool_choice=tool_choice,
        prompt_tokens=prompt_tokens,
    )


def _system(system: Any) -> list[dict[str, Any]]:
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if isinstance(system, list):
        text = "".join(b.get("text", "") for b in system if isinstance(b, Mapping))
        return [{"role": "system", "content": text}]
    if system is None:
        return []
    raise AnthropicError(400, "system: Input should be a valid string or list of text blocks")


def _messages(raw: list[Any]) -> Iterator[dict[str, Any]]:
    """Each message in OpenAI's shape; tool_result blocks become `tool` messages."""
    for index, message in enumerate(raw):
        role = message.get("role") if isinstance(message, Mapping) else None
        if role not in ("user", "assistant"):
            raise AnthropicError(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            yield {"role": role, "content": content}
            continue
        if not isinstance(content, list):
            raise AnthropicError(400, f"messages.{index}.content: Input should be a string or a list")
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for block in content:
            kind = block.get("type") if isinstance(block, Mapping) else None
            if kind == "tool_result":
                yield {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": _result(block)}
            elif kind == "tool_use":
                arguments = json.dumps(block.get("input", {}))
                function = {"name": block.get("name"), "arguments": arguments}
                calls.append({"id": block.get("id"), "type": "function", "function": function})
            elif kind == "text":
                parts.append({"type": "text", "text": block.get("text", "")})
            elif kind == "image":
                parts.append({"type": "image"})
            else:
                raise AnthropicError(400, f"messages.{index}.content: unknown block type {kind!r}")
        if parts or calls:
            # Text-only content as one string, as OpenAI clients send it: the same conversation then
            # hashes to the same seed, and gets the same answer, on either route.
            text_only = all(part["type"] == "text" for part in parts)
            content = "".join(part["text"] for part in parts) if parts and text_only else parts or None
            out: dict[str, Any] = {"role": role, "content": content}
            if calls:
                out["tool_calls"] = calls
            yield out


def _result(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, Mapping))
    return content if isinstance(content, str) else ""


def _tool(tool: Any, index: int) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
        raise AnthropicError(400, f"tools.{index}.name: Field required")
    schema = tool.get("input_schema")
    if not isinstance(schema, Mapping):
        raise AnthropicError(400, f"tools.{index}.input_schema: Field required")
    return {"type": "function", "function": {"name": tool["name"], "parameters": schema}}


def _tool_choice(choice: Any, tools: tuple[dict[str, Any], ...]) -> Any:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind in ("auto", "none"):
        return kind
    if kind == "any":
        return "required"
    if kind == "tool":
        name = choice.get("name")
        if name not in {tool["function"]["name"] for tool in tools}:
            raise AnthropicError(400, f"tool_choice: tool {name!r} was not found in tools")
        return {"type": "function", "function": {"name": name}}
    raise AnthropicError(400, "tool_choice: Input tag does not match any of 'auto', 'any', 'tool', 'none'")


# ------------------------------------------------------------------------------------- the answer


@dataclass(frozen=True, slots=True)
class _Reply:
    message_id: str
    call: ChatCall
    answer: Answer
    latency: Latency
    fault: FaultSpec | None

    def spoiled_by(self, kind: FaultKind) -> bool:
        return self.fault is not None and self.fault.kind is kind


def _usage(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def _stop_reason(answer: Answer) -> str:
    return "refusal" if answer.refused else _STOP_REASONS[answer.finish_reason]


def _tool_id(call_id: str) -> str:
    return "toolu_" + call_id.removeprefix("call_")


def message_body(message_id: str, model: str, answer: Answer, prompt_tokens: int) -> dict[str, Any]:
    call = answer.tool_call
    if call is not None:
        try:
            arguments = json.loads(call.arguments)
        except ValueError:  # cut by max_tokens mid-way
            arguments = {}
        content = [{"type": "tool_use", "id": _tool_id(call.id), "name": call.name, "input": arguments}]
    else:
        content = [{"type": "text", "text": "".join(answer.pieces)}]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(answer),
        "stop_sequence": None,
        "usage": _usage(prompt_tokens, answer.completion_tokens),
    }


def stream_events(
    message_id: str, model: str, answer: Answer, prompt_tokens: int
) -> Iterator[tuple[dict[str, Any], int]]:
    """The whole stream of one answer, in order, each event with the tokens it carries."""
    start = {**message_body(message_id, model, answer, prompt_tokens), "content": [], "stop_reason": None}
    start["usage"] = _usage(prompt_tokens, 1)
    yield {"type": "message_start", "message": start}, 0
    call = answer.tool_call
    if call is not None:
        block: dict[str, Any] = {"type": "tool_use", "id": _tool_id(call.id), "name": call.name, "input": {}}
    else:
        block = {"type": "text", "text": ""}
    yield {"type": "content_block_start", "index": 0, "content_block": block}, 0
    yield {"type": "ping"}, 0
    pieces = answer.pieces if call is None else call.argument_pieces
    for at in range(0, len(pieces), TOKENS_PER_DELTA):
        group = pieces[at : at + TOKENS_PER_DELTA]
        text = "".join(group)
        if call is not None:
            delta = {"type": "input_json_delta", "partial_json": text}
        else:
            delta = {"type": "text_delta", "text": text}
        yield {"type": "content_block_delta", "index": 0, "delta": delta}, len(group)
    yield {"type": "content_block_stop", "index": 0}, 0
    finish = {"stop_reason": _stop_reason(answer), "stop_sequence": None}
    yield {"type": "message_delta", "delta": finish, "usage": {"output_tokens": answer.completion_tokens}}, 0
    yield {"type": "message_stop"}, 0


async def _stream(request: web.Request, reply: _Reply) -> web.StreamResponse:
    state = request.app[STATE]
    call = reply.call
    events = stream_events(reply.message_id, call.model, reply.answer, call.prompt_tokens)
    await state.pause(reply.latency.ttft_s)
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    for sent, (event, tokens) in enumerate(events):
        await state.pause(reply.latency.per_token_s * tokens)
        cut = reply.fault is not None and reply.fault.kind is FaultKind.STREAM_CUT
        if (
            cut
            and reply.fault is not None
            and (sent >= reply.fault.after_chunks or event["type"] == "message_delta")
        ):
            return drop(request, response)
        data = _encode(event)
        if reply.spoiled_by(FaultKind.MALFORMED_JSON) and sent == 1:
            await response.write(f"event: {event['type']}\ndata: ".encode() + malformed(data) + b"\n\n")
            break
        await response.write(f"event: {event['type']}\ndata: ".encode() + data + b"\n\n")
    await response.write_eof()
    return response


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
