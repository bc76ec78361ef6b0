"""The fault book on its own: seeded rates, counts used only when firing, slow faults that stack."""

from __future__ import annotations

import random

from turnout_simulator import FaultKind, FaultSpec, SimulatorConfig
from turnout_simulator.faults import FaultBook


def fired(book: FaultBook, model: str, times: int) -> list[FaultKind | None]:
    results = []
    for _ in range(times):
        fault = book.draw(model).fault
        results.append(fault.kind if fault else None)
    return results


def test_rate_faults_are_seeded() -> None:
    spec = FaultSpec(kind=FaultKind.SERVER_ERROR, rate=0.5)
    books = [FaultBook(SimulatorConfig(), random.Random(5)) for _ in range(2)]
    for book in books:
        book.add(spec)

    first, second = fired(books[0], "m", 200), fired(books[1], "m", 200)
    assert first == second
    assert 60 < first.count(FaultKind.SERVER_ERROR) < 140


def test_slow_stacks_with_a_failing_fault() -> None:
    book = FaultBook(SimulatorConfig(), random.Random(0))
    book.add(FaultSpec(kind=FaultKind.SLOW, count=1, factor=2.0))
    book.add(FaultSpec(kind=FaultKind.SLOW, count=1, factor=3.0))
    book.add(FaultSpec(kind=FaultKind.STREAM_CUT, count=1))

    draw = book.draw("m")
    assert draw.slow_factor == 6.0
    assert draw.fault is not None
    assert draw.fault.kind is FaultKind.STREAM_CUT
    assert draw.fired == (FaultKind.SLOW, FaultKind.SLOW, FaultKind.STREAM_CUT)
    assert book.draw("m") == book.draw("m")  # all used up: nothing fires
    assert book.listing()["runtime"] == []


def test_standing_count_is_shared_by_models_on_the_default_profile() -> None:
    config = SimulatorConfig.model_validate({"default_profile": {"faults": [{"kind": "hang", "count": 1}]}})
    book = FaultBook(config, random.Random(0))

    assert fired(book, "a", 1) == [FaultKind.HANG]
    assert fired(book, "b", 1) == [None]
    assert book.clear() == 0  # standing faults are not runtime faults
