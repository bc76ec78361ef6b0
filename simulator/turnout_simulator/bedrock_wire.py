"""The Bedrock routes: POST /model/{modelId}/converse and /model/{modelId}/converse-stream.

The Converse body is read into the same ChatCall the OpenAI route uses (system, content blocks,
toolConfig and inferenceConfig translated to their OpenAI equivalents), so answers, latency, faults
and counters are shared; only the shapes on the wire differ:
- a body is `{output: {message: {role, content}}, stopReason, usage, metrics}`;
- a stream is AWS event-stream framing (event_stream.py): messageStart, contentBlockStart (tool use
  only), contentBlockDelta (a few tokens each), contentBlockStop, messageStop, metadata (usage);
- errors are `{"message"}` bodies named by `x-amzn-ErrorType`: 400 ValidationException (an over-long
  prompt says "Input is too long for requested model."), 429 ThrottlingException, 500
  InternalServerException, 503 ServiceUnavailableException. The rate-limit fault also sends a
  `retry-after` header, which real Bedrock does not; it lets clients' backoff be tested alike;
- a malformed_json fault spoils one event's JSON inside valid framing; a stream cut closes the
  connection before messageStop; the `refusal` fault ends with stopReason `guardrail_intervened`.
Auth is the app's middleware, which accepts `Authorization: Bearer` (a Bedrock API key); SigV4
signatures are not checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from turnout_simulator.config import FaultKind, ModelProfile
from turnout_simulator.content import Answer
from turnout_simulator.errors import WireError
from turnout_simulator.event_stream import CONTENT_TYPE, compact, event
from turnout_simulator.fault_wire import drop, error_for, hang, malformed, send_cut_body
from turnout_simulator.payloads import TOKENS_PER_DELTA
from turnout_simulator.request import ChatCall, parse_json_body
from turnout_simulator.state import STATE
from turnout_simulator.tokens import estimate_prompt

ERROR_NAMES = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
FAULT_MESSAGES = {
    429: "Too many requests, please wait before trying again. (simulated)",
    500: "The system encountered an unexpected error during processing. Try your request again. (simulated)",
    503: "Bedrock is unable to process your request. (simulated)",
}
TOO_LONG = "Input is too long for requested model."
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def add_bedrock_routes(app: web.Application) -> None:
    # `.+`: a model id may be an ARN, whose `/` arrives percent-encoded and is decoded before matching.
    app.router.add_post("/model/{model:.+}/converse", converse)
    app.router.add_post("/model/{model:.+}/converse-stream", converse_stream)


async def converse(request: web.Request) -> web.StreamResponse:
    return await _serve(request, stream=False)


async def converse_stream(request: web.Request) -> web.StreamResponse:
    return await _serve(request, stream=True)


class BedrockError(WireError):
    """A WireError sent in Bedrock's shape: the exception's name in a header, `{"message"}` as body."""

    def response(self) -> web.Response:
        name = ERROR_NAMES.get(self.status, "InternalServerException")
        headers = {
            **self.headers,
            "x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        }
        return web.json_response({"message": self.message}, status=self.status, headers=headers)


async def _serve(request: web.Request, *, stream: bool) -> web.StreamResponse:
    try:
        return await _answer(request, stream=stream)
    except WireError as exc:  # shared helpers speak OpenAI; same status, Bedrock's shape
        return BedrockError(exc.status, exc.message, headers=exc.headers).response()


async def _answer(request: web.Request, *, stream: bool) -> web.StreamResponse:
    state = request.app[STATE]
    model = request.match_info["model"]
    profile = state.config.profile_for(model)
    call = parse_converse_call(parse_json_body(await request.read()), model, profile, stream=stream)
    state.stats.record_request(call.model)
    draw = state.faults.draw(call.model)
    state.stats.record_faults(draw.fired)
    fault = draw.fault
    if fault is not None:
        error = error_for(fault, call.model)
        if error is not None:
            headers = {}
            if fault.kind is FaultKind.RATE_LIMIT:
                headers["retry-after"] = str(math.ceil(fault.retry_after_s))
            raise BedrockError(error.status, FAULT_MESSAGES.get(error.status, error.message), headers=headers)
        if fault.kind is FaultKind.HANG:
            return await hang(request, state.hangs)
    answer = state.answer(call, profile, fault)
    latency = state.latency.draw(profile, draw.slow_factor)
    if stream:
        await state.pause(latency.ttft_s)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await response.prepare(request)
        kind = fault.kind if fault is not None else None
        for sent, (event_type, payload, tokens) in enumerate(stream_events(answer, call.prompt_tokens)):
            await state.pause(latency.per_token_s * tokens)
            if (
                fault is not None
                and kind is FaultKind.STREAM_CUT
                and (sent >= fault.after_chunks or event_type == "messageStop")
            ):
                return drop(request, response)  # always before the finish reason
            data = compact(payload)
            if kind is FaultKind.MALFORMED_JSON and sent == 1:
                await response.write(event(event_type, malformed(data)))
                break
            await response.write(event(event_type, data))
        await response.write_eof()
        return response
    await state.pause(latency.ttft_s + latency.per_token_s * answer.completion_tokens)
    body = compact(response_body(answer, call.prompt_tokens))
    if fault is not None and fault.kind is FaultKind.MALFORMED_JSON:
        return web.Response(body=malformed(body), content_type="application/json")
    if fault is not None and fault.kind is FaultKind.STREAM_CUT:
        return await send_cut_body(request, body)
    return web.Response(body=body, content_type="application/json")


# ------------------------------------------------------------------------------------------ request


def parse_converse_call(
    body: Mapping[str, Any], model: str, profile: ModelProfile, *, stream: bool
) -> ChatCall:
    """Check a Converse request and read it into a ChatCall in OpenAI terms, or raise a 400."""
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BedrockError(400, "The model returned the following errors: messages: at least one message")
    messages = [*_system(body.get("system")), *_messages(raw)]
    tools, tool_choice = _tool_config(body.get("toolConfig"))
    config = body.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens") if isinstance(config, Mapping) else None
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise BedrockError(400, "inferenceConfig.maxTokens: must be an integer >= 1")
    if max_tokens is not None and max_tokens > profile.max_output_tokens:
        raise BedrockError(
            400, f"The maximum tokens you requested exceeds the model limit of {profile.max_output_tokens}."
        )
    prompt_tokens = estimate_prompt(messages, tools)
    if prompt_tokens + (max_tokens or 0) > profile.context_window:
        raise BedrockError(400, TOO_LONG)
    return ChatCall(
        model=model,
        messages=tuple(messages),
        stream=stream,
        include_usage=True,
        max_tokens=max_tokens,
        response_format=None,
        tools=tools,
        tool_choice=tool_choice,
        prompt_tokens=prompt_tokens,
    )


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if not isinstance(system, list):
        raise BedrockError(400, "system: must be a list of content blocks")
    text = "".join(b.get("text", "") for b in system if isinstance(b, Mapping))
    return [{"role": "system", "content": text}]


def _messages(raw: list[Any]) -> Iterator[dict[str, Any]]:
    """Each message in OpenAI's shape; toolResult blocks become `tool` messages."""
    for index, message in enumerate(raw):
        role = message.get("role") if isinstance(message, Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        if role not in ("user", "assistant") or not isinstance(content, list):
            raise BedrockError(400, f"messages.{index}: needs a role (user or assistant) and a content list")
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for block in content:
            block = block if isinstance(block, Mapping) else {}
            if "toolResult" in block:
                result = block["toolResult"]
                text = "".join(
                    c.get("text", "") for c in result.get("content") or () if isinstance(c, Mapping)
                )
                yield {"role": "tool", "tool_call_id": result.get("toolUseId"), "content": text}
            elif "toolUse" in block:
                use = block["toolUse"]
                function = {"name": use.get("name"), "arguments": json.dumps(use.get("input", {}))}
                calls.append({"id": use.get("toolUseId"), "type": "function", "function": function})
            elif isinstance(block.get("text"), str):
                parts.append({"type": "text", "text": block["text"]})
            elif "image" in block:
                parts.append({"type": "image"})
            else:
                raise BedrockError(400, f"messages.{index}.content: unknown content block")
        if parts or calls:
            # Text-only content as one string, as OpenAI clients send it: the same conversation then
            # gets the same answer on every route.
            text_only = all(part["type"] == "text" for part in parts)
            joined = "".join(part["text"] for part in parts) if parts and text_only else parts or None
            out: dict[str, Any] = {"role": role, "content": joined}
            if calls:
                out["tool_calls"] = calls
            yield out


def _tool_config(config: Any) -> tuple[tuple[dict[str, Any], ...], Any]:
    if config is None:
        return (), None
    if not isinstance(config, Mapping):
        raise BedrockError(400, "toolConfig: must be an object")
    tools: list[dict[str, Any]] = []
    for index, tool in enumerate(config.get("tools") or ()):
        spec = tool.get("toolSpec") if isinstance(tool, Mapping) else None
        schema = (spec.get("inputSchema") or {}).get("json") if isinstance(spec, Mapping) else None
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or schema is None:
            raise BedrockError(400, f"toolConfig.tools.{index}: needs toolSpec.name and inputSchema.json")
        tools.append({"type": "function", "function": {"name": spec["name"], "parameters": schema}})
    choice = config.get("toolChoice")
    if not isinstance(choice, Mapping):
        return tuple(tools), None
    if "auto" in choice:
        return tuple(tools), "auto"
    if "any" in choice:
        return tuple(tools), "required"
    name = (choice.get("tool") or {}).get("name")
    if name not in {tool["function"]["name"] for tool in tools}:
        raise BedrockError(400, f"toolConfig.toolChoice: tool {name!r} is not in toolConfig.tools")
    return tuple(tools), {"type": "function", "function": {"name": name}}


# ------------------------------------------------------------------------------------------ answers


def _stop_reason(answer: Answer) -> str:
    return "guardrail_intervened" if answer.refused else _STOP_REASONS[answer.finish_reason]


def _usage(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "inputTokens": prompt_tokens,
        "outputTokens": output_tokens,
        "totalTokens": prompt_tokens + output_tokens,
    }


def _tool_id(call_id: str) -> str:
    return "tooluse_" + call_id.removeprefix("call_")


def response_body(answer: Answer, prompt_tokens: int) -> dict[str, Any]:
    call = answer.tool_call
    if call is not None:
        try:
            arguments = json.loads(call.arguments)
        except ValueError:  # cut by maxTokens mid-way
            arguments = {}
        content: list[dict[str, Any]] = [
            {"toolUse": {"toolUseId": _tool_id(call.id), "name": call.name, "input": arguments}}
        ]
    else:
        content = [{"text": "".join(answer.pieces)}]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop_reason(answer),
        "usage": _usage(prompt_tokens, answer.completion_tokens),
        "metrics": {"latencyMs": 0},
    }


def stream_events(answer: Answer, prompt_tokens: int) -> Iterator[tuple[str, dict[str, Any], int]]:
    """The whole stream of one answer: (event type, payload, tokens it carries), in order."""
    yield "messageStart", {"role": "assistant"}, 0
    call = answer.tool_call
    if call is not None:
        start = {"toolUse": {"toolUseId": _tool_id(call.id), "name": call.name}}
        yield "contentBlockStart", {"contentBlockIndex": 0, "start": start}, 0
    pieces = answer.pieces if call is None else call.argument_pieces
    for at in range(0, len(pieces), TOKENS_PER_DELTA):
        group = pieces[at : at + TOKENS_PER_DELTA]
        text = "".join(group)
        delta = {"text": text} if call is None else {"toolUse": {"input": text}}
        yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": delta}, len(group)
    yield "contentBlockStop", {"contentBlockIndex": 0}, 0
    yield "messageStop", {"stopReason": _stop_reason(answer)}, 0
    metadata = {"usage": _usage(prompt_tokens, answer.completion_tokens), "metrics": {"latencyMs": 0}}
    yield "metadata", metadata, 0
