"""The Gemini routes: POST /v1beta/models/{model}:generateContent and :streamGenerateContent (SSE).

The same fake model as the OpenAI route: the Gemini request is read into the simulator's ChatCall
(roles, tools, toolConfig and generationConfig translated to their OpenAI equivalents), so answers,
latency, faults and counters are shared, and only the shapes on the wire differ:
- bodies are GenerateContentResponse objects (candidates, usageMetadata, modelVersion, responseId);
- a stream sends `data: {GenerateContentResponse}` events, a few tokens each, the last one with the
  finishReason and the full usage, and then simply ends (no `[DONE]`); a function call comes whole;
- errors are Google's `{"error": {"code", "message", "status"}}`: 400 INVALID_ARGUMENT,
  403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED (with a RetryInfo `retryDelay`), 500 INTERNAL,
  503 UNAVAILABLE;
- the `refusal` fault is a safety block: a candidate with finishReason SAFETY and no content;
- the key, when the simulator has one, is read from `x-goog-api-key` (or `?key=`).
"""

from __future__ import annotations

import hmac
import json
import math
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from turnout_simulator.confidence import top
from turnout_simulator.config import FaultKind, FaultSpec, ModelProfile
from turnout_simulator.content import Answer
from turnout_simulator.errors import WireError
from turnout_simulator.fault_wire import drop, error_for, hang, malformed, send_cut_body
from turnout_simulator.payloads import TOKENS_PER_DELTA
from turnout_simulator.request import MAX_TOP_LOGPROBS, ChatCall, parse_json_body
from turnout_simulator.state import STATE, SimState
from turnout_simulator.tokens import estimate_prompt

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
FAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota). (simulated)",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting (simulated)",
    503: "The model is overloaded. Please try again later. (simulated)",
}
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS"}
_MODES = {"AUTO": "auto", "NONE": "none", "ANY": "required"}


def add_gemini_routes(app: web.Application) -> None:
    app.router.add_post("/v1beta/models/{model}:generateContent", generate_content)
    app.router.add_post("/v1beta/models/{model}:streamGenerateContent", stream_generate_content)


async def generate_content(request: web.Request) -> web.StreamResponse:
    return await _serve(request, stream=False)


async def stream_generate_content(request: web.Request) -> web.StreamResponse:
    return await _serve(request, stream=True)


class GeminiError(WireError):
    """A WireError sent in Google's shape; `details` are google.rpc detail objects."""

    def __init__(self, status: int, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status, message)
        self.details = details or []

    def response(self) -> web.Response:
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "status": STATUS_NAMES.get(self.status, "UNKNOWN"),
        }
        if self.details:
            error["details"] = self.details
        return web.json_response({"error": error}, status=self.status)


async def _serve(request: web.Request, *, stream: bool) -> web.StreamResponse:
    try:
        return await _answer(request, stream=stream)
    except GeminiError as exc:
        return exc.response()
    except WireError as exc:  # a shared helper's OpenAI-shaped error: same status, Google's shape
        return GeminiError(exc.status, exc.message).response()


async def _answer(request: web.Request, *, stream: bool) -> web.StreamResponse:
    state = request.app[STATE]
    _check_key(request, state.config.api_key)
    model = request.match_info["model"].removeprefix("models/")
    profile = state.config.profile_for(model)
    call = parse_gemini_call(parse_json_body(await request.read()), model, profile, stream=stream)
    state.stats.record_request(call.model)
    draw = state.faults.draw(call.model)
    state.stats.record_faults(draw.fired)
    fault = draw.fault
    if fault is not None:
        error = error_for(fault, call.model)
        if error is not None:
            raise _gemini_error(fault, error)
        if fault.kind is FaultKind.HANG:
            return await hang(request, state.hangs)
    answer = state.answer(call, profile, fault)
    latency = state.latency.draw(profile, draw.slow_factor)
    head = {"modelVersion": call.model, "responseId": state.next_completion_id()}
    if stream:
        events = list(stream_events(answer, call.prompt_tokens, head))
        await state.pause(latency.ttft_s)
        return await _send_stream(request, state, events, latency.per_token_s, fault)
    await state.pause(latency.ttft_s + latency.per_token_s * answer.completion_tokens)
    body = _encode(response_body(answer, call.prompt_tokens, head))
    if fault is not None and fault.kind is FaultKind.MALFORMED_JSON:
        return web.Response(body=malformed(body), content_type="application/json")
    if fault is not None and fault.kind is FaultKind.STREAM_CUT:
        return await send_cut_body(request, body)
    return web.Response(body=body, content_type="application/json")


