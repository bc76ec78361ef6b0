"""Offline input-token estimate, with a safety margin, for context-window checks and cost estimates.

A first cut that needs no tokenizer files: about four characters per token for English text and
code, a fixed overhead per message, and a flat cost per image (OpenAI's low-detail figure). The
policy issue replaces this with a real tokenizer for the OpenAI families.
"""

from __future__ import annotations

import json

from sidecar.domain.request import ChatRequest, ImagePart, TextPart

CHARS_PER_TOKEN = 4.0
PER_MESSAGE = 4
PER_IMAGE = 85
SAFETY_MARGIN = 1.1


def estimate_input_tokens(request: ChatRequest) -> int:
    chars = 0
    images = 0
    for message in request.messages:
        for part in message.content:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ImagePart):
                images += 1
        for call in message.tool_calls:
            chars += len(call.name) + len(call.arguments_json)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    if request.response_format.schema is not None:
        chars += len(json.dumps(request.response_format.schema))
    text_tokens = chars / CHARS_PER_TOKEN
    raw = text_tokens + PER_MESSAGE * len(request.messages) + PER_IMAGE * images
    return int(raw * SAFETY_MARGIN) + 1
