"""The OpenAI error table: HTTP error answers and in-stream error objects -> classified ProviderError.

Pure functions, no I/O. OpenAI-compatible servers (vLLM, Ollama, Groq, Together, OpenRouter) send
errors in the same `{"error": {"message", "type", "code"}}` shape, with small variations handled here.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from sidecar.domain.outcome import FailureClass, ProviderError

MAX_MESSAGE_CHARS = 300
_CONTEXT_TOO_LONG = re.compile(r"maximum context length|context[ _]length|context window", re.I)
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
_MISSING_MODEL_CODES = frozenset({"model_not_found", "deployment_not_found", "DeploymentNotFound"})
_Obj = Mapping[str, Any]


def classify_error(
    status: int, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> ProviderError:
    """The error table: an HTTP error answer becomes a classified ProviderError.

    The message is the provider's own, truncated. A non-JSON body is described rather than quoted
    (HTML error pages say nothing useful), unless it is plain text.
    """
    content_type = _header(headers, "content-type")
    try:
        parsed = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        parsed = None
    payload: _Obj = parsed if isinstance(parsed, dict) else {}
    if not isinstance(parsed, dict):
        plain = content_type.startswith("text/plain") and body.strip()
        payload = {"error": {"message": body.decode("utf-8", errors="replace")}} if plain else {}
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
    error = payload.get("error")
    if not isinstance(error, Mapping):  # a bare string, or message/code at the top level
        error = {"message": error} if isinstance(error, str) else payload
    message = error.get("message") or error.get("detail") or ""
    message = message if isinstance(message, str) else json.dumps(message)
    code, kind = str(error.get("code") or ""), str(error.get("type") or "")
    if status is None and isinstance(error.get("code"), int):
        status = error["code"]  # vLLM puts the HTTP status in an in-stream error's code
    text = " ".join(message.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    if code and not code.isdigit():
        text = f"{text} [{code}]".lstrip()
    return ProviderError(
        _class_of(status, code, kind, message),
        text or fallback or "the provider reported an error without a message",
        status=status,
        retry_after_s=retry_after(headers, now=now),
    )


def _class_of(status: int | None, code: str, kind: str, message: str) -> FailureClass:
    if status == 429 or (status is None and "rate_limit" in f"{code} {kind}"):
        # Quota exhaustion is a billing state of this provider account, not a rate: it does not clear
        # after Retry-After seconds, so RATE_LIMITED would have callers wait and retry in vain. AUTH
        # is the non-transient "this account cannot serve" class, and it still lets the executor
        # fall back to a candidate on another provider.
        return FailureClass.AUTH if "insufficient_quota" in (code, kind) else FailureClass.RATE_LIMITED
    if status in (401, 403):
        return FailureClass.AUTH
    if status == 404 or code in _MISSING_MODEL_CODES:
        # The model or deployment does not exist at this endpoint: Turnout's configuration is wrong,
        # not the caller's request. SERVER_ERROR lets the next candidate serve and marks this
        # endpoint unhealthy; the message keeps the provider's code so operators can see why.
        return FailureClass.SERVER_ERROR
    if status == 408:
        return FailureClass.TIMEOUT
    if status in (503, 529):
        return FailureClass.OVERLOADED
    if status is not None and status >= 500:
        return FailureClass.SERVER_ERROR
    if code == "context_length_exceeded" or _CONTEXT_TOO_LONG.search(message):
        return FailureClass.CONTEXT_TOO_LONG
    if code in _FILTER_CODES or kind in _FILTER_CODES:
        return FailureClass.CONTENT_FILTERED
    if status == 413:
        return FailureClass.CONTEXT_TOO_LONG  # too big for this endpoint; a larger model may take it
    if status is not None and 400 <= status < 500:
        return FailureClass.BAD_REQUEST
    return FailureClass.SERVER_ERROR  # an error object inside a 200 stream, or an odd status


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms` (finer, preferred) or `Retry-After` (seconds or HTTP date)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = _header(headers, name)
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(_header(headers, "retry-after"))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; an obsolete form may parse without a zone
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive lookup that also works for a plain dict."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return (value or "").strip()
