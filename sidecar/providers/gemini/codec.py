"""Translate between the domain and the Gemini API's generateContent wire format; pure, no I/O.

Encoding turns a ChatRequest into a GenerateContentRequest body (the model goes in the URL, not the
body); decoding turns GenerateContentResponse bodies and stream events into Completion and StreamChunk.
Error answers are errors.py's job. What the provider sends in the wrong shape becomes
MALFORMED_RESPONSE, with the offending field's path in the message.

Mapping choices a reader may question:
- Roles are `user` and `model`; system messages become `systemInstruction`, one part each.
- Gemini function calls carry no id, so tool calls get `call_<n>` ids, numbered in answer order. A tool
  result goes back as a `functionResponse` in a user turn, named after the assistant call whose id it
  answers; consecutive results share one turn, as Gemini expects for parallel calls. Its `response`
  must be an object: a result that is a JSON object is sent as is, anything else as `{"output": text}`
  (the key Google documents for a function's output).
- Schemas (tool parameters, responseSchema) are Gemini's OpenAPI 3.0 subset: keywords outside it
  (`additionalProperties`, `$schema`, `$ref`, `oneOf`, `const`...) are dropped rather than rejected,
  `type: [T, "null"]` becomes `type: T, nullable: true`, and an object without properties is left
  out entirely (Gemini rejects `properties: {}` for an OBJECT). `Tool.strict` and
  `ResponseFormat.strict` have no Gemini counterpart and are ignored; so is `ImagePart.detail`.
- Images: inline bytes and `data:` URLs become `inlineData`; other URLs become `fileData.fileUri`
  (Gemini fetches Files API, YouTube and public https URLs).
- Parts marked `thought: true` (thought summaries) are not answer text and are skipped; their tokens
  (`thoughtsTokenCount`) are billed as output, so they count in Usage.output_tokens.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

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
from sidecar.providers.gemini.errors import error_from_payload
from sidecar.providers.shape import plain as _plain

_T = TypeVar("_T")
_D = TypeVar("_D")
_Obj = Mapping[str, Any]

JSON_MIME_TYPE = "application/json"
_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
_FINISH = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    **dict.fromkeys(_FILTERED, FinishReason.CONTENT_FILTER),
}
# Gemini's Schema object (an OpenAPI 3.0 subset); every other JSON Schema keyword is dropped.
_SCHEMA_KEYWORDS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
        "pattern", "example", "anyOf", "propertyOrdering", "default", "minimum", "maximum",
    }
)  # fmt: skip
_TOOL_CHOICE_MODES = {
    ToolChoiceMode.AUTO: "AUTO",
    ToolChoiceMode.NONE: "NONE",
    ToolChoiceMode.REQUIRED: "ANY",
    ToolChoiceMode.FUNCTION: "ANY",
}

# ---------------------------------------------------------------------------------------- encoding


def encode_request(request: ChatRequest, model: ModelSpec, *, logprobs: bool = False) -> dict[str, Any]:
    """The request body, the same for `generateContent` and `streamGenerateContent`.

    `model` is unused in the body (it is part of the URL) but kept for symmetry with other codecs.
    """
    del model
    system = [{"text": m.text} for m in request.messages if m.role is Role.SYSTEM]
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_function(t) for t in request.tools]}]
    if request.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _tool_choice(request.tool_choice)}
    config = _generation_config(request, logprobs=logprobs)
    if config:
        body["generationConfig"] = config
    return body


def _contents(messages: Sequence[Message]) -> list[dict[str, Any]]:
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    contents: list[dict[str, Any]] = []
    previous: Role | None = None
    for index, m in enumerate(messages):
        if m.role is Role.SYSTEM:
            continue
        if m.role is Role.TOOL:
            name = names.get(m.tool_call_id) or m.name
            if not name:
                raise ProviderError(
                    FailureClass.BAD_REQUEST,
                    f"messages[{index}]: tool result {m.tool_call_id!r} answers no earlier tool call",
                )
            part = {"functionResponse": {"name": name, "response": _tool_response(m.text)}}
            if previous is Role.TOOL:
                contents[-1]["parts"].append(part)  # parallel calls' results share one turn
            else:
                contents.append({"role": "user", "parts": [part]})
        elif m.role is Role.ASSISTANT:
            parts: list[dict[str, Any]] = [{"text": m.text}] if m.text else []
            parts += [{"functionCall": {"name": c.name, "args": _args(c, index)}} for c in m.tool_calls]
            contents.append({"role": "model", "parts": parts or [{"text": ""}]})
        else:
            parts = [_part(p, f"messages[{index}].content[{j}]") for j, p in enumerate(m.content)]
            contents.append({"role": "user", "parts": parts or [{"text": ""}]})
        previous = m.role
    return contents


def _tool_response(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"output": text}


def _args(call: ToolCall, index: int) -> dict[str, Any]:
    try:
        value = json.loads(call.arguments_json) if call.arguments_json.strip() else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ProviderError(
            FailureClass.BAD_REQUEST,
            f"messages[{index}]: tool call {call.id!r} has arguments that are not a JSON object",
        )
    return value


def _part(part: TextPart | ImagePart, path: str) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if part.data and part.media_type:
        return {"inlineData": {"mimeType": part.media_type, "data": base64.b64encode(part.data).decode()}}
    if part.url.startswith("data:"):
        header, comma, data = part.url.partition(",")
        mime, _, encoding = header.removeprefix("data:").partition(";")
        if not comma or encoding != "base64" or not mime:
            raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: only base64 data: URLs are supported")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if part.url:
        file: dict[str, Any] = {"fileUri": part.url}
        if part.media_type:
            file["mimeType"] = part.media_type
        return {"fileData": file}
    problem = "inline image bytes need a media type" if part.data else "image has neither URL nor data"
    raise ProviderError(FailureClass.BAD_REQUEST, f"{path}: {problem}")


def _function(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    parameters = gemini_schema(tool.parameters) if tool.parameters else None
    if parameters and not (parameters.get("type") == "object" and not parameters.get("properties")):
        out["parameters"] = parameters
    return out


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    config: dict[str, Any] = {"mode": _TOOL_CHOICE_MODES[choice.mode]}
    if choice.mode is ToolChoiceMode.FUNCTION:
        config["allowedFunctionNames"] = [choice.function_name]
    return config


def _generation_config(request: ChatRequest, *, logprobs: bool) -> dict[str, Any]:
    p = request.params
    optional = {
        "maxOutputTokens": p.max_output_tokens,
        "temperature": p.temperature,
        "topP": p.top_p,
        "stopSequences": list(p.stop) or None,
        "seed": p.seed,
    }
    config: dict[str, Any] = {k: v for k, v in optional.items() if v is not None}
    fmt = request.response_format
    if fmt.kind is not ResponseFormatKind.TEXT:
        config["responseMimeType"] = JSON_MIME_TYPE
        if fmt.kind is ResponseFormatKind.JSON_SCHEMA and fmt.schema is not None:
            config["responseSchema"] = gemini_schema(fmt.schema)
    if logprobs:
        config["responseLogprobs"] = True
        if p.top_logprobs:
            config["logprobs"] = p.top_logprobs  # alternatives per position, in topCandidates
    return config


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema cut down to Gemini's OpenAPI subset (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _SCHEMA_KEYWORDS:
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {str(k): gemini_schema(v) for k, v in value.items() if isinstance(v, Mapping)}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = gemini_schema(value)
        elif key == "anyOf" and isinstance(value, list | tuple):
            out[key] = [gemini_schema(v) for v in value if isinstance(v, Mapping)]
        elif key == "type" and isinstance(value, list | tuple):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
            if len(types) < len(value):
                out["nullable"] = True
        else:
            out[key] = _plain(value)
    if "const" in schema and "enum" not in out:
        out["enum"] = [schema["const"]]
    return out


# ---------------------------------------------------------------------------------------- decoding


def decode_finish_reason(value: object) -> FinishReason | None:
    """None while a stream is still going (no finishReason yet); UNKNOWN for values we do not map
    (MALFORMED_FUNCTION_CALL, OTHER, LANGUAGE...)."""
    if value is None or value == "FINISH_REASON_UNSPECIFIED":
        return None
    return _FINISH.get(value, FinishReason.UNKNOWN) if isinstance(value, str) else FinishReason.UNKNOWN


def decode_completion(body: _Obj) -> Completion:
    """A whole GenerateContentResponse; a blocked prompt raises CONTENT_FILTERED."""
    piece = decode_chunk(body, first_call=0)
    if piece.finish_reason is None and _candidate(body) is not None:
        raise _malformed("candidates[0].finishReason is missing")
    calls = tuple(ToolCall(d.id, d.name, d.arguments_json) for d in piece.tool_calls)
    candidate = _candidate(body) or {}
    average = _opt(candidate, "avgLogprobs", float | int, "candidates[0].", None)
    return Completion(
        text=piece.text,
        finish_reason=piece.finish_reason or FinishReason.UNKNOWN,
        usage=piece.usage or Usage(),
        tool_calls=calls,
        response_model=piece.response_model,
        mean_logprob=float(average) if average is not None else mean_logprob(piece.logprobs),
        logprobs=piece.logprobs,
    )


def decode_chunk(body: _Obj, *, first_call: int) -> StreamChunk:
    """One GenerateContentResponse (a whole answer, or one stream event).

    `first_call` is the number of tool calls earlier events carried: it numbers this event's calls
    (`call_<n>`, index n). A tool call's finish is TOOL_CALLS, which Gemini reports as STOP.
    An in-stream `{"error": ...}` object raises its ProviderError.
    """
    if "error" in body:
        raise error_from_payload(None, body, {})
    candidate = _candidate(body)
    usage = _opt(body, "usageMetadata", dict, "", None)
    model = _opt(body, "modelVersion", str, "", "")
    if candidate is None:
        feedback = _opt(body, "promptFeedback", dict, "", {})
        reason = _opt(feedback, "blockReason", str, "promptFeedback.", "")
        if reason:
            raise ProviderError(FailureClass.CONTENT_FILTERED, f"the prompt was blocked ({reason})")
        if usage is None:
            raise _malformed("candidates is missing")
        return StreamChunk(usage=decode_usage(usage), response_model=model)  # a usage-only event
    content = _opt(candidate, "content", dict, "candidates[0].", {})
    texts: list[str] = []
    calls: list[ToolCallDelta] = []
    for i, raw in enumerate(_opt(content, "parts", list, "candidates[0].content.", [])):
        path = f"candidates[0].content.parts[{i}]"
        part = _typed(raw, dict, path)
        if part.get("thought") is True:
            continue
        if "functionCall" in part:
            call = _req(part, "functionCall", dict, path + ".")
            name = _req(call, "name", str, path + ".functionCall.")
            args = _opt(call, "args", dict, path + ".functionCall.", {})
            n = first_call + len(calls)
            calls.append(ToolCallDelta(n, f"call_{n}", name, json.dumps(args, ensure_ascii=False)))
        else:
            texts.append(_opt(part, "text", str, path + ".", ""))
    finish = decode_finish_reason(candidate.get("finishReason"))
    if finish is FinishReason.STOP and calls:
        finish = FinishReason.TOOL_CALLS
    return StreamChunk(
        text="".join(texts),
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=None if usage is None else decode_usage(usage),
        response_model=model,
        logprobs=_token_logprobs(candidate),
    )


def decode_usage(usage: _Obj) -> Usage:
    """usageMetadata: cached tokens are part of promptTokenCount; thinking tokens are billed as output."""
    prefix = "usageMetadata."
    return Usage(
        input_tokens=_opt(usage, "promptTokenCount", int, prefix, 0)
        + _opt(usage, "toolUsePromptTokenCount", int, prefix, 0),
        output_tokens=_opt(usage, "candidatesTokenCount", int, prefix, 0)
        + _opt(usage, "thoughtsTokenCount", int, prefix, 0),
        cached_input_tokens=_opt(usage, "cachedContentTokenCount", int, prefix, 0),
    )


def _candidate(body: _Obj) -> _Obj | None:
    candidates = _opt(body, "candidates", list, "", [])
    return _typed(candidates[0], dict, "candidates[0]") if candidates else None


def _token_logprobs(candidate: _Obj) -> tuple[TokenLogprob, ...]:
    """`logprobsResult.chosenCandidates`, each with its position's `topCandidates` entry; () when the
    request did not ask."""
    prefix = "candidates[0].logprobsResult."
    result = _opt(candidate, "logprobsResult", dict, "candidates[0].", {})
    tops = _opt(result, "topCandidates", list, prefix, [])
    tokens = []
    for i, raw in enumerate(_opt(result, "chosenCandidates", list, prefix, [])):
        token, logprob = _candidate_token(raw, f"{prefix}chosenCandidates[{i}]")
        top: tuple[TopLogprob, ...] = ()
        if i < len(tops):
            path = f"{prefix}topCandidates[{i}]"
            alternatives = _opt(_typed(tops[i], dict, path), "candidates", list, path + ".", [])
            top = tuple(
                TopLogprob(*_candidate_token(alt, f"{path}.candidates[{j}]"))
                for j, alt in enumerate(alternatives)
            )
        tokens.append(TokenLogprob(token, logprob, top=top))
    return tuple(tokens)


def _candidate_token(raw: object, path: str) -> tuple[str, float]:
    entry = _typed(raw, dict, path)
    value = _opt(entry, "logProbability", float | int, path + ".", 0.0)
    return _opt(entry, "token", str, path + ".", ""), float(value)


def _malformed(what: str) -> ProviderError:
    return ProviderError(FailureClass.MALFORMED_RESPONSE, f"unexpected response shape: {what}")


def _typed(value: object, kind: Any, path: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and not isinstance(True, kind)):
        name = getattr(kind, "__name__", str(kind))
        raise _malformed(f"{path} should be {name}, got {type(value).__name__}")
    return value


def _req(obj: _Obj, key: str, kind: type[_T], prefix: str) -> _T:
    if obj.get(key) is None:
        raise _malformed(f"{prefix}{key} is missing")
    return _typed(obj[key], kind, prefix + key)  # type: ignore[no-any-return]


def _opt(obj: _Obj, key: str, kind: Any, prefix: str, default: Any) -> Any:
    value = obj.get(key)
    return default if value is None else _typed(value, kind, prefix + key)
