"""Build the adapter for a configured provider from its wire-protocol kind.

The one place that maps `ProviderSpec.kind` to a concrete adapter class. OpenAI-compatible
endpoints (Azure, vLLM, Ollama, Groq) are meant to become configuration of the same codec here,
not new subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp

from sidecar.domain.model import ProviderSpec
from sidecar.providers.anthropic import AnthropicAdapter
from sidecar.providers.base import ProviderAdapter
from sidecar.providers.bedrock import BedrockAdapter
from sidecar.providers.gemini import GeminiAdapter
from sidecar.providers.openai import OpenAIAdapter

_Builder = Callable[[ProviderSpec, aiohttp.ClientSession], ProviderAdapter]

_BUILDERS: Mapping[str, _Builder] = {
    "openai": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "bedrock": BedrockAdapter,
    # The same codec and adapter; the differences are data (providers/openai/dialects.py).
    "azure_openai": OpenAIAdapter,
    "openai_compatible": OpenAIAdapter,
}

KNOWN_KINDS: frozenset[str] = frozenset(_BUILDERS)


def build_adapter(spec: ProviderSpec, session: aiohttp.ClientSession) -> ProviderAdapter:
    """The adapter for `spec`, sharing `session`; ValueError for a kind nobody implements."""
    builder = _BUILDERS.get(spec.kind)
    if builder is None:
        known = ", ".join(sorted(KNOWN_KINDS))
        raise ValueError(f"provider {spec.name!r}: unknown kind {spec.kind!r} (known kinds: {known})")
    return builder(spec, session)
