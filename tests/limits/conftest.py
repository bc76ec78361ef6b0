from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import require
from tests.limits.redis_server import RedisServer, redis_binary


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server per test (a few milliseconds to start), stopped after it."""
    server = RedisServer(require(redis_binary), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
