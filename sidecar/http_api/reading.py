"""JSON bodies -> domain values, collecting every field violation at once (as the gRPC reader does).

Field paths are the API's own (`messages[1].content[0].image_url.url`), so an SDK user can point
at their mistake. Names and lists are bounded like the gRPC API's: they reach the decision
cache's keys, the plan's reasons and the telemetry's attributes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from sidecar.domain.errors import FieldViolation, InvalidRequest
from sidecar.domain.request import ResponseFormat, ResponseFormatKind, Tool
from sidecar.validation.json_output import schema_problems

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_NAME = 256  # identifier-like strings: model, route, tier, tags, labels, ids
MAX_NAMES = 64  # tags, labels, stop sequences
MAX_TOOLS = 128  # every tool's schema is compiled at validation, on the event loop
_MISSING = object()


class Reader:
    """Typed getters over a JSON object that note a violation instead of raising."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def bad(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def check(self) -> None:
        if self.violations:
            raise InvalidRequest(self.violations)

    def get(self, obj: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
        """obj[key] if present, not null and of `kind`; else None (a violation if of another kind)."""
        value = obj.get(key, None)
        if value is None:
            return None
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.bad(where, f"must be a number, not {_kind(value)}")
            return None
        if not isinstance(value, kind):
            if kind is int and isinstance(value, float) and abs(value) >= 2.0**63:
                # orjson reads an integer too long for 64 bits as a float: not "not an integer"
                self.bad(where, "must be an integer that fits in 64 bits")
            else:
                self.bad(where, f"must be {_names(kind)}, not {_kind(value)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.bad(where, "must be a finite number")
            return None
        return value

    # string, number and positive return at once for an absent field: most of the fields they
    # read are absent from most requests, and the call into `get` was most of their cost.

    def string(self, obj: Mapping[str, Any], key: str, where: str, *, limit: int | None = MAX_NAME) -> str:
        if obj.get(key) is None:
            return ""
        value = self.get(obj, key, where, str)
        if value is None:
            return ""
        if limit is not None and len(value) > limit:
            self.bad(where, f"at most {limit} characters (got {len(value):,})")
            return ""
        return str(value)

    def number(
        self, obj: Mapping[str, Any], key: str, where: str, low: float, high: float, *, open_low: bool = False
    ) -> float | None:
        if obj.get(key) is None:
            return None
        value = self.get(obj, key, where, (int, float))
        if value is None:
            return None
        if value < low or value > high or (open_low and value == low):
            self.bad(where, f"must be {'over' if open_low else 'at least'} {low:g} and at most {high:g}")
            return None
        return float(value)

    def positive(self, obj: Mapping[str, Any], key: str, where: str) -> int | None:
        if obj.get(key) is None:
            return None
        value = self.get(obj, key, where, int)
        if value is not None and value <= 0:
            self.bad(where, "must be positive")
            return None
        return int(value) if value is not None else None

    def schema(self, where: str, value: Any) -> Mapping[str, Any] | None:
        """A JSON Schema object that compiles; None (with the violations noted) if not."""
        if not isinstance(value, Mapping):
            self.bad(where, f"must be a JSON Schema object, not {_kind(value)}")
            return None
        problems = schema_problems(value)
        for path, problem in problems:
            self.bad(f"{where}{path}", problem)
        return None if problems else value

    def tools(
        self,
        body: Mapping[str, Any],
        unwrap: Callable[[Any], Mapping[str, Any] | None],
        shape: str,
        inner: str,
        schema_key: str,
    ) -> tuple[Tool, ...]:
        """`tools`: each entry's {name, description, <schema_key>, strict} as `unwrap` finds it
        (None: not a tool of this API's `shape`), at `tools[i]<inner>`; names unique, schemas valid."""
        raw = self.get(body, "tools", "tools", list)
        if not raw:
            return ()
        if len(raw) > MAX_TOOLS:
            self.bad("tools", f"at most {MAX_TOOLS} tools (got {len(raw)})")
            return ()
        tools: list[Tool] = []
        for i, entry in enumerate(raw):
            spec = unwrap(entry)
            if spec is None:
                self.bad(f"tools[{i}]", f"a tool is {shape}")
                continue
            where = f"tools[{i}]{inner}"
            name = spec.get("name")
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                self.bad(f"{where}.name", "1-64 characters of letters, digits, _ and -")
                name = ""
            elif any(t.name == name for t in tools):
                self.bad(f"{where}.name", f"tool {name!r} is defined twice")
            parameters = spec.get(schema_key)
            params = {"type": "object", "properties": {}} if parameters is None else parameters
            description = spec.get("description")
            tools.append(
                Tool(
                    name,
                    description if isinstance(description, str) else "",
                    self.schema(f"{where}.{schema_key}", params) or {},
                    spec.get("strict") is True,
                )
            )
        return tuple(tools)

    def stop(self, value: Any, where: str) -> tuple[str, ...]:
        stops = [value] if isinstance(value, str) else value
        if value is None:
            return ()
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            self.bad(where, "must be a non-empty string or a list of them")
            return ()
        if len(stops) > MAX_NAMES:
            self.bad(where, f"at most {MAX_NAMES} stop sequences")
            return ()
        return tuple(stops)

    def labels(self, value: Any, where: str) -> dict[str, str]:
        """A flat string -> string mapping (OpenAI's `metadata`), bounded like the gRPC labels."""
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            self.bad(where, "must be an object of string values")
            return {}
        if len(value) > MAX_NAMES:
            self.bad(where, f"at most {MAX_NAMES} entries (got {len(value):,})")
            return {}
        out = {}
        for key, item in value.items():
            if len(key) > MAX_NAME or len(item) > MAX_NAME:
                self.bad(f"{where}.{key[:64]}", f"keys and values are at most {MAX_NAME} characters")
            else:
                out[key] = item
        return out


def response_format(r: Reader, body: Mapping[str, Any], where: str) -> ResponseFormat:
    """OpenAI's `response_format`: {"type": "text" | "json_object" | "json_schema", "json_schema": {...}}."""
    rf = r.get(body, "response_format", where, Mapping)
    if rf is None:
        return ResponseFormat()
    kind = rf.get("type")
    try:
        parsed = ResponseFormatKind(kind)
    except ValueError:
        r.bad(f"{where}.type", "must be text, json_object or json_schema")
        return ResponseFormat()
    if parsed is not ResponseFormatKind.JSON_SCHEMA:
        return ResponseFormat(parsed)
    spec = r.get(rf, "json_schema", f"{where}.json_schema", Mapping)
    if spec is None:
        r.bad(f"{where}.json_schema", "a json_schema response format needs json_schema.schema")
        return ResponseFormat(parsed)
    name = spec.get("name", "")
    if not isinstance(name, str) or (name and not TOOL_NAME.match(name)):
        r.bad(f"{where}.json_schema.name", "1-64 characters of letters, digits, _ and -")
        name = ""
    schema = r.schema(f"{where}.json_schema.schema", spec.get("schema", {}))
    return ResponseFormat(parsed, name, schema, spec.get("strict") is True)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    words = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        Mapping: "an object",
        dict: "an object",
    }
    return " or ".join(dict.fromkeys(words.get(k, k.__name__) for k in kinds))
