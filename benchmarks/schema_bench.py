"""JSON Schema engines side by side: build and check times on a realistic extraction schema.

Compares, in one process so the ratios hold on a shared machine:
  - `jsonschema` (Python) as Turnout used it until issue 20: Python's backtracking `re` for `pattern`;
  - `jsonschema` with RE2 plugged in for `pattern` / `patternProperties` (extended validator class);
  - `jsonschema-rs` with the `regex` crate (`RegexOptions`, linear time) and no network retrieval.
Each is timed building the validator (meta-schema check included), checking a valid output and
checking an invalid one (every error collected), plus the two client-controlled blow-ups of issue 20:
`^(a+)+$` on 30 `a`s and a `!` (only the RE2 / regex-crate engines; `re` would take ~35 s) and
`uniqueItems` over 2,000 objects. `python -m benchmarks.schema_bench` prints the figures as JSON.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import jsonschema_rs
import re2
from jsonschema import Draft202012Validator

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["invoice_number", "issued", "currency", "seller", "buyer", "lines", "total"],
    "properties": {
        "invoice_number": {"type": "string", "pattern": "^[A-Z]{2,4}-[0-9]{4,10}$"},
        "issued": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "currency": {"enum": ["EUR", "USD", "GBP", "CHF", "JPY"]},
        "seller": {"$ref": "#/$defs/party"},
        "buyer": {"$ref": "#/$defs/party"},
        "lines": {"type": "array", "minItems": 1, "maxItems": 200, "items": {"$ref": "#/$defs/line"}},
        "total": {"type": "number", "minimum": 0},
        "notes": {"type": ["string", "null"], "maxLength": 2000},
    },
    "$defs": {
        "party": {
            "type": "object",
            "required": ["name", "country"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "vat_id": {"type": "string", "pattern": "^[A-Z]{2}[0-9A-Z]{2,13}$"},
                "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$"},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            },
        },
        "line": {
            "type": "object",
            "required": ["sku", "description", "quantity", "unit_price"],
            "additionalProperties": False,
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z0-9-]{3,32}$"},
                "description": {"type": "string", "maxLength": 500},
                "quantity": {"type": "integer", "minimum": 1},
                "unit_price": {"type": "number", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            },
        },
    },
}


def _party(name: str, country: str) -> dict[str, Any]:
    return {"name": name, "vat_id": f"{country}123456789", "email": "billing@example.com", "country": country}


VALID: dict[str, Any] = {
    "invoice_number": "INV-20261204",
    "issued": "2026-12-04",
    "currency": "EUR",
    "seller": _party("Acme GmbH", "DE"),
    "buyer": _party("Globex SARL", "FR"),
    "lines": [
        {
            "sku": f"SKU-{i:05d}",
            "description": f"item {i}",
            "quantity": i + 1,
            "unit_price": 9.5,
            "tags": ["a", "b"],
        }
        for i in range(20)
    ],
    "total": 1995.0,
    "notes": None,
}
INVALID: dict[str, Any] = copy.deepcopy(VALID)
INVALID["currency"] = "eur"
INVALID["lines"][3]["sku"] = "bad sku"
del INVALID["lines"][7]["quantity"]
INVALID["seller"]["country"] = "Germany"

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not re2.compile(pattern, _RE2_OPTIONS).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _re2_pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        compiled = re2.compile(pattern, _RE2_OPTIONS)
        for k, v in instance.items():
            if compiled.search(k):
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


Re2Validator = jsonschema.validators.extend(
    Draft202012Validator, {"pattern": _re2_pattern, "patternProperties": _re2_pattern_properties}
)
_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)


def _py_build(cls: Any) -> Callable[[dict[str, Any]], Any]:
    def build(schema: dict[str, Any]) -> Any:
        list(_META.iter_errors(schema))  # Turnout checks a client's schema against the meta-schema first
        return cls(schema)

    return build


def _rs_build(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for(schema, pattern_options=jsonschema_rs.RegexOptions(), offline=True)


ENGINES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "jsonschema + re (before)": _py_build(Draft202012Validator),
    "jsonschema + RE2": _py_build(Re2Validator),
    "jsonschema-rs (regex crate)": _rs_build,
}


def _per_call_us(fn: Callable[[], Any], budget_s: float = 0.5) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls * 1e6


def _once_s(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    redos_schema = {"type": "object", "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}}}
    unique_schema = {"type": "array", "uniqueItems": True}
    unique_items = [{"k": i, "v": "x"} for i in range(2000)]
    for name, build in ENGINES.items():
        validator = build(SCHEMA)
        assert not list(validator.iter_errors(VALID)), name
        errors = len(list(validator.iter_errors(INVALID)))
        figures = {
            "build_us": round(_per_call_us(lambda b=build: b(SCHEMA)), 1),
            "check_valid_us": round(_per_call_us(lambda v=validator: list(v.iter_errors(VALID))), 1),
            "check_invalid_us": round(_per_call_us(lambda v=validator: list(v.iter_errors(INVALID))), 1),
            "errors_found": errors,
            "unique_items_2000_s": round(_once_s(lambda b=build: b(unique_schema).is_valid(unique_items)), 4),
        }
        if "+ re " not in name:
            redos = build(redos_schema)
            figures["redos_30a_s"] = round(_once_s(lambda v=redos: v.is_valid({"x": "a" * 30 + "!"})), 6)
        results[name] = figures
    results["python re, ^(a+)+$ on 20 a's and ! (s)"] = round(
        _once_s(lambda: re.search("^(a+)+$", "a" * 20 + "!")), 4
    )
    results["output_json_bytes"] = len(json.dumps(VALID))
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
