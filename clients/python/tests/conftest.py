"""Live tests run against a sidecar at $TURNOUT_ADDRESS (and $TURNOUT_UNIX_SOCKET); `make clients-test`
at the repository root starts one with the provider simulator and sets both."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from turnout_client import Client


def live_address() -> str:
    address = os.environ.get("TURNOUT_ADDRESS", "")
    if not address:
        why = "no sidecar: TURNOUT_ADDRESS is unset (run `make clients-test` from the repository root)"
        if os.environ.get("TURNOUT_REQUIRE_LIVE") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return address


@pytest.fixture
def address() -> str:
    return live_address()


@pytest.fixture
def unix_socket() -> str:
    live_address()
    path = os.environ.get("TURNOUT_UNIX_SOCKET", "")
    if not path:
        pytest.fail("TURNOUT_ADDRESS is set but TURNOUT_UNIX_SOCKET is not")
    return path


@pytest.fixture
def client(address: str) -> Iterator[Client]:
    with Client(address, timeout=30) as turnout:
        yield turnout
