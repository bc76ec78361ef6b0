"""The one object every handler shares: config, seeded models, fault book, counters and clocks.

Time and randomness are injected here (sleep, wall clock, RNG) so tests can drive the simulator
without real waits and get the same draws on every run. `answer` is where every wire gets its
answer: the replayed outcome in replay mode (replay.py), else a composed one (content.py).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from turnout_simulator.config import FaultKind, FaultSpec, ModelProfile, SimulatorConfig
from turnout_simulator.content import Answer, compose_answer
from turnout_simulator.faults import FaultBook
from turnout_simulator.hangs import HangingRequests
from turnout_simulator.latency import LatencyModel
from turnout_simulator.replay import ReplayBook
from turnout_simulator.request import ChatCall
from turnout_simulator.stats import Stats

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class SimState:
    config: SimulatorConfig
    latency: LatencyModel
    faults: FaultBook
    stats: Stats = field(default_factory=Stats)
    hangs: HangingRequests = field(default_factory=HangingRequests)
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.time
    replay: ReplayBook | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False)

    @classmethod
    def create(
        cls,
        config: SimulatorConfig,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> SimState:
        """Latency and fault draws get separate streams from one seed, so adding a fault leaves the
        latency sequence unchanged."""
        root = rng if rng is not None else random.Random(config.seed)
        latency_rng = random.Random(root.getrandbits(64))
        fault_rng = random.Random(root.getrandbits(64))
        return cls(
            config=config,
            latency=LatencyModel(latency_rng, config.time_scale),
            faults=FaultBook(config, fault_rng),
            sleep=sleep,
            clock=clock,
            replay=ReplayBook.load(config.replay) if config.replay is not None else None,
        )

    def answer(self, call: ChatCall, profile: ModelProfile, fault: FaultSpec | None) -> Answer:
        """The answer to `call`. In replay mode the recorded one, unless a refusal or bad_output fault
        replaces it (low_confidence only lowers its logprobs); otherwise a composed one."""
        kind = fault.kind if fault is not None else None
        if self.replay is not None and kind not in (FaultKind.REFUSAL, FaultKind.BAD_OUTPUT):
            low = fault is not None and kind is FaultKind.LOW_CONFIDENCE
            mean = fault.mean_logprob if low and fault is not None else profile.confidence
            replayed = self.replay.answer(call, profile, mean)
            if replayed is not None:
                return replayed
        return compose_answer(call, profile, self.config.seed, fault)

    def next_completion_id(self) -> str:
        return f"chatcmpl-sim{next(self._ids):020d}"

    async def pause(self, seconds: float) -> None:
        """Sleep, skipping the call entirely for zero delays (time_scale 0 makes every delay zero)."""
        if seconds > 0:
            await self.sleep(seconds)


STATE: web.AppKey[SimState] = web.AppKey("turnout_simulator_state", SimState)
