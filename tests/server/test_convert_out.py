"""Domain -> protobuf conversions that were rewritten for speed give the messages the plain way gave."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from google.protobuf import duration_pb2

from benchmarks.workload import config, requests, warmed_health
from sidecar.domain.plan import Candidate, Plan, Stage
from sidecar.domain.response import Completion, FinishReason, Usage
from sidecar.domain.result import ExecutionResult
from sidecar.policy.build import build_engine
from sidecar.server import convert_out
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from tests.factories import model


def _plain(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


EDGES = [0.0, 5e-7, 4.9999e-7, 1e-7, 1.5e-6, 2.5e-6, 0.999_999_5, 59.999_999_5, 1.0, 3600.25, 1e6 + 0.1234567]


@pytest.mark.parametrize("seconds", EDGES)
def test_duration_is_what_from_timedelta_makes_at_the_edges(seconds: float) -> None:
    assert convert_out.duration(seconds) == _plain(seconds)


def test_duration_is_what_from_timedelta_makes_for_many_latencies_and_negatives_too() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-2, 2) for _ in range(20_000)] + [rng.uniform(0, 1e-3) for _ in range(5_000)]
    values += [-0.25, -1.000_000_4, -3e-7]
    for seconds in values:
        assert convert_out.duration(seconds) == _plain(seconds), seconds
    assert convert_out.duration(None) is None


def test_a_50_model_decision_lists_every_consideration_with_its_rendered_notes() -> None:
    cfg = config()
    engine = build_engine(cfg.routes, "bench", cfg.registry, warmed_health(cfg.registry))
    plan = engine.plan(requests()[1])
    decision = convert_out.decision(plan)
    assert len(decision.considered) == len(plan.considered) == len(plan.looked_at)
    for got, want in zip(decision.considered, plan.considered, strict=True):
        notes = want.notes
        expected = pb.Consideration(model=want.model, provider=want.provider, kept=want.kept, notes=notes)
        assert got == expected
    scored = [c for c in decision.considered if any(note.startswith("score ") for note in c.notes)]
    assert scored  # the scoring strategy's terms, rendered
    terms = plan.score_terms[scored[0].model]
    expected = "score {:.3f} (cost {:.2f}, latency {:.2f}, quality gap {:.2f}, errors {:.2f})".format(*terms)
    assert expected in scored[0].notes


@pytest.mark.parametrize("agreement", ["2 of 2 agreed on 'B'", ""])
def test_a_votes_tally_reaches_the_response_and_the_streams_end(agreement: str) -> None:
    small = model("small")
    plan = Plan("r", "consensus", (Stage((Candidate(small),)),))
    answer = Completion("B", FinishReason.STOP, Usage(10, 1))
    result = ExecutionResult(answer, Candidate(small), (), agreement=agreement)
    assert convert_out.generate_response(plan, result, "id", "").agreement == agreement
    assert convert_out.stream_end(plan, result, "id", "").agreement == agreement
