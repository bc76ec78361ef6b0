"""The HTTP front door at the wire: limits, malformed input, auth, health, hints and the config's checks."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml
from turnout_simulator.config import FaultKind, FaultSpec
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import ConfigError, parse_config
from sidecar.http_api import server
from tests.conftest import EXAMPLE_CONFIG, point_at_simulator
from tests.processes import free_port

TOKEN = "front-door-token-0123456789"
HELLO = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}


def _config(sim: Simulator, env: dict[str, str] | None = None, **server: Any) -> Any:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, sim.root_url)
    raw["server"].update({"http_port": free_port(), "max_request_mb": 0.01, **server})
    return parse_config(raw, source="test", env=env or {})


@pytest.fixture
async def door(simulator: Simulator) -> AsyncIterator[str]:
    running = Sidecar(_config(simulator), ListenOverrides(host="127.0.0.1", port=0))
    await running.start()
    assert running.http is not None
    yield running.http.url
    await running.stop(grace_s=0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def _post(http: aiohttp.ClientSession, url: str, body: Any, **headers: str) -> tuple[int, Any, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(url, data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None), response.headers


async def test_malformed_json_is_a_400_saying_where(door: str, http: aiohttp.ClientSession) -> None:
    status, body, _ = await _post(http, f"{door}/v1/chat/completions", b'{"messages": [')
    assert status == 400
    assert body["error"]["code"] == "malformed_json"
    assert "not valid JSON" in body["error"]["message"]
    status, body, _ = await _post(http, f"{door}/v1/chat/completions", b"[1, 2]")
    assert status == 400
    assert body["error"]["message"].endswith("the body must be a JSON object")


async def test_every_violation_is_listed_with_its_field(door: str, http: aiohttp.ClientSession) -> None:
    body = {
        "messages": [{"role": "wizard", "content": "x"}, {"role": "user", "content": [{"type": "audio"}]}],
        "temperature": "hot",
        "top_p": 0,
        "tools": [{"type": "function", "function": {"name": "bad name!"}}],
    }
    status, answer, _ = await _post(http, f"{door}/v1/chat/completions", body)
    assert status == 400
    fields = [v["field"] for v in answer["error"]["violations"]]
    assert fields == [
        "messages[0].role",
        "messages[1].content[0]",
        "tools[0].function.name",
        "temperature",
        "top_p",
    ]
    assert answer["error"]["param"] == "messages[0].role"


async def test_a_token_count_beyond_64_bits_is_a_400_that_says_so(
    door: str, http: aiohttp.ClientSession
) -> None:
    # orjson reads an integer this long as a float: the answer must not call it "not an integer"
    body = b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1' + b"0" * 30 + b"}"
    status, answer, _ = await _post(http, f"{door}/v1/chat/completions", body)
    assert status == 400
    assert answer["error"]["violations"] == [
        {"field": "max_tokens", "description": "must be an integer that fits in 64 bits"}
    ]
    seed = json.dumps({**HELLO, "seed": 10**30}).encode()  # every integer field reads the same way
    status, answer, _ = await _post(http, f"{door}/v1/chat/completions", seed)
    assert answer["error"]["violations"] == [
        {"field": "seed", "description": "must be an integer that fits in 64 bits"}
    ]
    status, answer, _ = await _post(http, f"{door}/v1/chat/completions", {**HELLO, "max_tokens": 5.5})
    assert answer["error"]["violations"][0]["description"] == "must be an integer, not a number"


async def test_a_body_over_the_limit_is_refused_with_413(door: str, http: aiohttp.ClientSession) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 20_000}]}  # max_request_mb 0.01: ~10 KB
    status, body, _ = await _post(http, f"{door}/v1/chat/completions", big)
    assert status == 413
    assert body["error"]["code"] == "request_too_large"
    status, body, _ = await _post(http, f"{door}/v1/messages", {**big, "max_tokens": 5})
    assert status == 413
    assert body["error"]["type"] == "request_too_large"


async def test_an_empty_body_is_a_400_saying_so(door: str, http: aiohttp.ClientSession) -> None:
    status, body, _ = await _post(http, f"{door}/v1/chat/completions", b"")
    assert status == 400
    assert body["error"]["code"] == "malformed_json"
    assert "the body is empty" in body["error"]["message"]


async def test_a_chunked_body_is_read_and_bounded_as_it_arrives(
    door: str, http: aiohttp.ClientSession
) -> None:
    """No Content-Length: the body is read piece by piece and cut off at the limit."""

    async def pieces(body: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    url = f"{door}/v1/chat/completions"
    async with http.post(url, data=pieces(json.dumps(HELLO).encode())) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["choices"][0]["message"]["content"]
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 20_000}]}).encode()
    async with http.post(url, data=pieces(big)) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "request_too_large"


async def _raw(door: str, request: bytes) -> tuple[bytes, dict[str, Any]]:
    host, port = door.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await reader.read()  # the refusal closes the connection
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, json.loads(body)


async def test_an_oversized_header_gets_a_400_naming_the_limit_and_quoting_nothing(door: str) -> None:
    big = b"X-Big: " + b"a" * 10_000 + b"\r\n"
    head, body = await _raw(door, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert head.split(b" ", 2)[1] == b"400"
    assert b"aaaa" not in head + json.dumps(body).encode()  # nothing of the request is quoted back
    assert body["error"]["code"] == "malformed_request"
    assert "header field (at most 8190 bytes)" in body["error"]["message"]


async def test_too_many_headers_or_a_bad_request_line_get_a_400_saying_what_is_wrong(door: str) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    head, body = await _raw(door, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert head.split(b" ", 2)[1] == b"400"
    assert "more than 100 header fields" in body["error"]["message"]
    head, body = await _raw(door, b"GET /he\x01llo HTTP/9.9zz\r\nHost: x\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400"
    assert body["error"]["message"].startswith("not a valid HTTP/1.1 request")
    assert "zz" not in json.dumps(body)


async def test_bad_hint_headers_are_400s_naming_the_header(door: str, http: aiohttp.ClientSession) -> None:
    headers = {"x-turnout-latency-budget-ms": "soon", "x-turnout-priority": "urgent"}
    status, body, _ = await _post(http, f"{door}/v1/chat/completions", HELLO, **headers)
    assert status == 400
    fields = {v["field"] for v in body["error"]["violations"]}
    assert fields == {"x-turnout-latency-budget-ms", "x-turnout-priority"}


async def test_a_max_cost_hint_that_no_model_meets_is_a_400(door: str, http: aiohttp.ClientSession) -> None:
    status, body, _ = await _post(
        http, f"{door}/v1/chat/completions", HELLO, **{"x-turnout-max-cost-usd-nanos": "1"}
    )
    assert status == 400
    assert body["error"]["code"] == "no_candidate"


async def test_health_readiness_and_unknown_paths(door: str, http: aiohttp.ClientSession) -> None:
    for path in ("/healthz", "/readyz"):
        async with http.get(door + path) as response:
            assert response.status == 200
            assert await response.text() == "ok\n"
    async with http.get(door + "/v1/nothing") as response:
        assert response.status == 404
    async with http.get(door + "/v1/chat/completions") as response:
        assert response.status == 405
        assert (await response.json())["error"]["type"] == "invalid_request_error"
    async with http.delete(door + "/v1/models/m") as response:
        assert response.status == 405
    async with http.get(door + "/v1/messages/count_tokens") as response:
        assert response.status == 405
        assert (await response.json())["error"]["type"] == "invalid_request_error"


async def test_a_token_is_required_when_configured(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    config = _config(simulator, env={"HTTP_TOKEN": TOKEN}, http_auth_token_env="HTTP_TOKEN")
    running = Sidecar(config, ListenOverrides(host="127.0.0.1", port=0))
    await running.start()
    try:
        assert running.http is not None
        url = running.http.url
        status, body, _ = await _post(http, f"{url}/v1/chat/completions", HELLO)
        assert status == 401
        assert body["error"]["type"] == "authentication_error"
        assert TOKEN not in json.dumps(body)
        status, _, _ = await _post(http, f"{url}/v1/chat/completions", HELLO, authorization="Bearer wrong")
        assert status == 401
        status, _, _ = await _post(http, f"{url}/v1/chat/completions", HELLO, authorization=f"Bearer {TOKEN}")
        assert status == 200
        anthropic_style = {**HELLO, "max_tokens": 5}
        status, _, _ = await _post(http, f"{url}/v1/messages", anthropic_style, **{"x-api-key": TOKEN})
        assert status == 200
        async with http.get(f"{url}/healthz") as response:  # probes need no token
            assert response.status == 200
    finally:
        await running.stop(grace_s=0)


def test_off_loopback_the_http_port_needs_a_token(simulator: Simulator) -> None:
    with pytest.raises(ConfigError, match=re.escape("server.http_host: '0.0.0.0' is not a loopback address")):
        _config(simulator, http_host="0.0.0.0")
    with pytest.raises(
        ConfigError, match=re.escape("server.http_auth_token_env: environment variable T is not set")
    ):
        _config(simulator, http_host="0.0.0.0", http_auth_token_env="T")
    assert _config(simulator, env={"T": TOKEN}, http_host="0.0.0.0", http_auth_token_env="T").http_auth_token


async def test_the_command_line_port_is_checked_too(simulator: Simulator) -> None:
    config = _config(simulator, http_port=None)
    sidecar = Sidecar(
        config, ListenOverrides(host="127.0.0.1", port=0, http_host="0.0.0.0", http_port=free_port())
    )
    with pytest.raises(ConfigError, match=re.escape("--http-host: '0.0.0.0' is not a loopback address")):
        await sidecar.start()


async def test_the_request_log_and_metrics_record_http_calls_as_rpcs(
    door: str, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="turnout.access")
    status, _, headers = await _post(http, f"{door}/v1/chat/completions", HELLO, **{"x-request-id": "log-me"})
    assert status == 200
    for _ in range(50):  # the line is written at the telemetry's next drain
        lines = [json.loads(r.getMessage()) for r in caplog.records if "log-me" in r.getMessage()]
        if lines:
            break
        await asyncio.sleep(0.02)
    assert lines, "no request log line"
    assert lines[0]["rpc"] == "POST /v1/chat/completions"
    assert lines[0]["status"] == "OK"
    assert lines[0]["model"] == headers["x-turnout-model"]


async def test_a_latency_budget_that_runs_out_is_a_504(door: str, http: aiohttp.ClientSession) -> None:
    # Pinned: a route would drop every model whose expected latency is over the budget (a 400).
    headers = {"x-turnout-latency-budget-ms": "0.5"}  # the simulator takes milliseconds to answer
    pinned = {**HELLO, "model": "gpt-4o-mini"}
    status, body, _ = await _post(http, f"{door}/v1/chat/completions", pinned, **headers)
    assert status == 504, body
    assert body["error"]["type"] == "timeout_error"
    assert "latency budget" in body["error"]["message"]


async def test_an_unexpected_failure_is_a_500_that_says_nothing_of_it(
    door: str, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("internal detail: /srv/secret-path")

    monkeypatch.setattr(server.OPENAI, "answer", broken)
    status, body, _ = await _post(http, f"{door}/v1/chat/completions", HELLO)
    assert status == 500
    assert body["error"]["message"] == "internal error"
    assert "secret" not in json.dumps(body)


async def test_an_http_call_is_an_http_server_span_with_its_attempts_under_it(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from sidecar.telemetry import TelemetryOptions, build_telemetry

    exporter = InMemorySpanExporter()
    options = TelemetryOptions(traces="none", metrics="none", prometheus=False, trace_sample_ratio=1.0)
    telemetry = build_telemetry(options, env={}, span_exporter=exporter)
    running = Sidecar(_config(simulator), ListenOverrides(host="127.0.0.1", port=0), telemetry=telemetry)
    await running.start()
    try:
        assert running.http is not None
        status, _, _ = await _post(http, f"{running.http.url}/v1/chat/completions", HELLO)
        assert status == 200
    finally:
        await running.stop(grace_s=0)  # flushes the spans
    spans = exporter.get_finished_spans()
    [server_span] = [s for s in spans if s.kind.name == "SERVER"]
    assert server_span.name == "POST /v1/chat/completions"
    attributes = dict(server_span.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/v1/chat/completions"
    assert "rpc.system" not in attributes
    assert "rpc.grpc.status_code" not in attributes
    attempts = [s for s in spans if s.kind.name == "CLIENT"]
    assert attempts, "no provider attempt span"
    assert all(s.parent is not None and s.parent.span_id == server_span.context.span_id for s in attempts)


# A cascade whose cheap stage refuses and whose strong stage is down, and a vote of two cheap
# models (the simulator's answer depends on the prompt only, so they agree on it).
CHECKED_ROUTES = [
    {
        "name": "checked",
        "models": ["gpt-4o-mini", "gpt-4o"],
        "strategies": [{"cascade": {"max_stages": 2, "escalate_on": ["refusal"], "min_quality_gain": 0.0}}],
        "execution": {"max_retries": 0},
    },
    {
        "name": "vote",
        "models": ["gpt-4o-mini", "gpt-4.1-nano", "gpt-4o"],
        "strategies": [{"consensus": {"voters": 2, "agree": "text", "escalate_on": ["refusal"]}}],
    },
]


@pytest.fixture
async def checked_door(simulator: Simulator) -> AsyncIterator[str]:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, simulator.root_url)
    raw["server"]["http_port"] = free_port()
    raw["routes"].extend(CHECKED_ROUTES)
    running = Sidecar(parse_config(raw, source="test", env={}), ListenOverrides(host="127.0.0.1", port=0))
    await running.start()
    assert running.http is not None
    yield running.http.url
    await running.stop(grace_s=0)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_refused_cheap_answer_is_never_returned_when_the_escalation_fails(
    checked_door: str, http: aiohttp.ClientSession, simulator: Simulator, stream: bool
) -> None:
    simulator.state.faults.add(FaultSpec(model="gpt-4o-mini", kind=FaultKind.REFUSAL, rate=1.0))
    simulator.state.faults.add(FaultSpec(model="gpt-4o", kind=FaultKind.SERVER_ERROR, rate=1.0))
    body = {**HELLO, "model": "checked", "stream": stream}
    async with http.post(f"{checked_door}/v1/chat/completions", json=body) as response:
        text = await response.text()
        assert response.status >= 500, text
    error = json.loads(text)["error"]["message"]
    assert "gpt-4o-mini: rejected (refusal)" in error
    assert "gpt-4o: server_error" in error
    assert "can't help" not in text  # the rejected answer reaches the caller in no form


async def test_an_accepted_vote_carries_its_tally_in_a_header(
    checked_door: str, http: aiohttp.ClientSession
) -> None:
    status, body, headers = await _post(
        http, f"{checked_door}/v1/chat/completions", {**HELLO, "model": "vote"}
    )
    assert status == 200, body
    assert headers["x-turnout-attempts"] == "2"
    assert headers["x-turnout-agreement"].startswith("2 of 2 agreed on '")
    assert headers["x-turnout-model"] in ("gpt-4o-mini", "gpt-4.1-nano")


async def test_a_voted_stream_sends_the_agreed_answer_whole(
    checked_door: str, http: aiohttp.ClientSession, simulator: Simulator
) -> None:
    body = {**HELLO, "model": "vote", "stream": True}
    async with http.post(f"{checked_door}/v1/chat/completions", json=body) as response:
        assert response.status == 200
        events = [line.removeprefix("data: ") for line in (await response.text()).splitlines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert len([t for t in texts if t]) == 1  # checked before it was sent: one piece
    assert sum(simulator.state.stats.requests.values()) == 2  # the two voters, no escalation
