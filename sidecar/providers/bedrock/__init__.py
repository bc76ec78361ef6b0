"""The AWS Bedrock Converse wire protocol: event-stream framing, a pure codec and a thin aiohttp adapter."""

from sidecar.providers.bedrock.adapter import BedrockAdapter

__all__ = ["BedrockAdapter"]
