"""Chaos over gRPC: faults injected into the simulator, requests through the real sidecar.

Each scenario sends a burst of requests while a provider misbehaves, and checks that every request
ends with an answer or a clear error (the sidecar's ErrorInfo) within its deadline, and that the
attempts say what happened: which model failed how, which attempt was a hedge or a retry, which
answer a cascade passed over.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import grpc
import jsonschema
import pytest
from google.protobuf import struct_pb2
from turnout_simulator import Simulator

from sidecar.app import Sidecar
from sidecar.domain.outcome import AttemptOutcome, AttemptRecord, FailureClass
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.chaos.conftest import (
    FAIL_MAX,
    RESET_TIMEOUT_S,
    AttemptLog,
    Faults,
    call,
    call_many,
    request,
    seconds,
    start_turnout,
    stream,
    stream_request,
)
from tests.server.helpers import details

SUCCESS, FAILURE, CANCELLED = (
    pb.ATTEMPT_OUTCOME_SUCCESS,
    pb.ATTEMPT_OUTCOME_FAILURE,
    pb.ATTEMPT_OUTCOME_CANCELLED,
)
HEDGE_DELAY_S = 0.05  # the `hedged` route's hedge_delay_s


def first_attempt(response: pb.GenerateResponse | pb.StreamEnd) -> tuple[str, int, int]:
    a = response.attempts[0]
    return a.model, a.outcome, a.failure_class


def reason(error: grpc.aio.AioRpcError) -> str:
    return str(details(error)["ErrorInfo"].reason)


def retry_delay_s(error: grpc.aio.AioRpcError) -> float:
    return seconds(details(error)["RetryInfo"].retry_delay)


def models_tried(error: grpc.aio.AioRpcError) -> Counter[str]:
    """How often each model was tried, from ErrorInfo's `attempt.<number>.<model>` entries."""
    return Counter(
        key.split(".", 2)[2] for key in details(error)["ErrorInfo"].metadata if key.startswith("attempt.")
    )


# --- 1. a provider down -------------------------------------------------------------------------


async def test_a_provider_down_falls_back_opens_its_breaker_and_one_probe_closes_it(
    stub, faults: Faults, attempt_log: AttemptLog
):
    await faults.add(model="alpha-mini", kind="server_error", rate=1.0)

    # One at a time until the breaker has seen fail_max failures (a request's retry of alpha-mini
    # may be one of them), then a concurrent burst.
    warmup = [await call(stub, request("retrying", f"down {i}")) for i in range(FAIL_MAX)]
    burst = await call_many(stub, [request("retrying", f"burst {i}") for i in range(20)])
    for outcome in warmup + burst:
        answer = outcome.ok
        assert answer.model in {"beta-mini", "gamma-large"}  # the fallbacks
        assert answer.attempts[0].model == "alpha-mini"
        assert answer.attempts[0].outcome == FAILURE
    down = warmup[0].ok.attempts[0]
    assert down.failure_class == pb.FAILURE_CLASS_SERVER_ERROR
    assert "HTTP 500" in down.error_message

    # The breaker opened after exactly fail_max endpoint failures; every later attempt failed fast.
    alpha = [r for r in attempt_log.of("alpha-mini") if r.outcome is AttemptOutcome.FAILURE]
    classes = [r.failure_class for r in alpha]
    assert classes[:FAIL_MAX] == [FailureClass.SERVER_ERROR] * FAIL_MAX
    assert set(classes[FAIL_MAX:]) == {FailureClass.CIRCUIT_OPEN}
    for answer in (o.ok for o in burst):
        first = answer.attempts[0]
        assert first.failure_class == pb.FAILURE_CLASS_CIRCUIT_OPEN
        assert seconds(first.latency) < 0.005  # not sent: no round trip
        assert "circuit breaker open for alpha-mini" in first.error_message

    # ListModels shows it, and a scoring route drops the model from its decisions.
    health = {m.name: m.health for m in (await stub.ListModels(pb.ListModelsRequest())).models}
    assert health["alpha-mini"].state == pb.HEALTH_STATE_UNHEALTHY
    assert health["alpha-mini"].last_failure == pb.FAILURE_CLASS_CIRCUIT_OPEN
    assert health["beta-mini"].state == pb.HEALTH_STATE_HEALTHY
    scored = (await call(stub, request("scored", "while open"))).ok
    dropped = {c.model: c for c in scored.decision.considered if not c.kept}
    assert any("breaker open" in note for note in dropped["alpha-mini"].notes)
    assert [(a.model, a.outcome) for a in scored.attempts] == [("beta-mini", SUCCESS)]

    # The provider recovers; after reset_timeout_s one probe goes through and closes the breaker.
    await faults.clear()
    await asyncio.sleep(RESET_TIMEOUT_S + 0.1)
    probing = await call_many(stub, [request("retrying", f"probe {i}") for i in range(10)])
    alpha_attempts = [o.ok.attempts[0] for o in probing]
    assert any(a.outcome == SUCCESS for a in alpha_attempts)
    for a in alpha_attempts:  # while the probe is in flight, the others fail fast, never a 2nd probe
        assert a.outcome == SUCCESS or "a probe is in flight" in a.error_message
    after = await call_many(stub, [request("retrying", f"after {i}") for i in range(10)])
    for answer in (o.ok for o in after):
        assert [(a.model, a.outcome) for a in answer.attempts] == [("alpha-mini", SUCCESS)]
    scored = (await call(stub, request("scored", "after recovery"))).ok
    assert all(c.kept for c in scored.decision.considered)


