"""The admin API, for tests and demos to steer the simulator while it runs.

POST   /_sim/faults   body = one fault (FaultSpec)   -> 201 {"added": fault}; 400 on a bad body
GET    /_sim/faults                                  -> {"runtime": [...], "standing": [...]}
DELETE /_sim/faults   clears the runtime faults      -> {"cleared": n}
GET    /_sim/stats                                   -> {"requests": {model: n}, "faults": {kind: n},
                                                         "hanging": n}; in replay mode also
                                                         "replay": {prompts, duplicates, hits, misses}
DELETE /_sim/stats    resets the counters            -> {"reset": true}
GET    /healthz                                      -> {"status": "ok"}
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from turnout_simulator.config import FaultSpec, describe_validation_error
from turnout_simulator.errors import WireError
from turnout_simulator.request import parse_json_body
from turnout_simulator.state import STATE


async def add_fault(request: web.Request) -> web.Response:
    body = parse_json_body(await request.read())
    try:
        spec = FaultSpec.model_validate(body)
    except ValidationError as exc:
        raise WireError(400, f"invalid fault: {describe_validation_error(exc)}") from exc
    request.app[STATE].faults.add(spec)
    return web.json_response({"added": spec.model_dump(mode="json", exclude_none=True)}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].faults.listing())


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[STATE].faults.clear()})


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body: dict[str, object] = {**state.stats.snapshot(), "hanging": len(state.hangs)}
    if state.replay is not None:
        body["replay"] = state.replay.snapshot()
    return web.json_response(body)


async def reset_stats(request: web.Request) -> web.Response:
    request.app[STATE].stats.reset()
    return web.json_response({"reset": True})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_admin_routes(app: web.Application) -> None:
    app.router.add_post("/_sim/faults", add_fault)
    app.router.add_get("/_sim/faults", list_faults)
    app.router.add_delete("/_sim/faults", clear_faults)
    app.router.add_get("/_sim/stats", stats)
    app.router.add_delete("/_sim/stats", reset_stats)
    app.router.add_get("/healthz", healthz)
