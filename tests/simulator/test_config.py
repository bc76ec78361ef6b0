"""Loading simulator YAML: the shipped example is valid, and errors name the file and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest
from turnout_simulator import SimulatorConfig, SimulatorConfigError, load_simulator_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "simulator.yaml"

CONTEXT_WINDOWS = {
    "gpt-4o": 128000,
    "gpt-4o-mini": 128000,
    "gpt-4.1-nano": 1047576,
    "claude-sonnet-4": 200000,
    "claude-3-5-haiku": 200000,
    "gemini-2.5-flash": 1048576,
    "gemini-2.5-pro": 1048576,
    "llama-3.1-8b-instant": 131072,
    "mixtral-8x7b": 32768,
}


def test_the_example_config_loads_with_every_model() -> None:
    config = load_simulator_config(EXAMPLE)

    assert {name: profile.context_window for name, profile in config.models.items()} == CONTEXT_WINDOWS
    assert config.seed == 7
    assert config.api_key is None


def test_unknown_models_use_the_default_profile() -> None:
    config = SimulatorConfig.model_validate({"models": {"a": {"ttft_ms": 1}}})

    assert config.profile_for("a").ttft_ms == 1
    assert config.profile_for("b") is config.default_profile


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sim.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:\n  gpt-4o:\n    ttft_ms: -5\n", "models.gpt-4o.ttft_ms: Input should be greater than 0"),
        ("time_scale: -1\n", "time_scale: Input should be greater than or equal to 0"),
        (
            "models:\n  m:\n    faults:\n      - {kind: hang}\n",
            "models.m.faults.0: Value error, give exactly one",
        ),
        (
            "models:\n  m:\n    faults:\n      - {kind: nope, count: 1}\n",
            "models.m.faults.0.kind: Input should be",
        ),
        (
            "models:\n  m:\n    confidence: 0.5\n",
            "models.m.confidence: Input should be less than or equal to 0",
        ),
        (
            "models:\n  m:\n    faults:\n      - {kind: low_confidence, count: 1, mean_logprob: 1}\n",
            "models.m.faults.0.mean_logprob: Input should be less than or equal to 0",
        ),
        ("sede: 3\n", "sede: Extra inputs are not permitted"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_errors_name_the_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(SimulatorConfigError) as caught:
        load_simulator_config(path)

    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SimulatorConfigError, match="cannot read"):
        load_simulator_config(tmp_path / "absent.yaml")


def test_empty_file_means_all_defaults(tmp_path: Path) -> None:
    assert load_simulator_config(write(tmp_path, "")) == SimulatorConfig()
