"""The one pooled HTTP client session every adapter shares, and the per-call timeout it is used with.

One session means one connection pool: TLS handshakes and DNS lookups are paid once per upstream,
not once per request. The session has no default total timeout, because the time an attempt may
take is the executor's decision, made per call (see `call_timeout`).
"""

from __future__ import annotations

import aiohttp

from sidecar.domain.model import ProviderSpec

USER_AGENT = "turnout-sidecar/0.1"


def make_session(
    *,
    limit: int = 512,
    limit_per_host: int = 128,
    keepalive_s: float = 30.0,
    dns_ttl_s: int = 300,
) -> aiohttp.ClientSession:
    """Create the shared session; the caller owns it and must `await session.close()` at shutdown.

    Must be called with an event loop running (aiohttp binds the connector to it).
    """
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        keepalive_timeout=keepalive_s,
        ttl_dns_cache=dns_ttl_s,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # No total: a streamed answer may legitimately run for minutes; each call brings its own.
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"User-Agent": USER_AGENT},
        raise_for_status=False,  # adapters classify statuses themselves
        trust_env=False,
    )


def call_timeout(timeout_s: float, spec: ProviderSpec) -> aiohttp.ClientTimeout:
    """The timeout for one call: the attempt's budget, capped by the provider's configured limit.

    `total` covers connecting, sending and reading the whole body (for a stream, the whole stream).
    """
    return aiohttp.ClientTimeout(
        total=min(timeout_s, spec.request_timeout_s),
        sock_connect=spec.connect_timeout_s,
    )
