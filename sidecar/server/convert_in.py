"""Protobuf request -> domain ChatRequest, checking every field and collecting all violations at once.

The three request messages (Route, Generate, GenerateStream) carry the same fields, so one
function reads any of them. Violations name fields by their request path, e.g.
`messages[1].content[0].image.media_type`, so a client can point at its own mistake.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2

from sidecar.domain.errors import FieldViolation, InvalidRequest
from sidecar.domain.request import (
    MAX_PENALTY,
    MAX_TOP_LOGPROBS,
    Capability,
    ChatRequest,
    GenerationParams,
    ImagePart,
    Message,
    Priority,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    RoutingHints,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    new_request_id,
)
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.validation.json_output import schema_problems

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_ID = 128
# Identifier-like fields (task type, tier, tags, labels, route, model and provider names, tenant,
# message and tool-call names and ids) are bounded: they end up in the decision cache's keys, the
# plan's reasons and the telemetry's attributes, and an 8 MB task type made every Route call keep
# 8 MB for the cache's TTL (40 calls: +1.07 GB of RSS).
MAX_NAME = 256
MAX_NAMES = 64  # tags, labels, allowed and denied models and providers: how many in one request
MAX_TOOLS = 128  # every tool's schema is compiled at validation, on the event loop
MAX_DURATION_S = 315_576_000_000  # google.protobuf.Duration's own range: 10,000 years

_ROLES = {
    pb.ROLE_SYSTEM: Role.SYSTEM,
    pb.ROLE_USER: Role.USER,
    pb.ROLE_ASSISTANT: Role.ASSISTANT,
    pb.ROLE_TOOL: Role.TOOL,
}
_DETAIL = {pb.IMAGE_DETAIL_LOW: "low", pb.IMAGE_DETAIL_HIGH: "high", pb.IMAGE_DETAIL_AUTO: "auto"}
_CAPABILITIES = {
    pb.CAPABILITY_TOOLS: Capability.TOOLS,
    pb.CAPABILITY_VISION: Capability.VISION,
    pb.CAPABILITY_JSON_MODE: Capability.JSON_MODE,
    pb.CAPABILITY_STREAMING: Capability.STREAMING,
    pb.CAPABILITY_LOGPROBS: Capability.LOGPROBS,
}
_PRIORITIES = {
    pb.PRIORITY_UNSPECIFIED: Priority.NORMAL,
    pb.PRIORITY_BATCH: Priority.BATCH,
    pb.PRIORITY_NORMAL: Priority.NORMAL,
    pb.PRIORITY_INTERACTIVE: Priority.INTERACTIVE,
    pb.PRIORITY_CRITICAL: Priority.CRITICAL,
}
_TOOL_MODES = {
    pb.TOOL_CHOICE_MODE_AUTO: ToolChoiceMode.AUTO,
    pb.TOOL_CHOICE_MODE_NONE: ToolChoiceMode.NONE,
    pb.TOOL_CHOICE_MODE_REQUIRED: ToolChoiceMode.REQUIRED,
    pb.TOOL_CHOICE_MODE_FUNCTION: ToolChoiceMode.FUNCTION,
}
_FORMATS = {
    pb.RESPONSE_FORMAT_TYPE_UNSPECIFIED: ResponseFormatKind.TEXT,
    pb.RESPONSE_FORMAT_TYPE_TEXT: ResponseFormatKind.TEXT,
    pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT: ResponseFormatKind.JSON_OBJECT,
    pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA: ResponseFormatKind.JSON_SCHEMA,
}

AnyRequest = pb.RouteRequest | pb.GenerateRequest | pb.GenerateStreamRequest


class _Reader:
    """Collects violations while reading, so one error reports every bad field."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def bad(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))


def to_chat_request(msg: AnyRequest) -> ChatRequest:
    r = _Reader()
    messages = _messages(r, msg)
    tools = _tools(r, msg)
    request = ChatRequest(
        messages=messages,
        tools=tools,
        tool_choice=_tool_choice(r, msg, tools),
        response_format=_response_format(r, msg),
        params=_params(r, msg.params),
        hints=_hints(r, msg.hints),
        request_id=_request_id(r, msg.request_id),
        tenant_id=_name(r, "tenant_id", msg.tenant_id),
        labels=_labels(r, msg.labels),
    )
    if r.violations:
        raise InvalidRequest(r.violations)
    return request


