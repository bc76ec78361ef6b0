"""`turnout-simulator --config FILE [--host H] [--port P]` (or `python -m turnout_simulator`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from turnout_simulator.config import SimulatorConfigError, load_simulator_config
from turnout_simulator.server import Simulator, serve_forever


def _announce(simulator: Simulator) -> None:
    # "listening on host:port", as the sidecar says it: scripts wait for that line.
    print(
        f"turnout-simulator: listening on {simulator.host}:{simulator.port} ({simulator.base_url})",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="turnout-simulator",
        description="A fake LLM provider (OpenAI, Anthropic, Gemini, Bedrock wire formats).",
    )
    parser.add_argument(
        "--config", required=True, help="the simulator YAML file (e.g. examples/simulator.yaml)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8400)
    args = parser.parse_args(argv)
    try:
        config = load_simulator_config(args.config)
    except SimulatorConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_forever(config, args.host, args.port, on_ready=_announce))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