def _check_key(request: web.Request, expected: str | None) -> None:
    if expected is None:
        return
    given = request.headers.get("x-goog-api-key") or request.query.get("key", "")
    if not given:
        raise GeminiError(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
        raise GeminiError(400, "API key not valid. Please pass a valid API key.", details=[info])


def _gemini_error(fault: FaultSpec, error: WireError) -> GeminiError:
    details = []
    if fault.kind is FaultKind.RATE_LIMIT:
        delay = f"{math.ceil(fault.retry_after_s)}s"
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    return GeminiError(error.status, FAULT_MESSAGES.get(error.status, error.message), details=details)


# ------------------------------------------------------------------------------------------ request


def parse_gemini_call(
    body: Mapping[str, Any], model: str, profile: ModelProfile, *, stream: bool
) -> ChatCall:
    """Check a GenerateContentRequest and read it into a ChatCall in OpenAI terms, or raise a 400."""
    messages = _messages(body)
    tools = _tools(body)
    config = body.get("generationConfig") or {}
    if not isinstance(config, Mapping):
        raise GeminiError(400, 'Invalid JSON payload received. Unknown name "generationConfig".')
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)):
        raise GeminiError(400, "generation_config.max_output_tokens must be an integer.")
    if max_tokens is not None and not 1 <= max_tokens <= profile.max_output_tokens:
        raise GeminiError(
            400,
            f"Unable to submit request because it has a maxOutputTokens value of {max_tokens} but the "
            f"supported range is from 1 (inclusive) to {profile.max_output_tokens + 1} (exclusive).",
        )
    prompt_tokens = estimate_prompt(messages, tools)
    if prompt_tokens > profile.context_window:
        raise GeminiError(
            400,
            f"The input token count ({prompt_tokens}) exceeds the maximum number of tokens allowed "
            f"({profile.context_window}).",
        )
    return ChatCall(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=True,
        max_tokens=max_tokens,
        response_format=_response_format(config),
        tools=tools,
        tool_choice=_tool_choice(body, tools),
        prompt_tokens=prompt_tokens,
        logprobs=config.get("responseLogprobs") is True,
        top_logprobs=_top_logprobs(config),
    )


def _top_logprobs(config: Mapping[str, Any]) -> int:
    """generationConfig.logprobs: how many top candidates per position, 0 to 20, with responseLogprobs."""
    count = config.get("logprobs")
    if count is None:
        return 0
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_TOP_LOGPROBS:
        raise GeminiError(400, f"logprobs must be an integer in [0, {MAX_TOP_LOGPROBS}].")
    if count and config.get("responseLogprobs") is not True:
        raise GeminiError(400, "logprobs is only valid when responseLogprobs is true.")
    return count


def _messages(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise GeminiError(400, "* GenerateContentRequest.contents: contents is not specified")
    messages: list[Mapping[str, Any]] = []
    system = body.get("systemInstruction")
    if isinstance(system, Mapping):
        messages.append({"role": "system", "content": _parts(system, "systemInstruction")})
    for index, content in enumerate(contents):
        where = f"GenerateContentRequest.contents[{index}]"
        if not isinstance(content, Mapping) or content.get("role", "user") not in ("user", "model"):
            raise GeminiError(400, f"* {where}.role: Please use a valid role: user, model.")
        parts = _parts(content, where)
        calls = [p["functionCall"] for p in content["parts"] if "functionCall" in p]
        results = any("functionResponse" in p for p in content["parts"])
        role = "assistant" if content.get("role") == "model" else "tool" if results else "user"
        message: dict[str, Any] = {"role": role, "content": parts}
        if calls:
            message["tool_calls"] = calls
        messages.append(message)
    return tuple(messages)


def _parts(content: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The parts as OpenAI-style content parts, for answers' seeds and the token estimate."""
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, Mapping) for p in parts):
        raise GeminiError(400, f"* {where}.parts: contents.parts must not be empty.")
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part.get("text"), str):
            out.append({"type": "text", "text": part["text"]})
        elif "inlineData" in part or "fileData" in part:
            out.append({"type": "image"})
        elif "functionResponse" in part:
            out.append({"type": "text", "text": json.dumps(part["functionResponse"], sort_keys=True)})
    return out


