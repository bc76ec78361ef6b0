"""The shared session, per-call timeouts, and how request bodies are encoded."""

from __future__ import annotations

import json

import aiohttp
import pytest

from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.providers.session import call_timeout, make_session
from sidecar.providers.transport import _encode

SPEC = ProviderSpec("p", "openai", "https://example.com/v1", connect_timeout_s=2.0, request_timeout_s=60.0)


async def test_session_pools_connections_without_a_total_timeout() -> None:
    session = make_session(limit=10, limit_per_host=5)
    try:
        assert session.timeout.total is None
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert (connector.limit, connector.limit_per_host) == (10, 5)
    finally:
        await session.close()


def test_call_timeout_is_the_attempt_budget_capped_by_the_provider() -> None:
    assert call_timeout(3.0, SPEC) == aiohttp.ClientTimeout(total=3.0, sock_connect=2.0)
    assert call_timeout(600.0, SPEC).total == 60.0


def test_request_bodies_are_encoded_fast_and_exactly_what_the_standard_encoder_accepts() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "héllo ✓"}], "n": 1, "x": None}
    assert json.loads(_encode(body)) == body
    assert "héllo ✓".encode() in _encode(body)  # UTF-8, not \u escapes
    assert json.loads(_encode({"seed": 2**70, "k": {1: "a"}})) == {"seed": 2**70, "k": {"1": "a"}}
    with pytest.raises(ProviderError) as info:
        _encode({"tools": [{"enum": {1, 2}}]})
    assert info.value.failure_class is FailureClass.BAD_REQUEST
    assert "not JSON-encodable" in info.value.message
