"""Instructions per Generate / GenerateStream call in process, two source trees side by side.

For comparing a change to the request path with the tree before it (decision 020): each (tree,
mode) runs in its own process under `valgrind --tool=cachegrind`, with LOW and HIGH calls after a
warm-up; the difference over HIGH - LOW calls is the steady-state count per call. Every provider
adapter is replaced by an instant in-process answer, so what is counted is the sidecar's own work:
request parsing, policy, the executor (race, attempt stack, ledger), response building and
telemetry's request-path hooks. Spans are neither exported nor encoded (see instructions_bench.py
for that); the recording is drained every DRAIN_EVERY calls.

    python -m benchmarks.generate_instructions_bench OLD_TREE NEW_TREE [--modes generate-off,...]

A tree is a directory holding `sidecar/` and `benchmarks/` (e.g. `git archive REV | tar -x -C
DIR`); it is put first on PYTHONPATH, so the installed venv supplies only the dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

WARMUP = 300
LOW, HIGH = 400, 1_200
DRAIN_EVERY = 16
MODES = ("generate-off", "generate-default", "stream-off")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


class _Context:
    """What the servicer asks of a gRPC context on a call that succeeds; a failure is a bench bug."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "grpc-python-asyncio/1.76"),)

    def time_remaining(self) -> float | None:
        return None

    def set_code(self, code: Any) -> None:
        raise AssertionError(f"the call failed: {code}")

    def set_details(self, details: str) -> None:
        raise AssertionError(f"the call failed: {details}")

    async def abort(self, code: Any, details: str = "") -> None:
        raise AssertionError(f"the call failed: {code}: {details}")


async def _child(mode: str, calls: int) -> None:
    """Call Generate (or GenerateStream) `calls` times in process after a warm-up."""
    from google.protobuf import json_format

    import sidecar.telemetry.pending as pending
    from benchmarks.workload import TELEMETRY_OFF, TELEMETRY_ON, config_dict, route_request_json
    from sidecar import app

    try:  # where the adapters are built: runtime.py since issue 22, app.py before (an older tree)
        from sidecar import runtime
    except ImportError:
        runtime = app  # type: ignore[assignment,no-redef]
    from sidecar.config import parse_config
    from sidecar.domain.response import Completion, FinishReason, Usage
    from sidecar.providers.base import MockAdapter
    from sidecar.server._proto.turnout.v1 import router_pb2 as pb
    from sidecar.server.servicer import RouterServicer
    from sidecar.telemetry import log_requests_to

    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "3600000"  # no export on a timer valgrind's pace would move
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "10000000"
    pending.DRAIN_DELAY_S = 3600.0
    raw = config_dict(cache=True)
    raw["default_route"] = "bench"
    raw["telemetry"] = TELEMETRY_ON if mode.endswith("default") else TELEMETRY_OFF
    config = parse_config(raw, source="generate_instructions_bench", env=dict(os.environ))
    log_requests_to(open(os.devnull, "w"))  # noqa: SIM115, ASYNC230 - open for the process's life, at start
    answer = Completion("Your order 12345 ships tomorrow.", FinishReason.STOP, Usage(40, 8))
    made: list[Any] = []

    class Kept(RouterServicer):  # the sidecar's servicer, kept to be called directly
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    with (
        mock.patch.object(app, "RouterServicer", Kept),
        mock.patch.object(runtime, "build_adapter", return_value=MockAdapter(lambda call: answer)),
    ):
        sidecar = app.Sidecar(config, app.ListenOverrides(host="127.0.0.1", port=0))
        await sidecar.start()
    [servicer] = made
    context = _Context()
    stream = mode.startswith("stream")
    message = pb.GenerateStreamRequest() if stream else pb.GenerateRequest()
    data = json_format.ParseDict(route_request_json(), message).SerializeToString()
    for i in range(WARMUP + calls):
        if stream:
            events = [
                e async for e in servicer.GenerateStream(pb.GenerateStreamRequest.FromString(data), context)
            ]
            assert events[-1].HasField("end")
        else:
            response = await servicer.Generate(pb.GenerateRequest.FromString(data), context)
            assert response is not None
            assert response.output.text
        if i % DRAIN_EVERY == DRAIN_EVERY - 1:
            sidecar.telemetry.drain()
    os._exit(0)  # the count ends here: no shutdown in it


def _count(tree: Path, mode: str, calls: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    # This file, run by path: the tree under test need not have it (an old tree does not).
    args = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(calls)]
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    done = subprocess.run([*valgrind, *args], capture_output=True, text=True, env=env, cwd=tree, check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{tree} {mode} {calls}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old", type=Path, nargs="?")
    parser.add_argument("new", type=Path, nargs="?")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child[0], int(args.child[1])))
        return
    if args.old is None or args.new is None:
        parser.error("give the old and the new tree")
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    modes = args.modes.split(",")
    jobs = [(name, mode, n) for mode in modes for name in trees for n in (LOW, HIGH)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # each count is its own process
        counts = dict(zip(jobs, pool.map(lambda j: _count(trees[j[0]], j[1], j[2]), jobs), strict=True))
    for mode in modes:
        per = {
            name: (counts[(name, mode, HIGH)] - counts[(name, mode, LOW)]) / (HIGH - LOW) for name in trees
        }
        print(
            f"{mode}: old {per['old']:,.0f} instructions/call, new {per['new']:,.0f}, "
            f"new/old {per['new'] / per['old']:.4f}"
        )


if __name__ == "__main__":
    main()
