"""The Anthropic error table: HTTP error answers and in-stream `error` events -> classified ProviderError.

Pure functions, no I/O. Anthropic's errors are `{"type": "error", "error": {"type", "message"}}`;
the error type says what happened when there is no HTTP status (inside a stream).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.providers.openai.errors import retry_after

MAX_MESSAGE_CHARS = 300
_Obj = Mapping[str, Any]
_CONTEXT_TOO_LONG = re.compile(
    r"prompt is too long|exceed context limit|context window|too many tokens", re.I
)
# In-stream errors have no HTTP status: the error type says what happened.
_ERROR_TYPES = {
    "rate_limit_error": FailureClass.RATE_LIMITED,
    "overloaded_error": FailureClass.OVERLOADED,
    "api_error": FailureClass.SERVER_ERROR,
    "timeout_error": FailureClass.TIMEOUT,
    "authentication_error": FailureClass.AUTH,
    "permission_error": FailureClass.AUTH,
    "billing_error": FailureClass.AUTH,
    "not_found_error": FailureClass.SERVER_ERROR,
    "request_too_large": FailureClass.CONTEXT_TOO_LONG,
    "invalid_request_error": FailureClass.BAD_REQUEST,
}


def classify_error(
    status: int, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> ProviderError:
    """The error table: an HTTP error answer becomes a classified ProviderError.

    The message is the provider's own, truncated; a non-JSON body is described, not quoted.
    """
    try:
        parsed = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        parsed = None
    payload: _Obj = parsed if isinstance(parsed, dict) else {}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    described = f"HTTP {status} with a {len(body)}-byte body ({content_type or 'no content type'})"
    return error_from_payload(status, payload, headers, fallback=described, now=now)


def error_from_payload(
    status: int | None,
    payload: _Obj,
    headers: Mapping[str, str],
    *,
    fallback: str = "",
    now: float | None = None,
) -> ProviderError:
    """`{"type": "error", "error": {"type", "message"}}`, from an HTTP answer or an `error` event."""
    error = payload.get("error")
    if not isinstance(error, Mapping):
        error = {"message": error} if isinstance(error, str) else {}
    message = error.get("message")
    message = message if isinstance(message, str) else ""
    kind = str(error.get("type") or "")
    text = " ".join(message.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    if kind:
        text = f"{text} [{kind}]".lstrip()
    return ProviderError(
        _class_of(status, kind, message),
        text or fallback or "the provider reported an error without a message",
        status=status,
        retry_after_s=retry_after(headers, now=now),
    )


def _class_of(status: int | None, kind: str, message: str) -> FailureClass:
    if status is None:
        cls = _ERROR_TYPES.get(kind, FailureClass.SERVER_ERROR)
        if cls is FailureClass.BAD_REQUEST and _CONTEXT_TOO_LONG.search(message):
            return FailureClass.CONTEXT_TOO_LONG
        return cls
    if status == 429:
        return FailureClass.RATE_LIMITED
    if status in (401, 402, 403):  # 402 billing_error: this account cannot serve, like a bad key
        return FailureClass.AUTH
    if status == 404:
        # The model does not exist at this endpoint: Turnout's configuration is wrong, not the
        # request. SERVER_ERROR lets the next candidate serve, as in the OpenAI table.
        return FailureClass.SERVER_ERROR
    if status == 408:
        return FailureClass.TIMEOUT
    if status == 413:
        return FailureClass.CONTEXT_TOO_LONG  # request_too_large: a larger model may take it
    if status in (503, 529):
        return FailureClass.OVERLOADED
    if status >= 500:
        return FailureClass.SERVER_ERROR
    if _CONTEXT_TOO_LONG.search(message):
        return FailureClass.CONTEXT_TOO_LONG
    return FailureClass.BAD_REQUEST if 400 <= status < 500 else FailureClass.SERVER_ERROR
