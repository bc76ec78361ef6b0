"""Check a model's output against the requested response format; parse it when JSON was asked for.

Schemas come from clients, so checking one must not be theirs to make slow. They are compiled by
jsonschema-rs (draft 2020-12) with its `regex` crate engine, whose matching is linear in the text
(its default, fancy-regex, backtracks), with no network retrieval of `$ref`s and a cap on a
pattern's compiled size. A pattern that engine cannot take (backreferences, lookaround) is the
caller's error, reported with its path by `schema_problems` before any model is paid to answer;
so is a schema over MAX_SCHEMA_CHARS. Compiled validators are kept in a cache bounded in count and
size, keyed on a digest of the canonical JSON, so a hot route compiles its schema once.
See docs/decisions/001-linear-time-regex.md for the measurements behind the choice.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema_rs

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import ResponseFormat, ResponseFormatKind
from sidecar.domain.response import Completion, FinishReason

MAX_REPORTED = 5
# Compiling runs on the event loop and grows with the schema's size (docs/decisions/001);
# providers' own limits are far below this (OpenAI: 5,000 properties, 120,000 characters of names).
MAX_SCHEMA_CHARS = 512 * 1024
# The compiled size of one pattern: a huge compiled automaton is slow to run though linear
# (docs/decisions/001); the largest realistic ones we tried (an RFC 5322 e-mail, 1,000 alternatives)
# are far under it.
MAX_PATTERN_BYTES = 100_000

_OPTIONS: dict[str, Any] = {
    "pattern_options": jsonschema_rs.RegexOptions(size_limit=MAX_PATTERN_BYTES),
    "offline": True,  # a client's `$ref` never makes the sidecar fetch a URL
}


def schema_problems(schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """[] for a usable JSON Schema, else (path within the schema, e.g. '.properties.x.pattern', why)."""
    canonical = _canonical(schema)
    if len(canonical) > MAX_SCHEMA_CHARS:
        return [("", f"the schema is {len(canonical):,} characters as JSON; at most {MAX_SCHEMA_CHARS:,}")]
    try:
        _COMPILED.get(schema, canonical)
    except jsonschema_rs.ValidationError as exc:
        # Compiling stops at the first problem; the meta-schema lists them all (but for patterns).
        errors = sorted(_META.iter_errors(schema), key=_path_key)
        if all(e.instance_path != exc.instance_path for e in errors):
            errors.append(exc)
        problems = [_problem(e) for e in errors[:MAX_REPORTED]]
        if len(errors) > MAX_REPORTED:
            problems.append(("", f"and {len(errors) - MAX_REPORTED} more problems"))
        return problems
    except ValueError as exc:  # e.g. "Recursion limit reached"
        return [("", f"not a usable JSON Schema: {str(exc)[:200]}")]
    return []


def _path_key(error: jsonschema_rs.ValidationError) -> list[str]:
    return [str(p) for p in error.instance_path]


def _problem(exc: jsonschema_rs.ValidationError) -> tuple[str, str]:
    path = list(exc.instance_path)
    where = "".join(_step(p) for p in path)
    if isinstance(exc.kind, jsonschema_rs.ValidationErrorKind.Format) and _is_pattern(path):
        return (
            where,
            f"the pattern {str(exc.instance)[:100]!r} is not one the linear-time regex engine takes "
            f"(no backreferences or lookaround; at most {MAX_PATTERN_BYTES:,} bytes compiled)",
        )
    if isinstance(exc.kind, jsonschema_rs.ValidationErrorKind.Referencing):
        return (where, f"a $ref that does not resolve within the schema: {exc.message[:200]}")
    return (where, f"not a valid JSON Schema: {exc.message[:200]}")


def _is_pattern(path: Sequence[str | int]) -> bool:
    return bool(path) and (path[-1] == "pattern" or (len(path) > 1 and path[-2] == "patternProperties"))


def _step(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if part.isidentifier() or (part.startswith("$") and part[1:].isidentifier()):
        return f".{part}"
    return f"[{json.dumps(part[:64])}]"


def _canonical(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


class _Compiled:
    """Validators by digest, least recently used first out, bounded in count and in schema bytes."""

    def __init__(self, max_entries: int = 256, max_chars: int = 8 * 1024 * 1024) -> None:
        self._entries: OrderedDict[bytes, tuple[int, jsonschema_rs.Draft202012Validator]] = OrderedDict()
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._chars = 0

    def get(self, schema: Mapping[str, Any], canonical: str) -> jsonschema_rs.Draft202012Validator:
        # The key is a digest, not the JSON: 256 keys of half a megabyte would hold 128 MB for nothing.
        key = hashlib.blake2b(canonical.encode(), digest_size=16).digest()
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found[1]
        validator = jsonschema_rs.Draft202012Validator(dict(schema), **_OPTIONS)
        self._entries[key] = (len(canonical), validator)
        self._chars += len(canonical)
        while len(self._entries) > self._max_entries or (
            self._chars > self._max_chars and len(self._entries) > 1
        ):
            self._chars -= self._entries.popitem(last=False)[1][0]
        return validator


_COMPILED = _Compiled()
_META = jsonschema_rs.validator_for({"$ref": "https://json-schema.org/draft/2020-12/schema"}, offline=True)


def _where(path: Sequence[str | int]) -> str:
    return "/".join(str(p) for p in path) or "(root)"


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
    except RecursionError:
        raise ProviderError(FailureClass.INVALID_OUTPUT, "output is JSON nested too deeply") from None
    if response_format.kind is ResponseFormatKind.JSON_OBJECT and not isinstance(value, dict):
        raise ProviderError(
            FailureClass.INVALID_OUTPUT, f"output is JSON {type(value).__name__}, not an object"
        )
    if response_format.kind is ResponseFormatKind.JSON_SCHEMA and response_format.schema is not None:
        canonical = _canonical(response_format.schema)
        validator = _COMPILED.get(response_format.schema, canonical)
        errors = sorted(validator.iter_errors(value), key=_path_key)
        if errors:
            listed = "; ".join(
                f"at {_where(e.instance_path)}: {e.message[:200]}" for e in errors[:MAX_REPORTED]
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
