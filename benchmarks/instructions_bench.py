"""Instructions per Route call in process, telemetry on vs off, counted by valgrind: a figure that
does not drift.

Throughput on this shared 2-core machine drifts by several percent over seconds, so a telemetry
change of a few percent is lost in it (rpc_bench measures it in interleaved slices, ±2-3%). The
CPU instructions a call executes do not drift: valgrind's cachegrind counts them exactly, and two
runs of the same code agree within about 1%. What is counted: the sidecar's Route handler called
in process (the request parsed from its bytes, checked, routed through the decision cache, the
response built), with telemetry's request-path hooks, its recording drained every DRAIN_EVERY
calls as the event loop would, and its spans encoded as the OTLP exporter encodes them (on the
exporter's thread; not sent). Not counted: gRPC's C core and asyncio's network work, the same with
telemetry on or off, so the on/off ratio here is larger than the throughput's.

Each variant runs in its own process under `valgrind --tool=cachegrind --cache-sim=no`, twice,
with LOW and HIGH calls; the difference over HIGH - LOW calls is the steady-state count per call
(start-up, imports and the warm-up cancel out). PYTHONHASHSEED is fixed so both runs lay out
their dicts alike. Needs valgrind (Debian: apt-get install valgrind; scripts/bench-deps.sh
installs it); the section is skipped, with the reason, without it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import sidecar.telemetry.pending as pending
from benchmarks.workload import TELEMETRY_OFF, TELEMETRY_ON, config_dict, route_request_json
from sidecar import app, process
from sidecar.config import parse_config
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server.servicer import RouterServicer
from sidecar.telemetry import log_requests_to, setup
from sidecar.telemetry.fast import PIECES

# name -> (telemetry block, extra environment); the first is the reference
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "off": (TELEMETRY_OFF, {}),
    "metrics and log, no traces": ({**TELEMETRY_ON, "traces": "none"}, {}),
    "default: 10% of root traces": (TELEMETRY_ON, {}),
    "all traces": (TELEMETRY_ON, {"OTEL_TRACES_SAMPLER": "always_on"}),
    # What each piece of the fast path buys (docs/decisions/030-telemetry-fast-path.md), by default
    "default, plain SDK (fast_path: false)": ({**TELEMETRY_ON, "fast_path": False}, {}),
    **{
        f"default, without {piece}": ({**TELEMETRY_ON, "fast_path": [p for p in PIECES if p != piece]}, {})
        for piece in PIECES
    },
}
WARMUP = 300
DRAIN_EVERY = 16  # calls between drains: about what one 5 ms drain delay holds at ~3,000 calls/s
LOW, HIGH = 500, 1_500
QUICK_LOW, QUICK_HIGH = 100, 300
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


HEADLINE = ("metrics and log, no traces", "default: 10% of root traces", "all traces")


def run(quick: bool, only: Sequence[str] = HEADLINE) -> dict[str, Any]:
    """ "off" and the variants named in `only` (none: every variant)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {
            "skipped": "valgrind is not installed (Debian: apt-get install valgrind; scripts/bench-deps.sh)"
        }
    low, high = (QUICK_LOW, QUICK_HIGH) if quick else (LOW, HIGH)
    names = [name for name in VARIANTS if not only or name == "off" or name in only]
    runs = [(name, calls) for name in names for calls in (low, high)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # each run is one process
        counts = dict(zip(runs, pool.map(lambda r: _count(valgrind, *r), runs), strict=True))
    per_call = {name: round((counts[name, high] - counts[name, low]) / (high - low)) for name in names}
    reference = per_call["off"]
    return {
        "calls": [low, high],
        "drain_every": DRAIN_EVERY,
        "instructions_per_call": per_call,
        "over_off": {name: round(v / reference, 3) for name, v in per_call.items() if name != "off"},
        "telemetry_instructions": {name: v - reference for name, v in per_call.items() if name != "off"},
    }


def _count(valgrind: str, variant: str, calls: int) -> int:
    """Instructions of one whole child process (start-up included) with `calls` Route calls."""
    argv = [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    argv += [sys.executable, "-m", "benchmarks.instructions_bench", "--child", variant, str(calls)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=900)
    found = _REFS.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run of {variant!r} failed ({out.returncode}): {out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


async def _child(variant: str, calls: int) -> None:
    """Route `calls` times in process after a warm-up, draining the recording every DRAIN_EVERY."""
    telemetry, env = VARIANTS[variant]
    os.environ.update(env)
    # Spans are encoded as the OTLP exporter encodes them, then dropped (_EncodeOnly: a network
    # export's polling and retries would add instructions that depend on timing), in full batches
    # and at the end, not on a timer, and none is dropped from a full queue (how many would be
    # depends on timing too); the drains happen here, every DRAIN_EVERY calls, not on a timer that
    # valgrind's slowness would move.
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "3600000"
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "10000000"  # none dropped when the exporter falls behind
    pending.DRAIN_DELAY_S = 3600.0
    raw = config_dict(cache=True)
    raw["default_route"] = "bench"
    raw["telemetry"] = telemetry
    config = parse_config(raw, source="instructions_bench", env=dict(os.environ))
    _log_to_devnull()
    request = json_format.ParseDict(route_request_json(), pb.RouteRequest()).SerializeToString()
    made: list[Any] = []

    class Kept(RouterServicer):  # the sidecar's servicer, kept to be called directly
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    with (
        mock.patch.object(app, "RouterServicer", Kept),
        mock.patch.object(setup, "_span_exporter", _encode_only),
    ):
        sidecar = app.Sidecar(config, app.ListenOverrides(host="127.0.0.1", port=0))
        await sidecar.start()
    process._freeze_startup_heap()  # as `turnout serve` does after start (its garbage-collector settings)
    [servicer] = made
    context = _Context()
    for i in range(WARMUP + calls):
        await servicer.Route(pb.RouteRequest.FromString(request), context)
        if i % DRAIN_EVERY == DRAIN_EVERY - 1:
            sidecar.telemetry.drain()
    sidecar.telemetry.sdk.flush()  # every span encoded: the same spans in every run
    os._exit(0)


class _EncodeOnly(SpanExporter):
    """The OTLP/gRPC exporter's work on the sidecar's side without sending it: the spans encoded
    by the SDK's encoder and serialised."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS


def _encode_only(choice: str, protocol: str) -> SpanExporter | None:
    """setup._span_exporter for this bench: _EncodeOnly where the config exports spans."""
    return _EncodeOnly() if choice == "otlp" else None


def _log_to_devnull() -> None:
    """The request log written, as by `turnout serve`, to a file that keeps nothing."""
    log_requests_to(open(os.devnull, "w"))  # noqa: SIM115 - open for the process's life


class _Context:
    """What the servicer asks of a gRPC context on a Route that succeeds."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "grpc-python-asyncio/1.76"),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "CALLS"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only", nargs="*", default=HEADLINE, help="variants to count beside off (given empty: all)"
    )
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child[0], int(args.child[1])))
        return
    import json

    print(json.dumps(run(args.quick, args.only), indent=2))


if __name__ == "__main__":
    main()
