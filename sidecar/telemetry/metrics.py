"""The metric instruments: GenAI client metrics (semantic conventions) and Turnout's routing metrics.

Instruments are made once per sidecar; gauges that describe shared state (breakers, queues) read
it when a reader collects, through callables the composition root supplies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from sidecar.telemetry import names as n
from sidecar.telemetry.names import Names
from sidecar.telemetry.tally import Adds, Key, Records, Tallies, series_key

StateSource = Callable[[], Mapping[str, str]]
DepthSource = Callable[[], Mapping[str, int]]
# route -> (agreement in [0, 1], comparisons in the window, alerting)
AgreementSource = Callable[[], Mapping[str, tuple[float, int, bool]]]
StoreSource = Callable[[], bool | None]  # the shared store answers; None: there is none
SpendSource = Callable[[], Iterable[tuple[str, str, float, float]]]  # budget, scope, spent, limit (USD)
ShareSource = Callable[[], Mapping[str, float]]  # route -> share of requests above its quality


V1_41 = Names()  # today's GenAI names, the default


class Instruments:
    """Per-request instruments come from a tally (tally.py: the SDK's, or fast/tally.py's); gauges
    read at collection time are the SDK's own observable instruments. `names`: which GenAI names."""

    def __init__(self, meter: Meter, tally: Tallies, names: Names = V1_41) -> None:
        # GenAI client metrics, bucket boundaries as the conventions recommend.
        self.token_usage: Records
        if names.latest:
            self.token_usage = _InferenceTokens(tally)
        else:
            self.token_usage = tally.histogram(
                n.M_TOKEN_USAGE,
                unit="{token}",
                description="Number of input and output tokens used, per provider call",
                bounds=n.TOKEN_BUCKETS,
            )
        self.operation_duration = tally.histogram(
            names.operation_duration,
            unit="s",
            description="Duration of each provider call (attempt)",
            bounds=n.DURATION_BUCKETS,
        )
        self.time_to_first_chunk = tally.histogram(
            names.time_to_first_chunk,
            unit="s",
            description="Time to the first chunk of a streamed provider call",
            bounds=n.FIRST_CHUNK_BUCKETS,
        )
        # Routing.
        # Each histogram's count is also the counter: RPCs by method, route and status; decisions by
        # route, strategy, chosen model and cache hit. One measurement per fact, not two.
        self.request_duration = tally.histogram(
            n.M_REQUEST_DURATION,
            unit="s",
            description="Duration of each RPC, decision and provider calls included; its count is the RPCs",
            bounds=n.DURATION_BUCKETS,
        )
        self.decision_duration = tally.histogram(
            n.M_DECISION_DURATION,
            unit="s",
            description="Time to decide (the policy alone; microseconds); its count is the decisions",
            bounds=n.DECISION_BUCKETS,
        )
        self.attempts = tally.counter(
            n.M_ATTEMPTS, unit="{attempt}", description="Provider calls, by model, cause and outcome"
        )
        self.fallbacks = tally.counter(
            n.M_FALLBACKS, unit="{attempt}", description="Attempts started because an earlier one failed"
        )
        self.hedges = tally.counter(
            n.M_HEDGES,
            unit="{attempt}",
            description="Hedged attempts started because an earlier one was slow",
        )
        self.hedges_won = tally.counter(
            n.M_HEDGES_WON, unit="{attempt}", description="Hedged attempts whose answer was the one returned"
        )
        self.retries = tally.counter(
            n.M_RETRIES, unit="{attempt}", description="Retries of a candidate after a retryable failure"
        )
        self.breaker_transitions = tally.counter(
            n.M_BREAKER_TRANSITIONS, unit="{transition}", description="Circuit breaker state changes"
        )
        self.queue_wait = tally.histogram(
            n.M_QUEUE_WAIT,
            unit="s",
            description="Time an attempt waited for admission (concurrency slot or rate)",
            bounds=n.QUEUE_BUCKETS,
        )
        self.cost = tally.counter(
            n.M_COST, unit="{USD}", description="Money spent on provider calls, in US dollars"
        )
        self.reference_cost = tally.counter(
            n.M_REFERENCE_COST,
            unit="{USD}",
            description="What the answered requests' tokens would have cost on the reference model",
        )
        self.savings = tally.up_down_counter(
            n.M_SAVINGS,
            unit="{USD}",
            description="Reference cost minus actual cost (negative when routing cost more)",
        )
        self.shadow_comparisons = tally.counter(
            n.M_SHADOW_COMPARISONS,
            unit="{comparison}",
            description="Shadow comparisons with the route's reference model, by whether they agreed",
        )
        self.shadow_skipped = tally.counter(
            n.M_SHADOW_SKIPPED,
            unit="{request}",
            description="Sampled requests not shadowed: budget, in_flight, failed, judge_unclear",
        )
        self.shadow_cost = tally.counter(
            n.M_SHADOW_COST, unit="{USD}", description="Spend on shadow calls (reference and judge)"
        )
        self._meter = meter

        def build_info(_: CallbackOptions) -> Iterable[Observation]:
            # The SDK runs callbacks first at each collection: what is pending is recorded before
            # the synchronous instruments are read (for fast/tally.py, its readout does the same).
            tally.run_drains()
            return (Observation(1, {n.SERVICE_VERSION: tally.version}),)

        # Always one point: a reader's collection is never empty, so the fast Tally's metrics always
        # have a MetricsData to ride in (the SDK skips readers it has nothing for).
        meter.create_observable_gauge(
            n.M_BUILD_INFO,
            callbacks=[build_info],
            unit="1",
            description="1, labelled with the running Turnout version",
        )

    def watch_shadow(self, agreements: AgreementSource) -> None:
        """Per-route agreement with the reference model over the window, and the alert signal."""

        def agreement(_: CallbackOptions) -> Iterable[Observation]:
            for route, (share, samples, _alerting) in agreements().items():
                if samples:
                    yield Observation(share, {n.ROUTE: route})

        def alert(_: CallbackOptions) -> Iterable[Observation]:
            for route, (_share, _samples, alerting) in agreements().items():
                yield Observation(1 if alerting else 0, {n.ROUTE: route})

        self._meter.create_observable_gauge(
            n.M_SHADOW_AGREEMENT,
            callbacks=[agreement],
            unit="1",
            description="Share of shadowed answers that agreed with the reference model (sliding window)",
        )
        self._meter.create_observable_gauge(
            n.M_SHADOW_ALERT,
            callbacks=[alert],
            unit="1",
            description="1 while a route's agreement is below its alert threshold",
        )

    def watch_limits(self, store: StoreSource, spend: SpendSource, shares: ShareSource) -> None:
        """Gauges of the limits shared across pods: the store, each budget's spend, each cap's share.

        Spend is the deployment's total as this pod last saw it: every pod reports about the same
        figure, so aggregate with max, not sum.
        """

        def store_up(_: CallbackOptions) -> Iterable[Observation]:
            up = store()
            if up is not None:
                yield Observation(1 if up else 0)

        def spent(_: CallbackOptions) -> Iterable[Observation]:
            for budget, scope, usd, _limit in spend():
                yield Observation(usd, {n.BUDGET: budget, n.BUDGET_SCOPE: scope})

        def remaining(_: CallbackOptions) -> Iterable[Observation]:
            for budget, scope, usd, limit in spend():
                yield Observation(max(0.0, limit - usd), {n.BUDGET: budget, n.BUDGET_SCOPE: scope})

        def share(_: CallbackOptions) -> Iterable[Observation]:
            for route, value in shares().items():
                yield Observation(value, {n.ROUTE: route})

        for name, callback, unit, description in (
            (
                n.M_LIMITS_STORE_UP,
                store_up,
                "1",
                "1 while the shared limits store (Redis) answers, 0 while down",
            ),
            (n.M_BUDGET_SPENT, spent, "{USD}", "Spend in the budget's current window, per budget and scope"),
            (n.M_BUDGET_REMAINING, remaining, "{USD}", "What is left of the budget in its current window"),
            (n.M_ESCALATION_SHARE, share, "1", "Share of a route's requests sent above its cap's quality"),
        ):
            self._meter.create_observable_gauge(
                name, callbacks=[callback], unit=unit, description=description
            )

    def watch(self, breakers: StateSource, queues: DepthSource) -> None:
        """Gauges read at collection time: each model's breaker, each provider's admission queue."""

        def breaker_states(_: CallbackOptions) -> Iterable[Observation]:
            for model, state in breakers().items():
                yield Observation(n.BREAKER_LEVEL.get(state, 0), {n.MODEL: model})

        def queue_depths(_: CallbackOptions) -> Iterable[Observation]:
            for provider, depth in queues().items():
                yield Observation(depth, {n.PROVIDER: provider})

        self._meter.create_observable_gauge(
            n.M_BREAKER_STATE,
            callbacks=[breaker_states],
            unit="1",
            description="Circuit breaker state per model: 0 closed, 1 half open, 2 open",
        )
        self._meter.create_observable_gauge(
            n.M_QUEUE_DEPTH,
            callbacks=[queue_depths],
            unit="{request}",
            description="Attempts waiting for admission, per provider",
        )


