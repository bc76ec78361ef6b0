"""The Anthropic Messages API wire protocol: a pure codec and a thin aiohttp adapter."""

from sidecar.providers.anthropic.adapter import AnthropicAdapter

__all__ = ["AnthropicAdapter"]
