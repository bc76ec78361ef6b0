"""The `server:` section: listeners, TLS, auth, and what may be exposed beyond loopback."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, field_validator

from sidecar.config.common import ENV_NAME, Strict
from sidecar.config.telemetry import PrometheusSettings


class TlsSettings(Strict):
    """TLS on the gRPC port (grpc's own SSL credentials); read once at start."""

    cert_file: str  # PEM certificate chain
    key_file: str  # PEM private key
    client_ca_file: str = ""  # set: mutual TLS, clients must present a certificate signed by this CA


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    unix_socket: str = ""
    # Largest request Turnout accepts, checked by the servicer so the error can name the field;
    # the gRPC transport limit is set above it so that such requests reach the check.
    max_request_mb: float = Field(32, gt=0, le=1024)
    shutdown_grace_s: float = Field(30, ge=0)
    # The whole-request deadline when the client sets none.
    default_timeout_s: float = Field(300, gt=0)
    # How often the config file is checked for a change (by content hash); 0: only on SIGHUP.
    reload_interval_s: float = Field(1.0, ge=0)
    # The HTTP probe listener (/livez, /readyz; sidecar/probes.py): unset is off, 0 a free port.
    # It may bind the pod IP for kubelet while the gRPC API stays on loopback.
    probe_host: str = "127.0.0.1"
    probe_port: int | None = Field(None, ge=0, le=65535)
    # Access control (README, Access control). A host off loopback needs one of these two.
    auth_token_env: Annotated[str, Field(pattern=ENV_NAME)] | None = None  # clients send Bearer <token>
    tls: TlsSettings | None = None
    # The unix socket's file mode: owner only by default (who may connect is who may open it).
    unix_socket_mode: Annotated[int, Field(ge=0, le=0o777)] = 0o600
    # The OpenAI- and Anthropic-compatible HTTP front door (sidecar/http_api): unset or 0 is off.
    # Off loopback it needs its own bearer token (clients send it as their SDK's api_key).
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(None, ge=0, le=65535)
    http_auth_token_env: Annotated[str, Field(pattern=ENV_NAME)] | None = None

    @field_validator("unix_socket_mode", mode="before")
    @classmethod
    def _octal(cls, value: Any) -> Any:
        """A mode as YAML writes it: "0660" (a string: YAML reads a bare 0660 as the number 432)."""
        if isinstance(value, str):
            try:
                return int(value, 8)
            except ValueError:
                raise ValueError(f'not an octal file mode: {value!r} (e.g. "0600")') from None
        return value


MIN_TOKEN_CHARS = 16


def server_problems(server: ServerSettings, env: Mapping[str, str]) -> list[str]:
    problems = []
    for setting in ("auth_token_env", "http_auth_token_env"):
        name = getattr(server, setting)
        if not name:
            continue
        token = env.get(name, "")
        if not token:
            problems.append(f"server.{setting}: environment variable {name} is not set")
        elif len(token.strip()) < MIN_TOKEN_CHARS or token != token.strip():
            problems.append(
                f"server.{setting}: the token in {name} must be at least "
                f"{MIN_TOKEN_CHARS} characters, without surrounding spaces"
            )
    if server.tls is not None:
        for name in ("cert_file", "key_file", "client_ca_file"):
            path = getattr(server.tls, name)
            if path and ("\0" in path or not os.access(path, os.R_OK)):  # os.access raises on NUL
                problems.append(f"server.tls.{name}: cannot read {path}")
    return problems


def is_loopback(host: str) -> bool:
    """Whether a listen address is on loopback only: localhost, 127.0.0.0/8 or ::1."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, "" or 0.0.0.0-like: it may reach the network
        return False


def exposure_problems(
    server: ServerSettings,
    host: str,
    prometheus: PrometheusSettings,
    metrics_host: str,
    *,
    host_field: str = "server.host",
    metrics_field: str = "telemetry.prometheus.host",
    allow_remote_metrics: bool = False,
    http_host: str | None = None,
    http_field: str = "server.http_host",
) -> list[str]:
    """Listen addresses off loopback that were not chosen deliberately (README, Access control).

    The routing API spends money and returns answers: off loopback it needs a token or TLS. The
    metrics endpoint is read-only aggregates: off loopback it needs to be allowed in so many words.
    The HTTP front door (when its port is set; `http_host` None: its config's) has TLS nowhere in
    front of it, so off loopback it needs its own token.
    """
    problems = []
    http_host = server.http_host if http_host is None else http_host
    if server.http_port and not is_loopback(http_host) and not server.http_auth_token_env:
        problems.append(
            f"{http_field}: {http_host!r} is not a loopback address, and anyone who can reach it could "
            "spend your provider credit: set server.http_auth_token_env (clients then send the token "
            "as their SDK's api_key) or listen on 127.0.0.1"
        )
    if not is_loopback(host) and not server.auth_token_env and server.tls is None:
        problems.append(
            f"{host_field}: {host!r} is not a loopback address, and anyone who can reach it could "
            "spend your provider credit: set server.auth_token_env (clients then send "
            "'authorization: Bearer <token>') or server.tls, or listen on 127.0.0.1"
        )
    allowed = prometheus.allow_remote or allow_remote_metrics
    if prometheus.enabled and not is_loopback(metrics_host) and not allowed:
        problems.append(
            f"{metrics_field}: {metrics_host!r} is not a loopback address; the metrics are "
            "read-only aggregates (no prompts, no keys), so exposing them is allowed, but only "
            "deliberately: set telemetry.prometheus.allow_remote: true (or pass "
            "--allow-remote-metrics), or listen on 127.0.0.1"
        )
    return problems
