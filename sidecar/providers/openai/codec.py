"""Translate between the domain and the OpenAI Chat Completions wire format; pure functions, no I/O.

Encoding turns a ChatRequest into the JSON body; decoding turns response bodies and stream chunks
into Completion and StreamChunk (error answers are errors.py's job). Whatever the provider sends in the
wrong shape becomes MALFORMED_RESPONSE here, with the offending field's path in the message.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
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
from sidecar.domain.response import (
    Completion,
    FinishReason,
    StreamChunk,
    TokenLogprob,
    ToolCallDelta,
    TopLogprob,
    Usage,
    mean_logprob,
)
from sidecar.providers.openai.dialects import OPENAI, Dialect
from sidecar.providers.openai.errors import error_from_payload
from sidecar.providers.shape import malformed as _malformed
from sidecar.providers.shape import opt as _opt
from sidecar.providers.shape import plain as _plain
from sidecar.providers.shape import req as _req
from sidecar.providers.shape import typed as _typed

_Obj = Mapping[str, Any]

DEFAULT_SCHEMA_NAME = "output"

_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,  # the deprecated single-function form
    "content_filter": FinishReason.CONTENT_FILTER,
}

# ---------------------------------------------------------------------------------------- encoding


def encode_request(
    request: ChatRequest, model: ModelSpec, *, stream: bool, logprobs: bool = False, dialect: Dialect = OPENAI
) -> dict[str, Any]:
    """The request body. Optional fields appear only when set; TEXT, the default format, is omitted.

    `logprobs` asks for each output token's log-probability (ProviderCall.logprobs), and the
    request's `top_logprobs` for that many alternatives at each position.
    """
    body: dict[str, Any] = {
        "model": model.upstream_model,
        "messages": [_message(m, i) for i, m in enumerate(request.messages)],
    }
    if request.tools:
        body["tools"] = [{"type": "function", "function": _function(t)} for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    fmt = request.response_format
    if fmt.kind is ResponseFormatKind.JSON_OBJECT:
        body["response_format"] = {"type": "json_object"}
    elif fmt.kind is ResponseFormatKind.JSON_SCHEMA and not dialect.json_schema:
        body["response_format"] = {"type": "json_object"}  # output is still checked against the schema
    elif fmt.kind is ResponseFormatKind.JSON_SCHEMA:
        schema: dict[str, Any] = {"name": fmt.schema_name or DEFAULT_SCHEMA_NAME}
        if fmt.schema is not None:
            schema["schema"] = _plain(fmt.schema)
        if fmt.strict:
            schema["strict"] = True
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    p = request.params
    optional = {
        dialect.max_tokens_field: p.max_output_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "stop": list(p.stop) or None,
        "seed": p.seed if dialect.seed else None,
        "frequency_penalty": p.frequency_penalty,
        "presence_penalty": p.presence_penalty,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if logprobs and dialect.logprobs:
        body["logprobs"] = True
        if p.top_logprobs:
            body["top_logprobs"] = p.top_logprobs
    if stream:
        body["stream"] = True
        if dialect.stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body


def _message(m: Message, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role.value}
    if m.role is Role.TOOL:
        return {**out, "tool_call_id": m.tool_call_id, "content": m.text}
    if m.role is Role.ASSISTANT:
        # Assistant content is text only; with tool calls and no text, OpenAI expects null.
        out["content"] = m.text if m.text or not m.tool_calls else None
        if m.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
                for c in m.tool_calls
            ]
    elif m.has_image:
        out["content"] = [_part(part, f"messages[{index}].content[{j}]") for j, part in enumerate(m.content)]
    else:
        out["content"] = m.text
    if m.name:
        out["name"] = m.name
    return out


def _part(part: TextPart | ImagePart, path: str) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if part.url:
        url = part.url
    elif part.data and part.media_type:
        url = f"data:{part.media_type};base64,{base64.b64encode(part.data).decode('ascii')}"
    else:
        problem = "inline image bytes need a media type" if part.data else "image has neither URL nor data"
        raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: {problem}")
    image = {"url": url, "detail": part.detail} if part.detail else {"url": url}
    return {"type": "image_url", "image_url": image}


def _function(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["parameters"] = _plain(tool.parameters) if tool.parameters else {"type": "object", "properties": {}}
    if tool.strict:
        out["strict"] = True
    return out


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode is ToolChoiceMode.FUNCTION:
        return {"type": "function", "function": {"name": choice.function_name}}
    return choice.mode.value


# ---------------------------------------------------------------------------------------- decoding


def decode_finish_reason(value: object) -> FinishReason | None:
    if value is None:
        return None
    return _FINISH.get(value, FinishReason.UNKNOWN) if isinstance(value, str) else FinishReason.UNKNOWN


def decode_completion(body: _Obj) -> Completion:
    choices = _req(body, "choices", list, "")
    if not choices:
        raise _malformed("choices is empty")
    choice = _typed(choices[0], dict, "choices[0]")
    message = _req(choice, "message", dict, "choices[0].")
    calls = []
    for i, raw in enumerate(_opt(message, "tool_calls", list, "choices[0].message.", [])):
        path = f"choices[0].message.tool_calls[{i}]."
        call = _typed(raw, dict, path[:-1])
        fn = _req(call, "function", dict, path)
        name, args = _req(fn, "name", str, path + "function."), _opt(fn, "arguments", str, path, "")
        calls.append(ToolCall(_opt(call, "id", str, path, ""), name, args))
    usage = _opt(body, "usage", dict, "", None)
    logprobs = _token_logprobs(choice)
    return Completion(
        text=_opt(message, "content", str, "choices[0].message.", ""),
        finish_reason=decode_finish_reason(choice.get("finish_reason")) or FinishReason.UNKNOWN,
        usage=Usage() if usage is None else decode_usage(usage),
        tool_calls=tuple(calls),
        response_model=_opt(body, "model", str, "", ""),
        refusal=_opt(message, "refusal", str, "choices[0].message.", ""),
        mean_logprob=mean_logprob(logprobs),
        logprobs=logprobs,
    )


def decode_chunk(body: _Obj) -> StreamChunk:
    """One `chat.completion.chunk`; an in-stream `{"error": ...}` object raises its ProviderError."""
    if "error" in body:
        raise error_from_payload(None, body, {})
    choices = _req(body, "choices", list, "")  # empty in the usage-only final chunk
    text, refusal, finish, deltas = "", "", None, []
    logprobs: tuple[TokenLogprob, ...] = ()
    if choices:
        choice = _typed(choices[0], dict, "choices[0]")
        finish = decode_finish_reason(choice.get("finish_reason"))
        delta = _opt(choice, "delta", dict, "choices[0].", {})
        text = _opt(delta, "content", str, "choices[0].delta.", "")
        refusal = _opt(delta, "refusal", str, "choices[0].delta.", "")
        logprobs = _token_logprobs(choice)
        for i, raw in enumerate(_opt(delta, "tool_calls", list, "choices[0].delta.", [])):
            path = f"choices[0].delta.tool_calls[{i}]."
            call = _typed(raw, dict, path[:-1])
            fn = _opt(call, "function", dict, path, {})
            index = _req(call, "index", int, path)
            name, args = _opt(fn, "name", str, path, ""), _opt(fn, "arguments", str, path, "")
            deltas.append(ToolCallDelta(index, _opt(call, "id", str, path, ""), name, args))
    usage = _opt(body, "usage", dict, "", None)
    return StreamChunk(
        text=text,
        tool_calls=tuple(deltas),
        finish_reason=finish,
        usage=None if usage is None else decode_usage(usage),
        response_model=_opt(body, "model", str, "", ""),
        refusal=refusal,
        logprobs=logprobs,
    )


def decode_usage(usage: _Obj) -> Usage:
    details = _opt(usage, "prompt_tokens_details", dict, "usage.", {})
    return Usage(
        input_tokens=_opt(usage, "prompt_tokens", int, "usage.", 0),
        output_tokens=_opt(usage, "completion_tokens", int, "usage.", 0),
        cached_input_tokens=_opt(details, "cached_tokens", int, "usage.prompt_tokens_details.", 0),
    )


def _token_logprobs(choice: _Obj) -> tuple[TokenLogprob, ...]:
    """`choices[0].logprobs.content`: the output tokens with their log-probabilities, () when absent.

    Only the content's tokens count: a refusal's own `logprobs.refusal` list says how sure the model
    was of declining, not of an answer, so it is not mixed in.
    """
    logprobs = _opt(choice, "logprobs", dict, "choices[0].", None)
    if logprobs is None:
        return ()
    tokens = []
    for i, raw in enumerate(_opt(logprobs, "content", list, "choices[0].logprobs.", [])):
        path = f"choices[0].logprobs.content[{i}]"
        entry = _typed(raw, dict, path)
        top = tuple(
            TopLogprob(*_token(_typed(alt, dict, f"{path}.top_logprobs[{j}]"), f"{path}.top_logprobs[{j}]."))
            for j, alt in enumerate(_opt(entry, "top_logprobs", list, path + ".", []))
        )
        tokens.append(TokenLogprob(*_token(entry, path + "."), top=top))
    return tuple(tokens)


def _token(entry: _Obj, prefix: str) -> tuple[str, float, bytes | None]:
    """A `{token, logprob, bytes}` entry; `bytes` (a token may be part of a character) may be null."""
    raw = _opt(entry, "bytes", list, prefix, None)
    if raw is not None and not all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in raw
    ):
        raise _malformed(f"{prefix}bytes should be a list of byte values")
    # The token is lenient (some compatible servers leave it out); the logprob is what a cascade reads.
    token = _opt(entry, "token", str, prefix, "")
    return token, _number(entry, "logprob", prefix), None if raw is None else bytes(raw)


def _number(obj: _Obj, key: str, prefix: str) -> float:
    """A required finite number; JSON integers count, booleans and NaN (which json.loads allows) do not."""
    value = obj.get(key)
    if value is None:
        raise _malformed(f"{prefix}{key} is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _malformed(f"{prefix}{key} should be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise _malformed(f"{prefix}{key} should be a finite number, got {value!r}")
    return float(value)
