"""`make clients-test`: every client package's own tests against one live sidecar.

Starts `turnout serve` with the example config and the built-in provider simulator (no API key) on
free loopback ports, with a unix socket beside it, and runs `make -C clients/<language> test` for
each language with TURNOUT_ADDRESS, TURNOUT_UNIX_SOCKET and TURNOUT_REQUIRE_LIVE=1 (so a live test
fails, not skips, when it cannot reach the sidecar). Each client's tool chain is installed first
(`make -C clients/<language> tools`: pinned, cached), so installs do not count against the tests.
One language failing does not stop the others; the exit status is 1 if any failed, and the
sidecar's log is printed then.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("python", "go", "typescript", "java")
START_TIMEOUT_S = 60.0
METRICS_LINE = re.compile(r"prometheus: \{enabled: true, host: 127\.0\.0\.1, port: \d+\}")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def sidecar_config(work: Path, sim_port: int, metrics_port: int) -> Path:
    """examples/turnout.yaml with the simulator and the metrics moved to free ports."""
    text = (ROOT / "examples" / "turnout.yaml").read_text()
    text = text.replace("127.0.0.1:8400", f"127.0.0.1:{sim_port}")
    text, moved = METRICS_LINE.subn(
        f"prometheus: {{enabled: true, host: 127.0.0.1, port: {metrics_port}}}", text
    )
    if moved != 1:
        sys.exit("clients-test: could not move the metrics port in a copy of examples/turnout.yaml")
    path = work / "turnout.yaml"
    path.write_text(text)
    return path


def wait_serving(address: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sidecar exited with {process.returncode} before serving")
        try:
            with grpc.insecure_channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as exc:
            last = f"{exc.code().name}: {exc.details()}"
        time.sleep(0.2)
    raise RuntimeError(f"the sidecar at {address} was not SERVING after {START_TIMEOUT_S:.0f} s: {last}")


def run(step: str, command: list[str], env: dict[str, str] | None = None) -> tuple[bool, float]:
    print(f"\n=== {step}: {' '.join(command)}", flush=True)
    started = time.monotonic()
    ok = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode == 0
    return ok, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("languages", nargs="*", help=f"some of {', '.join(LANGUAGES)} (default: all)")
    languages = parser.parse_args().languages or list(LANGUAGES)
    if unknown := sorted(set(languages) - set(LANGUAGES)):
        parser.error(f"no client for {', '.join(unknown)}; the clients are {', '.join(LANGUAGES)}")

    results: dict[str, tuple[bool, float, float]] = {}
    tools_time: dict[str, tuple[bool, float]] = {}
    for language in languages:
        tools_time[language] = run(f"{language}: tools", ["make", "-C", f"clients/{language}", "tools"])

    grpc_port, sim_port, metrics_port = free_ports(3)
    with tempfile.TemporaryDirectory(prefix="turnout-clients-") as tmp:
        work = Path(tmp)
        config = sidecar_config(work, sim_port, metrics_port)
        sock = work / "turnout.sock"
        log = (work / "sidecar.log").open("wb")
        address = f"127.0.0.1:{grpc_port}"
        serve = [
            str(ROOT / ".venv" / "bin" / "turnout"), "serve",
            "--config", str(config), "--port", str(grpc_port),
            "--unix-socket", str(sock), "--simulator", str(ROOT / "examples" / "simulator.yaml"),
            "--simulator-port", str(sim_port), "--reload-interval", "0",
        ]  # fmt: skip
        print(f"=== sidecar: {address} and unix:{sock}, simulator on 127.0.0.1:{sim_port}", flush=True)
        process = subprocess.Popen(serve, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_serving(address, process)
            env = {
                **os.environ,
                "TURNOUT_ADDRESS": address,
                "TURNOUT_UNIX_SOCKET": str(sock),
                "TURNOUT_REQUIRE_LIVE": "1",
            }
            for language in languages:
                if not tools_time[language][0]:
                    results[language] = (False, tools_time[language][1], 0.0)
                    continue
                ok, took = run(f"{language}: test", ["make", "-C", f"clients/{language}", "test"], env)
                results[language] = (ok, tools_time[language][1], took)
        except RuntimeError as exc:
            print(f"clients-test: {exc}", file=sys.stderr)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
        failed = [lang for lang in languages if not results.get(lang, (False,))[0]]
        print("\n| client | result | tools | tests |\n|---|---|---:|---:|")
        for language in languages:
            ok, tools_s, test_s = results.get(language, (False, tools_time[language][1], 0.0))
            print(f"| {language} | {'passed' if ok else 'FAILED'} | {tools_s:.0f} s | {test_s:.0f} s |")
        if failed or process.returncode not in (0, None):
            print(f"\nthe sidecar's log ({process.returncode=}):", file=sys.stderr)
            sys.stderr.write((work / "sidecar.log").read_text(errors="replace")[-20_000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
