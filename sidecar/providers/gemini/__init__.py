"""The Google Gemini API (generateContent) wire protocol: a pure codec and a thin aiohttp adapter."""

from sidecar.providers.gemini.adapter import GeminiAdapter

__all__ = ["GeminiAdapter"]
