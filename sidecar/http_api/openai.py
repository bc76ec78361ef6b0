"""POST /v1/chat/completions in OpenAI's Chat Completions format: request, answer, chunks, errors.

What Turnout cannot honour is refused with a 400 naming the field rather than ignored, since
ignoring it would change the answer without saying so: `n` other than 1 (one answer per request
is what the executor races for), content parts other than text and images, audio output
(`modalities`, `audio`), `logit_bias` (token ids of one model's tokenizer, where Turnout picks the
model per request), `web_search_options`, and the legacy `functions` / `function_call` (the same
schemas go in `tools`). `logprobs` limits the candidates to models with the logprobs capability
(none: a 400 naming it), as `tools` limits them to models with tools. `frequency_penalty` and
`presence_penalty` reach the OpenAI-format providers (see GenerationParams). Fields that only
tune OpenAI's own platform or a model family's internals (`store`, `user`, `service_tier`,
`parallel_tool_calls`, `prediction`, `reasoning_effort`, ...) are ignored, as other
OpenAI-compatible servers do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from sidecar.domain.plan import Plan
from sidecar.domain.request import (
    MAX_PENALTY,
    MAX_TOP_LOGPROBS,
    ChatRequest,
    GenerationParams,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
)
from sidecar.domain.response import Completion, FinishReason, StreamChunk, TokenLogprob, Usage
from sidecar.domain.result import ExecutionResult
from sidecar.domain.status import ErrorStatus
from sidecar.http_api.errors import details
from sidecar.http_api.reading import MAX_NAME, Reader, response_format
from sidecar.http_api.wire import Inbound, sse

_ROLES = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,  # OpenAI's newer name for the system message
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    "tool": Role.TOOL,
}
_FINISH = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
    FinishReason.UNKNOWN: "stop",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
}
DONE = b"data: [DONE]\n\n"
TEXT = ResponseFormat()  # the default, shared


class OpenAIChat:
    operation = "POST /v1/chat/completions"

    def read(self, r: Reader, body: Mapping[str, Any]) -> Inbound:
        messages = _messages(r, body)
        # Optional parts are read only when present: most requests carry a few fields of many.
        tools = _tools(r, body) if "tools" in body else ()
        max_tokens = r.positive(body, "max_completion_tokens", "max_completion_tokens")
        if max_tokens is None:
            max_tokens = r.positive(body, "max_tokens", "max_tokens")
        seed = r.get(body, "seed", "seed", int)
        logprobs = r.get(body, "logprobs", "logprobs", bool) is True
        top = r.number(body, "top_logprobs", "top_logprobs", 0, MAX_TOP_LOGPROBS)
        if top is not None and top != int(top):
            r.bad("top_logprobs", "must be a whole number")
        elif top and not logprobs:
            r.bad("top_logprobs", "needs logprobs set to true")
        params = GenerationParams(
            max_output_tokens=max_tokens,
            temperature=r.number(body, "temperature", "temperature", 0, 2),
            top_p=r.number(body, "top_p", "top_p", 0, 1, open_low=True),
            stop=r.stop(body.get("stop"), "stop"),
            seed=seed,
            logprobs=logprobs,
            top_logprobs=int(top or 0),
            frequency_penalty=_penalty(r, body, "frequency_penalty"),
            presence_penalty=_penalty(r, body, "presence_penalty"),
        )
        if not _UNSUPPORTED.isdisjoint(body):
            _unsupported(r, body)
        n = r.get(body, "n", "n", int)
        if n is not None and n != 1:
            r.bad("n", f"Turnout answers one choice per request; n must be 1 (got {n})")
        stream = r.get(body, "stream", "stream", bool) is True
        options = r.get(body, "stream_options", "stream_options", Mapping) or {}
        chat = ChatRequest(
            messages=messages,
            tools=tools,
            tool_choice=_tool_choice(r, body, tools) if "tool_choice" in body else None,
            response_format=response_format(r, body, "response_format")
            if "response_format" in body
            else TEXT,
            params=params,
            labels=r.labels(body.get("metadata"), "metadata"),
        )
        model = r.string(body, "model", "model")
        return Inbound(chat, model, stream, stream_usage=options.get("include_usage") is True)

    def answer(self, chat: ChatRequest, plan: Plan, result: ExecutionResult) -> dict[str, Any]:
        c = result.completion
        message: dict[str, Any] = {
            "role": "assistant",
            "content": c.text if c.text or not (c.tool_calls or c.refusal) else None,
            "refusal": c.refusal or None,
        }
        if c.tool_calls:
            message["tool_calls"] = [
                {
                    "id": t.id,
                    "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments_json},
                }
                for t in c.tool_calls
            ]
        return {
            "id": _id(chat),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": result.candidate.model.name,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": _finish(c),
                    "logprobs": _logprobs(c.logprobs) if chat.params.logprobs else None,
                }
            ],
            "usage": _usage(c.usage),
        }

    def stream(self, chat: ChatRequest, plan: Plan, inbound: Inbound) -> _Chunks:
        return _Chunks(_id(chat), plan.choice.model.name, inbound.stream_usage, chat.params.logprobs)

    def error(self, status: ErrorStatus, http_status: int) -> dict[str, Any]:
        return {
            "error": {
                "message": status.message,
                "type": _ERROR_TYPES.get(http_status, "api_error"),
                "param": status.violations[0][0] if status.violations else None,
                "code": status.reason.lower(),
                **details(status),
            }
        }


class _Chunks:
    """chat.completion.chunk events, each naming the model that wrote it (a fallback's, when the
    first choice failed before its first token; a continuation's, after a broken stream)."""

    def __init__(self, completion_id: str, model: str, usage: bool, logprobs: bool) -> None:
        self._head = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time())}
        self._model = model
        self._usage = usage
        self._logprobs = logprobs
        self._first = True

    def relaying(self, model: str) -> None:
        self._model = model

    def _event(self, choices: list[dict[str, Any]], model: str, **more: Any) -> bytes:
        return sse(orjson.dumps({**self._head, "model": model, "choices": choices, **more}))

    def chunk(self, chunk: StreamChunk) -> bytes:
        delta: dict[str, Any] = {}
        if self._first:
            delta["role"] = "assistant"
            self._first = False
        if chunk.text or not (chunk.tool_calls or chunk.refusal):
            delta["content"] = chunk.text
        if chunk.refusal:
            delta["refusal"] = chunk.refusal
        if chunk.tool_calls:
            delta["tool_calls"] = [
                _tool_delta(d.index, d.id, d.name, d.arguments_json) for d in chunk.tool_calls
            ]
        logprobs = _logprobs(chunk.logprobs) if self._logprobs else None
        return self._event(
            [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": logprobs}], self._model
        )

    def end(self, result: ExecutionResult) -> bytes:
        c = result.completion
        model = result.candidate.model.name
        out = self._event([{"index": 0, "delta": {}, "finish_reason": _finish(c), "logprobs": None}], model)
        if self._usage:
            out += self._event([], model, usage=_usage(c.usage))
        return out + DONE

    def failed(self, status: ErrorStatus) -> bytes:
        # A `data:` line with an `error` member: the OpenAI SDKs raise APIError on it.
        return sse(orjson.dumps(OpenAIChat().error(status, status.code.http_status)))


def _logprobs(tokens: tuple[TokenLogprob, ...]) -> dict[str, Any]:
    """`choices[0].logprobs`: the output tokens, each with its most likely alternatives. Asked of a
    model whose provider returned none (a refusal, say), `content` is empty rather than null."""
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": list(t.token_bytes),
                "top_logprobs": [
                    {"token": a.token, "logprob": a.logprob, "bytes": list(a.token_bytes)} for a in t.top
                ],
            }
            for t in tokens
        ],
        "refusal": None,
    }