# --- 2. a 429 storm -----------------------------------------------------------------------------

RETRY_AFTER_S = 0.4


@pytest.fixture
async def storm_turnout(sim: Simulator, attempt_log: AttemptLog):
    """Breakers out of the way (they would stop a storm by themselves), and a tight retry budget:
    per provider 0.1 retries per first attempt plus 5 (0.5/s over the 10 s window)."""
    running = start_turnout(
        sim,
        attempt_log,
        breaker={"fail_max": 10_000, "reset_timeout_s": 30},
        retry_budget={"ratio": 0.1, "min_per_s": 0.5},
    )
    await running.start()
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def storm_stub(storm_turnout: Sidecar):
    async with grpc.aio.insecure_channel(storm_turnout.address) as channel:
        yield pb_grpc.RouterServiceStub(channel)


async def test_a_429_storm_retries_after_retry_after_within_the_budget(
    storm_stub, faults: Faults, attempt_log: AttemptLog
):
    requests = 40
    await faults.add(model="*", kind="rate_limit", rate=1.0, retry_after_s=RETRY_AFTER_S)

    def every_first_attempt_failed(records: list[AttemptRecord]) -> bool:
        return sum(not r.retry_of for r in records) >= 3 * requests

    async def storm_ends() -> float:
        # Once every request has tried all three models, and before any retry is due (Retry-After
        # after a 429), so that every retry sent succeeds. On the event, not after a fixed time: on
        # a busy machine a burst's first attempts spread over more than any fixed guess.
        async with asyncio.timeout(10):  # a bound for a broken run; at ease a few hundred ms
            over = await attempt_log.wait_for(every_first_attempt_failed)
        await faults.clear()
        return over

    async with asyncio.TaskGroup() as tasks:
        storm = tasks.create_task(storm_ends())
        burst = tasks.create_task(
            call_many(storm_stub, [request("retrying", f"storm {i}") for i in range(requests)], 1.5)
        )
    outcomes, storm_over = burst.result(), storm.result()

    answered = [o for o in outcomes if o.response is not None]
    refused = [o for o in outcomes if o.error is not None]
    assert answered
    assert refused
    for outcome in refused:  # every candidate rate-limited, no retry budget left: fail at once
        error = outcome.failed
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert reason(error) == "ALL_CANDIDATES_FAILED"
        assert retry_delay_s(error) == pytest.approx(RETRY_AFTER_S)
        assert set(details(error)["ErrorInfo"].metadata.values()) == {"rate_limited"}
        # It did not wait for a retry it may not send: it ended before its last 429 (at the latest
        # the storm's last one) plus Retry-After.
        assert outcome.ended_at < storm_over + RETRY_AFTER_S
    by_retry = 0
    for outcome in answered:
        attempts = {a.number: a for a in outcome.ok.attempts}
        winner = next(a for a in attempts.values() if a.outcome == SUCCESS)
        if not winner.retry_of:  # a late request's fallback went out after the storm: no retry needed
            continue
        # Answered by a retry, sent no earlier than Retry-After after the attempt it retries.
        by_retry += 1
        retried = attempts[winner.retry_of]
        assert retried.failure_class == pb.FAILURE_CLASS_RATE_LIMITED
        earliest = seconds(retried.latency) + RETRY_AFTER_S + seconds(winner.latency)
        assert outcome.elapsed_s >= earliest
    assert by_retry >= 1

    # The budget capped the retries: per provider one is spent while fewer than 0.1 x first
    # attempts + 5 are, far fewer than the rate-limited first attempts that asked for one.
    for provider in ("alpha", "beta", "gamma"):
        records = [r for r in attempt_log.records if r.provider == provider]
        firsts = [r for r in records if not r.retry_of and not r.hedged]
        retries = [r for r in records if r.retry_of]
        limited = [r for r in firsts if r.failure_class is FailureClass.RATE_LIMITED]
        assert len(retries) - 1 < 0.1 * len(firsts) + 5
        assert len(limited) > 2 * len(retries)


