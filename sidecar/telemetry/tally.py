"""The per-request metric instruments' small interface, and its plain implementation: the SDK's own.

`Instruments` (metrics.py) makes its counters and histograms from a tally and records into them with
an attribute mapping or a `Key` (an attribute set made once, metric_keys.py). Two tallies fit:
`SdkTally` here, the OpenTelemetry SDK's synchronous instruments (`telemetry.fast_path: false`), and
the hand-made one in fast/tally.py (why: docs/decisions/030-telemetry-fast-path.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.metrics import Meter

Key = frozenset[tuple[str, Any]]


def series_key(attributes: Mapping[str, Any]) -> Key:
    """An attribute set as the tallies key it; callers that record the same set again and again
    make it once and pass it in place of the mapping."""
    return frozenset(attributes.items())


class Adds(Protocol):
    """A counter (monotonic or up-down)."""

    def add(self, amount: float, attributes: Mapping[str, Any] | Key) -> None: ...


class Records(Protocol):
    """An explicit-bucket histogram."""

    def record(self, value: float, attributes: Mapping[str, Any] | Key) -> None: ...


class Tallies(Protocol):
    """What `Instruments` and the recorder need of a tally."""

    drains: list[Callable[[], None]]

    @property
    def version(self) -> str: ...

    def run_drains(self) -> None: ...

    def counter(self, name: str, unit: str, description: str) -> Adds: ...

    def up_down_counter(self, name: str, unit: str, description: str) -> Adds: ...

    def histogram(self, name: str, unit: str, description: str, bounds: Sequence[float]) -> Records: ...


def _attributes(attributes: Mapping[str, Any] | Key) -> Mapping[str, Any]:
    return dict(attributes) if isinstance(attributes, frozenset) else attributes


class _SdkSum:
    __slots__ = ("_instrument",)

    def __init__(self, instrument: Any) -> None:
        self._instrument = instrument

    def add(self, amount: float, attributes: Mapping[str, Any] | Key) -> None:
        self._instrument.add(amount, _attributes(attributes))


class _SdkHistogram:
    __slots__ = ("_instrument",)

    def __init__(self, instrument: Any) -> None:
        self._instrument = instrument

    def record(self, value: float, attributes: Mapping[str, Any] | Key) -> None:
        self._instrument.record(value, _attributes(attributes))


class SdkTally:
    """The SDK's synchronous instruments behind the tally's interface.

    What is still pending (`drains`: measurements noted on the request path, pending.py) is recorded
    from an observable instrument's callback (metrics.Instruments), which the SDK runs at every
    collection before it reads the synchronous instruments.
    """

    def __init__(self, meter: Meter, version: str) -> None:
        self._meter = meter
        self._version = version
        self.drains: list[Callable[[], None]] = []

    @property
    def version(self) -> str:
        return self._version

    def run_drains(self) -> None:
        for drain in self.drains:
            drain()

    def counter(self, name: str, unit: str, description: str) -> Adds:
        return _SdkSum(self._meter.create_counter(name, unit=unit, description=description))

    def up_down_counter(self, name: str, unit: str, description: str) -> Adds:
        return _SdkSum(self._meter.create_up_down_counter(name, unit=unit, description=description))

    def histogram(self, name: str, unit: str, description: str, bounds: Sequence[float]) -> Records:
        made = self._meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(bounds)
        )
        return _SdkHistogram(made)
