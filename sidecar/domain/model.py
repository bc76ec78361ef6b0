"""A registered model: who serves it, what it costs, what it can do. Immutable; built from config."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.domain.redact import remember
from sidecar.domain.request import Capability
from sidecar.domain.response import Usage

USD_NANOS = 1_000_000_000
"""Money is an integer count of nano-dollars everywhere below the config layer."""


def usd_to_nanos(usd: float) -> int:
    return round(usd * USD_NANOS)


@dataclass(frozen=True, slots=True)
class Price:
    """Prices in usd_nanos per million tokens."""

    input_per_mtok: int = 0
    output_per_mtok: int = 0
    cached_input_per_mtok: int = 0

    def cost_usd_nanos(self, usage: Usage) -> int:
        """Cost of the tokens in `usage`, rounded to the nearest nano-dollar."""
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        total = (
            (usage.input_tokens - cached) * self.input_per_mtok
            + cached * self.cached_input_per_mtok
            + usage.output_tokens * self.output_per_mtok
        )
        return (total + 500_000) // 1_000_000


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str  # what clients and routes call it
    provider: str  # the provider entry (endpoint + credentials) that serves it
    upstream_model: str  # what the provider calls it
    price: Price
    context_window: int
    max_output_tokens: int
    capabilities: frozenset[Capability]
    tags: frozenset[str] = frozenset()
    quality: float = 0.5  # in [0, 1]; a prior, used by quality floors
    typical_latency_s: float = 1.0  # prior before live statistics exist

    def supports(self, needed: frozenset[Capability]) -> bool:
        return needed <= self.capabilities


class Secret:
    """A credential that never shows itself in repr, str, logs or errors; `reveal()` is explicit.

    Its value (and any prefix of it) is also taken out of whatever text leaves the process
    (domain/redact.py), should a provider echo it back.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One configured provider endpoint: a wire protocol, a base URL and its credentials."""

    name: str
    kind: str  # the wire protocol, e.g. "openai"
    base_url: str
    api_key: Secret | None = None
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 120.0
    # Wire-protocol settings of this endpoint, e.g. ("api_version", "2023-06-01") for Anthropic.
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.options if k == name), default)