async def test_a_429_storm_with_breakers_fails_fast_with_retry_info(stub, faults: Faults, attempt_log):
    retry_after_s = 0.2
    await faults.add(model="*", kind="rate_limit", rate=1.0, retry_after_s=retry_after_s)
    # The default 2 s deadline: the claim below rests on the attempts, not on how soon a deadline
    # comes (with 1 s, an oversubscribed machine ran the burst itself past it).
    outcomes = await call_many(stub, [request("retrying", f"storm {i}") for i in range(30)])
    for outcome in outcomes:
        error = outcome.failed
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert reason(error) == "ALL_CANDIDATES_FAILED"
        assert set(details(error)["ErrorInfo"].metadata.values()) <= {"rate_limited", "circuit_open"}
        # Retry after the provider's Retry-After, or when the breaker will let a probe through.
        assert 0 < retry_delay_s(error) <= max(retry_after_s, RESET_TIMEOUT_S)
        # Not held to the deadline (UNAVAILABLE above, from the server), and one Retry-After wait at
        # most: each model is tried once and retried at most once, when its breaker has opened. Said
        # by the attempts the error lists, not by the elapsed time, which a busy machine stretches.
        tried = models_tried(error)
        assert set(tried) == {"alpha-mini", "beta-mini", "gamma-large"}
        assert max(tried.values()) <= 2, error.details()
    assert any(r.failure_class is FailureClass.CIRCUIT_OPEN for r in attempt_log.records)


async def test_a_retry_after_past_the_deadline_fails_at_once_with_retry_info(stub, faults: Faults):
    await faults.add(model="*", kind="rate_limit", rate=1.0, retry_after_s=5)
    outcome = await call(stub, request("retrying", "come back later"), deadline_s=1.0)
    error = outcome.failed
    assert error.code() is grpc.StatusCode.UNAVAILABLE, f"{error.code()} after {outcome.elapsed_s:.2f}s"
    assert retry_delay_s(error) == pytest.approx(5)
    assert outcome.elapsed_s < 0.5


# --- 3. a slow heavy tail, hedged ---------------------------------------------------------------