def _tool_delta(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    delta: dict[str, Any] = {"index": index}
    if call_id:
        delta["id"] = call_id
        delta["type"] = "function"
    function = {"arguments": arguments} | ({"name": name} if name else {})
    delta["function"] = function
    return delta


def _id(chat: ChatRequest) -> str:
    return f"chatcmpl-{chat.request_id}"


def _finish(c: Completion) -> str:
    return _FINISH[c.finish_reason]


def _usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens},
    }


def _messages(r: Reader, body: Mapping[str, Any]) -> tuple[Message, ...]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        r.bad("messages", "at least one message is required")
        return ()
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping):
            r.bad(where, "a message is an object with a role and content")
            continue
        role = _ROLES.get(m.get("role"))  # type: ignore[arg-type]
        if role is None:
            r.bad(f"{where}.role", "one of system, developer, user, assistant, tool")
            continue
        calls = _tool_calls(r, where, m.get("tool_calls")) if role is Role.ASSISTANT else ()
        parts = _content(r, where, m.get("content"), needed=not calls)
        if role is Role.TOOL and not m.get("tool_call_id"):
            r.bad(f"{where}.tool_call_id", "a tool message must name the call it answers")
        if role not in (Role.TOOL, Role.ASSISTANT) and parts and all(_blank(p) for p in parts):
            r.bad(f"{where}.content", "the text is empty or only whitespace")
        name = r.string(m, "name", f"{where}.name") if "name" in m else ""
        call_id = r.string(m, "tool_call_id", f"{where}.tool_call_id") if "tool_call_id" in m else ""
        out.append(Message(role, parts, name, calls, call_id))
    return tuple(out)