def _messages(r: _Reader, msg: AnyRequest) -> tuple[Message, ...]:
    if not msg.messages:
        r.bad("messages", "at least one message is required")
    out = []
    for i, m in enumerate(msg.messages):
        where = f"messages[{i}]"
        role = _ROLES.get(m.role)
        if role is None:
            r.bad(f"{where}.role", "role is required (system, user, assistant or tool)")
            continue
        parts = tuple(_part(r, f"{where}.content[{j}]", p) for j, p in enumerate(m.content))
        if not parts and not (role is Role.ASSISTANT and m.tool_calls):
            r.bad(f"{where}.content", "a message needs at least one content part")
        elif role is not Role.TOOL and not m.tool_calls and all(_blank(p) for p in parts):
            # Nothing to answer, but a paid model would be asked anyway (Anthropic refuses it);
            # a tool's result may be empty, and an assistant turn may be only its tool calls.
            for j, p in enumerate(m.content):
                if p.WhichOneof("part") == "text":
                    r.bad(f"{where}.content[{j}].text", "the text is empty or only whitespace")
        if role is Role.TOOL and not m.tool_call_id:
            r.bad(f"{where}.tool_call_id", "a tool message must name the call it answers")
        _name(r, f"{where}.name", m.name)
        _name(r, f"{where}.tool_call_id", m.tool_call_id)
        if m.tool_calls and role is not Role.ASSISTANT:
            r.bad(f"{where}.tool_calls", "only assistant messages carry tool calls")
        for j, c in enumerate(m.tool_calls):
            _name(r, f"{where}.tool_calls[{j}].id", c.id)
            _name(r, f"{where}.tool_calls[{j}].name", c.name)
        calls = tuple(ToolCall(c.id, c.name, c.arguments_json) for c in m.tool_calls)
        out.append(Message(role, parts, m.name, calls, m.tool_call_id))
    return tuple(out)


def _part(r: _Reader, where: str, part: pb.ContentPart) -> TextPart | ImagePart:
    kind = part.WhichOneof("part")
    if kind == "image":
        image = part.image
        source = image.WhichOneof("source")
        if source is None:
            r.bad(f"{where}.image", "an image needs a url or data")
        elif source == "url" and not image.url.startswith(("https://", "http://", "data:")):
            r.bad(f"{where}.image.url", "must be an https:, http: or data: URL")
        elif source == "data" and not image.media_type.startswith("image/"):
            r.bad(f"{where}.image.media_type", "inline image data needs a media type such as image/png")
        return ImagePart(image.url, image.data, image.media_type, _DETAIL.get(image.detail, ""))
    if kind is None:
        r.bad(where, "a content part needs text or an image")
    return TextPart(part.text)


def _blank(part: TextPart | ImagePart) -> bool:
    return isinstance(part, TextPart) and not part.text.strip()


