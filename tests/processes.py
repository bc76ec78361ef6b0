"""Run `turnout serve --simulator` as a real process, the way `make run` does, for end-to-end tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import EXAMPLE_CONFIG, point_at_simulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[str]
    address: str
    lines: list[str]


def write_configs(
    tmp: Path, simulator: dict, sim_port: int, edit: Callable[[dict], None] | None = None, **server: object
) -> tuple[Path, Path]:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, f"http://127.0.0.1:{sim_port}")
    raw["server"].update({"port": 0, **server})
    if edit is not None:
        edit(raw)
    config, sim_config = tmp / "turnout.yaml", tmp / "simulator.yaml"
    config.write_text(yaml.safe_dump(raw))
    sim_config.write_text(yaml.safe_dump(simulator))
    return config, sim_config


def rewrite_config(path: Path, edit: Callable[[dict], None]) -> None:
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw))


def put_first(raw: dict, model: str, route: int = 0) -> None:
    """Make `model` a route's first choice for requests that match no rule (its default list or pool)."""
    spec = raw["routes"][route]
    key = "default_models" if "default_models" in spec else "models"
    spec[key] = [model, *(m for m in spec[key] if m != model)]


def drop_provider(raw: dict, name: str) -> None:
    """Remove a provider, its models, and every mention of those models in the routes."""
    gone = {m["name"] for m in raw["models"] if m["provider"] == name}
    raw["providers"] = [p for p in raw["providers"] if p["name"] != name]
    raw["models"] = [m for m in raw["models"] if m["provider"] != name]
    raw["routes"] = _without(raw["routes"], gone)
    if raw.get("telemetry", {}).get("reference_model") in gone:
        del raw["telemetry"]["reference_model"]


def _without(node: object, names: set[str]) -> object:
    if isinstance(node, list):
        return [_without(item, names) for item in node if not (isinstance(item, str) and item in names)]
    if isinstance(node, dict):  # a mapping keyed by model names (predicted_success) loses them too
        return {key: _without(value, names) for key, value in node.items() if key not in names}
    return node


@contextmanager
def serve(
    tmp: Path, simulator: dict, *extra: str, edit: Callable[[dict], None] | None = None, **server: object
) -> Iterator[Served]:
    """Start the sidecar with an embedded simulator; yield once it prints where it listens.

    `edit`, if given, changes the config (as a dict) before the sidecar reads it."""
    sim_port = free_port()
    config, sim_config = write_configs(tmp, simulator, sim_port, edit, **server)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sidecar",
            "serve",
            "--config",
            str(config),
            "--simulator",
            str(sim_config),
            "--simulator-port",
            str(sim_port),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        address = _wait_for_address(process, lines)
        yield Served(process, address, lines)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def _wait_for_address(process: subprocess.Popen[str], lines: list[str], timeout_s: float = 30) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("turnout serve exited before listening:\n" + "".join(lines))
        lines.append(line)
        match = re.search(r"listening on (\S+:\d+)", line)
        if match:
            return match.group(1)
    raise AssertionError("turnout serve did not start in time:\n" + "".join(lines))


def wait_for_line(served: Served, needle: str, timeout_s: float = 10) -> str:
    """Read the process's output until a line contains `needle`; the lines read join `served.lines`."""
    found: list[str] = []
    stdout = served.process.stdout
    assert stdout is not None

    def read() -> None:
        try:
            for line in stdout:
                served.lines.append(line)
                if needle in line:
                    found.append(line)
                    return
        except ValueError:  # the pipe was closed under us: the test is over
            return

    # A thread, because a blocking readline has no timeout; it ends with the process at the latest.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not found:
        raise AssertionError(f"no line with {needle!r} in the output:\n" + "".join(served.lines))
    return found[0]
