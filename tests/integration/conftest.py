"""Fixtures: a real Jaeger and a real Prometheus, each started once per test module on loopback.

The binaries come from `make test-deps`. Where one is not installed the tests that use it skip with
the reason -- except in CI (CI=true), where they fail: CI must really run them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.services import (
    Jaeger,
    Prometheus,
    ToolMissing,
    in_ci,
    jaeger_binary,
    prometheus_binary,
    run_jaeger,
    run_prometheus,
)


def require(find: Callable[[], str]) -> str:
    """The binary's path; skip the test without it (fail in CI)."""
    try:
        return find()
    except ToolMissing as missing:
        if in_ci():
            pytest.fail(f"CI must run the integration tests: {missing}", pytrace=False)
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    """A Jaeger v2 (OTLP gRPC + HTTP in, memory storage, query API) on free 127.0.0.1 ports."""
    binary = require(jaeger_binary)
    with run_jaeger(tmp_path_factory.mktemp("jaeger"), binary) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A Prometheus on a free 127.0.0.1 port, scraping every second whatever `set_targets` names."""
    binary = require(prometheus_binary)
    with run_prometheus(tmp_path_factory.mktemp("prometheus"), binary=binary) as running:
        yield running


@pytest.fixture(params=["fast", "plain"])
def telemetry_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The telemetry test runs on both paths: the fast pieces (the default) and the plain
    OpenTelemetry SDK (`telemetry.fast_path: false`)."""
    if request.param == "plain":
        from sidecar.telemetry import TelemetryOptions

        # a slotted dataclass's field default cannot be patched: its reading of the field is
        monkeypatch.setattr(TelemetryOptions, "fast_pieces", property(lambda _: frozenset()))
    return str(request.param)


@pytest.fixture(params=[False, True], ids=["v1.41", "latest"])
def latest_names(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """The GenAI names: v1.41's (the default) or the latest conventions' (the standard opt-in)."""
    if request.param:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    return bool(request.param)
