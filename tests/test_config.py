"""Config loading: the example is valid; every invalid file names the file, the field and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sidecar.cli import main
from sidecar.config import ConfigError, load_config, parse_config
from sidecar.domain.request import Capability

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "turnout.yaml"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_config_is_valid_and_realistic():
    config = load_config(EXAMPLE, env={})
    assert len(config.registry.models) >= 8
    assert len({m.provider for m in config.registry.models}) >= 4
    mini = config.registry.get("gpt-4o-mini")
    assert mini is not None
    assert mini.price.input_per_mtok == 150_000_000  # $0.15 per million tokens, in usd_nanos
    assert Capability.TOOLS in mini.capabilities
    assert config.default_route == "default"


def broken(mutate) -> str:
    raw = example()
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="my.yaml", env={})
    return str(info.value)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda r: r["models"][1].pop("context_window"),
            "models[1] (gpt-4o-mini).context_window: Field required",
        ),
        (
            lambda r: r["models"][0]["price"].update(input=-1),
            "models[0] (gpt-4o).price.input: Input should be greater than or equal to 0",
        ),
        (lambda r: r["models"][2].update(provider="nobody"), "unknown provider 'nobody'"),
        (
            lambda r: r["routes"][0].update(models=["gpt-5"]),
            "routes[0] (default).models: unknown model 'gpt-5'",
        ),
        (
            lambda r: r["routes"][0]["strategies"][0]["rules"]["rules"][0].update(models=["gpt-6"]),
            "routes[0] (default).strategies[0].rules[0] (simple-tasks).models: unknown model 'gpt-6'",
        ),
        (
            lambda r: r["routes"][1]["strategies"][2]["sla"]["tiers"]["free"].update(latency_budget_s=-1),
            "routes[1] (support-chat).strategies[2].sla.tiers.free.latency_budget_s: "
            "Input should be greater than 0",
        ),
        (
            lambda r: r["routes"][0]["strategies"].append("teleport"),
            "routes[0] (default).strategies[3]: Input tag 'teleport' found using 'kind' does not match",
        ),
        (
            lambda r: r["routes"][0]["strategies"].append("capability"),
            "strategies ['capability'] are listed more than once",
        ),
        (
            lambda r: r["routes"][0]["strategies"][0]["rules"]["rules"][0]["match"].update(
                keywords=["refund"]
            ),
            "set content_heuristics: true on this rules strategy",
        ),
        (
            lambda r: (
                r["routes"][0]["strategies"][0]["rules"].update(content_heuristics=True)
                or r["routes"][0]["strategies"][0]["rules"]["rules"][0]["match"].update(regex=["(unclosed"])
            ),
            "regex '(unclosed' does not compile",
        ),
        (
            lambda r: r["routes"][3]["strategies"][0]["classifier"].update(name="oracle"),
            "unknown classifier 'oracle'; known: length",
        ),
        (
            lambda r: r["decision_cache"].update(ttl_s=0),
            "decision_cache.ttl_s: Input should be greater than 0",
        ),
        (lambda r: r["models"].append(dict(r["models"][0])), "models: name 'gpt-4o' is used more than once"),
        (lambda r: r["providers"][0].update(api_key="sk-live-123"), "put the key in an environment variable"),
        (lambda r: r["providers"][0].update(kind="carrier-pigeon"), "providers[0] (openai).kind"),
        (lambda r: r["models"][0].update(capabilities=["telepathy"]), "models[0] (gpt-4o).capabilities[0]"),
        (lambda r: r.update(default_route="nope"), "default_route: unknown route 'nope'"),
        (
            lambda r: r["server"].update(port=70000),
            "server.port: Input should be less than or equal to 65535",
        ),
        (
            lambda r: r["models"][0].update(colour="blue"),
            "models[0] (gpt-4o).colour: Extra inputs are not permitted",
        ),
        (
            lambda r: r["providers"][0].update(headers={"Authorization": "Bearer x"}),
            "header 'Authorization' carries credentials",
        ),
        (
            lambda r: r["models"][3]["capabilities"].append("logprobs"),
            "models[3] (claude-sonnet-4).capabilities: anthropic provider 'anthropic' returns no token "
            "log-probabilities; remove logprobs",
        ),
        (
            lambda r: r["models"][7]["capabilities"].append("logprobs"),
            "models[7] (llama-3.1-8b-instant).capabilities: openai_compatible (groq) provider 'groq'",
        ),
    ],
)
def test_invalid_configs_name_file_and_field(mutate, expected):
    message = broken(mutate)
    assert message.startswith("my.yaml: invalid config")
    assert expected in message


def test_inline_key_is_not_echoed():
    message = broken(lambda r: r["providers"][0].update(api_key="sk-live-SECRET-999"))
    assert "sk-live-SECRET-999" not in message


def test_key_comes_from_the_named_environment_variable():
    raw = example()
    raw["providers"][0]["api_key_env"] = "TURNOUT_TEST_KEY"
    with pytest.raises(ConfigError, match="environment variable TURNOUT_TEST_KEY is not set"):
        parse_config(raw, source="my.yaml", env={})
    config = parse_config(raw, source="my.yaml", env={"TURNOUT_TEST_KEY": "sk-abc"})
    key = config.providers["openai"].api_key
    assert key is not None
    assert key.reveal() == "sk-abc"
    assert "sk-abc" not in repr(config.providers["openai"])


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"empty\.yaml: the top level must be a mapping"):
        load_config(empty)


def test_validate_config_command(tmp_path, capsys):
    assert main(["validate-config", str(EXAMPLE)]) == 0
    assert "OK: 9 models" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    raw = example()
    raw["models"][0]["context_window"] = "lots"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["validate-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: invalid config" in err
    assert "models[0] (gpt-4o).context_window: Input should be a valid integer" in err


def test_a_models_own_rate_limits_reach_admission():
    raw = example()
    raw["models"][0] |= {"requests_per_s": 2.5, "tokens_per_min": 90_000}
    config = parse_config(raw, source="t.yaml", env={})
    limits = config.model_limits[raw["models"][0]["name"]]
    assert (limits.requests_per_s, limits.tokens_per_min) == (2.5, 90_000)
    raw["models"][0]["requests_per_s"] = 0
    with pytest.raises(ConfigError, match=r"models\[0\].*requests_per_s"):
        parse_config(raw, source="t.yaml", env={})


def test_the_flavors_config_refuses_logprobs_for_are_the_dialects_without_them():
    from sidecar.config.models import NO_LOGPROBS_FLAVORS
    from sidecar.providers.openai.dialects import FLAVORS

    assert {name for name, d in FLAVORS.items() if not d.logprobs} == NO_LOGPROBS_FLAVORS
