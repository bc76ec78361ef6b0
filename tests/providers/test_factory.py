"""The adapter factory: one adapter per known kind, a clear error for the rest."""

from __future__ import annotations

import pytest

from sidecar.domain.model import ProviderSpec
from sidecar.providers.factory import KNOWN_KINDS, build_adapter
from sidecar.providers.openai import OpenAIAdapter
from sidecar.providers.session import make_session


async def test_openai_kind_builds_the_openai_adapter() -> None:
    session = make_session()
    try:
        adapter = build_adapter(ProviderSpec("main", "openai", "https://api.openai.com/v1"), session)
        assert isinstance(adapter, OpenAIAdapter)
        assert "openai" in KNOWN_KINDS
    finally:
        await session.close()


async def test_unknown_kind_names_itself_and_the_known_ones() -> None:
    session = make_session()
    try:
        with pytest.raises(
            ValueError,
            match=r"provider 'x': unknown kind 'grpc' \(known kinds: [a-z_, ]*\bopenai\b[a-z_, ]*\)",
        ):
            build_adapter(ProviderSpec("x", "grpc", "https://example.com"), session)
    finally:
        await session.close()
