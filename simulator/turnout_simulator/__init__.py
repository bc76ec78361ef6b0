"""A fake LLM provider speaking the OpenAI Chat Completions wire format, with latency and faults.

Used by demos, tests and benchmarks so nothing needs an API key. It imports nothing else of `sidecar`:
it stands in for a provider across the network, so it must not share the sidecar's code or assumptions.

    sim = await start_simulator(load_simulator_config("examples/simulator.yaml"))
    client = openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-anything")
    ...
    await sim.close()
"""

from turnout_simulator.config import (
    FaultKind,
    FaultSpec,
    ModelProfile,
    SimulatorConfig,
    SimulatorConfigError,
    load_simulator_config,
)
from turnout_simulator.server import Simulator, build_app, serve_forever, start_simulator

__all__ = [
    "FaultKind",
    "FaultSpec",
    "ModelProfile",
    "Simulator",
    "SimulatorConfig",
    "SimulatorConfigError",
    "build_app",
    "load_simulator_config",
    "serve_forever",
    "start_simulator",
]
