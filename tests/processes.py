"""Run `turnout serve --simulator` as a real process, the way `make run` does, for end-to-end tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import EXAMPLE_CONFIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[str]
    address: str
    lines: list[str]


def write_configs(tmp: Path, simulator: dict, sim_port: int, **server: object) -> tuple[Path, Path]:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    for provider in raw["providers"]:
        provider["base_url"] = f"http://127.0.0.1:{sim_port}/v1"
    raw["server"].update({"port": 0, **server})
    config, sim_config = tmp / "turnout.yaml", tmp / "simulator.yaml"
    config.write_text(yaml.safe_dump(raw))
    sim_config.write_text(yaml.safe_dump(simulator))
    return config, sim_config


@contextmanager
def serve(tmp: Path, simulator: dict, *extra: str, **server: object) -> Iterator[Served]:
    """Start the sidecar with an embedded simulator; yield once it prints where it listens."""
    sim_port = free_port()
    config, sim_config = write_configs(tmp, simulator, sim_port, **server)
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
