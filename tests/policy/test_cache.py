"""The decision cache's bounds: entries, bytes (estimated at insert), least recently used first out."""

from __future__ import annotations

from sidecar.domain.plan import Candidate, Plan, Stage
from sidecar.domain.request import RoutingHints
from sidecar.policy.cache import (
    ENTRY_BYTES,
    MODEL_BYTES,
    TEXT_FACTOR,
    DecisionCache,
    entry_bytes,
    hint_values,
)
from tests.factories import model

MINI = model("mini")
PLAN = Plan(route="r", strategy="rules", stages=(Stage((Candidate(MINI),)),), looked_at=(MINI,))


def key(task_type: str, **hints: object) -> tuple[object, ...]:
    values = hint_values(RoutingHints(task_type=task_type, **hints))  # type: ignore[arg-type]
    return ("r", values, (("team", "search"),), None)


def test_an_entry_is_estimated_from_the_plan_and_the_clients_text():
    small = entry_bytes(key("a"), PLAN)
    assert small == ENTRY_BYTES + MODEL_BYTES + TEXT_FACTOR * len("r" + "a" + "team" + "search")
    big = entry_bytes(key("a" * 10_000, tags=frozenset({"x" * 500}), allowed_models=frozenset({"m"})), PLAN)
    assert big - small == TEXT_FACTOR * (9_999 + 500 + 1)


def test_the_byte_budget_evicts_the_least_recently_used_first():
    one = entry_bytes(key("t0" + "x" * 100_000), PLAN)
    cache = DecisionCache(max_entries=4096, max_bytes=3 * one + one // 2)
    keys = [key(f"t{i}" + "x" * 100_000) for i in range(6)]
    for k in keys[:3]:
        cache.put(k, 1, PLAN)
    assert len(cache) == 3
    assert cache.bytes == 3 * one
    assert cache.get(keys[0], 1, 10, 10) is PLAN  # now the most recently used
    cache.put(keys[3], 1, PLAN)
    assert len(cache) == 3
    assert cache.bytes <= 3 * one + one // 2
    assert cache.get(keys[1], 1, 10, 10) is None  # the least recently used went first
    assert cache.get(keys[0], 1, 10, 10) is PLAN
    for k in keys[4:]:
        cache.put(k, 1, PLAN)
    assert cache.bytes == 3 * one
    assert [cache.get(k, 1, 10, 10) is PLAN for k in keys] == [True, False, False, False, True, True]


def test_an_entry_over_the_whole_budget_is_not_kept():
    cache = DecisionCache(max_bytes=1_000_000)
    cache.put(key("small"), 1, PLAN)
    cache.put(key("x" * 1_000_000), 1, PLAN)  # ~2 MB estimated
    assert len(cache) == 0
    assert cache.bytes == 0


def test_bytes_are_given_back_on_expiry_and_on_replacement():
    now = [0.0]
    cache = DecisionCache(ttl_s=10, clock=lambda: now[0])
    cache.put(key("a"), 1, PLAN)
    cache.put(key("a"), 1, PLAN)  # the same key again: counted once
    assert cache.bytes == entry_bytes(key("a"), PLAN)
    now[0] = 11.0
    assert cache.get(key("a"), 1, 10, 10) is None
    assert (len(cache), cache.bytes) == (0, 0)


def test_the_entry_count_still_bounds_too():
    cache = DecisionCache(max_entries=2)
    for i in range(5):
        cache.put(key(f"t{i}"), 1, PLAN)
    assert len(cache) == 2
    assert cache.bytes == sum(entry_bytes(key(f"t{i}"), PLAN) for i in (3, 4))
