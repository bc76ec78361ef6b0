"""Hot reload in-process: swaps under load, rejected files, in-flight requests, polling by content hash."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from turnout_simulator.server import Simulator

from sidecar.app import Sidecar
from sidecar.reload import ConfigWatcher
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import EXAMPLE_CONFIG, inject_fault, point_at_simulator
from tests.processes import drop_provider, put_first
from tests.server.helpers import generate_request, user

Edit = Callable[[dict[str, Any]], None]
ROUTE = pb.RouteRequest(messages=[user("hello")])
FIRST = "gpt-4o-mini"  # the example's default route: [gpt-4o-mini, gemini-2.5-flash, gpt-4o]
EXAMPLE = yaml.safe_load(EXAMPLE_CONFIG.read_text())
COUNTS = (
    f"models {len(EXAMPLE['models'])}, providers {len(EXAMPLE['providers'])}, routes {len(EXAMPLE['routes'])}"
)


def write_config(path: Path, base_url: str, *edits: Edit) -> None:
    """The example config pointed at the test simulator, with `edits` applied."""
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, base_url.removesuffix("/v1"))
    for edit in edits:
        edit(raw)
    path.write_text(yaml.safe_dump(raw))


def default_first(model: str) -> Edit:
    return lambda raw: put_first(raw, model)


def without_provider(name: str) -> Edit:
    return lambda raw: drop_provider(raw, name)


@pytest.fixture
def config_file(tmp_path: Path, simulator: Simulator) -> Path:
    path = tmp_path / "turnout.yaml"
    write_config(path, simulator.base_url)
    return path


@asynccontextmanager
async def watching(path: Path, sidecar: Sidecar, **options: Any) -> AsyncIterator[ConfigWatcher]:
    watcher = ConfigWatcher(path, sidecar.reload, sighup=False, **{"interval_s": 0.0, **options})
    watcher.start()
    try:
        yield watcher
    finally:
        await watcher.stop()


async def first_choice(stub: pb_grpc.RouterServiceStub) -> str:
    return str((await stub.Route(ROUTE)).decision.model)


async def eventually(condition: Callable[[], Any], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.01)


async def route_becomes(stub: pb_grpc.RouterServiceStub, model: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (seen := await first_choice(stub)) != model:
        assert time.monotonic() < deadline, f"still routing to {seen}, expected {model}"
        await asyncio.sleep(0.01)


def logged(caplog: pytest.LogCaptureFixture, level: int, start: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "sidecar.reload" and r.levelno == level and r.getMessage().startswith(start)
    ]


async def test_200_concurrent_clients_across_6_reloads_none_fail_and_each_request_uses_a_current_config(
    sidecar, stub, simulator, config_file, caplog
):
    caplog.set_level(logging.INFO)
    firsts = ["gemini-2.5-flash", "gpt-4o-mini"] * 3
    first_by_generation = [FIRST, *firsts]
    generation = 0  # index of the config in effect
    done: list[tuple[int, int, pb.GenerateResponse]] = []  # generation at send, at answer, answer
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def client(n: int) -> None:
        while not stop.is_set():
            sent = generation
            try:
                response = await stub.Generate(generate_request(f"question {n}"), timeout=30)
            except grpc.aio.AioRpcError as exc:
                failures.append(exc)
            else:
                done.append((sent, generation, response))

    async def answers(n: int) -> None:
        target = len(done) + n
        await eventually(lambda: len(done) >= target)

    async with watching(config_file, sidecar) as watcher, asyncio.TaskGroup() as clients:
        for n in range(200):
            clients.create_task(client(n))
        for first in firsts:
            await answers(50)  # reload while traffic is under way
            write_config(config_file, simulator.base_url, default_first(first))
            assert watcher.reload_now()
            generation += 1
            assert await first_choice(stub) == first  # the next request after a reload uses it
        await answers(50)
        stop.set()

    assert failures == []
    assert len(done) >= 350
    # Each request ran on a config that was in effect at some point while it was in flight.
    for sent, answered_at, response in done:
        assert response.decision.model in first_by_generation[sent : answered_at + 1]
        # No failure hid behind a fallback (the default route hedges: a hedge may answer first).
        assert all(a.outcome != pb.ATTEMPT_OUTCOME_FAILURE for a in response.attempts)
        # Exactly one attempt is the winner, and it is the one that answered; a hedge that answered
        # in the same wake-up was not used and reads as cancelled.
        [winner] = [a for a in response.attempts if a.outcome == pb.ATTEMPT_OUTCOME_SUCCESS]
        assert (winner.model, winner.cost_usd_nanos) == (response.model, response.cost_usd_nanos)
        assert response.model == response.decision.model or winner.hedged
    spanning = [d for d in done if d[0] != d[1]]
    assert len(spanning) >= 100  # many requests were in flight across a reload
    assert {"gemini-2.5-flash", "gpt-4o-mini"} <= {r.decision.model for _, _, r in done}
    assert len(logged(caplog, logging.INFO, "config reloaded:")) == len(firsts)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_invalid_file_is_rejected_once_the_old_config_serves_and_a_fixed_file_applies(
    sidecar, stub, simulator, config_file, caplog
):
    caplog.set_level(logging.INFO)
    interval = 0.02
    async with watching(config_file, sidecar, interval_s=interval):
        config_file.write_text("providers: [\n  - name: openai\n")
        await eventually(lambda: logged(caplog, logging.ERROR, "config reload rejected:"))
        [line] = logged(caplog, logging.ERROR, "config reload rejected:")
        assert line.startswith(f"config reload rejected: {config_file}: not valid YAML: ")
        assert "\n" not in line
        assert "; still serving the config loaded at " in line
        assert line.rstrip(")").rsplit("(sha256 ", 1)[1].isalnum()
        assert await first_choice(stub) == FIRST

        def bad_price(raw: dict[str, Any]) -> None:
            raw["models"][1]["price"]["input"] = -1

        write_config(config_file, simulator.base_url, default_first("gemini-2.5-flash"), bad_price)
        await eventually(lambda: len(logged(caplog, logging.ERROR, "config reload rejected:")) == 2)
        line = logged(caplog, logging.ERROR, "config reload rejected:")[1]
        assert line.startswith(
            f"config reload rejected: {config_file}: invalid config: models[1] (gpt-4o-mini).price.input: "
            "Input should be greater than or equal to 0; still serving the config loaded at "
        )
        assert await first_choice(stub) == FIRST
        await asyncio.sleep(5 * interval)  # several polls of the same bad content: not retried
        assert len(logged(caplog, logging.ERROR, "config reload rejected:")) == 2

        write_config(config_file, simulator.base_url, default_first("gemini-2.5-flash"))
        await route_becomes(stub, "gemini-2.5-flash")
        [reloaded] = logged(caplog, logging.INFO, "config reloaded:")
        assert reloaded.startswith(f"config reloaded: {config_file} (sha256 ")
        assert reloaded.endswith(COUNTS)


async def test_a_request_in_flight_finishes_on_the_config_it_started_with(
    sidecar, stub, simulator, config_file, caplog
):
    caplog.set_level(logging.INFO)
    await inject_fault(simulator, model="*", kind="slow", factor=20, count=1)
    call = asyncio.ensure_future(stub.Generate(generate_request("a slow one"), timeout=30))
    await eventually(lambda: simulator.state.stats.requests[FIRST] == 1)

    async with watching(config_file, sidecar) as watcher:
        write_config(config_file, simulator.base_url, without_provider("openai"))
        assert watcher.reload_now()
    assert not call.done()
    assert await first_choice(stub) == "gemini-2.5-flash"
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.Route(pb.RouteRequest(messages=[user("hi")], hints=pb.RoutingHints(pinned_model=FIRST)))
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND
    assert FIRST not in {m.name for m in (await stub.ListModels(pb.ListModelsRequest())).models}

    response = await call  # its plan and the old openai adapter outlive the reload
    assert (response.model, response.decision.model, response.provider) == (FIRST, FIRST, "openai")
    assert [a.outcome for a in response.attempts] == [pb.ATTEMPT_OUTCOME_SUCCESS]
    [line] = logged(caplog, logging.INFO, "config reloaded:")
    models, providers = len(EXAMPLE["models"]), len(EXAMPLE["providers"])
    gone = sum(m["provider"] == "openai" for m in EXAMPLE["models"])
    assert line.endswith(
        f"models {models} -> {models - gone} ({gone} removed), "
        f"providers {providers} -> {providers - 1} (1 removed), routes {len(EXAMPLE['routes'])}"
    )


async def test_polling_notices_a_rewritten_file_without_sighup(sidecar, stub, simulator, config_file):
    async with watching(config_file, sidecar, interval_s=0.05):
        write_config(config_file, simulator.base_url, default_first("gemini-2.5-flash"))
        await route_becomes(stub, "gemini-2.5-flash")
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("config watcher")]


async def test_polling_notices_a_configmap_style_symlink_swap_with_the_same_mtime(
    sidecar, stub, simulator, tmp_path
):
    # Kubernetes mounts turnout.yaml -> ..data/turnout.yaml, ..data -> ..<timestamp>/, and updates
    # by pointing ..data at a new directory in one rename. The new file's mtime says nothing.
    old, new = tmp_path / "..v1", tmp_path / "..v2"
    old.mkdir()
    new.mkdir()
    write_config(old / "turnout.yaml", simulator.base_url)
    write_config(new / "turnout.yaml", simulator.base_url, default_first("claude-sonnet-4"))
    stat = (old / "turnout.yaml").stat()
    os.utime(new / "turnout.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (tmp_path / "..data").symlink_to(old.name)
    config = tmp_path / "turnout.yaml"
    config.symlink_to("..data/turnout.yaml")

    async with watching(config, sidecar, interval_s=0.05):
        (tmp_path / "..data_tmp").symlink_to(new.name)
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        await route_becomes(stub, "claude-sonnet-4")


async def test_restart_only_settings_keep_their_values_with_a_warning_and_the_rest_applies(
    sidecar, stub, simulator, config_file, caplog
):
    def server(raw: dict[str, Any]) -> None:
        # port is pinned by the test's ListenOverrides, so a restart would not change it either
        raw["server"].update(max_request_mb=64, port=12345, shutdown_grace_s=7)

    address = sidecar.address
    async with watching(config_file, sidecar) as watcher:
        write_config(config_file, simulator.base_url, default_first("gemini-2.5-flash"), server)
        assert watcher.reload_now()
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == (
        f"config reload: {config_file}: server.max_request_mb (32.0 -> 64.0) changed but takes effect "
        "only after a restart; the rest of the new config applies now"
    )
    assert await first_choice(stub) == "gemini-2.5-flash"
    assert sidecar.address == address
    assert sidecar.config.server.max_request_mb == 32
    assert sidecar.config.server.shutdown_grace_s == 7


async def test_a_reloaded_interval_applies_unless_the_command_line_set_it(sidecar, simulator, config_file):
    def interval(raw: dict[str, Any]) -> None:
        raw["server"]["reload_interval_s"] = 0

    write_config(config_file, simulator.base_url, interval)
    async with watching(config_file, sidecar, interval_s=5.0, follow_config_interval=True) as watcher:
        assert watcher.reload_now()
        assert watcher.interval_s == 0
    async with watching(config_file, sidecar, interval_s=5.0) as pinned:
        assert pinned.reload_now()
        assert pinned.interval_s == 5.0
