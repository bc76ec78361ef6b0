"""The `providers:` and `models:` sections: endpoints, credentials by environment name, prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, field_validator, model_validator

from sidecar.config.common import ENV_NAME, MAX_TOKENS, MAX_USD_PER_MTOK, NAME, Strict
from sidecar.domain.redact import CREDENTIAL_WORDS, is_credential_header, redact
from sidecar.domain.request import Capability

# Wire protocols that return no token log-probabilities (Anthropic Messages, Bedrock Converse), and
# the OpenAI-compatible flavors whose dialect leaves the field out (providers/openai/dialects.py;
# tests/config keeps the two in step).
NO_LOGPROBS_KINDS = frozenset({"anthropic", "bedrock"})
NO_LOGPROBS_FLAVORS = frozenset({"ollama", "groq"})


class ProviderSettings(Strict):
    name: Annotated[str, Field(pattern=NAME)]
    kind: Literal["openai", "anthropic", "gemini", "azure_openai", "openai_compatible", "bedrock"]
    base_url: Annotated[str, Field(pattern=r"^https?://")]
    api_key_env: Annotated[str, Field(pattern=ENV_NAME)] | None = None
    headers: dict[str, str] = {}
    options: dict[str, str] = {}  # wire-protocol settings, e.g. api_version (see README, Providers)
    connect_timeout_s: float = Field(5, gt=0)
    request_timeout_s: float = Field(120, gt=0)
    # Admission limits for this endpoint (unset: none): in-flight calls, requests/s, tokens/min.
    max_concurrency: int | None = Field(None, gt=0)
    requests_per_s: float | None = Field(None, gt=0)
    tokens_per_min: float | None = Field(None, gt=0)

    @property
    def returns_logprobs(self) -> bool:
        if self.kind in NO_LOGPROBS_KINDS:
            return False
        return not (self.kind == "openai_compatible" and self.options.get("flavor") in NO_LOGPROBS_FLAVORS)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "api_key" in data:
            raise ValueError(
                "api_key is not read from the config file; put the key in an environment variable "
                "and name that variable in api_key_env"
            )
        return data

    @field_validator("base_url")
    @classmethod
    def _no_credentials_in_url(cls, url: str) -> str:
        # ListModels shows every client each model's endpoint, and logs and spans name it too.
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise ValueError(
                "a base_url must not hold credentials (user:password@); put the key in an "
                "environment variable and name it in api_key_env"
            )
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if is_credential_header(name):
                raise ValueError(
                    f"a base_url must not hold credentials (query parameter {name!r}); use api_key_env"
                )
        return url

    @field_validator("headers")
    @classmethod
    def _no_credential_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        # By a broad rule on the normalised name (Proxy-Authorization, Cookie, X-Auth-Token,
        # Ocp-Apim-Subscription-Key, "Authorization " with a space, ...), and by the value's shape.
        for key, value in headers.items():
            if is_credential_header(key):
                word = next(w for w in CREDENTIAL_WORDS if w in key.strip().casefold())
                raise ValueError(
                    f"header {key!r} carries credentials (its name contains {word!r}); "
                    "use api_key_env instead"
                )
            if redact(value) != value:
                raise ValueError(f"header {key!r} has a value that looks like a key; use api_key_env instead")
        return headers


class PriceSettings(Strict):
    """USD per million tokens, as providers publish them."""

    input: float = Field(ge=0, le=MAX_USD_PER_MTOK)
    output: float = Field(ge=0, le=MAX_USD_PER_MTOK)
    cached_input: float | None = Field(None, ge=0, le=MAX_USD_PER_MTOK)


class ModelSettings(Strict):
    name: Annotated[str, Field(pattern=NAME)]
    provider: str
    upstream_model: str = ""
    price: PriceSettings
    context_window: int = Field(gt=0, le=MAX_TOKENS)
    max_output_tokens: int = Field(gt=0, le=MAX_TOKENS)
    capabilities: list[Capability] = []
    tags: list[str] = []
    quality: float = Field(0.5, ge=0, le=1)
    typical_latency_s: float = Field(1.0, gt=0)
    max_concurrency: int | None = Field(None, gt=0)  # in-flight calls to this model at once
    # A model's own rate limits (providers often limit per model too), after the provider's.
    requests_per_s: float | None = Field(None, gt=0)
    tokens_per_min: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _output_fits(self) -> ModelSettings:
        if self.max_output_tokens > self.context_window:
            raise ValueError(
                f"max_output_tokens {self.max_output_tokens} exceeds context_window {self.context_window}"
            )
        return self
