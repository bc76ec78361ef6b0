"""A real redis-server on a free loopback port, which a test can kill and start again.

The binary is the Debian package `redis-server` that `make test-deps` installs (or
TURNOUT_REDIS_BIN). No persistence (`--save '' --appendonly no`): a restart comes back empty, the
harshest case for the counters' reconciliation.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.integration.services import ServiceFailed, ToolMissing, free_port


def redis_binary() -> str:
    path = os.environ.get("TURNOUT_REDIS_BIN") or shutil.which("redis-server")
    if not path:
        raise ToolMissing("redis-server is not installed (make test-deps installs the Debian package)")
    return path


class RedisServer:
    def __init__(self, binary: str, workdir: Path) -> None:
        self._binary = binary
        self._workdir = workdir
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self._workdir / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        tail = (self._workdir / "redis.log").read_text(errors="replace")[-2000:]
        self.kill()
        raise ServiceFailed(f"redis-server on port {self.port} did not come up:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: the store vanishes mid-request, as in a crash."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
