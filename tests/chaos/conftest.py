"""Chaos fixtures: a small registry on three providers, all served by one fast in-process simulator.

Every test gets a fresh simulator and sidecar, so breakers, budgets and health start clean. The
simulator runs at 1/100 of real time (a 300 ms first token takes 3 ms) with little jitter and no
latency tail: the faults a test injects are the only chaos, and timings are predictable enough to
assert on. Each route turns on one execution feature, so a test names the behaviour it exercises by
the route it asks for (`hints.route`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_status import rpc_status
from turnout_simulator import ModelProfile, Simulator, SimulatorConfig, start_simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import parse_config
from sidecar.domain.outcome import AttemptRecord
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.server.helpers import details, user

TIME_SCALE = 0.01
FAIL_MAX = 3
RESET_TIMEOUT_S = 0.5
# How far past its deadline a call may end: scheduling noise on a busy CI machine. The client's own
# deadline cuts a call that the server lets run over, so an error other than DEADLINE_EXCEEDED must
# carry the server's ErrorInfo: that, not the elapsed time alone, shows the server ended the call.
SLACK_S = 0.15

PROFILE = ModelProfile(ttft_ms=300, tokens_per_second=200, jitter=0.1, tail_probability=0.0)


def chaos_config_dict(base_url: str) -> dict[str, Any]:
    """Three providers, three models (two cheap, one strong), one route per execution feature."""

    def model(name: str, provider: str, price: tuple[float, float], quality: float) -> dict[str, Any]:
        return {
            "name": name,
            "provider": provider,
            "price": {"input": price[0], "output": price[1]},
            "context_window": 128_000,
            "max_output_tokens": 16_384,
            "capabilities": ["json", "streaming", "tools"],
            "quality": quality,
            "typical_latency_s": 0.05,
        }

    pair = ["alpha-mini", "beta-mini"]
    return {
        "version": 1,
        "server": {"host": "127.0.0.1", "port": 0, "default_timeout_s": 10},
        "providers": [
            {"name": p, "kind": "openai", "base_url": base_url, "request_timeout_s": 5}
            for p in ("alpha", "beta", "gamma")
        ],
        "models": [
            model("alpha-mini", "alpha", (0.10, 0.40), 0.60),
            model("beta-mini", "beta", (0.15, 0.60), 0.62),
            model("gamma-large", "gamma", (2.50, 10.0), 0.90),
        ],
        "routes": [
            {
                "name": "retrying",
                "models": ["alpha-mini", "beta-mini", "gamma-large"],
                "execution": {"max_retries": 2, "backoff_base_s": 0.02, "backoff_max_s": 0.1},
            },
            {
                "name": "hedged",
                "models": pair,
                "execution": {"hedging": True, "hedge_delay_s": 0.05, "max_retries": 0},
            },
            # Plain fallback, no retries; streams end with an error if they break after tokens.
            {"name": "fallback", "models": pair, "execution": {"max_retries": 0}},
            # The same pair ranked by scoring, which drops a model whose breaker is open.
            {"name": "scored", "models": pair, "strategies": ["scoring"], "execution": {"max_retries": 0}},
            {
                "name": "stream-continue",
                "models": pair,
                "execution": {"stream_failover": "continue", "max_retries": 0},
            },
            {
                "name": "escalate-output",
                "models": pair,
                "execution": {"invalid_output": "escalate", "max_retries": 0},
            },
            {
                "name": "retry-output",
                "models": pair,
                "execution": {"invalid_output": "retry", "max_retries": 0},
            },
            {
                "name": "cascade",
                "models": ["alpha-mini", "beta-mini", "gamma-large"],
                "strategies": [{"cascade": {"max_stages": 2, "escalate_on": ["length", "refusal"]}}],
                "execution": {"max_retries": 0},
            },
        ],
        "default_route": "retrying",
        "resilience": {
            "breaker": {"fail_max": FAIL_MAX, "reset_timeout_s": RESET_TIMEOUT_S},
            # A generous hedge floor, so that the hedging test sees every slow request hedged.
            "hedge_budget": {"ratio": 0.1, "min_per_s": 5},
            "retry_budget": {"ratio": 0.2, "min_per_s": 1},
        },
    }


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig(seed=11, time_scale=TIME_SCALE, default_profile=PROFILE)
    simulator = await start_simulator(config, "127.0.0.1", 0)
    yield simulator
    await simulator.close()


class AttemptLog:
    """Every attempt record the sidecar's executor reports, as an observer sees them (telemetry's view).

    Error statuses name the attempts but not their roles (hedge, retry); this log has them all, for
    every request, in the order they ended.
    """

    def __init__(self) -> None:
        self.records: list[AttemptRecord] = []
        self.ended_at: list[float] = []  # time.perf_counter() when each record came, as Outcome.ended_at
        self._changed = asyncio.Event()

    def observe(self, record: AttemptRecord) -> None:
        self.records.append(record)
        self.ended_at.append(time.perf_counter())
        self._changed.set()

    async def wait_for(self, done: Callable[[list[AttemptRecord]], bool]) -> float:
        """Until `done(records)` holds; the time it came true. An event, not a guess at how long the
        sidecar takes: on a loaded machine a burst's attempts spread over far more time than alone."""
        while not done(self.records):
            self._changed.clear()
            await self._changed.wait()
        return self.ended_at[-1] if self.ended_at else time.perf_counter()

    def of(self, model: str) -> list[AttemptRecord]:
        return [r for r in self.records if r.model == model]


