"""The Gemini error table: HTTP error answers and in-stream error objects -> classified ProviderError.

Pure functions, no I/O. Google APIs answer errors as `{"error": {"code", "message", "status",
"details"}}`, where `status` is the google.rpc.Code name (RESOURCE_EXHAUSTED, UNAVAILABLE, ...) and
`details` may hold a RetryInfo (`retryDelay: "37s"`), an ErrorInfo (`reason: API_KEY_INVALID`) or a
QuotaFailure. Some endpoints wrap the object in a one-element JSON array.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.providers.openai.errors import retry_after

MAX_MESSAGE_CHARS = 300
# "The input token count (1234567) exceeds the maximum number of tokens allowed (1048576)."
_CONTEXT_TOO_LONG = re.compile(
    r"input token count.*exceeds|exceeds the maximum number of tokens|context (window|length)", re.I
)
_BAD_KEY = re.compile(r"API key not valid|API_KEY_INVALID", re.I)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_Obj = Mapping[str, Any]

_BY_STATUS_NAME = {
    "RESOURCE_EXHAUSTED": FailureClass.RATE_LIMITED,
    "UNAUTHENTICATED": FailureClass.AUTH,
    "PERMISSION_DENIED": FailureClass.AUTH,
    # "User location is not supported", "free tier is not available in your country": this account
    # cannot be served here, and waiting will not change it; AUTH lets another provider take over.
    "FAILED_PRECONDITION": FailureClass.AUTH,
    "NOT_FOUND": FailureClass.SERVER_ERROR,  # a wrong model name is Turnout's config, not the caller
    "DEADLINE_EXCEEDED": FailureClass.TIMEOUT,
    "UNAVAILABLE": FailureClass.OVERLOADED,
    "INTERNAL": FailureClass.SERVER_ERROR,
    "UNKNOWN": FailureClass.SERVER_ERROR,
    "INVALID_ARGUMENT": FailureClass.BAD_REQUEST,
    "OUT_OF_RANGE": FailureClass.BAD_REQUEST,
}


def classify_error(
    status: int, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> ProviderError:
    """An HTTP error answer becomes a classified ProviderError; a non-JSON body is described, not quoted."""
    try:
        parsed = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        parsed = None
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        parsed = parsed[0]
    payload: _Obj = parsed if isinstance(parsed, dict) else {}
    content_type = headers.get("Content-Type", headers.get("content-type", ""))
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
    """`status` is None for an error object inside a 200 stream: its `error.code` is the HTTP status."""
    error = payload.get("error")
    error = error if isinstance(error, Mapping) else {"message": error} if isinstance(error, str) else {}
    message = error.get("message")
    message = message if isinstance(message, str) else "" if message is None else json.dumps(message)
    name = str(error.get("status") or "")
    code = error.get("code")
    if status is None and isinstance(code, int) and not isinstance(code, bool):
        status = code
    details = [d for d in error.get("details") or () if isinstance(d, Mapping)]
    text = " ".join(message.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    if name:
        text = f"{text} [{name}]".lstrip()
    wait = retry_after(headers, now=now)
    return ProviderError(
        _class_of(status, name, message, details),
        text or fallback or "the provider reported an error without a message",
        status=status,
        retry_after_s=wait if wait is not None else _retry_delay(details),
    )


def _class_of(status: int | None, name: str, message: str, details: list[_Obj]) -> FailureClass:
    reasons = {str(d.get("reason", "")) for d in details}
    if "API_KEY_INVALID" in reasons or _BAD_KEY.search(message):
        return FailureClass.AUTH  # Google answers a bad key with 400 INVALID_ARGUMENT
    if status == 429 or name == "RESOURCE_EXHAUSTED":
        # A per-day quota does not clear after the retry delay (see the OpenAI table's insufficient_quota).
        return FailureClass.AUTH if _daily_quota(details) else FailureClass.RATE_LIMITED
    if status in (401, 403):
        return FailureClass.AUTH
    if status == 404:
        return FailureClass.SERVER_ERROR
    if status in (408, 504):
        return FailureClass.TIMEOUT
    if status in (503, 529):
        return FailureClass.OVERLOADED
    if status is not None and status >= 500:
        return FailureClass.SERVER_ERROR
    if _CONTEXT_TOO_LONG.search(message) or status == 413:
        return FailureClass.CONTEXT_TOO_LONG
    if name in _BY_STATUS_NAME:
        return _BY_STATUS_NAME[name]
    if status is not None and 400 <= status < 500:
        return FailureClass.BAD_REQUEST
    return FailureClass.SERVER_ERROR


def _daily_quota(details: list[_Obj]) -> bool:
    for detail in details:
        for violation in detail.get("violations") or ():
            if isinstance(violation, Mapping) and "PerDay" in str(violation.get("quotaId", "")):
                return True
    return False


def _retry_delay(details: list[_Obj]) -> float | None:
    """google.rpc.RetryInfo's `retryDelay`, a protobuf Duration in JSON form ("37s", "0.5s")."""
    for detail in details:
        match = _DURATION.match(str(detail.get("retryDelay", "")))
        if match and math.isfinite(seconds := float(match.group(1))):
            return seconds
    return None
