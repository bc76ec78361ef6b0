"""Errors on the HTTP front door: the shared error table's status, as HTTP status and headers.

The code comes from sidecar/domain/status.py (the gRPC server reads the same table); each API
writes its own body around it (Wire.error). A body is bounded as the gRPC status is: at most
MAX_VIOLATIONS field violations and MAX_METADATA metadata entries, each value cut to MAX_VALUE
characters with a count of what was cut, so no echoed input makes a large error.
"""

from __future__ import annotations

import math
from typing import Any

from sidecar.domain.status import ErrorStatus

MAX_VALUE = 200
MAX_VIOLATIONS = 20
MAX_METADATA = 32
TOO_LARGE = "REQUEST_TOO_LARGE"  # the one reason with an HTTP status of its own (413)


def http_status(status: ErrorStatus) -> int:
    return 413 if status.reason == TOO_LARGE else status.code.http_status


def headers(status: ErrorStatus) -> dict[str, str]:
    """Retry-After (whole seconds, as RFC 9110 has it) and retry-after-ms, which the SDKs prefer."""
    if status.retry_after_s is None:
        return {}
    seconds = status.retry_after_s
    return {"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(round(seconds * 1000))}


def details(status: ErrorStatus) -> dict[str, Any]:
    """Turnout's machine-readable facts, added beside each API's own error fields."""
    out: dict[str, Any] = {"reason": status.reason}
    if status.violations:
        out["violations"] = [
            {"field": _cut(f), "description": _cut(d)} for f, d in status.violations[:MAX_VIOLATIONS]
        ]
        if len(status.violations) > MAX_VIOLATIONS:
            out["omitted_violations"] = len(status.violations) - MAX_VIOLATIONS
    if status.metadata:
        keys = sorted(status.metadata)
        out["metadata"] = {_cut(k): _cut(status.metadata[k]) for k in keys[:MAX_METADATA]}
        if len(keys) > MAX_METADATA:
            out["omitted_metadata"] = len(keys) - MAX_METADATA
    return out


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE else f"{text[:MAX_VALUE]}…({len(text) - MAX_VALUE:,} more)"
