"""The sidecar as a real process: the CLI client against it, and graceful shutdown under load."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.request

import grpc

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.processes import free_port, put_first, rewrite_config, serve, wait_for_line
from tests.server.helpers import generate_request

FAST = {"seed": 1, "time_scale": 0.05}
# Every answer takes about 1.5 s, so that requests are surely in flight when SIGTERM arrives.
SLOW = {
    "seed": 1,
    "time_scale": 1.0,
    "default_profile": {"ttft_ms": 1500, "tokens_per_second": 400, "jitter": 0.0, "tail_probability": 0.0},
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_generate_cli_prints_answer_with_decision_usage_cost_and_attempts(tmp_path):
    with serve(tmp_path, FAST) as served:
        result = cli(
            "generate", "--target", served.address, "--json", "--task-type", "classify", "Spam or ham?"
        )
        assert result.returncode == 0, result.stderr
        response = json.loads(result.stdout)
        assert response["output"]["text"]
        assert response["model"] == "gpt-4.1-nano"
        assert response["decision"]["model"] == "gpt-4.1-nano"
        assert int(response["usage"]["inputTokens"]) > 0
        assert int(response["costUsdNanos"]) > 0
        assert response["attempts"][0]["outcome"] == "ATTEMPT_OUTCOME_SUCCESS"

        human = cli("generate", "--target", served.address, "--stream", "Tell me a story")
        assert human.returncode == 0, human.stderr
        assert "served by gpt-4o-mini" in human.stderr
        assert "attempt 1: gpt-4o-mini success" in human.stderr

        decision = cli("route", "--target", served.address, "--tier", "enterprise", "hello")
        assert decision.returncode == 0
        assert "decision: gpt-4o via route 'default'" in decision.stderr

        models = cli("models", "--target", served.address)
        assert "gemini-2.5-pro" in models.stdout

        bad = cli("generate", "--target", served.address, "--model", "gpt-99", "hi")
        assert bad.returncode == 1
        assert "NOT_FOUND" in bad.stderr
        assert "hints.pinned_model" in bad.stderr


def test_sigterm_lets_50_in_flight_requests_finish_then_exits_0(tmp_path):
    with serve(tmp_path, SLOW) as served:

        async def load() -> list[pb.GenerateResponse]:
            async with grpc.aio.insecure_channel(served.address) as channel:
                stub = pb_grpc.RouterServiceStub(channel)
                calls = [
                    asyncio.ensure_future(stub.Generate(generate_request(f"question {i}"), timeout=30))
                    for i in range(50)
                ]
                await asyncio.sleep(0.7)  # all 50 are now waiting on the simulator
                served.process.send_signal(signal.SIGTERM)
                return await asyncio.gather(*calls)

        responses = asyncio.run(load())
        assert len(responses) == 50
        assert all(r.output.text and r.model for r in responses)
        assert served.process.wait(timeout=30) == 0
        output = "".join(served.lines) + (served.process.stdout.read() if served.process.stdout else "")
        assert "stopping; in-flight requests have 30s to finish" in output


def test_a_taken_port_is_a_clear_error_not_a_traceback(tmp_path):
    with serve(tmp_path, FAST) as served:
        port = served.address.rsplit(":", 1)[1]
        config = tmp_path / "turnout.yaml"
        result = cli("serve", "--config", str(config), "--port", port)
        assert result.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in result.stderr
        assert "Traceback" not in result.stderr


def test_probe_and_metrics_flags_place_those_listeners_and_a_taken_probe_port_is_a_clear_error(
    tmp_path,
):
    probe, metrics = free_port(), free_port()
    with serve(tmp_path, FAST, "--probe-port", str(probe), "--metrics-port", str(metrics)) as served:
        output = "".join(served.lines)
        assert f"probes: /livez, /readyz and /startupz at http://127.0.0.1:{probe}" in output
        assert f"Prometheus metrics at http://127.0.0.1:{metrics}/metrics" in output
        for path in ("/livez", "/readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{probe}{path}", timeout=5) as response:
                assert (response.status, response.read()) == (200, b"ok\n")

        taken = cli("serve", "--config", str(tmp_path / "turnout.yaml"), "--probe-port", str(probe))
        assert taken.returncode == 1
        assert f"turnout: cannot listen for probes on 127.0.0.1:{probe} (server.probe_host" in taken.stderr
        assert "Traceback" not in taken.stderr

        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=30) == 0


def test_sighup_reloads_the_config_and_a_broken_file_leaves_the_old_one_serving(tmp_path):
    config = tmp_path / "turnout.yaml"
    with serve(tmp_path, FAST, "--reload-interval", "0") as served:  # no polling: only SIGHUP reloads

        def first_choice() -> str:
            result = cli("route", "--target", served.address, "hello")
            assert result.returncode == 0, result.stderr
            return result.stderr.split("decision: ", 1)[1].split(" ", 1)[0]

        assert first_choice() == "gpt-4o-mini"
        rewrite_config(config, lambda raw: put_first(raw, "claude-3-5-haiku"))
        served.process.send_signal(signal.SIGHUP)
        reloaded = wait_for_line(served, "config reloaded:")
        assert f"INFO sidecar.reload: config reloaded: {config} (sha256 " in reloaded
        assert first_choice() == "claude-3-5-haiku"

        config.write_text("version: 1\nproviders: []\nmodels: []\n")
        served.process.send_signal(signal.SIGHUP)
        rejected = wait_for_line(served, "config reload rejected:")
        assert (
            f"ERROR sidecar.reload: config reload rejected: {config}: invalid config: providers: " in rejected
        )
        assert "still serving the config loaded at " in rejected
        assert first_choice() == "claude-3-5-haiku"
        assert served.process.poll() is None


def test_the_startup_heap_is_frozen_out_of_the_garbage_collectors_scans():
    """`turnout serve` freezes what start-up built, so a full collection under load scans only
    what requests made, and collects the young generation less often (see process._freeze_startup_heap
    and GC_YOUNG_THRESHOLD for the measurements)."""
    import gc

    from sidecar import process

    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    try:
        process._freeze_startup_heap()
        assert gc.get_freeze_count() > 10_000  # the interpreter's and the sidecar's modules at least
        assert gc.get_threshold() == (process.GC_YOUNG_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
