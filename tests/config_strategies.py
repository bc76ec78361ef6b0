"""Hypothesis strategies for config documents, built from the pydantic settings models.

`documents()` draws a whole file as `yaml.safe_load` would return it: each section shaped by its
settings model (required fields always, optional ones sometimes, numbers at and past their bounds,
names from a small pool so that references between sections resolve now and then, regexes RE2
cannot take), then mutated a few times: a node replaced by garbage (NaN, Infinity, huge numbers,
huge or odd Unicode strings, nested lists and mappings, keys that are not strings, dates), a key
dropped, an unknown key added. A strategy given in its shorthand (`- cascade`, `- sla: {...}`) is
drawn too.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import annotated_types
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sidecar.config import FileSettings

# Names shared by every section, so that a model's provider, a route's models, a shadow's route
# and the default route are found sometimes; the classifiers' names as well.
NAMES = ["a", "b"]
CLASSIFIERS = ["length", "learned", "a"]
ENV_NAMES = ["TURNOUT_TEST_KEY", "TURNOUT_TEST_TOKEN", "UNSET_VARIABLE"]
REGEXES = [
    "refund",
    r"^\d{3}-\d{4}$",
    "^(a+)+$",  # fine for RE2: linear time
    "(?=a)",  # lookahead: not RE2
    r"(a)\1",  # a backreference: not RE2
    "(a",  # does not compile anywhere
    "[",
    "\\",
    "a{1001}",  # past RE2's repeat limit
    "(?P<n>x)(?P<n>y)",
    "\x00",
    "é+",
]
HUGE = st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(1_000, 200_000))
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(NAMES + CLASSIFIERS), HUGE)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 5e-324, -0.0]),
)
INTS = st.one_of(
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**400, -(10**400)]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INTS,
    FLOATS,
    TEXT,
    st.dates(),
    st.datetimes(),
    st.binary(max_size=8),
)
KEYS = st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.none(), st.floats(), HUGE)
GARBAGE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)


def documents() -> st.SearchStrategy[dict[str, Any]]:
    """A config file's top level: valid-shaped, then mutated 0-3 times."""
    return st.builds(
        _mutate, _model(FileSettings), st.lists(st.tuples(st.integers(0), _MUTATIONS), max_size=3)
    )


_MUTATIONS = st.one_of(
    st.tuples(st.just("replace"), GARBAGE),
    st.tuples(st.just("drop"), st.none()),
    st.tuples(st.just("add"), st.tuples(KEYS, GARBAGE)),
)


def _mutate(doc: dict[str, Any], mutations: list[tuple[int, tuple[str, Any]]]) -> dict[str, Any]:
    for index, (op, arg) in mutations:
        nodes = list(_containers(doc))
        container, key = nodes[index % len(nodes)]
        if op == "replace" and key is not None:
            container[key] = arg
        elif op == "drop" and key is not None:
            del container[key]
        elif op == "add" and isinstance(container, dict) and key is None:
            container[arg[0]] = arg[1]
    return doc