def _content(r: Reader, where: str, content: Any, *, needed: bool) -> tuple[TextPart | ImagePart, ...]:
    if content is None or content == []:
        if needed:
            r.bad(
                f"{where}.content",
                "a message needs content (an assistant message may have tool_calls instead)",
            )
        return ()
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        r.bad(f"{where}.content", "must be a string or an array of content parts")
        return ()
    parts: list[TextPart | ImagePart] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image_url" and isinstance(part.get("image_url"), Mapping):
            image = part["image_url"]
            url = image.get("url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:")):
                r.bad(f"{at}.image_url.url", "must be an https:, http: or data: URL")
                continue
            detail = image.get("detail", "")
            parts.append(ImagePart(url=url, detail=detail if detail in ("low", "high", "auto") else ""))
        else:
            r.bad(at, "a content part is {type: text, text} or {type: image_url, image_url: {url}}")
    return tuple(parts)


def _blank(part: TextPart | ImagePart) -> bool:
    return isinstance(part, TextPart) and not part.text.strip()


def _tool_calls(r: Reader, where: str, raw: Any) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.bad(f"{where}.tool_calls", "must be an array")
        return ()
    calls = []
    for j, call in enumerate(raw):
        at = f"{where}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            r.bad(at, "a tool call is {id, type: function, function: {name, arguments}}")
            continue
        arguments = function.get("arguments", "")
        calls.append(
            ToolCall(
                r.string(call, "id", f"{at}.id"),
                r.string(function, "name", f"{at}.function.name"),
                arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
            )
        )
    return tuple(calls)


def _penalty(r: Reader, body: Mapping[str, Any], key: str) -> float | None:
    """-2 to 2; 0, every provider's default, is None, so that it is never sent."""
    return r.number(body, key, key, -MAX_PENALTY, MAX_PENALTY) or None


_UNSUPPORTED = frozenset(
    ("functions", "function_call", "modalities", "audio", "logit_bias", "web_search_options")
)


def _unsupported(r: Reader, body: Mapping[str, Any]) -> None:
    """A 400 for each field asking for something Turnout cannot do (empty or null ones are fine)."""
    for legacy in ("functions", "function_call"):
        if body.get(legacy):
            r.bad(
                legacy,
                "the legacy functions API is not supported: send the same schemas as tools "
                "([{type: function, function: {name, description, parameters}}]) and tool_choice",
            )
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        r.bad("modalities", 'Turnout answers in text only: send ["text"] or leave modalities out')
    if body.get("audio") is not None:
        r.bad("audio", "audio output is not supported: Turnout answers in text only")
    if body.get("logit_bias"):
        r.bad(
            "logit_bias",
            "token ids belong to one model's tokenizer, and Turnout picks the model per request: "
            "leave logit_bias out",
        )
    if body.get("web_search_options") is not None:
        r.bad("web_search_options", "web search is not supported: the models answer from the request alone")


def _tools(r: Reader, body: Mapping[str, Any]) -> tuple[Tool, ...]:
    def unwrap(entry: Any) -> Mapping[str, Any] | None:
        function = entry.get("function") if isinstance(entry, Mapping) else None
        is_function = isinstance(function, Mapping) and entry.get("type", "function") == "function"
        return function if is_function else None

    shape = "{type: function, function: {name, description, parameters}}"
    return r.tools(body, unwrap, shape, ".function", "parameters")


def _tool_choice(r: Reader, body: Mapping[str, Any], tools: tuple[Tool, ...]) -> ToolChoice | None:
    raw = body.get("tool_choice")
    if raw is None:
        return None
    if isinstance(raw, str) and raw in ("auto", "none", "required"):
        choice = ToolChoice(ToolChoiceMode(raw))
    elif isinstance(raw, Mapping) and isinstance(raw.get("function"), Mapping):
        name = raw["function"].get("name")
        if not isinstance(name, str) or name not in {t.name for t in tools}:
            r.bad("tool_choice.function.name", f"names no tool of the request: {str(name)[:MAX_NAME]!r}")
            return None
        choice = ToolChoice(ToolChoiceMode.FUNCTION, name)
    else:
        r.bad("tool_choice", 'one of "auto", "none", "required" or {type: function, function: {name}}')
        return None
    if choice.mode in (ToolChoiceMode.REQUIRED, ToolChoiceMode.FUNCTION) and not tools:
        r.bad("tool_choice", "a tool call is required but the request defines no tools")
    return choice