def _struct(r: _Reader, where: str, value: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as JSON; NaN and Infinity, which JSON has not, are violations at their path."""
    return {k: _json(r, f"{where}{_key(k)}", v) for k, v in value.fields.items()}


def _json(r: _Reader, where: str, value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _struct(r, where, value.struct_value)
    if kind == "list_value":
        return [_json(r, f"{where}[{i}]", v) for i, v in enumerate(value.list_value.values)]
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            r.bad(where, f"NaN and Infinity are not JSON numbers (got {number})")
            return None
        return int(number) if number.is_integer() else number  # as MessageToDict reads it
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None  # null_value, or no kind set: null, as MessageToDict reads it


def _key(key: str) -> str:
    """A key as schema_problems writes it in a path: .name, .$ref, else ["..."] (cut at 64)."""
    if key.isidentifier() or (key.startswith("$") and key[1:].isidentifier()):
        return f".{key}"
    return f"[{json.dumps(key[:64])}]"


def _tools(r: _Reader, msg: AnyRequest) -> tuple[Tool, ...]:
    tools = []
    seen: set[str] = set()
    if len(msg.tools) > MAX_TOOLS:
        r.bad("tools", f"at most {MAX_TOOLS} tools (got {len(msg.tools)})")
        return ()
    for i, t in enumerate(msg.tools):
        where = f"tools[{i}]"
        if not TOOL_NAME.match(t.name):
            r.bad(f"{where}.name", "1-64 characters of letters, digits, _ and -")
        elif t.name in seen:
            r.bad(f"{where}.name", f"tool {t.name!r} is defined twice")
        seen.add(t.name)
        before = len(r.violations)
        parameters = (
            _struct(r, f"{where}.parameters", t.parameters)
            if t.HasField("parameters")
            else {"type": "object", "properties": {}}
        )
        if len(r.violations) == before:  # else a NaN, already said where
            for path, problem in schema_problems(parameters):
                r.bad(f"{where}.parameters{path}", problem)
        tools.append(Tool(t.name, t.description, parameters, t.strict))
    return tuple(tools)


def _tool_choice(r: _Reader, msg: AnyRequest, tools: tuple[Tool, ...]) -> ToolChoice | None:
    if not msg.HasField("tool_choice"):
        return None
    mode = _TOOL_MODES.get(msg.tool_choice.mode, ToolChoiceMode.AUTO)
    given = msg.tool_choice.function_name
    name = _name(r, "tool_choice.function_name", given)
    if mode is ToolChoiceMode.FUNCTION and name == given and name not in {t.name for t in tools}:
        r.bad("tool_choice.function_name", f"names no tool of the request: {name!r}")
    if mode in (ToolChoiceMode.REQUIRED, ToolChoiceMode.FUNCTION) and not tools:
        r.bad("tool_choice.mode", "a tool call is required but the request defines no tools")
    return ToolChoice(mode, name)


def _response_format(r: _Reader, msg: AnyRequest) -> ResponseFormat:
    rf = msg.response_format
    kind = _FORMATS.get(rf.type)
    if kind is None:
        r.bad("response_format.type", f"unknown response format type {rf.type}")
        return ResponseFormat()
    if kind is not ResponseFormatKind.JSON_SCHEMA:
        return ResponseFormat(kind)
    if not rf.json_schema.HasField("schema"):
        r.bad("response_format.json_schema.schema", "a JSON_SCHEMA response format needs a schema")
        return ResponseFormat(kind)
    before = len(r.violations)
    schema = _struct(r, "response_format.json_schema.schema", rf.json_schema.schema)
    if len(r.violations) > before:  # a NaN: already said where
        return ResponseFormat(kind)
    for path, problem in schema_problems(schema):
        r.bad(f"response_format.json_schema.schema{path}", problem)
    if rf.json_schema.name and not TOOL_NAME.match(rf.json_schema.name):
        r.bad("response_format.json_schema.name", "1-64 characters of letters, digits, _ and -")
    return ResponseFormat(kind, rf.json_schema.name, schema, rf.json_schema.strict)


def _params(r: _Reader, p: pb.GenerationParams) -> GenerationParams:
    if p.HasField("max_output_tokens") and p.max_output_tokens <= 0:
        r.bad("params.max_output_tokens", "must be positive")
    if p.HasField("temperature") and not 0 <= p.temperature <= 2:
        r.bad("params.temperature", "must be between 0 and 2")
    if p.HasField("top_p") and not 0 < p.top_p <= 1:
        r.bad("params.top_p", "must be in (0, 1]")
    if any(not s for s in p.stop):
        r.bad("params.stop", "stop sequences must not be empty")
    if not 0 <= p.top_logprobs <= MAX_TOP_LOGPROBS:
        r.bad("params.top_logprobs", f"must be between 0 and {MAX_TOP_LOGPROBS}")
    elif p.top_logprobs and not p.logprobs:
        r.bad("params.top_logprobs", "needs params.logprobs set to true")
    for penalty in ("frequency_penalty", "presence_penalty"):
        if not -MAX_PENALTY <= getattr(p, penalty) <= MAX_PENALTY:  # a NaN fails this too
            r.bad(f"params.{penalty}", f"must be between {-MAX_PENALTY:g} and {MAX_PENALTY:g}")
    return GenerationParams(
        max_output_tokens=p.max_output_tokens if p.HasField("max_output_tokens") else None,
        temperature=p.temperature if p.HasField("temperature") else None,
        top_p=p.top_p if p.HasField("top_p") else None,
        stop=tuple(p.stop),
        seed=p.seed if p.HasField("seed") else None,
        logprobs=p.logprobs,
        top_logprobs=p.top_logprobs,
        frequency_penalty=p.frequency_penalty or None,  # 0, everyone's default: never sent
        presence_penalty=p.presence_penalty or None,
    )


def _hints(r: _Reader, h: pb.RoutingHints) -> RoutingHints:
    budget = None
    if h.HasField("latency_budget"):
        # Read without ToTimedelta, which overflows (an INTERNAL error once) on 2^62 seconds.
        seconds, nanos = h.latency_budget.seconds, h.latency_budget.nanos
        if not 0 <= seconds <= MAX_DURATION_S or not 0 <= nanos < 1_000_000_000:
            r.bad(
                "hints.latency_budget",
                f"must be positive and at most {MAX_DURATION_S:,} s with 0-999,999,999 nanos",
            )
        elif seconds == nanos == 0:
            r.bad("hints.latency_budget", "must be positive")
        else:
            budget = seconds + nanos / 1e9
    if h.max_cost_usd_nanos < 0:
        r.bad("hints.max_cost_usd_nanos", "must not be negative")
    if h.HasField("quality_floor") and not 0 <= h.quality_floor <= 1:
        r.bad("hints.quality_floor", "must be between 0 and 1")
    if h.priority not in _PRIORITIES:
        r.bad("hints.priority", f"unknown priority {h.priority}")
    capabilities = set()
    for i, c in enumerate(h.required_capabilities):
        if c not in _CAPABILITIES:
            r.bad(f"hints.required_capabilities[{i}]", f"unknown capability {c}")
        else:
            capabilities.add(_CAPABILITIES[c])
    return RoutingHints(
        task_type=_name(r, "hints.task_type", h.task_type),
        user_tier=_name(r, "hints.user_tier", h.user_tier),
        priority=_PRIORITIES.get(h.priority, Priority.NORMAL),
        latency_budget_s=budget,
        max_cost_usd_nanos=h.max_cost_usd_nanos,
        quality_floor=h.quality_floor if h.HasField("quality_floor") else None,
        required_capabilities=frozenset(capabilities),
        allowed_models=_names(r, "hints.allowed_models", h.allowed_models),
        allowed_providers=_names(r, "hints.allowed_providers", h.allowed_providers),
        denied_models=_names(r, "hints.denied_models", h.denied_models),
        denied_providers=_names(r, "hints.denied_providers", h.denied_providers),
        pinned_model=_name(r, "hints.pinned_model", h.pinned_model),
        route=_name(r, "hints.route", h.route),
        tags=_names(r, "hints.tags", h.tags),
    )


def _name(r: _Reader, field: str, value: str) -> str:
    """`value` if it is at most MAX_NAME characters; else a violation (and '', so nothing keeps it)."""
    if len(value) <= MAX_NAME:
        return value
    r.bad(field, f"at most {MAX_NAME} characters (got {len(value):,})")
    return ""


def _names(r: _Reader, field: str, values: Sequence[str]) -> frozenset[str]:
    if len(values) > MAX_NAMES:
        r.bad(field, f"at most {MAX_NAMES} entries (got {len(values):,})")
        return frozenset()
    return frozenset(_name(r, f"{field}[{i}]", v) for i, v in enumerate(values))


def _labels(r: _Reader, labels: Mapping[str, str]) -> dict[str, str]:
    if len(labels) > MAX_NAMES:
        r.bad("labels", f"at most {MAX_NAMES} labels (got {len(labels):,})")
        return {}
    out = {}
    for key, value in labels.items():
        if len(key) > MAX_NAME:
            r.bad("labels", f"label keys are at most {MAX_NAME} characters (one has {len(key):,})")
        else:
            out[key] = _name(r, f"labels[{json.dumps(key)}]", value)
    return out


def _request_id(r: _Reader, request_id: str) -> str:
    if len(request_id) > MAX_ID:
        r.bad("request_id", f"at most {MAX_ID} characters")
    return request_id or new_request_id()