def _containers(node: Any, parent: Any = None, key: Any = None) -> typing.Iterator[tuple[Any, Any]]:
    """(container, key) for every node below the top; (mapping, None) for every mapping."""
    if parent is not None:
        yield parent, key
    if isinstance(node, dict):
        yield node, None
        for k, v in list(node.items()):
            yield from _containers(v, node, k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _containers(v, node, i)


def _model(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    fields = {n: _field(model, n, f) for n, f in model.model_fields.items()}
    required = {n: s for n, s in fields.items() if model.model_fields[n].is_required()}
    optional = {n: s for n, s in fields.items() if not model.model_fields[n].is_required()}
    doc = st.fixed_dictionaries(required, optional=optional)
    kind = model.model_fields.get("kind")
    if kind is not None and len(typing.get_args(kind.annotation)) == 1:  # a strategy: also shorthand
        return doc.flatmap(_shorthand)
    return doc


def _shorthand(doc: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = doc.pop("kind")
    forms: list[Any] = [{"kind": kind, **doc}, {kind: doc}]
    if not doc:
        forms += [kind, {kind: None}]
    return st.sampled_from(forms)


def _field(model: type[BaseModel], name: str, info: FieldInfo) -> st.SearchStrategy[Any]:
    if (model.__name__, name) in {("ClassifierSettings", "name"), ("SuccessSettings", "classifier")}:
        return st.sampled_from(CLASSIFIERS)
    return _type(name, info.annotation, info.metadata)


def _type(name: str, tp: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """A value of this type, inside the field's bounds (mutations take it outside)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _type(name, args[0], [*metadata, *tp.__metadata__])
    if origin in (types.UnionType, typing.Union):
        return st.one_of([_type(name, a, metadata) for a in args])
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin is list:
        lo = max([m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)], default=0)
        return st.lists(_type(name, args[0], []), min_size=lo, max_size=max(lo, 2), unique_by=_name)
    if origin is dict:
        lo = max([m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)], default=0)
        return st.dictionaries(_type(name, args[0], []), _type(name, args[1], []), min_size=lo, max_size=2)
    if tp is type(None):
        return st.none()
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from([m.value for m in tp])
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _bounded(metadata, integers=True)
    if tp is float:
        return _bounded(metadata, integers=False)
    if tp is str:
        return _string(name, metadata)
    return GARBAGE


def _name(item: Any) -> Any:
    """Named items (providers, models, routes) come with distinct names; anything else may repeat."""
    return item.get("name", id(item)) if isinstance(item, dict) else id(item)


def _bounded(metadata: list[Any], *, integers: bool) -> st.SearchStrategy[Any]:
    """Inside the field's bounds, the bounds themselves included; unbounded above: huge too."""
    b = {
        a: getattr(m, a)
        for m in metadata
        for a in ("ge", "gt", "le", "lt")
        if getattr(m, a, None) is not None
    }
    if integers:
        lo = b["ge"] if "ge" in b else b["gt"] + 1 if "gt" in b else None
        hi = b["le"] if "le" in b else b["lt"] - 1 if "lt" in b else None
        edges = [v for v in (lo, hi) if v is not None] + ([2**31, 2**63, 10**30] if hi is None else [])
        return st.one_of(st.integers(lo, hi), st.sampled_from(edges)) if edges else st.integers()
    inside = st.floats(
        min_value=b.get("ge", b.get("gt")),
        max_value=b.get("le", b.get("lt")),
        exclude_min="gt" in b,
        exclude_max="lt" in b,
        allow_nan=False,
    )
    if "le" in b or "lt" in b:
        return inside
    return st.one_of(inside, st.sampled_from([1e15, 1e300]))  # Infinity: a mutation's garbage


def _string(name: str, metadata: list[Any]) -> st.SearchStrategy[str]:
    if any(getattr(m, "func", None) is not None for m in metadata) or name in {"regex", "refusal_patterns"}:
        return st.one_of(st.sampled_from(REGEXES), TEXT)
    if name in {"api_key_env", "auth_token_env", "id_secret_env"}:
        return st.sampled_from(ENV_NAMES)
    if name == "base_url":
        good = ["http://127.0.0.1:8400/v1", "https://api.example.com"]
        return st.sampled_from([*good * 4, "https://user:pw@x.example", "http://x/?key=1"])
    if name in {"host", "probe_host"}:
        return st.sampled_from(["127.0.0.1", "::1", "[::1]", "localhost", "0.0.0.0", "\x00"])
    if name in {"cert_file", "key_file", "client_ca_file"}:
        return st.sampled_from(["", "/nonexistent.pem", "/dev/null", "a\x00b"])
    if name in {"name", "provider", "models", "route", "reference_model", "judge_model", "default_route"}:
        return st.sampled_from(NAMES)
    return st.one_of(st.sampled_from(NAMES), TEXT)