class _InferenceTokens:
    """Token counts as the latest conventions record them: per token type, a counter of the tokens
    spent and a histogram per call, without `gen_ai.token.type` (it chooses the pair instead).
    Recorded with v1.41's attribute sets (metric_keys.py), each mapped once."""

    MAX_KEYS = 4096

    def __init__(self, tally: Tallies) -> None:
        self._by_type: dict[str, tuple[Adds, Records]] = {}
        for token_type, total, per_call in (
            ("input", n.M_INFERENCE_USAGE_INPUT, n.M_INFERENCE_OPERATION_INPUT),
            ("output", n.M_INFERENCE_USAGE_OUTPUT, n.M_INFERENCE_OPERATION_OUTPUT),
        ):
            self._by_type[token_type] = (
                tally.counter(total, unit="{token}", description=f"{token_type.capitalize()} tokens used"),
                tally.histogram(
                    per_call,
                    unit="{token}",
                    description=f"{token_type.capitalize()} tokens used per provider call",
                    bounds=n.TOKEN_BUCKETS,
                ),
            )
        self._keys: dict[Key, tuple[str, Key]] = {}

    def record(self, value: float, attributes: Mapping[str, Any] | Key) -> None:
        key = attributes if type(attributes) is frozenset else series_key(attributes)  # type: ignore[arg-type]
        known = self._keys.get(key)
        if known is None:
            rest = dict(key)
            token_type = rest.pop(n.GEN_AI_TOKEN_TYPE, "input")
            known = (token_type if token_type in self._by_type else "input", series_key(rest))
            if len(self._keys) >= self.MAX_KEYS:
                self._keys.clear()
            self._keys[key] = known
        total, per_call = self._by_type[known[0]]
        total.add(value, known[1])
        per_call.record(value, known[1])
