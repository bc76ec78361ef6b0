"""Azure OpenAI and OpenAI-compatible servers as configuration of the one OpenAI codec."""

from __future__ import annotations

import dataclasses
import json

import pytest
from aiohttp import web

from sidecar.domain.model import ModelSpec, Price, ProviderSpec, Secret
from sidecar.domain.request import GenerationParams
from sidecar.providers.base import ProviderCall
from sidecar.providers.openai import OpenAIAdapter
from sidecar.providers.openai.codec import encode_request
from sidecar.providers.openai.dialects import FLAVORS, dialect_for
from sidecar.providers.session import make_session
from tests.factories import chat

MODEL = ModelSpec("m", "p", "my-deployment", Price(), 8192, 1024, frozenset())
KEY = "sk-planted-DIALECT-777"


def spec(kind: str, **options: str) -> ProviderSpec:
    return ProviderSpec(
        "p", kind, "http://127.0.0.1:9", api_key=Secret(KEY), options=tuple(sorted(options.items()))
    )


@pytest.mark.parametrize(
    ("provider", "url"),
    [
        (spec("openai"), "http://127.0.0.1:9/chat/completions"),
        (spec("azure_openai"), "http://127.0.0.1:9/openai/v1/chat/completions"),
        (
            spec("azure_openai", api_version="2024-10-21"),
            "http://127.0.0.1:9/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21",
        ),
        (spec("openai_compatible", flavor="vllm"), "http://127.0.0.1:9/chat/completions"),
    ],
)
def test_urls(provider, url):
    assert dialect_for(provider).url(provider, MODEL) == url


@pytest.mark.parametrize(
    ("provider", "field", "has_logprobs"),
    [
        (spec("openai"), "max_completion_tokens", True),
        (spec("azure_openai"), "max_completion_tokens", True),
        (spec("openai_compatible"), "max_tokens", True),
        (spec("openai_compatible", flavor="ollama"), "max_tokens", False),
        (spec("openai_compatible", flavor="groq"), "max_completion_tokens", False),
        (
            spec("openai_compatible", flavor="vllm", max_tokens_field="max_completion_tokens"),
            "max_completion_tokens",
            True,
        ),
    ],
)
def test_quirks_shape_the_body(provider, field, has_logprobs):
    request = dataclasses.replace(chat(), params=GenerationParams(max_output_tokens=77))
    body = encode_request(request, MODEL, stream=True, logprobs=True, dialect=dialect_for(provider))
    assert body[field] == 77
    assert ("logprobs" in body) is has_logprobs
    assert body["model"] == "my-deployment"  # Azure: the deployment name


def test_unknown_flavor_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown flavor 'llamafile' \(known: generic, groq, ollama"):
        dialect_for(spec("openai_compatible", flavor="llamafile"))
    assert set(FLAVORS) >= {"vllm", "ollama", "groq", "together", "openrouter"}


async def test_azure_sends_the_key_as_api_key_to_the_deployment_path():
    seen = {}

    async def handler(request: web.Request) -> web.Response:
        seen["path"] = request.path_qs
        seen["api-key"] = request.headers.get("api-key")
        seen["authorization"] = request.headers.get("Authorization")
        seen["body"] = await request.json()
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )

    app = web.Application()
    app.router.add_post("/openai/deployments/{name}/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    provider = ProviderSpec(
        "az",
        "azure_openai",
        f"http://127.0.0.1:{port}",
        api_key=Secret(KEY),
        options=(("api_version", "2024-10-21"),),
    )
    session = make_session()
    try:
        adapter = OpenAIAdapter(provider, session)
        completion = await adapter.complete(ProviderCall(chat(), MODEL, 5.0))
        assert completion.text == "hi"
        assert seen["path"] == "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
        assert seen["api-key"] == KEY
        assert seen["authorization"] is None
        assert KEY not in repr(adapter)
        assert json.dumps(seen["body"]).count(KEY) == 0
    finally:
        await session.close()
        await runner.cleanup()