async def test_hedging_answers_slow_requests_from_the_other_model(stub, faults: Faults):
    # Three requests in ten to alpha-mini take 100x longer (about 0.6 s instead of 6 ms).
    slow_before = (await faults.stats())["faults"].get("slow", 0)
    await faults.add(model="alpha-mini", kind="slow", rate=0.3, factor=100)
    outcomes = await call_many(stub, [request("hedged", f"tail {i}") for i in range(30)])
    await faults.clear()
    slow = (await faults.stats())["faults"].get("slow", 0) - slow_before
    # Which requests the simulator slowed is counted, not guessed from wall-clock times: on a busy
    # machine an ordinary answer can also outlast the hedge delay, and then either model may win.
    by_hedge = 0
    for outcome in outcomes:
        answer = outcome.ok
        assert answer.total_cost_usd_nanos == answer.cost_usd_nanos  # a cancelled attempt bills nothing
        if len(answer.attempts) == 1:
            (only,) = answer.attempts
            assert (only.model, only.outcome, only.hedged) == ("alpha-mini", SUCCESS, False)
            continue
        first, hedge = sorted(answer.attempts, key=lambda a: a.hedged)
        assert (first.model, hedge.model) == ("alpha-mini", "beta-mini")
        assert (first.hedged, hedge.hedged) == (False, True)
        # Exactly one wins; the other is cut short and recorded as cancelled, never as a success.
        winner, loser = (hedge, first) if answer.model == "beta-mini" else (first, hedge)
        assert (winner.outcome, loser.outcome) == (SUCCESS, CANCELLED)
        if winner is hedge:
            by_hedge += 1
            # The hedge started only after the delay, so the first attempt ran at least that long.
            assert seconds(first.latency) >= HEDGE_DELAY_S - 0.02
    # Every slowed request was answered by its hedge (a slow one alone takes about 0.6 s, the hedge
    # about 0.06 s); more may be when an ordinary one was late on a busy machine.
    assert slow >= 3
    assert by_hedge >= slow


# --- 4. a stream cut mid-way ---------------------------------------------------------------------


async def test_a_stream_cut_mid_way_ends_with_stream_interrupted_after_the_deltas(
    stub, faults: Faults, attempt_log: AttemptLog
):
    # The role chunk and three content chunks are sent, then the connection closes.
    await faults.add(model="alpha-mini", kind="stream_cut", rate=1.0, after_chunks=4)
    outcomes = await asyncio.gather(*(stream(stub, stream_request("fallback", f"s{i}")) for i in range(20)))
    interrupted = [o for o in outcomes if o.error is not None]
    # Each cut counts against alpha-mini's breaker: once it opens, later streams go to beta-mini
    # before their first token, invisibly. The ones that were cut end with a clear error.
    assert len(interrupted) >= 3
    for outcome in interrupted:
        assert outcome.end is None
        # Up to the three content chunks sent; fewer when the cut reaches the sidecar in the same
        # read as the last chunks (aiohttp raises before handing over what it buffered).
        assert 1 <= len(outcome.deltas) <= 3
        assert outcome.text
        assert outcome.error.code() is grpc.StatusCode.UNAVAILABLE
        assert reason(outcome.error) == "STREAM_INTERRUPTED"
        assert f"after {len(outcome.text)} characters were sent" in outcome.error.details()
    for outcome in outcomes:
        if outcome.error is None:
            assert outcome.end is not None
            assert outcome.end.model == "beta-mini"
            assert outcome.end.attempts[0].failure_class == pb.FAILURE_CLASS_CIRCUIT_OPEN
    assert {(r.model, r.failure_class) for r in attempt_log.records if r.model == "alpha-mini"} <= {
        ("alpha-mini", FailureClass.STREAM_INTERRUPTED),
        ("alpha-mini", FailureClass.CIRCUIT_OPEN),
    }


