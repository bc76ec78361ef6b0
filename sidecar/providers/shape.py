"""Typed access to a decoded JSON body, shared by the codecs: a wrong shape is MALFORMED_RESPONSE.

Every helper names the offending field by its path (e.g. `choices[0].message.content`), so an
operator can see what a provider sent without the body being logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson

from sidecar.domain.outcome import FailureClass, ProviderError

T = TypeVar("T")
D = TypeVar("D")
Obj = Mapping[str, Any]


def malformed(what: str) -> ProviderError:
    return ProviderError(FailureClass.MALFORMED_RESPONSE, f"unexpected response shape: {what}")


def typed(value: object, kind: type[T], path: str) -> T:
    """`value` if it is a `kind` (a bool is not an int here), else MALFORMED_RESPONSE."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise malformed(f"{path} should be {kind.__name__}, got {type(value).__name__}")
    return value


# req and opt check the type inline rather than through `typed`: they run for every field of
# every answer, and a call per field was a tenth of the decoder's time (decision 040).


def req(obj: Obj, key: str, kind: type[T], prefix: str) -> T:
    """A required field of type `kind`."""
    value = obj.get(key)
    if value is None:
        raise malformed(f"{prefix}{key} is missing")
    if isinstance(value, kind) and (kind is not int or value.__class__ is not bool):
        return value
    return typed(value, kind, prefix + key)  # raises


def opt(obj: Obj, key: str, kind: type[T], prefix: str, default: D) -> T | D:
    """An optional field of type `kind`, or `default` when absent or null."""
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, kind) and (kind is not int or value.__class__ is not bool):
        return value
    return typed(value, kind, prefix + key)  # raises


def parse_json(raw: bytes | str, what: str = "the body") -> dict[str, Any]:
    """A JSON object from a body or an event's data, or MALFORMED_RESPONSE."""
    try:
        value = orjson.loads(raw)  # orjson: decision 005
    except orjson.JSONDecodeError:
        # What orjson refuses and the standard parser reads (NaN, integers beyond 64 bits, lone
        # surrogates) is read as before; anything else is reported with the standard message.
        try:
            value = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise ProviderError(
                FailureClass.MALFORMED_RESPONSE, f"{what} is not valid JSON ({exc})"
            ) from None
    body: dict[str, Any] = typed(value, dict, what)
    return body


def plain(value: Any) -> Any:
    """Copy read-only mappings and tuples into the dicts and lists that json.dumps accepts."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
