"""`turnout` command line: serve | simulate | validate-config | route | generate | models | budgets."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from turnout_simulator import Simulator

    from sidecar.app import ListenOverrides
    from sidecar.config import Config

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_SIMULATOR_PORT = 8400


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # e.g. `turnout models | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    return code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="turnout", description="Turnout: a per-pod LLM routing sidecar.")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the sidecar (gRPC)")
    serve.add_argument("--config", required=True, help="the YAML config file")
    serve.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="listen port (default: server.port, 50051)")
    serve.add_argument("--unix-socket", help="also listen on this unix socket path")
    serve.add_argument(
        "--probe-host",
        help="HTTP probe address, e.g. the pod IP or 0.0.0.0 for kubelet (default: server.probe_host, "
        "127.0.0.1)",
    )
    serve.add_argument(
        "--probe-port",
        type=_port,
        help="serve /livez, /readyz and /startupz over HTTP on this port; 0: a free one "
        "(default: server.probe_port, off)",
    )
    serve.add_argument(
        "--http-host",
        help="the OpenAI/Anthropic-compatible HTTP API's address (default: server.http_host, 127.0.0.1)",
    )
    serve.add_argument(
        "--http-port",
        type=_port,
        help="serve the OpenAI- and Anthropic-compatible HTTP API (/v1/chat/completions, /v1/messages, "
        "/v1/models) on this port; 0: off (default: server.http_port, off)",
    )
    serve.add_argument(
        "--metrics-host",
        help="Prometheus scrape address, when telemetry.prometheus.enabled "
        "(default: telemetry.prometheus.host, 127.0.0.1)",
    )
    serve.add_argument(
        "--metrics-port",
        type=_port,
        help="Prometheus scrape port (default: telemetry.prometheus.port, 9464)",
    )
    serve.add_argument(
        "--allow-remote-metrics",
        action="store_true",
        default=None,
        help="let --metrics-host be off loopback, e.g. 0.0.0.0 for Prometheus to scrape the pod IP "
        "(read-only aggregates; default: telemetry.prometheus.allow_remote, false)",
    )
    serve.add_argument(
        "--simulator",
        metavar="FILE",
        help="also run the built-in provider simulator in-process with this simulator config",
    )
    serve.add_argument("--simulator-port", type=int, default=DEFAULT_SIMULATOR_PORT)
    serve.add_argument(
        "--reload-interval",
        type=_non_negative_seconds,
        metavar="SECONDS",
        help="check the config file for changes this often; 0: only on SIGHUP "
        "(default: server.reload_interval_s, 1)",
    )
    serve.set_defaults(run=_serve)

    sim = sub.add_parser("simulate", help="run the provider simulator (OpenAI wire format)")
    sim.add_argument("--config", required=True, help="the simulator YAML file")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=DEFAULT_SIMULATOR_PORT)
    sim.set_defaults(run=_simulate)

    check = sub.add_parser("validate-config", help="check a config file and exit")
    check.add_argument("file")
    check.set_defaults(run=_validate)

    from sidecar.offline.evaluation.command import add_eval_arguments  # standard library only: no numpy here

    evaluate = sub.add_parser(
        "eval", help="replay a scored dataset through a router offline: quality vs cost"
    )
    add_eval_arguments(evaluate)
    evaluate.set_defaults(run=_eval)

    from sidecar.offline.training.command import (
        add_train_command,  # numpy / scikit-learn load only in `train`
    )

    add_train_command(sub)

    from sidecar.client import add_client_commands

    add_client_commands(sub, DEFAULT_TARGET)
    return p


def _eval(args: argparse.Namespace) -> int:
    from sidecar.offline.evaluation.command import run_eval

    return run_eval(args)


def _serve(args: argparse.Namespace) -> int:
    from sidecar.app import ListenOverrides
    from sidecar.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if config.telemetry.request_log:
        from sidecar.telemetry import log_requests_to

        log_requests_to(sys.stderr)  # bare JSON lines, not the human log format
    overrides = ListenOverrides(
        host=args.host,
        port=args.port,
        unix_socket=args.unix_socket,
        probe_host=args.probe_host,
        probe_port=args.probe_port,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        allow_remote_metrics=args.allow_remote_metrics,
        http_host=args.http_host,
        http_port=args.http_port,
    )
    try:
        asyncio.run(_serving(config, overrides, args))
    except ConfigError as exc:  # listen addresses off loopback without a token or TLS
        print(exc, file=sys.stderr)
        return 2
    except (OSError, _CannotSimulate) as exc:
        print(f"turnout: {exc}", file=sys.stderr)
        return 1
    return 0


_NOT_INSTALLED = "the provider simulator is not installed: pip install ./simulator (make install does)"


class _CannotSimulate(Exception):
    """`--simulator` was asked for and cannot run: not installed, or its config is invalid."""


async def _serving(config: Config, overrides: ListenOverrides, args: argparse.Namespace) -> None:
    """The sidecar until a signal stops it, with the provider simulator beside it if asked for.

    The simulator is a separate package (simulator/) that stands in for providers across the
    network; the sidecar never imports it, only this command line does, and only when asked."""
    from sidecar.process import serve_until_signalled

    simulator = await _start_simulator(args.simulator, args.simulator_port) if args.simulator else None
    try:
        await serve_until_signalled(
            config, overrides, announce=_announce, reload_interval_s=args.reload_interval
        )
    finally:
        if simulator is not None:
            await simulator.close()


async def _start_simulator(config_path: str, port: int) -> Simulator:
    try:
        from turnout_simulator import SimulatorConfigError, load_simulator_config, start_simulator
    except ImportError:
        raise _CannotSimulate(f"--simulator: {_NOT_INSTALLED}") from None
    try:
        sim_config = load_simulator_config(config_path)
    except SimulatorConfigError as exc:
        raise _CannotSimulate(str(exc)) from None
    try:
        simulator = await start_simulator(sim_config, "127.0.0.1", port)
    except OSError as exc:
        raise OSError(f"cannot start the simulator on 127.0.0.1:{port}: {exc.strerror}") from None
    _announce(f"simulator: serving the OpenAI wire format at {simulator.base_url}")
    return simulator


def _simulate(args: argparse.Namespace) -> int:
    try:
        from turnout_simulator import SimulatorConfigError, load_simulator_config, serve_forever
    except ImportError:
        print(f"turnout: {_NOT_INSTALLED}", file=sys.stderr)
        return 1

    try:
        config = load_simulator_config(args.config)
    except SimulatorConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    asyncio.run(serve_forever(config, args.host, args.port))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from sidecar.config import ConfigError, load_config

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"{args.file}: OK: {len(config.registry.models)} models, {len(config.providers)} providers, "
        f"{len(config.routes)} routes (default route {config.default_route!r})"
    )
    return 0


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, not {text}")
    return value


def _announce(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
