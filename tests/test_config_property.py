"""Issue 20: any config built from the schema validates or fails with a ConfigError that names the
file and a field path; never another exception. Documents come from tests/config_strategies.py;
each `@example` is a case the property found (a traceback before its fix). `make fuzz` runs it
with more examples (TURNOUT_FUZZ_EXAMPLES)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings

from sidecar.config import ConfigError, parse_config
from sidecar.policy.health import HealthSnapshot
from sidecar.server.convert_out import model_info
from tests.config_strategies import documents

EXAMPLES = int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "300"))  # `make fuzz` raises it

SOURCE = "fuzz.yaml"
ENV = {"TURNOUT_TEST_KEY": "sk-test", "TURNOUT_TEST_TOKEN": "a-token-of-24-characters"}
# A problem line starts with a field path: `models[0] (gpt-4o).price.input`, `['Foo']`, `version`.
PATH = re.compile(r"  (\[|[a-z_]+(\[|\.|:| \())")


def minimal(**changes: Any) -> dict[str, Any]:
    """The smallest valid file, with `changes` (dotted paths) applied."""
    doc: dict[str, Any] = {
        "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:8400/v1"}],
        "models": [
            {
                "name": "m",
                "provider": "p",
                "price": {"input": 1, "output": 2},
                "context_window": 1000,
                "max_output_tokens": 100,
            }
        ],
        "routes": [{"name": "r", "models": ["m"]}],
    }
    for dotted, value in changes.items():
        node: Any = doc
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[last] = value
    return doc


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
# OverflowError from usd_to_nanos: an infinite or 1e300 price, an infinite tier max_cost_usd.
@example(minimal(**{"models.0.price.output": float("inf")}))
@example(minimal(**{"models.0.price.input": 1e300}))
@example(minimal(**{"routes.0.strategies": [{"sla": {"tiers": {"free": {"max_cost_usd": float("inf")}}}}]}))
# ValueError "embedded null byte" from os.access on a TLS file name.
@example(minimal(server={"tls": {"cert_file": "a\x00b", "key_file": "k"}}))
# Loaded, then ListModels raised ValueError (INTERNAL): context_window is an int32 on the wire.
@example(minimal(**{"models.0.context_window": 2**31, "models.0.max_output_tokens": 2**31}))
def test_any_config_validates_or_names_the_file_and_a_field(doc):
    try:
        config = parse_config(doc, source=SOURCE, env=ENV)
    except ConfigError as exc:
        header, *problems = str(exc).split("\n")
        assert header == f"{SOURCE}: invalid config:"
        assert problems
        for line in problems:
            assert PATH.match(line), line[:300]
            assert len(line) <= 600, line[:300]
        return
    for model in config.registry.models:  # what loads also serves: ListModels can show each model
        model_info(model, "http://127.0.0.1:8400/v1", HealthSnapshot())


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"models.0.price.output": float("inf")},
            "models[0] (m).price.output: Input should be a finite number",
        ),
        (
            {"server": {"default_timeout_s": float("nan")}},
            "server.default_timeout_s: Input should be a finite",
        ),
        ({"models.0.price.input": 1e300}, "models[0] (m).price.input: Input should be less than or equal to"),
        (
            {"models.0.context_window": 2**31},
            "models[0] (m).context_window: Input should be less than or equal",
        ),
        ({"server": {"tls": {"cert_file": "a\x00b", "key_file": "k"}}}, "server.tls.cert_file: cannot read"),
        (
            {"routes.0.strategies": [{"sla": {"tiers": {1: {}}}}]},
            "strategies[0].sla.tiers[1] (the key): Input",
        ),
    ],
)
def test_what_the_property_found_is_refused_by_field(changes, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(minimal(**changes), source=SOURCE, env=ENV)
    assert expected in str(info.value)


def test_a_long_echoed_value_is_clipped_and_each_problem_has_its_line():
    doc = minimal(**{"routes.0.models": ["x" * 100_000, "m"]})
    doc["models"].append(dict(doc["models"][0], provider="nobody"))
    with pytest.raises(ConfigError) as info:
        parse_config(doc, source=SOURCE, env=ENV)
    lines = str(info.value).split("\n")
    assert len(lines) == 4, lines  # header, the duplicate model name, its unknown provider, the long one
    assert all(len(line) <= 600 for line in lines)
    assert "characters left out" in lines[-1]
    assert lines[-1].startswith("  routes[0] (r).models: unknown model 'xxx")
    assert lines[-1].endswith("xxx'")


def test_validate_config_exits_with_the_message_never_a_traceback(tmp_path):
    path = tmp_path / "turnout.yaml"
    doc = minimal(**{"models.0.price.output": float("inf"), "models.0.context_window": 2**40})
    doc["routes"][0]["strategies"] = [
        {"rules": {"rules": [{"name": "x", "models": ["m"], "match": {"regex": ["(?=a)"]}}]}}
    ]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "validate-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{path}: invalid config:\n")
    assert "models[0] (m).price.output: Input should be a finite number" in done.stderr
    assert "models[0] (m).context_window: Input should be less than or equal to 2147483647" in done.stderr
    assert "routes[0] (r).strategies[0].rules.rules[0] (x).match.regex[0]: regex '(?=a)'" in done.stderr
