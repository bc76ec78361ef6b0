"""Check a model's output against the requested response format; parse it when JSON was asked for.

Schemas are compiled once per distinct schema (keyed on its canonical JSON) and kept in a bounded
cache, so a hot route pays the compile cost once. `schema_problems` serves request validation:
a malformed schema is the caller's error, caught before any model is paid to answer it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import ResponseFormat, ResponseFormatKind
from sidecar.domain.response import Completion, FinishReason

MAX_REPORTED = 5


def schema_problems(schema: Mapping[str, Any]) -> str:
    """'' for a usable JSON Schema, else every way it breaks the draft 2020-12 meta-schema."""
    errors = sorted(_META.iter_errors(schema), key=lambda e: list(e.absolute_path))
    if not errors:
        return ""
    listed = "; ".join(f"at {_where(e.absolute_path)}: {e.message[:200]}" for e in errors[:MAX_REPORTED])
    more = f" (and {len(errors) - MAX_REPORTED} more)" if len(errors) > MAX_REPORTED else ""
    return f"not a valid JSON Schema: {listed}{more}"


def _where(path: Iterable[Any]) -> str:
    return "/".join(str(p) for p in path) or "(root)"


_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)


@lru_cache(maxsize=256)
def _compiled(canonical: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(canonical))


def parse_output(text: str, response_format: ResponseFormat) -> Any | None:
    """None for text formats; the parsed JSON value otherwise. Raises INVALID_OUTPUT on a mismatch."""
    if not response_format.wants_json:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderError(
            FailureClass.INVALID_OUTPUT, f"output is not valid JSON: {exc.msg} at character {exc.pos}"
        ) from None
    if response_format.kind is ResponseFormatKind.JSON_OBJECT and not isinstance(value, dict):
        raise ProviderError(
            FailureClass.INVALID_OUTPUT, f"output is JSON {type(value).__name__}, not an object"
        )
    if response_format.kind is ResponseFormatKind.JSON_SCHEMA and response_format.schema is not None:
        validator = _compiled(json.dumps(response_format.schema, sort_keys=True))
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            listed = "; ".join(
                f"at {_where(e.absolute_path)}: {e.message[:200]}" for e in errors[:MAX_REPORTED]
            )
            more = f" (and {len(errors) - MAX_REPORTED} more)" if len(errors) > MAX_REPORTED else ""
            raise ProviderError(
                FailureClass.INVALID_OUTPUT, f"output does not match the schema: {listed}{more}"
            )
    return value


def check_completion(completion: Completion, response_format: ResponseFormat) -> Any | None:
    """`parse_output` for a whole answer; a tool call is not checked against the output format."""
    if completion.finish_reason is FinishReason.TOOL_CALLS:
        return None
    return parse_output(completion.text, response_format)
