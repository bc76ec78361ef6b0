"""OpenAI Chat Completions dialects: Azure OpenAI and OpenAI-compatible servers, as data.

One codec serves them all; what differs is kept here, per endpoint kind and `flavor` option:
the URL, how the key is sent, which field carries the output limit, and which optional features
the server accepts (a request a server rejects for an unknown field would be a needless 400).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote

from sidecar.domain.model import ModelSpec, ProviderSpec


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    auth_header: str = "Authorization"
    auth_prefix: str = "Bearer "
    max_tokens_field: str = "max_completion_tokens"
    stream_usage: bool = True  # send stream_options.include_usage
    seed: bool = True
    logprobs: bool = True
    json_schema: bool = True  # else a json_schema format is sent as json_object
    path: str = "/chat/completions"

    def url(self, spec: ProviderSpec, model: ModelSpec) -> str:
        return spec.base_url.rstrip("/") + self.path


@dataclass(frozen=True, slots=True)
class AzureDialect(Dialect):
    """Azure OpenAI: the `api-key` header, and the model field names the deployment.

    Without `options.api_version` the v1 API is used (`{base_url}/openai/v1/chat/completions`);
    with it, the classic per-deployment path (`/openai/deployments/{upstream_model}/...`).
    """

    def url(self, spec: ProviderSpec, model: ModelSpec) -> str:
        base = spec.base_url.rstrip("/")
        version = spec.option("api_version")
        if not version:
            return f"{base}/openai/v1/chat/completions"
        deployment = quote(model.upstream_model, safe="")
        return f"{base}/openai/deployments/{deployment}/chat/completions?api-version={quote(version)}"


OPENAI = Dialect("openai")
AZURE = AzureDialect("azure_openai", auth_header="api-key", auth_prefix="")

# Known quirks of OpenAI-compatible servers (public docs; conservative where versions differ).
FLAVORS: dict[str, Dialect] = {
    "generic": Dialect("openai_compatible", max_tokens_field="max_tokens"),
    "vllm": Dialect("vllm", max_tokens_field="max_tokens"),
    "ollama": Dialect("ollama", max_tokens_field="max_tokens", logprobs=False),
    "groq": Dialect("groq", logprobs=False),
    "together": Dialect("together", max_tokens_field="max_tokens"),
    "openrouter": Dialect("openrouter", max_tokens_field="max_tokens"),
}


def dialect_for(spec: ProviderSpec) -> Dialect:
    """The dialect of a provider entry: by kind, then `options.flavor`, then explicit overrides."""
    if spec.kind == "azure_openai":
        base: Dialect = AZURE
    elif spec.kind == "openai_compatible":
        flavor = spec.option("flavor", "generic")
        if flavor not in FLAVORS:
            known = ", ".join(sorted(FLAVORS))
            raise ValueError(f"provider {spec.name!r}: unknown flavor {flavor!r} (known: {known})")
        base = FLAVORS[flavor]
    else:
        base = OPENAI
    if spec.option("max_tokens_field"):
        base = replace(base, max_tokens_field=spec.option("max_tokens_field"))
    header = spec.option("auth_header")
    if header:
        base = replace(
            base, auth_header=header, auth_prefix="Bearer " if header.lower() == "authorization" else ""
        )
    return base