def _tools(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    tools: list[Mapping[str, Any]] = []
    for group in body.get("tools") or ():
        for declaration in (group.get("functionDeclarations") or ()) if isinstance(group, Mapping) else ():
            if not isinstance(declaration, Mapping) or not isinstance(declaration.get("name"), str):
                raise GeminiError(400, "* GenerateContentRequest.tools: function_declarations need a name.")
            function = {
                "name": declaration["name"],
                "parameters": _json_schema(declaration.get("parameters")),
            }
            tools.append({"type": "function", "function": function})
    return tuple(tools)


def _tool_choice(body: Mapping[str, Any], tools: tuple[Mapping[str, Any], ...]) -> Any:
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = config.get("mode", "AUTO")
    if mode not in _MODES:
        raise GeminiError(400, f"Invalid value at 'tool_config.function_calling_config.mode' ({mode}).")
    allowed = config.get("allowedFunctionNames") or []
    known = {tool["function"]["name"] for tool in tools}
    if any(name not in known for name in allowed):
        raise GeminiError(400, "* allowed_function_names must name declared functions.")
    if mode == "ANY" and len(allowed) == 1:
        return {"type": "function", "function": {"name": allowed[0]}}
    return _MODES[mode]


def _response_format(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if config.get("responseMimeType") != "application/json":
        return None
    schema = config.get("responseSchema")
    if isinstance(schema, Mapping):
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": _json_schema(schema)}}
    return {"type": "json_object"}


def _json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI Schema to JSON Schema, as far as the answer generator cares: types lower case."""
    if isinstance(schema, Mapping):
        return {
            k: v.lower() if k == "type" and isinstance(v, str) else _json_schema(v) for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_json_schema(v) for v in schema]
    return schema


# ------------------------------------------------------------------------------------------ answers


def response_body(answer: Answer, prompt_tokens: int, head: Mapping[str, Any]) -> dict[str, Any]:
    """A whole GenerateContentResponse for the answer."""
    candidate = _candidate(answer, answer.pieces, finished=True)
    if answer.logprobs is not None and answer.tool_call is None:
        candidate["logprobsResult"] = _logprobs(answer, 0, None)
        if answer.logprobs:
            candidate["avgLogprobs"] = statistics.fmean(answer.logprobs)
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(prompt_tokens, answer.completion_tokens),
        **head,
    }


@dataclass(frozen=True, slots=True)
class GeminiEvent:
    body: dict[str, Any]
    tokens: int  # tokens this event carries: the stream waits tokens x per-token latency before it
    finishing: bool


def stream_events(answer: Answer, prompt_tokens: int, head: Mapping[str, Any]) -> Iterator[GeminiEvent]:
    """The answer as stream events: text a few tokens at a time; a tool call or a block in one event."""
    if answer.tool_call is not None or answer.refused or not answer.pieces:
        body = response_body(answer, prompt_tokens, head)
        body["candidates"][0].pop("avgLogprobs", None)
        yield GeminiEvent(body, answer.completion_tokens, finishing=True)
        return
    sent = 0
    for start in range(0, len(answer.pieces), TOKENS_PER_DELTA):
        group = answer.pieces[start : start + TOKENS_PER_DELTA]
        sent += len(group)
        last = sent == len(answer.pieces)
        candidate = _candidate(answer, group, finished=last)
        if answer.logprobs is not None:
            candidate["logprobsResult"] = _logprobs(answer, start, start + len(group))
        body = {"candidates": [candidate], "usageMetadata": _usage(prompt_tokens, sent), **head}
        yield GeminiEvent(body, len(group), finishing=last)


def _candidate(answer: Answer, pieces: tuple[str, ...], *, finished: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    call = answer.tool_call
    if answer.refused:
        rating = {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        return {**candidate, "finishReason": "SAFETY", "safetyRatings": [rating]}
    if call is not None and answer.finish_reason == "tool_calls":
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": json.loads(call.arguments)}}
        candidate["content"] = {"parts": [part], "role": "model"}
    elif call is None:
        candidate["content"] = {"parts": [{"text": "".join(pieces)}], "role": "model"}
    if finished:
        candidate["finishReason"] = _FINISH[answer.finish_reason]
    return candidate


def _logprobs(answer: Answer, start: int, stop: int | None) -> dict[str, Any]:
    assert answer.logprobs is not None
    pairs = list(zip(answer.pieces[start:stop], answer.logprobs[start:stop], strict=True))
    chosen = [{"token": token, "tokenId": 0, "logProbability": logprob} for token, logprob in pairs]
    if not answer.top_logprobs:
        return {"topCandidates": [], "chosenCandidates": chosen}
    tops = [
        {
            "candidates": [
                {"token": t, "tokenId": 0, "logProbability": lp} for t, lp in top(*pair, answer.top_logprobs)
            ]
        }
        for pair in pairs
    ]
    return {"topCandidates": tops, "chosenCandidates": chosen}


def _usage(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }


async def _send_stream(
    request: web.Request,
    state: SimState,
    events: list[GeminiEvent],
    per_token_s: float,
    fault: FaultSpec | None,
) -> web.StreamResponse:
    kind = fault.kind if fault is not None else None
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    for sent, event in enumerate(events):
        await state.pause(per_token_s * event.tokens)
        if (
            fault is not None
            and kind is FaultKind.STREAM_CUT
            and (sent >= fault.after_chunks or event.finishing)
        ):
            return drop(request, response)  # always before the finish reason
        data = _encode(event.body)
        if kind is FaultKind.MALFORMED_JSON and sent == min(1, len(events) - 1):
            await response.write(b"data: " + malformed(data) + b"\n\n")
            break
        await response.write(b"data: " + data + b"\n\n")
    await response.write_eof()
    return response


def _encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
