"""Config refusals that keep credentials and the API to themselves: credential headers and URLs,
and listen addresses off loopback without a token or TLS (README, Access control)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.app import ListenOverrides, Sidecar
from sidecar.cli import _parser
from sidecar.config import ConfigError, is_loopback, parse_config

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "turnout.yaml"
TOKEN = "a-long-enough-token-0123456789"


def example(**server: Any) -> dict[str, Any]:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["server"].update(server)
    return raw


def refused(raw: dict[str, Any], env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="my.yaml", env=env or {})
    return str(info.value)


@pytest.mark.parametrize(
    "header",
    [
        "Proxy-Authorization",
        "Cookie",
        "X-Auth-Token",
        "Ocp-Apim-Subscription-Key",
        "x-amz-security-token",
        "Authorization ",
        "AUTHORIZATION",
        "api-key",
        "X-Api-Key",
        "x-goog-api-key",
        "X-Session-Token",
    ],
)
def test_credential_headers_are_refused(header):
    raw = example()
    raw["providers"][0]["headers"] = {header: "whatever"}
    message = refused(raw)
    assert f"providers[0] (openai).headers: header {header!r} carries credentials" in message
    assert "whatever" not in message


@pytest.mark.parametrize(
    "header", ["anthropic-version", "anthropic-beta", "OpenAI-Organization", "OpenAI-Project", "X-Title"]
)
def test_ordinary_headers_are_accepted(header):
    raw = example()
    raw["providers"][0]["headers"] = {header: "org-abc123"}
    config = parse_config(raw, source="my.yaml", env={})
    assert (header, "org-abc123") in config.providers["openai"].headers


def test_a_header_value_shaped_like_a_key_is_refused():
    raw = example()
    raw["providers"][0]["headers"] = {"X-Custom": "sk-proj-Ab12Cd34Ef56Gh78"}
    message = refused(raw)
    assert "header 'X-Custom' has a value that looks like a key" in message
    assert "sk-proj" not in message


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@127.0.0.1:8400/v1",
        "https://sk-abc123@api.openai.com/v1",
        "https://api.example.com/v1?api_key=abc",
        "https://api.example.com/v1?key=abc",
    ],
)
def test_a_base_url_with_credentials_is_refused(url):
    raw = example()
    raw["providers"][0]["base_url"] = url
    assert "providers[0] (openai).base_url: a base_url must not hold credentials" in refused(raw)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host):
    assert is_loopback(host)
    parse_config(example(host=host), source="my.yaml", env={})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.7", "my-pod.example"])
def test_a_host_off_loopback_is_refused_without_token_or_tls(host):
    assert not is_loopback(host)
    message = refused(example(host=host))
    assert f"server.host: {host!r} is not a loopback address" in message
    assert "server.auth_token_env" in message
    assert "server.tls" in message


def test_a_host_off_loopback_is_allowed_with_a_token():
    raw = example(host="0.0.0.0", auth_token_env="TURNOUT_TOKEN")
    assert "TURNOUT_TOKEN is not set" in refused(raw)
    assert "at least 16 characters" in refused(raw, {"TURNOUT_TOKEN": "short"})
    config = parse_config(raw, source="my.yaml", env={"TURNOUT_TOKEN": TOKEN})
    assert config.auth_token is not None
    assert config.auth_token.reveal() == TOKEN
    assert TOKEN not in repr(config)


def test_a_host_off_loopback_is_allowed_with_tls(tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    raw = example(host="0.0.0.0", tls={"cert_file": str(cert), "key_file": str(key)})
    message = refused(raw)
    assert f"server.tls.cert_file: cannot read {cert}" in message
    assert f"server.tls.key_file: cannot read {key}" in message
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    config = parse_config(raw, source="my.yaml", env={})
    assert config.server.tls is not None
    assert config.server.tls.client_ca_file == ""


def test_the_metrics_host_off_loopback_must_be_allowed():
    raw = example()
    raw["telemetry"] = {"prometheus": {"host": "0.0.0.0"}}
    message = refused(raw)
    assert "telemetry.prometheus.host: '0.0.0.0' is not a loopback address" in message
    assert "allow_remote" in message
    raw["telemetry"]["prometheus"]["allow_remote"] = True
    parse_config(raw, source="my.yaml", env={})
    raw["telemetry"]["prometheus"] = {"host": "0.0.0.0", "enabled": False}
    parse_config(raw, source="my.yaml", env={})


def test_the_probe_host_may_be_anything():
    config = parse_config(example(probe_host="0.0.0.0"), source="my.yaml", env={})
    assert config.server.probe_host == "0.0.0.0"


def test_unix_socket_mode():
    assert parse_config(example(), source="my.yaml", env={}).server.unix_socket_mode == 0o600
    config = parse_config(example(unix_socket_mode="0660"), source="my.yaml", env={})
    assert config.server.unix_socket_mode == 0o660
    assert "not an octal file mode: '0x9'" in refused(example(unix_socket_mode="0x9"))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (ListenOverrides(host="0.0.0.0", port=0), "--host: '0.0.0.0'"),
        (ListenOverrides(port=0, metrics_host="0.0.0.0"), "--metrics-host: '0.0.0.0'"),
    ],
)
async def test_serve_refuses_a_command_line_host_off_loopback(overrides, field):
    sidecar = Sidecar(parse_config(example(), source="my.yaml", env={}), overrides)
    with pytest.raises(ConfigError) as info:
        await sidecar.start()
    assert f"{field} is not a loopback address" in str(info.value)


async def test_serve_exposes_metrics_when_allowed_on_the_command_line():
    """What the Helm chart runs: --metrics-host=0.0.0.0 --allow-remote-metrics."""
    raw = example()
    raw["telemetry"] = {"prometheus": {"port": 0}}
    overrides = ListenOverrides(port=0, metrics_host="0.0.0.0", allow_remote_metrics=True)
    sidecar = Sidecar(parse_config(raw, source="my.yaml", env={}), overrides)
    await sidecar.start()
    try:
        address = sidecar.telemetry.sdk.prometheus_address
        assert address is not None
        assert address[0] == "0.0.0.0"
    finally:
        await sidecar.stop(grace_s=0)


def test_the_command_line_flag_reaches_the_overrides():
    args = _parser().parse_args(["serve", "--config", "x.yaml", "--allow-remote-metrics"])
    assert args.allow_remote_metrics is True
    assert _parser().parse_args(["serve", "--config", "x.yaml"]).allow_remote_metrics is None
