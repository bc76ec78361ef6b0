"""One live `turnout serve --simulator --http-port` process for the SDK tests, as `make run` starts it.

A real process, not an in-process server: the official SDKs' sync clients block, and the Node SDK
runs in a process of its own; each talks to the sidecar over loopback as an app would. The
simulator answers instantly (time_scale 0); faults a test injects are cleared after it.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLE_SIMULATOR
from tests.processes import free_port, serve

RATE_LIMITED = "llama-3.1-8b-instant"  # its provider (groq) admits one request per 100 s here


@dataclass(frozen=True)
class Front:
    url: str  # the HTTP front door's root, e.g. http://127.0.0.1:PORT (SDKs take url + "/v1")
    sim_url: str  # the simulator's root, for its admin API (/_sim/faults)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def fault(self, **fault: Any) -> None:
        _admin(f"{self.sim_url}/_sim/faults", "POST", json.dumps(fault).encode())

    def clear_faults(self) -> None:
        _admin(f"{self.sim_url}/_sim/faults", "DELETE")


def _admin(url: str, method: str, body: bytes | None = None) -> None:
    request = urllib.request.Request(url, body, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status in (200, 201, 204), response.read()


def _limit_groq(raw: dict[str, Any]) -> None:
    for provider in raw["providers"]:
        if provider["name"] == "groq":
            provider["requests_per_s"] = 0.01
    raw.setdefault("resilience", {})["max_queue_wait_s"] = 0.05


@pytest.fixture(scope="session")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    simulator = yaml.safe_load(EXAMPLE_SIMULATOR.read_text()) | {"time_scale": 0.0}
    port = free_port()
    tmp = tmp_path_factory.mktemp("front")
    with serve(Path(tmp), simulator, "--http-port", str(port), edit=_limit_groq) as served:
        text = "".join(served.lines)
        assert f"HTTP API at http://127.0.0.1:{port}/v1" in text, text
        sim = re.search(r"simulator: serving the OpenAI wire format at (http://\S+)/v1", text)
        assert sim is not None, text
        yield Front(f"http://127.0.0.1:{port}", sim.group(1))


@pytest.fixture(autouse=True)
def _clear_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "front" in request.fixturenames:
        front: Front = request.getfixturevalue("front")
        front.clear_faults()
