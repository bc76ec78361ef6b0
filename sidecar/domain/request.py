"""A chat request as every layer below the server sees it (the server converts from protobuf)."""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Capability(enum.StrEnum):
    """What a model can do beyond plain text; configs use these values (tools, vision, json)."""

    TOOLS = "tools"
    VISION = "vision"
    JSON_MODE = "json"
    STREAMING = "streaming"
    LOGPROBS = "logprobs"  # returns each output token's log-probability (and its top alternatives)


class Priority(enum.IntEnum):
    BATCH = 1
    NORMAL = 2
    INTERACTIVE = 3
    CRITICAL = 4


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL (https: or data:) or inline bytes with a media type."""

    url: str = ""
    data: bytes = b""
    media_type: str = ""
    detail: str = ""  # "", "low", "high" or "auto"


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments_json: str


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: tuple[ContentPart, ...] = ()
    name: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    # text and has_image are read several times per request (the policy, its cache, the codecs):
    # plain loops, without a generator's frame per part (decision 040).

    @property
    def text(self) -> str:
        """The text parts joined by newlines (images are skipped)."""
        content = self.content
        if len(content) == 1 and content[0].__class__ is TextPart:
            return content[0].text
        return "\n".join([p.text for p in content if isinstance(p, TextPart)])

    @property
    def has_image(self) -> bool:
        for p in self.content:  # noqa: SIM110 - see above
            if isinstance(p, ImagePart):
                return True
        return False


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    strict: bool = False


class ToolChoiceMode(enum.StrEnum):
    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"
    FUNCTION = "function"


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ToolChoiceMode = ToolChoiceMode.AUTO
    function_name: str = ""


class ResponseFormatKind(enum.StrEnum):
    TEXT = "text"
    JSON_OBJECT = "json_object"
    JSON_SCHEMA = "json_schema"


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    kind: ResponseFormatKind = ResponseFormatKind.TEXT
    schema_name: str = ""
    schema: Mapping[str, Any] | None = None
    strict: bool = False

    @property
    def wants_json(self) -> bool:
        return self.kind is not ResponseFormatKind.TEXT


MAX_TOP_LOGPROBS = 20  # OpenAI's and Gemini's own limit on alternatives per position
MAX_PENALTY = 2.0  # frequency and presence penalties: -2.0 to 2.0, OpenAI's range


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False  # return each output token's log-probability
    top_logprobs: int = 0  # and this many most likely tokens at each position (0..20; needs logprobs)
    # -2.0 to 2.0, None for 0 (the default everywhere, so it is never sent). Sent to OpenAI, Azure
    # and compatible servers. Anthropic and Bedrock's Converse have no such parameter, and Gemini
    # 2.5 and later answer 400 "Penalty is not enabled" to any non-zero one, so a model there
    # answers without it (as OpenRouter does).
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


@dataclass(frozen=True, slots=True)
class RoutingHints:
    task_type: str = ""
    user_tier: str = ""
    priority: Priority = Priority.NORMAL
    latency_budget_s: float | None = None
    max_cost_usd_nanos: int = 0  # 0: no bound
    quality_floor: float | None = None
    required_capabilities: frozenset[Capability] = frozenset()
    allowed_models: frozenset[str] = frozenset()
    allowed_providers: frozenset[str] = frozenset()
    denied_models: frozenset[str] = frozenset()
    denied_providers: frozenset[str] = frozenset()
    pinned_model: str = ""
    route: str = ""
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat = ResponseFormat()
    params: GenerationParams = GenerationParams()
    hints: RoutingHints = RoutingHints()
    request_id: str = ""
    tenant_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def implied_capabilities(self) -> frozenset[Capability]:
        """Capabilities the request needs from any model that serves it."""
        needed = set(self.hints.required_capabilities)
        if self.tools:
            needed.add(Capability.TOOLS)
        if self.response_format.wants_json:
            needed.add(Capability.JSON_MODE)
        if any(m.has_image for m in self.messages):
            needed.add(Capability.VISION)
        if self.params.logprobs:
            needed.add(Capability.LOGPROBS)
        return frozenset(needed)


def new_request_id() -> str:
    """32 random hex digits, as `uuid4().hex` looks, without its os.urandom call on every request:
    an id must be unique, not unguessable (the generator is seeded from os.urandom at import)."""
    return f"{random.getrandbits(128):032x}"
