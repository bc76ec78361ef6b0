"""The chart's sidecar, run as the chart writes it: the args and environment that `helm template`
renders for the native sidecar start `turnout serve` (kubelet's probe paths answer on the probe port,
the app's call on 127.0.0.1 goes through, SIGTERM exits 0), and every alert of the rendered
PrometheusRule is PromQL that a real Prometheus scraping that sidecar evaluates: the breaker alert
finds the model whose breaker the test opened.

Only loopback: the chart's 0.0.0.0 listen addresses (the pod IP) become 127.0.0.1 here; the flag
that lets the metrics host leave loopback (--allow-remote-metrics) is passed as rendered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import yaml

from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import point_at_simulator
from tests.integration.conftest import require
from tests.integration.services import Prometheus, free_port, helm_binary, http_get
from tests.server.helpers import generate_request

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "turnout"
NAMESPACE = "shop"


def render(helm: str, **values: Any) -> dict[str, dict[str, Any]]:
    """`helm template` of the chart: the rendered objects by kind (one of each here)."""
    argv = [helm, "template", "t", str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.29.0"]
    for key, value in values.items():  # --set-json: --set would pass 0.01 as a string
        argv += ["--set-json", f"{key}={json.dumps(value)}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    return {doc["kind"]: doc for doc in yaml.safe_load_all(out) if doc}


@contextmanager
def run_rendered_sidecar(rendered: dict[str, dict[str, Any]], tmp: Path, sim_port: int) -> Iterator[Any]:
    """Start `turnout serve` with the rendered init container's args and literal env values."""
    container = rendered["Deployment"]["spec"]["template"]["spec"]["initContainers"][0]
    config = yaml.safe_load(rendered["ConfigMap"]["data"]["turnout.yaml"])
    point_at_simulator(config, f"http://127.0.0.1:{sim_port}")
    config_path = tmp / "turnout.yaml"
    config_path.write_text(yaml.safe_dump(config))
    args = []
    for arg in container["args"]:
        if arg.startswith("--config="):
            arg = f"--config={config_path}"
        elif arg.startswith("--simulator="):
            arg = f"--simulator={ROOT / 'examples' / 'simulator.yaml'}"
        args.append(arg.replace("=0.0.0.0", "=127.0.0.1"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    log = tmp / "sidecar.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sidecar", *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> None:
    """What kubelet's startupProbe does: poll until 200 (connection refused counts as not yet)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"turnout exited {process.returncode}:\n{log.read_text()}")
        try:
            if http_get(url, timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered 200:\n{log.read_text()}")


async def test_the_rendered_sidecar_serves_probes_metrics_and_alerts(prometheus: Prometheus, tmp_path: Path):
    helm = require(helm_binary)
    ports = {name: free_port() for name in ("grpc", "probe", "metrics", "sim")}
    rendered = render(
        helm,
        **{
            "demo.enabled": True,
            "metrics.prometheusRule.enabled": True,
            "metrics.prometheusRule.spendUsdPerHour": 0.01,
            "sidecar.grpcPort": ports["grpc"],
            "sidecar.probePort": ports["probe"],
            "metrics.port": ports["metrics"],
            "sidecar.simulator.port": ports["sim"],
            "sidecar.shutdownGraceSeconds": 5,
            "terminationGracePeriodSeconds": 15,
        },
    )
    probe = f"http://127.0.0.1:{ports['probe']}"
    container = rendered["Deployment"]["spec"]["template"]["spec"]["initContainers"][0]
    # Turnout refuses --metrics-host=0.0.0.0 unless the chart says so deliberately.
    assert {"--metrics-host=0.0.0.0", "--allow-remote-metrics", "--host=127.0.0.1"} <= set(container["args"])
    with run_rendered_sidecar(rendered, tmp_path, ports["sim"]) as process:
        startup = container["startupProbe"]["httpGet"]["path"]
        await asyncio.to_thread(wait_until_ready, probe + startup, process, tmp_path / "sidecar.log")
        for kind in ("readinessProbe", "livenessProbe"):
            assert (await asyncio.to_thread(http_get, probe + container[kind]["httpGet"]["path"]))[0] == 200

        # The app's call, on the gRPC port the chart gives it; then a model whose breaker opens.
        prometheus.set_targets([f"127.0.0.1:{ports['metrics']}"], namespace=NAMESPACE)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            answer = await stub.Generate(generate_request(), timeout=30)
            assert answer.output.text
            async with aiohttp.ClientSession() as session:
                fault = {"model": "gpt-4o-mini", "kind": "server_error", "count": 20}
                async with session.post(f"http://127.0.0.1:{ports['sim']}/_sim/faults", json=fault) as r:
                    assert r.status in (200, 201)
            for _ in range(8):  # each request's first attempt fails on gpt-4o-mini, then falls back
                await stub.Generate(generate_request(), timeout=30)
        await asyncio.to_thread(prometheus.wait_for_up)

        rules = rendered["PrometheusRule"]["spec"]["groups"][0]["rules"]
        assert len(rules) == 7
        for rule in rules:  # every alert's expression is valid PromQL (an error raises)
            await asyncio.to_thread(prometheus.query, rule["expr"])
        by_name = {rule["alert"]: rule["expr"] for rule in rules}
        breaker = await asyncio.to_thread(prometheus.wait_for, by_name["TurnoutBreakerOpen"])
        assert {s["metric"]["turnout_model"] for s in breaker} == {"gpt-4o-mini"}
        fallbacks = await asyncio.to_thread(prometheus.wait_for, by_name["TurnoutHighFallbackRate"])
        assert float(fallbacks[0]["value"][1]) > 0.2
        # The spend alert's hour, shortened to the minute this test has run.
        spend_expr = by_name["TurnoutSpendRateHigh"].replace("[1h]", "[1m]")
        spend = await asyncio.to_thread(prometheus.wait_for, spend_expr)
        assert float(spend[0]["value"][1]) > 0

        # Pod deletion: SIGTERM, readiness off at once, exit 0 within the drain time.
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 15)
        assert code == 0, (tmp_path / "sidecar.log").read_text()