async def test_a_stream_cut_mid_way_continues_on_another_model(stub, faults: Faults):
    await faults.add(model="alpha-mini", kind="stream_cut", rate=1.0, after_chunks=4)
    outcomes = await asyncio.gather(
        *(stream(stub, stream_request("stream-continue", f"c{i}")) for i in range(20))
    )
    for outcome in outcomes:
        assert outcome.error is None
        assert outcome.end is not None
        end = outcome.end
        assert end.model == "beta-mini"
        cut, continued = end.attempts
        assert (continued.model, continued.outcome) == ("beta-mini", SUCCESS)
        if cut.failure_class == pb.FAILURE_CLASS_CIRCUIT_OPEN:
            continue  # alpha-mini's breaker opened on the earlier cuts: beta-mini answered whole
        assert (cut.model, cut.outcome, cut.failure_class) == (
            "alpha-mini",
            FAILURE,
            pb.FAILURE_CLASS_STREAM_INTERRUPTED,
        )
        assert cut.HasField("time_to_first_token")  # it had started answering
        assert len(outcome.deltas) > 3  # the part before the cut, then the continuation
        assert end.finish_reason == pb.FINISH_REASON_STOP


async def test_streams_cut_mid_way_open_the_breaker(stub, faults: Faults, attempt_log: AttemptLog):
    await faults.add(model="alpha-mini", kind="stream_cut", rate=1.0, after_chunks=4)
    for i in range(FAIL_MAX):
        assert (await stream(stub, stream_request("fallback", f"cut {i}"))).error is not None
    after = await stream(stub, stream_request("fallback", "after fail_max cuts"))
    assert after.end is not None, (
        f"cut again: {[r.failure_class for r in attempt_log.of('alpha-mini')]} on alpha-mini"
    )
    assert first_attempt(after.end) == ("alpha-mini", FAILURE, pb.FAILURE_CLASS_CIRCUIT_OPEN)


# --- 5. malformed JSON ---------------------------------------------------------------------------


async def test_malformed_json_falls_back_for_answers_and_streams(stub, faults: Faults):
    # A stream whose second chunk is not JSON fails before its first token: the caller never sees it.
    await faults.add(model="alpha-mini", kind="malformed_json", count=1)
    streamed = await stream(stub, stream_request("fallback", "malformed stream"))
    assert streamed.end is not None
    assert streamed.end.model == "beta-mini"
    assert first_attempt(streamed.end) == ("alpha-mini", FAILURE, pb.FAILURE_CLASS_MALFORMED_RESPONSE)

    await faults.clear()
    await faults.add(model="alpha-mini", kind="malformed_json", rate=1.0)
    burst = await call_many(stub, [request("fallback", f"malformed {i}") for i in range(20)])
    malformed = 0
    for answer in (o.ok for o in burst):
        assert answer.model == "beta-mini"
        model, outcome, failure = first_attempt(answer)
        assert (model, outcome) == ("alpha-mini", FAILURE)
        assert failure in (pb.FAILURE_CLASS_MALFORMED_RESPONSE, pb.FAILURE_CLASS_CIRCUIT_OPEN)
        malformed += failure == pb.FAILURE_CLASS_MALFORMED_RESPONSE
    assert malformed + 1 >= FAIL_MAX  # with the stream's, enough to open the breaker
    later = await call_many(stub, [request("fallback", f"later {i}") for i in range(5)])
    for answer in (o.ok for o in later):
        assert first_attempt(answer) == ("alpha-mini", FAILURE, pb.FAILURE_CLASS_CIRCUIT_OPEN)


# --- 6. output that breaks the schema ------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["label", "score"],
    "properties": {"label": {"enum": ["spam", "ham"]}, "score": {"type": "number"}},
    "additionalProperties": False,
}


def json_request(route: str, text: str) -> pb.GenerateRequest:
    schema = struct_pb2.Struct()
    schema.update(SCHEMA)
    fmt = pb.ResponseFormat(
        type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=pb.JsonSchema(name="label", schema=schema)
    )
    return request(route, text, response_format=fmt)


async def test_invalid_output_escalates_to_the_next_candidate(stub, faults: Faults):
    await faults.add(model="alpha-mini", kind="bad_output", rate=1.0)
    for round_ in range(2):  # invalid output says nothing about the endpoint: no breaker opens
        burst = await call_many(stub, [json_request("escalate-output", f"j{round_}.{i}") for i in range(10)])
        for answer in (o.ok for o in burst):
            assert answer.model == "beta-mini"
            assert first_attempt(answer) == ("alpha-mini", FAILURE, pb.FAILURE_CLASS_INVALID_OUTPUT)
            assert "does not match the schema" in answer.attempts[0].error_message
            jsonschema.validate(json.loads(answer.output.text), SCHEMA)
            assert answer.output.HasField("parsed_json")


