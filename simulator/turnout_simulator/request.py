"""Parse and check a Chat Completions request body into a typed ChatCall, or raise a 400 WireError.

The checks and their messages follow OpenAI's, so a client's handling of a bad request is exercised
the same way: missing or invalid `model`/`messages`, out-of-range `max_tokens`, a `tool_choice` naming
no tool, a `logprobs` that is not a boolean, and prompts that do not fit the model's context window.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from turnout_simulator.config import ModelProfile
from turnout_simulator.errors import WireError
from turnout_simulator.tokens import estimate_prompt

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True, slots=True)
class ChatCall:
    model: str
    messages: tuple[Mapping[str, Any], ...]
    stream: bool
    include_usage: bool
    max_tokens: int | None  # max_completion_tokens if given, else max_tokens
    response_format: Mapping[str, Any] | None
    tools: tuple[Mapping[str, Any], ...]
    tool_choice: Any
    prompt_tokens: int
    logprobs: bool = False  # return each output token's log-probability
    top_logprobs: int = 0  # and this many most likely tokens at each position


MAX_TOP_LOGPROBS = 20  # OpenAI's and Gemini's limit


def parse_json_body(raw: bytes) -> Mapping[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise WireError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
            f"not valid JSON: {exc})",
        ) from exc
    if not isinstance(body, dict):
        raise WireError(400, f"The request body must be a JSON object, not {type(body).__name__}.")
    return body


def model_of(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise WireError(400, "you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise WireError(400, f"{model!r} is not a valid model name - 'model'", param="model")
    return model


def parse_chat_call(body: Mapping[str, Any], profile: ModelProfile) -> ChatCall:
    """Check the body against OpenAI's rules and the model's limits."""
    model = model_of(body)
    messages = _messages(body)
    tools = _tools(body)
    tool_choice = body.get("tool_choice")
    _check_tool_choice(tool_choice, tools)
    max_tokens = _max_tokens(body, profile)
    if body.get("n", 1) != 1:
        raise WireError(400, "The simulator only supports n=1.", param="n")
    prompt_tokens = estimate_prompt(messages, tools)
    requested = prompt_tokens + (max_tokens or 0)
    if requested > profile.context_window:
        raise WireError(
            400,
            f"This model's maximum context length is {profile.context_window} tokens. However, your "
            f"messages resulted in {prompt_tokens} tokens"
            + (f" and {max_tokens} in the completion" if max_tokens else "")
            + ". Please reduce the length of the messages or completion.",
            param="messages",
            code="context_length_exceeded",
        )
    options = body.get("stream_options")
    response_format = body.get("response_format")
    if response_format is not None and not isinstance(response_format, Mapping):
        raise WireError(400, "'response_format' must be an object.", param="response_format")
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise WireError(
            400,
            f"Invalid type for 'logprobs': expected a boolean, but got {type(logprobs).__name__} instead.",
            param="logprobs",
            code="invalid_type",
        )
    top = body.get("top_logprobs")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int)):
        raise WireError(
            400,
            f"Invalid type for 'top_logprobs': expected an integer, but got {type(top).__name__} instead.",
            param="top_logprobs",
            code="invalid_type",
        )
    if top is not None and not 0 <= top <= MAX_TOP_LOGPROBS:
        raise WireError(
            400,
            f"Invalid 'top_logprobs': integer above maximum value. Expected a value <= {MAX_TOP_LOGPROBS}, "
            f"but got {top} instead."
            if top > 0
            else f"Invalid 'top_logprobs': integer below minimum value. "
            f"Expected a value >= 0, but got {top} instead.",
            param="top_logprobs",
            code="integer_above_max_value" if top > 0 else "integer_below_min_value",
        )
    if top and logprobs is not True:
        raise WireError(
            400, "'logprobs' must be set to 'true' when 'top_logprobs' is used.", param="top_logprobs"
        )
    return ChatCall(
        model=model,
        messages=messages,
        stream=body.get("stream") is True,
        include_usage=isinstance(options, Mapping) and options.get("include_usage") is True,
        max_tokens=max_tokens,
        response_format=response_format,
        tools=tools,
        tool_choice=tool_choice,
        prompt_tokens=prompt_tokens,
        logprobs=logprobs is True,
        top_logprobs=top or 0,
    )


def _messages(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    messages = body.get("messages")
    if messages is None:
        raise WireError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        raise WireError(400, f"{messages!r} is not of type 'array' - 'messages'", param="messages")
    if not messages:
        raise WireError(400, "[] is too short - 'messages'", param="messages", code="empty_array")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise WireError(400, f"Invalid type for '{where}': expected an object.", param=where)
        role = message.get("role")
        if role not in ROLES:
            raise WireError(
                400,
                f"Invalid value for '{where}.role': {role!r}. Supported values are: "
                + ", ".join(f"'{r}'" for r in sorted(ROLES))
                + ".",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = message.get("content")
        if content is None and not (role == "assistant" and message.get("tool_calls")):
            raise WireError(400, f"Missing required parameter: '{where}.content'.", param=f"{where}.content")
        if content is not None and not isinstance(content, str | list):
            raise WireError(
                400, f"Invalid type for '{where}.content': expected a string or an array.", param=where
            )
    return tuple(messages)


def _tools(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise WireError(400, "'tools' must be an array.", param="tools")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise WireError(
                400, f"Missing required parameter: 'tools[{index}].function.name'.", param=f"tools[{index}]"
            )
    return tuple(tools)


def _check_tool_choice(choice: Any, tools: tuple[Mapping[str, Any], ...]) -> None:
    if choice is None or choice in ("none", "auto", "required"):
        if choice == "required" and not tools:
            raise WireError(400, "tool_choice is 'required' but no tools were given.", param="tool_choice")
        return
    name = choice.get("function", {}).get("name") if isinstance(choice, Mapping) else None
    if not isinstance(name, str):
        raise WireError(400, f"Invalid value for 'tool_choice': {choice!r}.", param="tool_choice")
    if name not in {tool["function"]["name"] for tool in tools}:
        raise WireError(
            400,
            f"Invalid value for 'tool_choice': no function named '{name}' was specified in the 'tools' "
            "parameter.",
            param="tool_choice",
        )


def _max_tokens(body: Mapping[str, Any], profile: ModelProfile) -> int | None:
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WireError(
            400, f"Invalid '{key}': integer below minimum value. Expected a value >= 1.", param=key
        )
    if value > profile.max_output_tokens:
        raise WireError(
            400,
            f"{key} is too large: {value}. This model supports at most {profile.max_output_tokens} "
            f"completion tokens, whereas you provided {value}.",
            param=key,
            code="invalid_value",
        )
    return value
