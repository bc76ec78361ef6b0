"""The OpenAI routes: POST /v1/chat/completions (whole or streamed as SSE) and GET /v1/models.

One request's path: parse and check -> count it -> draw faults -> answer with an error, hang, or
compose the answer (a refusal, bad output or low confidence if a fault says so) and send it paced by
the latency model (time to first token, then per token), with a malformed or cut body if a fault says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from turnout_simulator.config import FaultKind, FaultSpec
from turnout_simulator.content import Answer
from turnout_simulator.fault_wire import drop, error_for, hang, malformed, send_cut_body
from turnout_simulator.latency import Latency
from turnout_simulator.payloads import Envelope, completion_body, models_body, stream_events
from turnout_simulator.request import ChatCall, model_of, parse_chat_call, parse_json_body
from turnout_simulator.state import STATE, SimState

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
DONE = b"data: [DONE]\n\n"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = parse_json_body(await request.read())
    profile = state.config.profile_for(model_of(body))
    call = parse_chat_call(body, profile)
    state.stats.record_request(call.model)
    draw = state.faults.draw(call.model)
    state.stats.record_faults(draw.fired)
    fault = draw.fault
    if fault is not None:
        error = error_for(fault, call.model)
        if error is not None:
            raise error
        if fault.kind is FaultKind.HANG:
            return await hang(request, state.hangs)
    answer = state.answer(call, profile, fault)
    latency = state.latency.draw(profile, draw.slow_factor)
    envelope = Envelope(state.next_completion_id(), int(state.clock()), call.model)
    if call.stream:
        return await _stream(request, state, call, _Reply(envelope, answer, latency, fault))
    return await _complete(request, state, call, _Reply(envelope, answer, latency, fault))


async def list_models(request: web.Request) -> web.Response:
    return web.json_response(models_body(request.app[STATE].config.models))


@dataclass(frozen=True, slots=True)
class _Reply:
    """One answer on its way out: what to send, how fast, and which fault (if any) spoils it."""

    envelope: Envelope
    answer: Answer
    latency: Latency
    fault: FaultSpec | None

    def spoiled_by(self, kind: FaultKind) -> bool:
        return self.fault is not None and self.fault.kind is kind

    def cuts_before(self, sent: int, chunk: dict[str, Any]) -> bool:
        """A stream_cut stops after `after_chunks` chunks, and always before the finish reason."""
        if self.fault is None or self.fault.kind is not FaultKind.STREAM_CUT:
            return False
        finishing = any(choice.get("finish_reason") for choice in chunk["choices"])
        return sent >= self.fault.after_chunks or finishing


async def _complete(
    request: web.Request, state: SimState, call: ChatCall, reply: _Reply
) -> web.StreamResponse:
    tokens = reply.answer.completion_tokens
    await state.pause(reply.latency.ttft_s + reply.latency.per_token_s * tokens)
    body = _encode(completion_body(reply.envelope, reply.answer, call.prompt_tokens))
    if reply.spoiled_by(FaultKind.MALFORMED_JSON):
        return web.Response(body=malformed(body), content_type="application/json")
    if reply.spoiled_by(FaultKind.STREAM_CUT):
        return await send_cut_body(request, body)
    return web.Response(body=body, content_type="application/json")


async def _stream(request: web.Request, state: SimState, call: ChatCall, reply: _Reply) -> web.StreamResponse:
    events = stream_events(reply.envelope, reply.answer, call.prompt_tokens, include_usage=call.include_usage)
    await state.pause(reply.latency.ttft_s)
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    for sent, event in enumerate(events):
        await state.pause(reply.latency.per_token_s * event.tokens)
        if reply.cuts_before(sent, event.chunk):
            return drop(request, response)
        if reply.spoiled_by(FaultKind.MALFORMED_JSON) and sent == 1:
            await response.write(b"data: " + malformed(_encode(event.chunk)) + b"\n\n")
            break
        await response.write(b"data: " + _encode(event.chunk) + b"\n\n")
    await response.write(DONE)
    await response.write_eof()
    return response


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