async def test_invalid_output_retry_asks_the_same_model_again(stub, faults: Faults):
    await faults.add(model="alpha-mini", kind="bad_output", count=1)
    answer = (await call(stub, json_request("retry-output", "once more"))).ok
    assert first_attempt(answer) == ("alpha-mini", FAILURE, pb.FAILURE_CLASS_INVALID_OUTPUT)
    retries = [a for a in answer.attempts if a.retry_of]
    assert [(a.model, a.retry_of) for a in retries] == [("alpha-mini", 1)]
    jsonschema.validate(json.loads(answer.output.text), SCHEMA)


async def test_invalid_output_retry_comes_before_moving_on(stub, faults: Faults):
    await faults.add(model="alpha-mini", kind="bad_output", count=1)
    answer = (await call(stub, json_request("retry-output", "once more"))).ok
    assert [(a.model, a.outcome, a.retry_of) for a in answer.attempts] == [
        ("alpha-mini", FAILURE, 0),
        ("alpha-mini", SUCCESS, 1),
    ]


async def test_invalid_output_everywhere_lists_every_violation(stub, faults: Faults, attempt_log):
    await faults.add(model="*", kind="bad_output", rate=1.0)
    error = (await call(stub, json_request("retry-output", "never valid"))).failed
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert reason(error) == "ALL_CANDIDATES_FAILED"
    assert "RetryInfo" not in details(error)  # asking again later will not help
    attempts = details(error)["ErrorInfo"].metadata
    assert set(attempts.values()) == {"invalid_output"}
    assert len(attempts) == 4  # each model, then each once more (told what was wrong)
    assert error.details().count("output does not match the schema: at (root): ") == len(attempts)
    assert "is a required property" in error.details()
    assert {(r.model, bool(r.retry_of)) for r in attempt_log.records} == {
        ("alpha-mini", False),
        ("alpha-mini", True),
        ("beta-mini", False),
        ("beta-mini", True),
    }


# --- 7. cascade escalation -----------------------------------------------------------------------


async def test_a_cascade_escalates_a_refusal(stub, faults: Faults):
    await faults.add(model="alpha-mini", kind="refusal", rate=1.0)
    burst = await call_many(stub, [request("cascade", f"refuse {i}") for i in range(10)])
    for answer in (o.ok for o in burst):
        assert [[c.model for c in s.candidates] for s in answer.decision.stages] == [
            ["alpha-mini"],
            ["gamma-large", "beta-mini"],
        ]
        passed, accepted = answer.attempts
        assert (passed.model, passed.outcome, passed.escalated) == ("alpha-mini", SUCCESS, "refusal")
        assert (accepted.model, accepted.outcome, accepted.escalated) == ("gamma-large", SUCCESS, "")
        assert answer.model == "gamma-large"
        assert answer.output.text
        assert answer.total_cost_usd_nanos == passed.cost_usd_nanos + accepted.cost_usd_nanos
        assert passed.cost_usd_nanos > 0  # the refused answer still cost something


async def test_a_cascade_escalates_a_truncated_answer(stub):
    params = pb.GenerationParams(max_output_tokens=5)
    burst = await call_many(stub, [request("cascade", f"long {i}", params=params) for i in range(10)])
    for answer in (o.ok for o in burst):
        passed, accepted = answer.attempts
        assert (passed.model, passed.escalated) == ("alpha-mini", "length")
        assert (accepted.model, accepted.escalated) == ("gamma-large", "")
        # The last stage answers even if it would escalate: it is truncated too, and says so.
        assert answer.finish_reason == pb.FINISH_REASON_LENGTH
        assert answer.usage.output_tokens <= 5
