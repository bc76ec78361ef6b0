"""The shared session and per-call timeouts."""

from __future__ import annotations

import aiohttp

from sidecar.domain.model import ProviderSpec
from sidecar.providers.http import call_timeout, make_session

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
