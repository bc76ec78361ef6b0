"""Token estimates for the prompt side: about 4 characters per token, 85 per image, a little per message.

Not a tokenizer, and it does not need to be one: the simulator only has to be consistent, so that
context-length checks and usage numbers behave like a provider's without shipping a vocabulary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 85  # OpenAI's flat cost of a low-detail image
PER_MESSAGE_TOKENS = 3  # role and separators, as in OpenAI's own counting recipe
REPLY_PRIMING_TOKENS = 3  # every reply is primed with <|start|>assistant<|message|>


def estimate_text(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_content(content: Any) -> int:
    """A message's `content`: a string, or a list of parts (text, image_url, input_audio, ...)."""
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_text(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, Mapping) and part.get("type") in ("image_url", "image"):
                total += IMAGE_TOKENS
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                total += estimate_text(part["text"])
            else:
                total += estimate_text(json.dumps(part))
        return total
    return estimate_text(json.dumps(content))


def estimate_prompt(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] = ()) -> int:
    """Prompt tokens for a whole request: every message, its tool calls, and the tool definitions."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += PER_MESSAGE_TOKENS + estimate_content(message.get("content"))
        if isinstance(message.get("name"), str):
            total += estimate_text(message["name"])
        if message.get("tool_calls"):
            total += estimate_text(json.dumps(message["tool_calls"]))
    if tools:
        total += estimate_text(json.dumps(list(tools)))
    return total