def start_turnout(sim: Simulator, log: AttemptLog, **resilience: Any) -> Sidecar:
    """A sidecar on the chaos config (with `resilience:` sections replaced), reporting to `log`."""
    raw = chaos_config_dict(sim.base_url)
    raw["resilience"].update(resilience)
    running = Sidecar(parse_config(raw, source="tests/chaos", env={}), ListenOverrides(port=0))
    # Health subscribes to every call and reads each attempt through `observe`: chain the log in front.
    health, forward = running.health, running.health.observe

    def observe(record: AttemptRecord) -> None:
        log.observe(record)
        forward(record)

    health.observe = observe  # type: ignore[method-assign]
    return running


@pytest.fixture
def attempt_log() -> AttemptLog:
    return AttemptLog()


@pytest.fixture
async def turnout(sim: Simulator, attempt_log: AttemptLog) -> AsyncIterator[Sidecar]:
    running = start_turnout(sim, attempt_log)
    await running.start()
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def stub(turnout: Sidecar) -> AsyncIterator[pb_grpc.RouterServiceStub]:
    async with grpc.aio.insecure_channel(turnout.address) as channel:
        yield pb_grpc.RouterServiceStub(channel)


class Faults:
    """The simulator's admin API: inject faults, clear them, read its counters."""

    def __init__(self, sim: Simulator, session: aiohttp.ClientSession) -> None:
        self._url = f"{sim.root_url}/_sim"
        self._session = session

    async def add(self, **fault: Any) -> None:
        async with self._session.post(f"{self._url}/faults", json=fault) as response:
            assert response.status == 201, await response.text()

    async def clear(self) -> None:
        async with self._session.delete(f"{self._url}/faults") as response:
            assert response.status == 200, await response.text()

    async def stats(self) -> dict[str, Any]:
        async with self._session.get(f"{self._url}/stats") as response:
            result: dict[str, Any] = await response.json()
            return result


@pytest.fixture
async def faults(sim: Simulator) -> AsyncIterator[Faults]:
    async with aiohttp.ClientSession() as session:
        yield Faults(sim, session)


# --- calls: every one must end with an answer or a clear error, within its deadline ------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one unary call ended: its response or its error, and how long it took."""

    elapsed_s: float
    deadline_s: float
    response: pb.GenerateResponse | None = None
    error: grpc.aio.AioRpcError | None = None
    ended_at: float = 0.0  # time.perf_counter() when it ended, as AttemptLog.ended_at

    @property
    def ok(self) -> pb.GenerateResponse:
        assert self.response is not None, f"expected an answer, got {self.error!r}"
        return self.response

    @property
    def failed(self) -> grpc.aio.AioRpcError:
        assert self.error is not None, f"expected an error, got an answer from {self.ok.model}"
        return self.error


def request(route: str, text: str = "Summarise the incident report in two lines.", **fields: Any) -> Any:
    return pb.GenerateRequest(messages=[user(text)], hints=pb.RoutingHints(route=route), **fields)


def check_ended_cleanly(error: grpc.aio.AioRpcError | None, elapsed_s: float, deadline_s: float) -> None:
    """Within the deadline (plus slack), and any error is the sidecar's own, with an ErrorInfo."""
    assert elapsed_s <= deadline_s + SLACK_S, f"took {elapsed_s:.3f}s for a {deadline_s}s deadline"
    if error is None or error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
        return  # at the deadline the client's own cut may come first, without the server's details
    status = rpc_status.from_call(error)
    assert status is not None, f"not a clear error (no google.rpc.Status): {error!r}"
    info = details(error).get("ErrorInfo")
    assert info is not None, f"not a clear error (no ErrorInfo): {error!r}"
    assert info.domain == "turnout.dev", f"not the sidecar's error: {error!r}"
    assert error.details(), "the error has no message"


async def call(stub: pb_grpc.RouterServiceStub, req: Any, deadline_s: float = 2.0) -> Outcome:
    started = time.perf_counter()
    try:
        response = await stub.Generate(req, timeout=deadline_s)
    except grpc.aio.AioRpcError as error:
        elapsed = time.perf_counter() - started
        check_ended_cleanly(error, elapsed, deadline_s)
        return Outcome(elapsed, deadline_s, error=error, ended_at=started + elapsed)
    elapsed = time.perf_counter() - started
    check_ended_cleanly(None, elapsed, deadline_s)
    return Outcome(elapsed, deadline_s, response=response, ended_at=started + elapsed)


async def call_many(
    stub: pb_grpc.RouterServiceStub, requests: Iterable[Any], deadline_s: float = 2.0
) -> list[Outcome]:
    """All at once; each outcome is checked as it ends."""
    return list(await asyncio.gather(*(call(stub, r, deadline_s) for r in requests)))


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    deltas: list[str]
    end: pb.StreamEnd | None
    error: grpc.aio.AioRpcError | None
    elapsed_s: float

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def stream(stub: pb_grpc.RouterServiceStub, req: Any, deadline_s: float = 2.0) -> StreamOutcome:
    deltas: list[str] = []
    end: pb.StreamEnd | None = None
    error: grpc.aio.AioRpcError | None = None
    started = time.perf_counter()
    try:
        async for event in stub.GenerateStream(req, timeout=deadline_s):
            assert end is None, "an event after the end event"
            if event.HasField("delta"):
                deltas.append(event.delta.text)
            elif event.HasField("end"):
                end = event.end
    except grpc.aio.AioRpcError as exc:
        error = exc
    elapsed = time.perf_counter() - started
    check_ended_cleanly(error, elapsed, deadline_s)
    assert (end is None) != (error is None), "a stream ends with exactly one of: an end event, an error"
    return StreamOutcome(deltas, end, error, elapsed)


def stream_request(route: str, text: str = "Tell me a long story about a lighthouse.") -> Any:
    return pb.GenerateStreamRequest(messages=[user(text)], hints=pb.RoutingHints(route=route))


def seconds(duration: Any) -> float:
    return float(duration.ToTimedelta().total_seconds())
