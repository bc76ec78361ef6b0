"""The Bedrock error table: HTTP errors and event-stream exceptions -> classified ProviderError.

Pure functions, no I/O. Bedrock names its errors (`x-amzn-ErrorType`, the body's `__type`, a
stream's `:exception-type`); the name decides the class, the HTTP status when there is none.
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
    r"input is too long|too many (input )?tokens|context (length|window)|prompt is too long"
    r"|exceeds? the maximum (number of )?(input )?tokens",
    re.I,
)
# The failure table, by the exception's name (the `x-amzn-ErrorType` header, the body's `__type`, or
# a stream exception's `:exception-type`); the status is the fallback when the name is unknown.
_EXCEPTIONS = {
    "ThrottlingException": FailureClass.RATE_LIMITED,
    "ServiceQuotaExceededException": FailureClass.RATE_LIMITED,
    "ServiceUnavailableException": FailureClass.OVERLOADED,
    "ModelNotReadyException": FailureClass.OVERLOADED,
    "InternalServerException": FailureClass.SERVER_ERROR,
    "ModelErrorException": FailureClass.SERVER_ERROR,
    "ModelTimeoutException": FailureClass.TIMEOUT,
    "ValidationException": FailureClass.BAD_REQUEST,  # CONTEXT_TOO_LONG when the message says so
    "AccessDeniedException": FailureClass.AUTH,
    "UnrecognizedClientException": FailureClass.AUTH,
    "ExpiredTokenException": FailureClass.AUTH,
    "InvalidSignatureException": FailureClass.AUTH,
    # The model id does not exist here: configuration is wrong, not the request; the next may serve.
    "ResourceNotFoundException": FailureClass.SERVER_ERROR,
    "ModelStreamErrorException": FailureClass.STREAM_INTERRUPTED,
}


def classify_error(
    status: int, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> ProviderError:
    """The error table for an HTTP error answer: by exception name, else by status.

    The name comes from `x-amzn-ErrorType` (`ThrottlingException:http://...`) or the body's
    `__type`; the message is the service's own (`message` or `Message`), truncated; a body that is not
    JSON is described, not quoted.
    """
    try:
        parsed = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        parsed = None
    payload: _Obj = parsed if isinstance(parsed, dict) else {}
    name = _header(headers, "x-amzn-errortype") or str(payload.get("__type") or "")
    message = payload.get("message", payload.get("Message"))
    if isinstance(message, Mapping):
        message = message.get("message")
    if message is None and isinstance(payload.get("error"), Mapping):  # a proxy's OpenAI-style body
        message = payload["error"].get("message")
    content_type = _header(headers, "content-type")
    described = f"HTTP {status} with a {len(body)}-byte body ({content_type or 'no content type'})"
    text = message if isinstance(message, str) else ""
    error = exception_error(name, text, status=status, fallback=described)
    return ProviderError(
        error.failure_class, error.message, status=status, retry_after_s=retry_after(headers, now=now)
    )


def stream_exception(name: str, payload: bytes) -> ProviderError:
    """An `exception` (or framing `error`) message inside the stream: classified by its name."""
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = None
    message = parsed.get("message", parsed.get("Message")) if isinstance(parsed, dict) else None
    return exception_error(name, message if isinstance(message, str) else "")


def exception_error(
    name: str, message: str, *, status: int | None = None, fallback: str = ""
) -> ProviderError:
    short = _short(name)
    text = " ".join(message.split()) or fallback
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    if short:
        text = f"{text} [{short}]".lstrip()
    return ProviderError(
        _class_of(status, short, message),
        text or "the provider reported an error without a message",
        status=status,
    )


def _short(name: str) -> str:
    """`ThrottlingException` from `ThrottlingException:http://...` or the stream's `throttlingException`."""
    short = name.partition(":")[0].rpartition("#")[2].strip()
    return short[:1].upper() + short[1:]


def _class_of(status: int | None, name: str, message: str) -> FailureClass:
    cls = _EXCEPTIONS.get(name)
    if cls is None:
        cls = _class_of_status(status)
    if cls is FailureClass.BAD_REQUEST and _CONTEXT_TOO_LONG.search(message):
        return FailureClass.CONTEXT_TOO_LONG
    return cls


def _class_of_status(status: int | None) -> FailureClass:
    if status is None:
        return FailureClass.SERVER_ERROR
    if status == 429:
        return FailureClass.RATE_LIMITED
    if status in (401, 403):
        return FailureClass.AUTH
    if status == 404:
        return FailureClass.SERVER_ERROR
    if status == 408:
        return FailureClass.TIMEOUT
    if status == 413:
        return FailureClass.CONTEXT_TOO_LONG
    if status == 503:
        return FailureClass.OVERLOADED
    if status >= 500 or status == 424:  # 424 ModelErrorException: the model failed, not the request
        return FailureClass.SERVER_ERROR
    return FailureClass.BAD_REQUEST if 400 <= status < 500 else FailureClass.SERVER_ERROR


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")
