"""What telemetry may record about people and their words: hashed ids, and content only by opt-in.

- Tenant and user ids are never recorded raw: `IdHasher` turns them into a keyed hash (HMAC-SHA256
  with an operator secret when one is set), stable enough to group by, useless to read back.
- Prompts and completions are recorded on spans only when the operator sets the standard
  `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`; never in logs or metrics.
- Credentials never reach telemetry at all: nothing here is handed a key or a header. Text that
  came from a provider (an attempt's error) is redacted where a span's status is made, and every
  log record's message on its creation (`redact_log_records`), as the last line behind the
  provider edge's own redaction (domain/redact.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from functools import lru_cache

from sidecar.domain.redact import redact
from sidecar.domain.request import ChatRequest, ImagePart, TextPart
from sidecar.domain.response import Completion

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# The standard variable is a boolean; newer GenAI instrumentations also accept where to put the
# content. Anything that puts it on spans turns capture on here.
_CAPTURE_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})


def capture_enabled(env: Mapping[str, str]) -> bool:
    return env.get(CAPTURE_ENV, "").strip().lower() in _CAPTURE_ON


class IdHasher:
    """`hash("acme")` -> "h:3f1c..." (16 hex digits); "" stays "" (no id given)."""

    def __init__(self, secret: str = "") -> None:
        key = secret.encode() or b"turnout"
        self.hash = lru_cache(maxsize=4096)(lambda value: self._digest(key, value))

    @staticmethod
    def _digest(key: bytes, value: str) -> str:
        if not value:
            return ""
        return "h:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


def input_messages(request: ChatRequest) -> str:
    """The request's messages in the conventions' `gen_ai.input.messages` JSON shape (opt-in only)."""
    messages = []
    for m in request.messages:
        parts: list[dict[str, object]] = []
        for part in m.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "content": part.text})
            elif isinstance(part, ImagePart):  # image bytes are never copied into a span
                parts.append(
                    {"type": "uri", "modality": "image", "uri": part.url}
                    if part.url
                    else {"type": "blob", "modality": "image"}
                )
        for call in m.tool_calls:
            parts.append(
                {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments_json}
            )
        if m.tool_call_id:
            parts = [{"type": "tool_call_response", "id": m.tool_call_id, "response": m.text}]
        messages.append({"role": m.role.value, "parts": parts})
    return json.dumps(messages, ensure_ascii=False)


def output_messages(completion: Completion) -> str:
    """The answer in the conventions' `gen_ai.output.messages` JSON shape (opt-in only)."""
    parts: list[dict[str, object]] = []
    if completion.text:
        parts.append({"type": "text", "content": completion.text})
    for call in completion.tool_calls:
        parts.append(
            {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments_json}
        )
    message = {"role": "assistant", "parts": parts, "finish_reason": completion.finish_reason.value}
    return json.dumps([message], ensure_ascii=False)


# The request log holds ids, numbers and names the sidecar made, never a provider's words, and is
# written once per request: it is left out (writing it stays as cheap as it was).
_UNREDACTED_LOGGERS = frozenset({"turnout.access"})


def redact_log_records() -> None:
    """Redact key-like text from every log record as it is made, whatever handler then writes it.

    A record factory rather than a handler filter: it covers handlers added later (pytest's, an
    operator's) as well. Idempotent. The message is formatted once here (a handler would have
    anyway), and a traceback is formatted and redacted into `exc_text`, which formatters reuse.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "turnout_redacts", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name in _UNREDACTED_LOGGERS:
            return record
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a malformed call: logging reports it later
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    factory.turnout_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
