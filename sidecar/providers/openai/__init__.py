"""The OpenAI Chat Completions wire protocol: a pure codec and a thin aiohttp adapter."""

from sidecar.providers.openai.adapter import OpenAIAdapter

__all__ = ["OpenAIAdapter"]
